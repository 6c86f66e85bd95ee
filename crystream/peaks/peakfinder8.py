"""peakfinder8 (peak-search.md §5): radial-statistics thresholds, 8-connected flood fill.

Speed comes from three things: the radius-bin map is built once per detector; the five
clipping iterations of the radial statistics read the pixels once (pixels below the ADC
threshold always pass the upper clip, so only the few above it are kept in a "tail" list
and re-examined; a bin whose lower clip bites is recomputed exactly from a bin-sorted pixel
index table); and the seed scan rejects a pixel with one comparison against the smallest
per-bin threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from crystream.geometry.detector import Detector
from crystream.peaks.geomcache import cached
from crystream.peaks.options import PeakSearchOptions

MAX_PEAKS = 2048  # global over all panels (a running budget)
N_ITERATIONS = 5
FAST_SAMPLES = 100
FLT_MAX = float(np.finfo(np.float32).max)
FLT_MIN = float(np.finfo(np.float32).tiny)
FAST_SEED = 20081  # fixed: --peakfinder8-fast samples the same pixels on every worker


@dataclass(frozen=True)
class RadialMap:
    """Per-panel radius-bin codes: bin >= 0 usable, -(bin + 1) outside --min-res/--max-res."""

    codes: list[np.ndarray]  # int32 (ss, fs) per panel
    n_bins: int
    sample_panel: np.ndarray  # --peakfinder8-fast: sampled pixels (panel, flat index, bin)
    sample_index: np.ndarray
    sample_bin: np.ndarray


def _build_radial_map(detector: Detector, shift_x: float, shift_y: float, min_res: float,
                      max_res: float) -> RadialMap:
    radii = []
    for p in detector.panels:
        ss, fs = np.mgrid[0:p.height, 0:p.width]
        pitch = p.pixel_pitch
        x = p.corner_x + shift_x / pitch + fs * p.fs[0] + ss * p.ss[0]
        y = p.corner_y + shift_y / pitch + fs * p.fs[1] + ss * p.ss[1]
        radii.append(np.hypot(np.trunc(x), np.trunc(y)))  # corner, truncated to int
    n_bins = int(math.ceil(max(float(r.max()) for r in radii))) + 1
    codes = []
    for r in radii:
        b = np.rint(r).astype(np.int32)
        usable = r > min_res
        if max_res != 0:
            usable &= r < max_res
        codes.append(np.where(usable, b, -(b + 1)).astype(np.int32))
    # Fast mode: a fixed uniform subset of at most FAST_SAMPLES usable pixels per radius bin.
    rng = np.random.default_rng(FAST_SEED)
    pan = np.concatenate([np.full(c.size, i, np.int32) for i, c in enumerate(codes)])
    idx = np.concatenate([np.arange(c.size, dtype=np.int64) for c in codes])
    bins = np.concatenate([c.ravel() for c in codes])
    keep = bins >= 0
    pan, idx, bins = pan[keep], idx[keep], bins[keep]
    order = np.lexsort((rng.random(len(bins)), bins))
    sb = bins[order]
    first = np.searchsorted(sb, sb, side="left")
    pick = order[(np.arange(len(sb)) - first) < FAST_SAMPLES]
    pick.sort()
    return RadialMap(codes, n_bins, pan[pick], idx[pick], bins[pick])


def radial_map(detector: Detector, shift_x: float, shift_y: float, min_res: float,
               max_res: float) -> RadialMap:
    """The cached radius-bin map for this detector, detector shift and resolution range."""
    key = ("pf8", float(shift_x), float(shift_y), float(min_res), float(max_res))
    return cached(detector, key,
                  lambda: _build_radial_map(detector, shift_x, shift_y, min_res, max_res))


# ------------------------------------------------------------------ radial statistics

@numba.njit(cache=True, nogil=True, error_model="numpy")
def _core_tail(data, bad, codes, cut, ccnt, cs, cs2, cmin, tail_b, tail_v, ntail):
    """One pass: sums of usable pixels in (-1e9, cut) per bin ("core"), the rest listed."""
    h, w = data.shape
    nt = ntail[0]
    for s in range(h):
        for f in range(w):
            b = codes[s, f]
            if b < 0 or bad[s, f]:
                continue
            v = data[s, f]
            if v > -1e9 and v < cut:
                ccnt[b] += 1.0
                cs[b] += v
                cs2[b] += v * v
                if v < cmin[b]:
                    cmin[b] = v
            elif v == v:
                tail_b[nt] = b
                tail_v[nt] = v
                nt += 1
    ntail[0] = nt


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _bounds(cnt, s, s2, threshold, min_snr, mean, sigma, lo, hi):
    """CrystFEL's per-bin update: mean, sigma (negative variance kept un-rooted), clip bounds."""
    for b in range(len(cnt)):
        if cnt[b] == 0:
            mean[b] = 0.0
            sigma[b] = 0.0
            hi[b] = FLT_MAX
            lo[b] = FLT_MIN
            continue
        m = s[b] / cnt[b]
        var = s2[b] / cnt[b] - m * m
        sg = math.sqrt(var) if var >= 0.0 else var
        mean[b] = m
        sigma[b] = sg
        hi[b] = m + min_snr * sg
        lo[b] = m - min_snr * sg
        if hi[b] < threshold:
            hi[b] = threshold


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _core_plus_tail(ccnt, cs, cs2, tail_b, tail_v, nt, lo, hi):
    """Sums per bin for lo < v < hi, valid for bins whose core lies entirely inside."""
    cnt = ccnt.copy()
    s = cs.copy()
    s2 = cs2.copy()
    for t in range(nt):
        b = tail_b[t]
        v = tail_v[t]
        if v > lo[b] and v < hi[b]:
            cnt[b] += 1.0
            s[b] += v
            s2[b] += v * v
    return cnt, s, s2


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _bins_exact(data, bad, ptr, index, bins, lo, hi, cnt, s, s2):
    """Exact sums for the listed bins from the panel's bin-sorted pixel index table."""
    flat = data.ravel()
    flat_bad = bad.ravel()
    for b in bins:
        for j in range(ptr[b], ptr[b + 1]):
            k = index[j]
            if flat_bad[k]:
                continue
            v = flat[k]
            if v > lo[b] and v < hi[b]:
                cnt[b] += 1.0
                s[b] += v
                s2[b] += v * v


