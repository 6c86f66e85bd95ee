"""peakfinder9 from its documented logic (peak-search.md §6); CrystFEL wraps the external FDIP
library, which is not part of CrystFEL, so this is the project's own implementation.

For each pixel whose (2R+1)^2 window (R = --local-bg-radius) lies on the panel: it must be the
window's maximum and beat every border pixel by --min-peak-over-neighbour; the background is
the mean and sigma of the window's border pixels, sigma floored at --min-sig; the maximum must
stand --min-snr-biggest-pix sigma above it; the inner-window pixels above
--min-snr-peak-pix sigma form the peak, whose SNR I / (sigma sqrt(n)) must reach --min-snr.
Positions are corner-referenced centroids (+0.5, unlike CrystFEL's wrapper: see
docs/differences.md). Bad and non-finite pixels never take part.
"""

from __future__ import annotations

import math

import numba
import numpy as np

MAX_PEAKS_PER_PANEL = 10000


@numba.njit(cache=True, nogil=True, error_model="numpy", fastmath=True)
def _window_max(work: np.ndarray, r: int) -> np.ndarray:
    """Maximum over each pixel's (2r+1)^2 window (separable, inner loops along fs so that
    they vectorise); only pixels at least r from the edge are meaningful."""
    h, w = work.shape
    hm = work.copy()
    for s in range(h):
        row = hm[s]
        src = work[s]
        for k in range(1, r + 1):
            for f in range(r, w - r):
                a = src[f - k]
                b = src[f + k]
                c = row[f]
                m = a if a > b else b
                row[f] = m if m > c else c  # unconditional store: vectorises
    out = hm.copy()
    for s in range(r, h - r):
        row = out[s]
        for k in range(1, r + 1):
            up = hm[s - k]
            down = hm[s + k]
            for f in range(w):
                a = up[f]
                b = down[f]
                c = row[f]
                m = a if a > b else b
                row[f] = m if m > c else c
    return out


@numba.njit(cache=True, nogil=True, error_model="numpy")
def pf9_panel(data, bad, radius, min_snr_biggest, min_snr_peak, min_snr, min_sig,
              min_over_neighbour, max_adu, use_saturated, max_peaks):
    """Peaks of one panel in raster order: (fs, ss, intensity, snr)."""
    h, w = data.shape
    out_fs = np.empty(max_peaks)
    out_ss = np.empty(max_peaks)
    out_i = np.empty(max_peaks)
    out_snr = np.empty(max_peaks)
    n = 0
    r = radius
    if h <= 2 * r or w <= 2 * r:
        return out_fs[:0], out_ss[:0], out_i[:0], out_snr[:0]
    # Working copy: bad and non-finite pixels can neither be nor hide a maximum.
    work = np.empty((h, w), dtype=np.float32)
    for s in range(h):
        for f in range(w):
            v = data[s, f]
            work[s, f] = v if (not bad[s, f] and math.isfinite(v)) else -np.inf
    wmax = _window_max(work, r)
    for ss in range(r, h - r):
        for fs in range(r, w - r):
            v = work[ss, fs]
            if v < wmax[ss, fs] or v == -np.inf:
                continue
            if not use_saturated and v > max_adu:
                continue
            # Ties go to the first pixel of the window in raster order.
            tie = False
            for dss in range(-r, 1):
                for dfs in range(-r, r + 1):
                    if dss == 0 and dfs >= 0:
                        break
                    if work[ss + dss, fs + dfs] == v:
                        tie = True
                        break
                if tie:
                    break
            if tie:
                continue
            # Background: the window's border pixels.
            nb = 0
            sb = 0.0
            sb2 = 0.0
            bmax = -np.inf
            for dss in range(-r, r + 1):
                step = 1 if (dss == -r or dss == r) else 2 * r
                for dfs in range(-r, r + 1, step):
                    u = work[ss + dss, fs + dfs]
                    if u == -np.inf:
                        continue
                    nb += 1
                    sb += u
                    sb2 += u * u
                    if u > bmax:
                        bmax = u
            if nb < 2:
                continue
            if not v - bmax > min_over_neighbour:
                continue
            bg = sb / nb
            var = sb2 / nb - bg * bg
            sigma = math.sqrt(var) if var > 0.0 else 0.0
            if sigma < min_sig:
                sigma = min_sig
            if sigma <= 0.0 or v - bg < min_snr_biggest * sigma:
                continue
            cut = min_snr_peak * sigma
            npix = 0
            total = 0.0
            wf = 0.0
            ws = 0.0
            for dss in range(-r + 1, r):
                for dfs in range(-r + 1, r):
                    u = work[ss + dss, fs + dfs] - bg
                    if (dss == 0 and dfs == 0) or u > cut:
                        npix += 1
                        total += u
                        wf += u * (fs + dfs)
                        ws += u * (ss + dss)
            snr = total / (sigma * math.sqrt(npix))
            if snr < min_snr or total <= 0.0:
                continue
            out_fs[n] = wf / total + 0.5
            out_ss[n] = ws / total + 0.5
            out_i[n] = total
            out_snr[n] = snr
            n += 1
            if n >= max_peaks:
                return out_fs[:n], out_ss[:n], out_i[:n], out_snr[:n]
    return out_fs[:n], out_ss[:n], out_i[:n], out_snr[:n]
