"""Ring integration, vectorised over reflections (integration.md §4, §4.1, §4.3).

Every reflection's (2w+1)^2 box is cut out of its panel into one (n, B, B) array, so the box
checks, background fits and sums are array operations, not a loop over reflections.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


def cut_boxes(pixels: FramePixels, panel: np.ndarray, cfs: np.ndarray, css: np.ndarray,
              half: int) -> Boxes:
    """Gather every reflection's box; off-panel pixels are flagged, their values are junk."""
    n = len(panel)
    size = 2 * half + 1
    offs = np.arange(-half, half + 1)
    values = np.zeros((n, size, size))
    bad = np.ones((n, size, size), dtype=bool)
    counts = np.zeros((n, size, size), dtype=np.int32)
    sat = np.full((n, size, size), np.inf)
    off = np.zeros(n, dtype=bool)
    for i in np.unique(panel):
        sel = np.flatnonzero(panel == i)
        data = pixels.data[int(i)]
        height, width = data.shape
        fs = cfs[sel][:, None, None] + offs[None, None, :]
        ss = css[sel][:, None, None] + offs[None, :, None]
        off[sel] = ((cfs[sel] - half < 0) | (cfs[sel] + half >= width)
                    | (css[sel] - half < 0) | (css[sel] + half >= height))
        fs = np.clip(fs, 0, width - 1)
        ss = np.clip(ss, 0, height - 1)
        values[sel] = data[ss, fs]
        bad[sel] = pixels.bad[int(i)][ss, fs]
        counts[sel] = pixels.counts[int(i)][ss, fs]
        level = pixels.saturation[int(i)]
        sat[sel] = level[ss, fs] if isinstance(level, np.ndarray) else level
    return Boxes(values, bad, counts, sat, off)


@dataclass
class BoxUse:
    """Which pixels of each box take part, after the box checks."""

    ok: np.ndarray  # (n,) the box passed check_box
    peak: np.ndarray  # (n, B, B) PEAK pixels in use
    background: np.ndarray  # (n, B, B) BACKGROUND pixels in use
    hard_ignore: np.ndarray  # (n, B, B)


def check_boxes(boxes: Boxes, template: RingTemplate) -> BoxUse:
    """CrystFEL's check_box: off panel or a bad PEAK pixel rejects; pixels near other
    reflections are hard-ignored; at least 4 PEAK and 4 BACKGROUND pixels must remain."""
    region = template.region[None]
    is_peak = region == PEAK
    is_bg = region == BACKGROUND
    hard = boxes.bad | (~is_peak & (boxes.counts > 0)) | (is_peak & (boxes.counts > 1))
    peak = is_peak & ~hard
    bg = is_bg & ~hard
    ok = (~boxes.off_panel & ~np.any(boxes.bad & is_peak, axis=(1, 2))
          & (peak.sum(axis=(1, 2)) >= 4) & (bg.sum(axis=(1, 2)) >= 4))
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


def integrate_rings(boxes: Boxes, use: BoxUse, template: RingTemplate, a: np.ndarray,
                    b: np.ndarray, c: np.ndarray, adu_per_photon: np.ndarray) -> RingResult:
    """I = sum over PEAK of (v - background plane); sigma = sqrt(Poisson + m * var_bg)."""
    v = boxes.values
    pk = use.peak
    bgm = use.background
    p, q = template.p[None], template.q[None]
    m = pk.sum(axis=(1, 2)).astype(np.float64)
    sum_v = np.where(pk, v, 0.0).sum(axis=(1, 2))
    sum_p = np.where(pk, p, 0.0).sum(axis=(1, 2))
    sum_q = np.where(pk, q, 0.0).sum(axis=(1, 2))
    intensity = sum_v - (a * sum_p + b * sum_q + c * m)

    nbg = bgm.sum(axis=(1, 2)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        bg_mean = np.where(bgm, v, 0.0).sum(axis=(1, 2)) / nbg
        dev = np.where(bgm, v - bg_mean[:, None, None], 0.0)
        var_bg = (dev * dev).sum(axis=(1, 2)) / nbg
    g = adu_per_photon
    poisson = g * intensity
    poisson = np.where(np.abs(intensity / g) < 1.0, g * g, poisson)
    poisson = np.where(intensity < -g, -g * intensity, poisson)
    sigma = np.sqrt(poisson + m * var_bg)

    inuse = pk | bgm
    peak_val = np.where(inuse, v, -np.inf).max(axis=(1, 2))
    # Background test with a gradient: the plane's slopes must be small next to the peak.
    pk_vals = np.where(pk, v, -np.inf)
    flat = pk_vals.reshape(len(v), -1).argmax(axis=1)
    height = pk_vals.reshape(len(v), -1)[np.arange(len(v)), flat]
    under = a * p.ravel()[flat] + b * q.ravel()[flat] + c
    limit = np.abs(height - under) / 10.0
    bg_ok = (np.abs(a) <= limit) & (np.abs(b) <= limit)
    return RingResult(intensity, sigma, peak_val, bg_mean, bg_ok)
