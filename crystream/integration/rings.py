"""Ring integration, vectorised over reflections (integration.md §4, §4.1, §4.3).

Every reflection's (2w+1)^2 box is cut out of its panel into one (n, B, B) array, so the box
checks, background fits and sums are array operations, not a loop over reflections.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

IGNORE, PEAK, BACKGROUND = 0, 1, 2


@dataclass(frozen=True)
class RingTemplate:
    """Box layout for radii (inner, middle, outer): region codes and offsets p (fs), q (ss)."""

    region: np.ndarray  # (B, B) int8, indexed [q, p]
    p: np.ndarray  # (B, B) fs offset from the centre pixel
    q: np.ndarray  # (B, B) ss offset
    half: int  # w = outer radius

    @classmethod
    def make(cls, inner: int, middle: int, outer: int) -> "RingTemplate":
        offs = np.arange(-outer, outer + 1)
        q, p = np.meshgrid(offs, offs, indexing="ij")
        r2 = p * p + q * q
        region = np.full(r2.shape, IGNORE, dtype=np.int8)
        region[(r2 >= middle * middle) & (r2 <= outer * outer)] = BACKGROUND
        region[r2 <= inner * inner] = PEAK
        return cls(region, p.astype(np.float64), q.astype(np.float64), outer)


@dataclass
class FramePixels:
    """What integration reads from a frame, per panel: pixels, bad pixels, the shared
    background-mask counts and the saturation level (max_adu, or the map where it is lower)."""

    data: list[np.ndarray]
    bad: list[np.ndarray]
    counts: list[np.ndarray]
    saturation: list[np.ndarray | float]


@dataclass
class Boxes:
    """Boxes cut from the frame at integer centres (cfs, css) on given panels."""

    values: np.ndarray  # (n, B, B) float64
    bad: np.ndarray  # (n, B, B) bool
    counts: np.ndarray  # (n, B, B) int
    saturation: np.ndarray  # (n, B, B) float
    off_panel: np.ndarray  # (n,) bool: some pixel of the box is outside its panel


@njit(cache=True, nogil=True)
def _cut_kernel(data, bad, counts, sat, sat_is_map, sel, cfs, css, half, values, bad_out,
                counts_out, sat_out, off):  # pragma: no cover - compiled
    height, width = data.shape
    size = 2 * half + 1
    for j in range(len(sel)):
        n = sel[j]
        cf = cfs[n]
        cs = css[n]
        off[n] = cf - half < 0 or cf + half >= width or cs - half < 0 or cs + half >= height
        for a in range(size):
            s = cs - half + a
            for b in range(size):
                f = cf - half + b
                if 0 <= s < height and 0 <= f < width:
                    values[n, a, b] = data[s, f]
                    bad_out[n, a, b] = bad[s, f]
                    counts_out[n, a, b] = counts[s, f]
                    sat_out[n, a, b] = sat[s, f] if sat_is_map else sat[0, 0]
                else:
                    values[n, a, b] = 0.0
                    bad_out[n, a, b] = True
                    counts_out[n, a, b] = 0
                    sat_out[n, a, b] = np.inf


def cut_boxes(pixels: FramePixels, panel: np.ndarray, cfs: np.ndarray, css: np.ndarray,
              half: int) -> Boxes:
    """Gather every reflection's box; off-panel pixels are flagged bad (values 0)."""
    n = len(panel)
    size = 2 * half + 1
    values = np.zeros((n, size, size))
    bad = np.ones((n, size, size), dtype=np.bool_)
    counts = np.zeros((n, size, size), dtype=np.int32)
    sat = np.full((n, size, size), np.inf)
    off = np.zeros(n, dtype=np.bool_)
    cfs = np.ascontiguousarray(cfs, dtype=np.int64)
    css = np.ascontiguousarray(css, dtype=np.int64)
    for i in np.unique(panel):
        sel = np.flatnonzero(panel == i)
        level = pixels.saturation[int(i)]
        is_map = isinstance(level, np.ndarray)
        level_arr = (np.ascontiguousarray(level, dtype=np.float64) if is_map
                     else np.full((1, 1), float(level)))
        _cut_kernel(pixels.data[int(i)], pixels.bad[int(i)], pixels.counts[int(i)], level_arr,
                    is_map, sel, cfs, css, half, values, bad, counts, sat, off)
    return Boxes(values, bad, counts, sat, off)


@dataclass
class BoxUse:
    """Which pixels of each box take part, after the box checks."""

    ok: np.ndarray  # (n,) the box passed check_box
    peak: np.ndarray  # (n, B, B) PEAK pixels in use
    background: np.ndarray  # (n, B, B) BACKGROUND pixels in use
    hard_ignore: np.ndarray  # (n, B, B)


