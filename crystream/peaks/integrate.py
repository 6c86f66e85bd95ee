"""CrystFEL's ``integrate_peak`` for the peak search: disc minus annulus mean, at an integer centre.

Shared by zaef (step 5) and by the revalidation of peaks delivered with the data
(peak-search.md §4.5, §7.3). Radii may be fractional (zaef) or truncated (revalidation).
"""

from __future__ import annotations

import math

import numba
import numpy as np

OK = 0
FAIL = 1


@numba.njit(cache=True, nogil=True, error_model="numpy")
def integrate_peak(data: np.ndarray, bad: np.ndarray, cfs: int, css: int, inn: float,
                   mid: float, out: float, max_adu: float, adu_per_photon: float):
    """Integrate around pixel (cfs, css).

    Returns (status, centroid_fs, centroid_ss, intensity, sigma, saturated); status FAIL when a
    disc or annulus pixel is off the panel or bad, or the total or variance is unusable.
    The centroid is corner-referenced (pixel centre = index + 0.5).
    """
    h, w = data.shape
    lim = int(math.ceil(out))
    inn2 = inn * inn
    mid2 = mid * mid
    out2 = out * out
    saturated = False
    # Background annulus: mid^2 <= d^2 <= out^2.
    nb = 0
    sb = 0.0
    sb2 = 0.0
    for dss in range(-lim, lim + 1):
        for dfs in range(-lim, lim + 1):
            d2 = dfs * dfs + dss * dss
            if d2 < mid2 or d2 > out2:
                continue
            f = cfs + dfs
            s = css + dss
            if f < 0 or f >= w or s < 0 or s >= h:
                return FAIL, 0.0, 0.0, 0.0, 0.0, False
            v = data[s, f]
            if bad[s, f] or not math.isfinite(v):
                return FAIL, 0.0, 0.0, 0.0, 0.0, False
            if v > max_adu:
                saturated = True
            nb += 1
            sb += v
            sb2 += v * v
    if nb == 0:
        return FAIL, 0.0, 0.0, 0.0, 0.0, False
    bg = sb / nb
    bg_var = sb2 / nb - bg * bg
    # Peak disc: d^2 <= inn^2.
    lim_in = int(math.ceil(inn))
    n_peak = 0
    total = 0.0
    wfs = 0.0
    wss = 0.0
    for dss in range(-lim_in, lim_in + 1):
        for dfs in range(-lim_in, lim_in + 1):
            if dfs * dfs + dss * dss > inn2:
                continue
            f = cfs + dfs
            s = css + dss
            if f < 0 or f >= w or s < 0 or s >= h:
                return FAIL, 0.0, 0.0, 0.0, 0.0, False
            v = data[s, f]
            if bad[s, f] or not math.isfinite(v):
                return FAIL, 0.0, 0.0, 0.0, 0.0, False
            if v > max_adu:
                saturated = True
            n_peak += 1
            val = v - bg
            total += val
            wfs += val * f
            wss += val * s
    if n_peak == 0 or total == 0.0:
        return FAIL, 0.0, 0.0, 0.0, 0.0, False
    var = n_peak * bg_var + adu_per_photon * total
    if var < 0.0:
        return FAIL, 0.0, 0.0, 0.0, 0.0, False
    return OK, wfs / total + 0.5, wss / total + 0.5, total, math.sqrt(var), saturated