def _bin_tables(detector: Detector, rmap: RadialMap, key: tuple) -> list[tuple]:
    """Per panel: pixel indices sorted by (usable) bin and each bin's start; built on demand."""
    def build() -> list[tuple]:
        out = []
        for c in rmap.codes:
            flat = c.ravel()
            order = np.argsort(flat, kind="stable").astype(np.int64)
            order = order[flat[order] >= 0]
            ptr = np.searchsorted(flat[order], np.arange(rmap.n_bins + 1)).astype(np.int64)
            out.append((ptr, order))
        return out
    return cached(detector, key + ("bin-tables",), build)


def radial_stats(data: list[np.ndarray], bad: list[np.ndarray], rmap: RadialMap,
                 threshold: float, min_snr: float, fast: bool, detector: Detector,
                 key: tuple):
    """Per-bin (mean, sigma, hi) after CrystFEL's five clipping iterations.

    Pixels below the ADC threshold always pass the upper clip, so they are summed once
    ("core"); the rest ("tail") is re-examined each iteration. A bin whose lower clip reaches
    into its core (e.g. a bin of identical values) is recomputed exactly from its pixels.
    """
    nb = rmap.n_bins
    ccnt = np.zeros(nb)
    cs = np.zeros(nb)
    cs2 = np.zeros(nb)
    cmin = np.full(nb, np.inf)
    if fast:
        vals = np.concatenate([d.ravel()[rmap.sample_index[rmap.sample_panel == i]]
                               for i, d in enumerate(data)])
        ok = ~np.concatenate([b.ravel()[rmap.sample_index[rmap.sample_panel == i]]
                              for i, b in enumerate(bad)]) & np.isfinite(vals)
        tail_b = np.ascontiguousarray(rmap.sample_bin[ok])
        tail_v = vals[ok].astype(np.float32)
        nt = len(tail_v)
    else:
        total = sum(d.size for d in data)
        tail_b = np.empty(total, np.int32)
        tail_v = np.empty(total, np.float32)  # pixel values are float32: exact
        ntail = np.zeros(1, np.int64)
        cut = min(float(threshold), 1e9)
        for d, b, c in zip(data, bad, rmap.codes):
            _core_tail(d, b, c, cut, ccnt, cs, cs2, cmin, tail_b, tail_v, ntail)
        nt = int(ntail[0])
    lo = np.full(nb, -1e9)
    hi = np.full(nb, 1e9)
    mean = np.zeros(nb)
    sigma = np.zeros(nb)
    for _ in range(N_ITERATIONS):
        cnt, s, s2 = _core_plus_tail(ccnt, cs, cs2, tail_b, tail_v, nt, lo, hi)
        failing = np.flatnonzero((ccnt > 0) & ~(cmin > lo))
        if len(failing):
            cnt[failing] = 0.0
            s[failing] = 0.0
            s2[failing] = 0.0
            for d, b, (ptr, index) in zip(data, bad, _bin_tables(detector, rmap, key)):
                _bins_exact(d, b, ptr, index, failing, lo, hi, cnt, s, s2)
        _bounds(cnt, s, s2, float(threshold), float(min_snr), mean, sigma, lo, hi)
    return mean, sigma, hi


