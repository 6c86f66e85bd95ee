"""zaef: CrystFEL's default gradient peak search (peak-search.md §4), one numba kernel per panel."""

from __future__ import annotations

import math

import numba
import numpy as np

from crystream.peaks.integrate import OK, integrate_peak

MAX_PEAKS_PER_PANEL = 10000


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _climb(data: np.ndarray, fs: int, ss: int, lim: int):
    """Hill-climb to the brightest pixel of the (2 lim + 1)^2 square, repeated until it stays."""
    h, w = data.shape
    mfs = fs
    mss = ss
    while True:
        best = data[mss, mfs]
        bfs = mfs
        bss = mss
        for s in range(max(mss - lim, 0), min(mss + lim, h - 1) + 1):
            for f in range(max(mfs - lim, 0), min(mfs + lim, w - 1) + 1):
                if data[s, f] > best:
                    best = data[s, f]
                    bfs = f
                    bss = s
        if bfs == mfs and bss == mss:
            return mfs, mss
        mfs = bfs
        mss = bss


@numba.njit(cache=True, nogil=True, error_model="numpy")
def zaef_panel(data: np.ndarray, bad: np.ndarray, threshold: float, min_sq_gradient: float,
               min_snr: float, inn: float, mid: float, out: float, max_adu: float,
               use_saturated: bool, adu_per_photon: float, max_peaks: int):
    """All zaef peaks of one panel, in raster order: (fs, ss, intensity) arrays, corner-referenced."""
    h, w = data.shape
    pfs = np.empty(max_peaks)
    pss = np.empty(max_peaks)
    pint = np.empty(max_peaks)
    n = 0
    tried = np.zeros((h, w), dtype=np.uint8)  # summits already integrated: same result again
    lim = int(inn)
    inn2 = inn * inn
    sep2 = 4.0 * inn2  # another peak within 2 inn rejects
    for ss in range(1, h - 1):
        if n >= max_peaks:
            break
        for fs in range(1, w - 1):
            v = data[ss, fs]
            if not v >= threshold:  # also skips NaN
                continue
            if not use_saturated and v > max_adu:
                continue
            dx1 = v - data[ss, fs + 1]
            dx2 = data[ss, fs - 1] - v
            dy1 = v - data[ss + 1, fs + 1]  # CrystFEL's diagonal quirk
            dy2 = data[ss - 1, fs] - v
            grad = (dx1 * dx1 + dx2 * dx2) * 0.5 + (dy1 * dy1 + dy2 * dy2) * 0.5
            if not grad >= min_sq_gradient:
                continue
            mfs, mss = _climb(data, fs, ss, lim)
            if (mfs - fs) ** 2 + (mss - ss) ** 2 > inn2:
                continue
            if tried[mss, mfs]:
                continue
            tried[mss, mfs] = 1
            status, cfs, css, intensity, sigma, sat = integrate_peak(
                data, bad, mfs, mss, inn, mid, out, max_adu, adu_per_photon)
            if status != OK:
                continue
            if cfs < 0.0 or css < 0.0 or cfs > w or css > h:
                continue
            if sigma > 0.0 and abs(intensity) / sigma < min_snr:
                continue
            close = False
            for k in range(n):
                if (pfs[k] - cfs) ** 2 + (pss[k] - css) ** 2 < sep2:
                    close = True
                    break
            if close:
                continue
            if sat and not use_saturated:
                continue
            pfs[n] = cfs
            pss[n] = css
            pint[n] = intensity
            n += 1
            if n >= max_peaks:
                break
    return pfs[:n].copy(), pss[:n].copy(), pint[:n].copy()
