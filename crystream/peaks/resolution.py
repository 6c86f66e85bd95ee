"""|q| of peaks and the chunk's ``peak_resolution`` (peak-search.md §8), and --highres masks."""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict

import numpy as np

from crystream.frame import Frame, PeakList
from crystream.geometry.detector import Detector, peaks_to_q, scattering_vectors

_hr_lock = threading.Lock()
_hr_cache: OrderedDict = OrderedDict()


def peak_q_magnitudes(peaks: PeakList, detector: Detector, frame: Frame) -> np.ndarray:
    """|q| (m^-1) of every peak, the stream's 1/d column (x 1e-9 for nm^-1).

    Uses the frame's geometry (clen, wavelength and the geometry file's detector shift); the
    crystal's refined shift does not enter.
    """
    if len(peaks) == 0:
        return np.zeros(0)
    q = peaks_to_q(detector, peaks.panel, peaks.fs, peaks.ss, frame.clen, frame.wavelength,
                   frame.detector_shift_x, frame.detector_shift_y)
    return np.linalg.norm(q, axis=1)


def peak_resolution(q_norms: np.ndarray) -> float:
    """The (n/50)-th highest |q|, the cut reset to 0 when below 2; 0 with no peaks (m^-1)."""
    n = len(q_norms)
    if n == 0:
        return 0.0
    ncut = n // 50
    if ncut < 2:
        ncut = 0
    return float(np.sort(q_norms)[n - 1 - ncut])


def peak_resolution_of(peaks: PeakList, detector: Detector, frame: Frame) -> float:
    """The chunk's ``peak_resolution`` in m^-1 for this peak list."""
    return peak_resolution(peak_q_magnitudes(peaks, detector, frame))


def highres_masks(detector: Detector, frame: Frame, highres: float) -> list[np.ndarray] | None:
    """Pixels with |q| >= 1/highres at their corner (integer fs, ss), per panel; None if inf."""
    if not np.isfinite(highres):
        return None
    key = ("highres", float(highres), float(frame.clen), float(frame.wavelength),
           float(frame.detector_shift_x), float(frame.detector_shift_y))

    def build() -> list[np.ndarray]:
        limit = 1.0 / (highres * 1e-10)
        out = []
        for p in detector.panels:
            ss, fs = np.mgrid[0:p.height, 0:p.width]
            q = scattering_vectors(p, fs, ss, frame.clen, frame.wavelength,
                                   frame.detector_shift_x, frame.detector_shift_y)
            m = np.linalg.norm(q, axis=-1) >= limit
            m.flags.writeable = False
            out.append(m)
        return out

    with _hr_lock:
        hit = _hr_cache.get((id(detector),) + key)
        if hit is not None and hit[0]() is detector:
            _hr_cache.move_to_end((id(detector),) + key)
            return hit[1]
    masks = build()
    with _hr_lock:
        _hr_cache[(id(detector),) + key] = (weakref.ref(detector), masks)
        while len(_hr_cache) > 16:  # clen/wavelength may change per frame: keep a few
            _hr_cache.popitem(last=False)
    return masks