# ------------------------------------------------------------------ peak detection

@numba.njit(cache=True, nogil=True, error_model="numpy")
def pf8_panel(data, bad, codes, mean, hi, min_snr, min_pix, max_pix, bg_radius, budget):
    """Peaks of one panel in seed raster order, at most ``budget``.

    Returns fs, ss (corner-referenced), intensity, max_i (background-subtracted), snr, npix.
    """
    h, w = data.shape
    out_fs = np.empty(budget)
    out_ss = np.empty(budget)
    out_i = np.empty(budget)
    out_max = np.empty(budget)
    out_snr = np.empty(budget)
    out_n = np.empty(budget, np.int64)
    n_out = 0
    if budget <= 0 or h < 3 or w < 3:
        return out_fs, out_ss, out_i, out_max, out_snr, out_n
    lowest = np.inf  # no pixel at or below every bin's threshold can seed
    for b in range(len(hi)):
        if hi[b] < lowest:
            lowest = hi[b]
    peakmap = np.zeros((h, w), np.uint8)
    cap = 1024
    qf = np.empty(cap, np.int64)
    qs = np.empty(cap, np.int64)
    r2 = 2 * bg_radius
    r2sq = r2 * r2
    for ss in range(1, h - 1):
        for fs in range(1, w - 1):
            v = data[ss, fs]
            if not v > lowest:
                continue
            b = codes[ss, fs]
            if b < 0 or bad[ss, fs] or peakmap[ss, fs] != 0 or not v > hi[b]:
                continue
            # 8-connected breadth-first flood fill through pixels above their bin's threshold.
            peakmap[ss, fs] = 1
            qf[0] = fs
            qs[0] = ss
            n = 1
            head = 0
            while head < n:
                cf = qf[head]
                cs_ = qs[head]
                head += 1
                for dss in range(-1, 2):
                    s2_ = cs_ + dss
                    if s2_ < 0 or s2_ >= h:
                        continue
                    for dfs in range(-1, 2):
                        f2 = cf + dfs
                        if f2 < 0 or f2 >= w or peakmap[s2_, f2] != 0:
                            continue
                        b2 = codes[s2_, f2]
                        if b2 < 0 or bad[s2_, f2] or not data[s2_, f2] > hi[b2]:
                            continue
                        peakmap[s2_, f2] = 1
                        if n == cap:
                            cap *= 2
                            nf = np.empty(cap, np.int64)
                            ns = np.empty(cap, np.int64)
                            nf[:n] = qf[:n]
                            ns[:n] = qs[:n]
                            qf = nf
                            qs = ns
                        qf[n] = f2
                        qs[n] = s2_
                        n += 1
            if n < min_pix or n > max_pix:
                continue
            sw = 0.0
            swf = 0.0
            sws = 0.0
            for k in range(n):
                wgt = data[qs[k], qf[k]] - mean[codes[qs[k], qf[k]]]
                sw += wgt
                swf += wgt * qf[k]
                sws += wgt * qs[k]
            if abs(sw) < 1e-10:
                continue
            cfs = int(math.floor(swf / abs(sw) + 0.5))  # halves round up, as CrystFEL does
            css = int(math.floor(sws / abs(sw) + 0.5))
            # Local background: full disc of radius 2R (loop -2R .. 2R-1), below threshold.
            nbg = 0
            sbg = 0.0
            sbg2 = 0.0
            bg_max = 0.0
            for dss in range(-r2, r2):
                ps = css + dss
                if ps < 0 or ps >= h:
                    continue
                for dfs in range(-r2, r2):
                    pf = cfs + dfs
                    if pf < 0 or pf >= w or dfs * dfs + dss * dss > r2sq:
                        continue
                    b2 = codes[ps, pf]
                    if b2 < 0 or bad[ps, pf] or peakmap[ps, pf] != 0:
                        continue
                    v2 = data[ps, pf]
                    if not v2 < hi[b2]:
                        continue
                    nbg += 1
                    sbg += v2
                    sbg2 += v2 * v2
                    if v2 > bg_max:
                        bg_max = v2
            if nbg > 0:
                offset = sbg / nbg
                var = sbg2 / nbg - offset * offset
                lsigma = math.sqrt(var) if var >= 0.0 else 0.01
            else:
                bc = codes[css, cfs]
                offset = mean[bc if bc >= 0 else -bc - 1]
                lsigma = 0.01
            total = 0.0
            raw = 0.0
            rf = 0.0
            rs = 0.0
            max_i = 0.0
            for k in range(n):
                vv = data[qs[k], qf[k]]
                total += vv - offset
                raw += vv
                rf += vv * qf[k]
                rs += vv * qs[k]
                if vv - offset > max_i:
                    max_i = vv - offset
            if abs(raw) < 1e-10:
                continue
            com_fs = rf / abs(raw)
            com_ss = rs / abs(raw)
            snr = total / lsigma if abs(lsigma) > 1e-10 else 0.0
            if snr < min_snr:
                continue
            if max_i < bg_max - offset:
                continue
            if com_fs < 0 or com_ss < 0 or com_fs > w - 1 or com_ss > h - 1:
                continue
            for k in range(n):
                peakmap[qs[k], qf[k]] = 2
            out_fs[n_out] = com_fs + 0.5
            out_ss[n_out] = com_ss + 0.5
            out_i[n_out] = total
            out_max[n_out] = max_i
            out_snr[n_out] = snr
            out_n[n_out] = n
            n_out += 1
            if n_out >= budget:
                return (out_fs[:n_out], out_ss[:n_out], out_i[:n_out], out_max[:n_out],
                        out_snr[:n_out], out_n[:n_out])
    return (out_fs[:n_out], out_ss[:n_out], out_i[:n_out], out_max[:n_out], out_snr[:n_out],
            out_n[:n_out])


