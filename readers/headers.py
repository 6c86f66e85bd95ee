"""Header values per format (streaming-input.md §4) and the beam they resolve to."""

from __future__ import annotations

from crystream.geometry.detector import Detector
from readers.errors import PayloadError


def read_headers(payload, detector: Detector, copy_header: tuple[str, ...],
                 label: str) -> dict[str, object]:
    """Every header the geometry consults, then the --copy-header ones, in CrystFEL's cache order.

    Values keep their type (int, float or str) so the stream shows header/int|float|str.
    A header named twice is kept once (CrystFEL would write it twice).
    """
    headers: dict[str, object] = {}
    for name in list(detector.header_locations()) + list(copy_header):
        if name not in headers:
            headers[name] = payload.header(name)
    return headers


def resolve_beam(detector: Detector, headers: dict[str, object],
                 label: str) -> tuple[float, float, float, float]:
    """(wavelength m, clen m, shift_x m, shift_y m) for this frame, or PayloadError."""
    try:
        if hasattr(detector, "resolve_beam"):
            wavelength, clen, sx, sy = detector.resolve_beam(headers)
        else:  # before the geometry's resolve_beam existed: literals and metre-scaled headers
            wavelength = detector.wavelength.resolve(headers)
            clen = detector.clen.resolve(headers)
            sx = detector.detector_shift_x.resolve(headers) if detector.detector_shift_x else 0.0
            sy = detector.detector_shift_y.resolve(headers) if detector.detector_shift_y else 0.0
    except (KeyError, ValueError, TypeError) as exc:
        text = exc.args[0] if exc.args else str(exc)
        raise PayloadError(label, f"failed to read beam/geometry values: {text}") from None
    if not wavelength > 0:
        raise PayloadError(label, f"wavelength {wavelength} m is not positive")
    return float(wavelength), float(clen), float(sx), float(sy)