@njit(cache=True, nogil=True)
def _check_kernel(bad, counts, off, region, ok, peak, bg, hard):  # pragma: no cover - compiled
    n, size, _ = bad.shape
    for i in range(n):
        npk = 0
        nbg = 0
        reject = off[i]
        for y in range(size):
            for x in range(size):
                r = region[y, x]
                b = bad[i, y, x]
                c = counts[i, y, x]
                if r == PEAK:
                    if b:
                        reject = True
                    h = b or c > 1
                else:
                    h = b or c > 0
                hard[i, y, x] = h
                peak[i, y, x] = r == PEAK and not h
                bg[i, y, x] = r == BACKGROUND and not h
                if r == PEAK and not h:
                    npk += 1
                elif r == BACKGROUND and not h:
                    nbg += 1
        ok[i] = not reject and npk >= 4 and nbg >= 4


def check_boxes(boxes: Boxes, template: RingTemplate) -> BoxUse:
    """CrystFEL's check_box: off panel or a bad PEAK pixel rejects; pixels near other
    reflections are hard-ignored; at least 4 PEAK and 4 BACKGROUND pixels must remain."""
    shape = boxes.bad.shape
    ok = np.empty(shape[0], dtype=np.bool_)
    peak = np.empty(shape, dtype=np.bool_)
    bg = np.empty(shape, dtype=np.bool_)
    hard = np.empty(shape, dtype=np.bool_)
    _check_kernel(boxes.bad, boxes.counts, boxes.off_panel, template.region, ok, peak, bg, hard)
    return BoxUse(ok, peak, bg, hard)


def saturated(boxes: Boxes, use: BoxUse) -> np.ndarray:
    """(n,) any PEAK or BACKGROUND pixel in use above the saturation level."""
    return np.any((use.peak | use.background) & (boxes.values > boxes.saturation), axis=(1, 2))


@dataclass
class RingResult:
    intensity: np.ndarray
    sigma: np.ndarray
    peak: np.ndarray  # maximum over PEAK and BACKGROUND pixels in use
    background: np.ndarray  # mean of the BACKGROUND pixels in use
    bg_ok: np.ndarray  # gradient test (always true for a flat background)
    peak_height: np.ndarray  # brightest PEAK pixel in use
    bg_under_peak: np.ndarray  # background model at that pixel


@njit(cache=True, nogil=True)
def _rings_kernel(values, peak, bg, p, q, a, b, c, gain, intensity, sigma, peak_val, bg_mean,
                  height, under, bg_ok):  # pragma: no cover - compiled
    n, size, _ = values.shape
    for i in range(n):
        m = 0
        sum_v = 0.0
        sum_p = 0.0
        sum_q = 0.0
        nbg = 0
        sum_bg = 0.0
        top = -np.inf
        top_pk = -np.inf
        top_p = 0.0
        top_q = 0.0
        for y in range(size):
            for x in range(size):
                v = values[i, y, x]
                if peak[i, y, x]:
                    m += 1
                    sum_v += v
                    sum_p += p[y, x]
                    sum_q += q[y, x]
                    if v > top_pk:
                        top_pk = v
                        top_p = p[y, x]
                        top_q = q[y, x]
                elif bg[i, y, x]:
                    nbg += 1
                    sum_bg += v
                else:
                    continue
                if v > top:
                    top = v
        mean = sum_bg / nbg if nbg > 0 else np.nan
        var = 0.0
        for y in range(size):
            for x in range(size):
                if bg[i, y, x]:
                    d = values[i, y, x] - mean
                    var += d * d
        var = var / nbg if nbg > 0 else np.nan
        inten = sum_v - (a[i] * sum_p + b[i] * sum_q + c[i] * m)
        g = gain[i]
        pois = g * inten
        if abs(inten / g) < 1.0:
            pois = g * g
        if inten < -g:
            pois = -g * inten
        intensity[i] = inten
        sigma[i] = np.sqrt(pois + m * var)
        peak_val[i] = top
        bg_mean[i] = mean
        height[i] = top_pk
        under[i] = a[i] * top_p + b[i] * top_q + c[i]
        limit = abs(top_pk - under[i]) / 10.0
        bg_ok[i] = abs(a[i]) <= limit and abs(b[i]) <= limit


def integrate_rings(boxes: Boxes, use: BoxUse, template: RingTemplate, a: np.ndarray,
                    b: np.ndarray, c: np.ndarray, adu_per_photon: np.ndarray) -> RingResult:
    """I = sum over PEAK of (v - background plane); sigma = sqrt(Poisson + m * var_bg).

    The Poisson term is aduph*I, at least aduph^2 for |I| < aduph and -aduph*I below -aduph;
    var_bg is the population variance of the BACKGROUND pixels. ``bg_ok`` is the gradient
    test |a|, |b| <= |peak height - plane under it| / 10 (always true for a flat background).
    """
    n = len(boxes.values)
    out = [np.empty(n) for _ in range(6)]
    bg_ok = np.empty(n, dtype=np.bool_)
    _rings_kernel(boxes.values, use.peak, use.background, template.p, template.q,
                  np.ascontiguousarray(a, dtype=np.float64),
                  np.ascontiguousarray(b, dtype=np.float64),
                  np.ascontiguousarray(c, dtype=np.float64),
                  np.ascontiguousarray(adu_per_photon, dtype=np.float64), *out, bg_ok)
    return RingResult(out[0], out[1], out[2], out[3], bg_ok, out[4], out[5])
