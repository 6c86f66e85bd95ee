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


def fit_background(values: np.ndarray, use: np.ndarray, p: np.ndarray, q: np.ndarray,
                   gradient: bool) -> BackgroundModel:
    """Flat mean of the used background pixels, or a least-squares plane with ``gradient``.

    ``values``/``use`` are (n, B, B); ``p``/``q`` the (B, B) box offsets.
    """
    n = len(values)
    w = use.astype(np.float64)
    cnt = w.sum(axis=(1, 2))
    s_v = (w * values).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = s_v / cnt
    if not gradient:
        z = np.zeros(n)
        return BackgroundModel(z, z.copy(), mean)
    sp = (w * p).sum(axis=(1, 2))
    sq = (w * q).sum(axis=(1, 2))
    spp = (w * p * p).sum(axis=(1, 2))
    sqq = (w * q * q).sum(axis=(1, 2))
    spq = (w * p * q).sum(axis=(1, 2))
    svp = (w * values * p).sum(axis=(1, 2))
    svq = (w * values * q).sum(axis=(1, 2))
    mat = np.stack([np.stack([spp, spq, sp], -1), np.stack([spq, sqq, sq], -1),
                    np.stack([sp, sq, cnt], -1)], -2)
    rhs = np.stack([svp, svq, s_v], -1)
    good = np.abs(np.linalg.det(mat)) > 1e-9
    sol = np.zeros((n, 3))
    sol[:, 2] = mean
    if good.any():
        sol[good] = np.linalg.solve(mat[good], rhs[good][..., None])[..., 0]
    return BackgroundModel(sol[:, 0], sol[:, 1], sol[:, 2])
