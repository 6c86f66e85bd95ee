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
    for ss in range(r, h - r):
        for fs in range(r, w - r):
            v = data[ss, fs]
            if bad[ss, fs] or not math.isfinite(v):
                continue
            if not use_saturated and v > max_adu:
                continue
            # Quick 3x3 test first: most pixels are not even a local maximum there.
            if not (v >= data[ss, fs + 1] and v >= data[ss + 1, fs - 1]
                    and v >= data[ss + 1, fs] and v >= data[ss + 1, fs + 1]
                    and v > data[ss, fs - 1] and v > data[ss - 1, fs - 1]
                    and v > data[ss - 1, fs] and v > data[ss - 1, fs + 1]):
                continue
            # Window maximum (ties go to the first pixel in raster order); border statistics.
            is_max = True
            nb = 0
            sb = 0.0
            sb2 = 0.0
            bmax = -np.inf
            for dss in range(-r, r + 1):
                for dfs in range(-r, r + 1):
                    if dss == 0 and dfs == 0:
                        continue
                    u = data[ss + dss, fs + dfs]
                    before = dss < 0 or (dss == 0 and dfs < 0)
                    if u > v or (before and u == v):
                        is_max = False
                        break
                    if (abs(dss) == r or abs(dfs) == r) and not bad[ss + dss, fs + dfs] \
                            and math.isfinite(u):
                        nb += 1
                        sb += u
                        sb2 += u * u
                        if u > bmax:
                            bmax = u
                if not is_max:
                    break
            if not is_max or nb < 2:
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
                    if bad[ss + dss, fs + dfs]:
                        continue
                    u = data[ss + dss, fs + dfs] - bg
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