def peakfinder8_peaks(data: list[np.ndarray], bad: list[np.ndarray], detector: Detector,
                      options: PeakSearchOptions, shift_x: float = 0.0, shift_y: float = 0.0
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """All peakfinder8 peaks of a frame: (fs, ss, panel, intensity) arrays, panel order."""
    rmap = radial_map(detector, shift_x, shift_y, options.min_res, options.max_res)
    key = ("pf8", float(shift_x), float(shift_y), float(options.min_res), float(options.max_res))
    mean, _sigma, hi = radial_stats(data, bad, rmap, options.threshold, options.min_snr,
                                    options.peakfinder8_fast, detector, key)
    out = ([], [], [], [])
    budget = MAX_PEAKS
    for i, (d, b, c) in enumerate(zip(data, bad, rmap.codes)):
        if budget <= 0:
            break
        fs, ss, inten, max_i, _snr, _n = pf8_panel(
            d, b, c, mean, hi, float(options.min_snr), int(options.min_pix_count),
            int(options.max_pix_count), int(options.local_bg_radius), budget)
        budget -= len(fs)  # saturated peaks skipped below still use up the budget
        if not options.use_saturated:
            keep = max_i <= detector.panels[i].max_adu
            fs, ss, inten = fs[keep], ss[keep], inten[keep]
        out[0].append(fs)
        out[1].append(ss)
        out[2].append(np.full(len(fs), i, np.int32))
        out[3].append(inten)
    if not out[0]:
        return np.zeros(0), np.zeros(0), np.zeros(0, np.int32), np.zeros(0)
    return tuple(np.concatenate(x) for x in out)
