"""Profile-radius estimate from the peaks a crystal explains (indexing.md §7, ``refine_radius``)."""

from __future__ import annotations

import logging

import numpy as np

from crystream.cell import UnitCell
from crystream.frame import PeakList
from crystream.geometry.detector import Detector
from crystream.prediction import pair_peaks

log = logging.getLogger(__name__)

#: The radius every crystal starts from (and keeps when too few peaks pair), m^-1.
DEFAULT_PROFILE_RADIUS = 0.02e9


def estimate_profile_radius(cell: UnitCell, peaks: PeakList, detector: Detector,
                            wavelength: float, clen: float, bandwidth: float,
                            shift_x: float = 0.0, shift_y: float = 0.0) -> float:
    """~98th percentile of |excitation error| over paired peaks (m^-1), so that prediction
    covers the spots that were actually seen; DEFAULT_PROFILE_RADIUS with fewer than 3 pairs."""
    pairs = pair_peaks(cell, peaks, detector, wavelength, clen, bandwidth,
                       DEFAULT_PROFILE_RADIUS, shift_x, shift_y)
    n = len(pairs)
    if n < 3:
        log.warning("Too few paired peaks (%d) to estimate the profile radius", n)
        return DEFAULT_PROFILE_RADIUS
    err = np.sort(np.abs(pairs.exerr))
    return float(err[(n - 1) - n // 50])
