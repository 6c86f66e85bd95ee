"""The frame-wide background mask and the per-box background model (integration.md §3, §4.2)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from crystream.geometry.detector import Detector


@njit(cache=True, nogil=True)
def _mask_kernel(counts, sel, cfs, css, inner):  # pragma: no cover - compiled
    height, width = counts.shape
    r2 = inner * inner
    for j in range(len(sel)):
        n = sel[j]
        for dq in range(-inner, inner + 1):
            s = css[n] + dq
            if s < 0 or s >= height:
                continue
            for dp in range(-inner, inner + 1):
                f = cfs[n] + dp
                if dp * dp + dq * dq <= r2 and 0 <= f < width:
                    counts[s, f] += 1


def background_mask(detector: Detector, panel: np.ndarray, fs: np.ndarray, ss: np.ndarray,
                    inner: int) -> list[np.ndarray]:
    """Per panel, how many predicted reflections (of all crystals) have each pixel within
    ``inner`` of their truncated position; such pixels are kept out of other boxes' backgrounds."""
    cfs = np.asarray(fs).astype(np.int64)  # truncation, as (int) in C
    css = np.asarray(ss).astype(np.int64)
    panel = np.asarray(panel)
    out = []
    for i, p in enumerate(detector.panels):
        counts = np.zeros((p.height, p.width), dtype=np.int32)
        sel = np.flatnonzero(panel == i)
        if len(sel):
            _mask_kernel(counts, sel, cfs, css, int(inner))
        out.append(counts)
    return out


@dataclass
class BackgroundModel:
    """Per reflection plane a*p + b*q + c over box offsets (p along fs, q along ss)."""

    a: np.ndarray
    b: np.ndarray
    c: np.ndarray

    def at(self, p: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Model values on the box grid; p, q broadcast against (n, 1, 1)."""
        return (self.a[:, None, None] * p + self.b[:, None, None] * q + self.c[:, None, None])


@njit(cache=True, nogil=True)
def _fit_kernel(values, use, p, q, gradient, a, b, c):  # pragma: no cover - compiled
    n, size, _ = values.shape
    for i in range(n):
        cnt = 0.0
        sv = 0.0
        sp = 0.0
        sq = 0.0
        spp = 0.0
        sqq = 0.0
        spq = 0.0
        svp = 0.0
        svq = 0.0
        for y in range(size):
            for x in range(size):
                if use[i, y, x]:
                    v = values[i, y, x]
                    pp = p[y, x]
                    qq = q[y, x]
                    cnt += 1.0
                    sv += v
                    sp += pp
                    sq += qq
                    spp += pp * pp
                    sqq += qq * qq
                    spq += pp * qq
                    svp += v * pp
                    svq += v * qq
        mean = sv / cnt if cnt > 0 else np.nan
        a[i] = 0.0
        b[i] = 0.0
        c[i] = mean
        if gradient and cnt > 0:
            # normal equations [[spp, spq, sp], [spq, sqq, sq], [sp, sq, cnt]] (a, b, c) = rhs
            det = (spp * (sqq * cnt - sq * sq) - spq * (spq * cnt - sq * sp)
                   + sp * (spq * sq - sqq * sp))
            if abs(det) > 1e-9:
                da = (svp * (sqq * cnt - sq * sq) - spq * (svq * cnt - sq * sv)
                      + sp * (svq * sq - sqq * sv))
                db = (spp * (svq * cnt - sq * sv) - svp * (spq * cnt - sq * sp)
                      + sp * (spq * sv - svq * sp))
                dc = (spp * (sqq * sv - svq * sq) - spq * (spq * sv - svq * sp)
                      + svp * (spq * sq - sqq * sp))
                a[i] = da / det
                b[i] = db / det
                c[i] = dc / det


def fit_background(values: np.ndarray, use: np.ndarray, p: np.ndarray, q: np.ndarray,
                   gradient: bool) -> BackgroundModel:
    """Flat mean of the used background pixels, or a least-squares plane with ``gradient``.

    ``values``/``use`` are (n, B, B); ``p``/``q`` the (B, B) box offsets.
    """
    n = len(values)
    a, b, c = np.empty(n), np.empty(n), np.empty(n)
    _fit_kernel(np.ascontiguousarray(values, dtype=np.float64), np.ascontiguousarray(use),
                np.ascontiguousarray(p, dtype=np.float64),
                np.ascontiguousarray(q, dtype=np.float64), bool(gradient), a, b, c)
    return BackgroundModel(a, b, c)
