"""Per-crystal resolution estimate and the --highres pixel cut (integration.md §2 and §5)."""

from __future__ import annotations

import logging
import math

import numpy as np

from crystream.cell import UnitCell
from crystream.frame import PeakList
from crystream.geometry.detector import Detector, peaks_to_q, scattering_vectors
from crystream.prediction import cell_is_usable

log = logging.getLogger(__name__)


def diffraction_resolution_limit(cell: UnitCell, peaks: PeakList, detector: Detector,
                                 clen: float, wavelength: float, shift_x: float = 0.0,
                                 shift_y: float = 0.0) -> float:
    """1/d (m^-1) of the ~98th-percentile peak that the lattice explains; 0.0 if fewer than 3.

    A peak counts when all three fractional indices are within 0.25 of an integer; its 1/d is
    that of the integer reflection.
    """
    if len(peaks) == 0 or not cell_is_usable(cell):
        log.warning("Too few peaks (or no usable cell) to estimate the resolution limit")
        return 0.0
    q = peaks_to_q(detector, peaks.panel, peaks.fs, peaks.ss, clen, wavelength,
                   shift_x, shift_y)
    frac = q @ cell.real.T
    hkl = np.rint(frac)
    close = np.all(np.abs(frac - hkl) < 0.25, axis=1)
    if close.sum() < 3:
        log.warning("Too few peaks to estimate the resolution limit")
        return 0.0
    acc = np.sort(np.linalg.norm(hkl[close] @ cell.reciprocal, axis=1))
    n_acc = len(acc)
    n = max(n_acc // 50, 2)
    return float(acc[(n_acc - 1) - n])


def format_resolution_limit(limit: float) -> str:
    """The stream line's value part: '%.2f nm^-1 or %.2f A' (inf Angstrom for 0)."""
    ang = f"{1e10 / limit:.2f}" if limit > 0 else "inf"
    return f"{limit / 1e9:.2f} nm^-1 or {ang} A"


_HIGHRES_CACHE: dict[tuple, list[np.ndarray]] = {}


def highres_masks(detector: Detector, clen: float, wavelength: float, highres: float,
                  shift_x: float = 0.0, shift_y: float = 0.0) -> list[np.ndarray] | None:
    """Per-panel bool masks, True where |q| at the pixel corner >= 1/highres (Angstrom); None for inf.

    Cached per worker for the last few (detector, beam, cut) combinations, since the beam
    rarely changes from frame to frame.
    """
    if not math.isfinite(highres):
        return None
    shape = tuple((p.width, p.height, p.corner_x, p.corner_y, p.res, p.coffset,
                   tuple(p.fs), tuple(p.ss)) for p in detector.panels)
    key = (shape, clen, wavelength, highres, shift_x, shift_y)
    cached = _HIGHRES_CACHE.get(key)
    if cached is not None:
        return cached
    qmax = 1.0 / (highres * 1e-10)
    out = []
    for p in detector.panels:
        ss, fs = np.mgrid[0:p.height, 0:p.width]
        q = scattering_vectors(p, fs.astype(np.float64), ss.astype(np.float64), clen,
                               wavelength, shift_x, shift_y)
        mask = np.linalg.norm(q, axis=-1) >= qmax
        mask.flags.writeable = False
        out.append(mask)
    if len(_HIGHRES_CACHE) >= 8:
        _HIGHRES_CACHE.pop(next(iter(_HIGHRES_CACHE)))
    _HIGHRES_CACHE[key] = out
    return out
