"""|q| of peaks and the chunk's ``peak_resolution`` (peak-search.md §8), and --highres masks."""

from __future__ import annotations

import numpy as np

from crystream.frame import Frame, PeakList
from crystream.geometry.detector import Detector, peaks_to_q


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
    """Pixels with |q| >= 1/highres (Angstrom) at their corner, per panel; None if inf.

    Delegates to crystream.geometry.badpixels, which caches the maps per detector.
    """
    if not np.isfinite(highres):
        return None
    from crystream.geometry.badpixels import highres_masks as _masks
    return _masks(detector, float(highres) * 1e-10, frame.clen, frame.wavelength,
                  frame.detector_shift_x, frame.detector_shift_y)
