"""Image filters applied to a copy of the pixels before the peak search (peak-search.md §2)."""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _kth_smallest(buf: np.ndarray, n: int, k: int) -> float:
    """Quickselect: the k-th smallest (0-based) of buf[:n]; reorders buf."""
    lo = 0
    hi = n - 1
    while lo < hi:
        pivot = buf[(lo + hi) // 2]
        i = lo
        j = hi
        while i <= j:
            while buf[i] < pivot:
                i += 1
            while buf[j] > pivot:
                j -= 1
            if i <= j:
                t = buf[i]
                buf[i] = buf[j]
                buf[j] = t
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            return buf[k]
    return buf[k]


@numba.njit(cache=True, nogil=True)
def _median_subtract(data: np.ndarray, n: int) -> np.ndarray:
    h, w = data.shape
    out = np.empty_like(data)
    buf = np.empty((2 * n + 1) * (2 * n + 1), dtype=np.float64)
    for s in range(h):
        s0 = max(s - n, 0)
        s1 = min(s + n, h - 1)
        for f in range(w):
            f0 = max(f - n, 0)
            f1 = min(f + n, w - 1)
            m = 0
            for a in range(s0, s1 + 1):
                for b in range(f0, f1 + 1):
                    buf[m] = data[a, b]
                    m += 1
            out[s, f] = data[s, f] - _kth_smallest(buf, m, m // 2)
    return out


@numba.njit(cache=True, nogil=True)
def _median_subtract_int(data: np.ndarray, idx: np.ndarray, n: int, nbins: int,
                         offset: float) -> np.ndarray:
    """Huang's sliding histogram for integer-valued pixels: idx = value - offset, 0..nbins-1."""
    h, w = idx.shape
    out = np.empty(data.shape, dtype=np.float32)
    hist = np.zeros(nbins, dtype=np.int64)
    mdn = 0
    for s in range(h):
        s0 = max(s - n, 0)
        s1 = min(s + n, h - 1)
        rows = s1 - s0 + 1
        count = 0
        for a in range(s0, s1 + 1):
            for b in range(0, min(n, w - 1) + 1):
                hist[idx[a, b]] += 1
                count += 1
        lt = 0
        for a in range(s0, s1 + 1):
            for b in range(0, min(n, w - 1) + 1):
                if idx[a, b] < mdn:
                    lt += 1
        for f in range(w):
            if f > 0:
                old = f - n - 1
                new = f + n
                if old >= 0:
                    for a in range(s0, s1 + 1):
                        v = idx[a, old]
                        hist[v] -= 1
                        if v < mdn:
                            lt -= 1
                    count -= rows
                if new < w:
                    for a in range(s0, s1 + 1):
                        v = idx[a, new]
                        hist[v] += 1
                        if v < mdn:
                            lt += 1
                    count += rows
            k = count // 2
            while lt > k:
                mdn -= 1
                lt -= hist[mdn]
            while lt + hist[mdn] <= k:
                lt += hist[mdn]
                mdn += 1
            out[s, f] = data[s, f] - (mdn + offset)
        for a in range(s0, s1 + 1):  # empty the histogram for the next row
            for b in range(max(w - n - 1, 0), w):
                hist[idx[a, b]] -= 1
    return out


def median_filter(data: np.ndarray, n: int) -> np.ndarray:
    """``--median-filter=n``: subtract the median of the (2n+1)x(2n+1) window clipped to the
    panel (element count/2 of the sorted window, the upper median). Returns a new array.

    Integer-valued pixels (most detectors' ADU) use a sliding histogram; others a selection
    per pixel.
    """
    if n <= 0:
        return data
    d = np.ascontiguousarray(data, dtype=np.float32)
    if d.size and np.isfinite(d).all():
        lo = float(d.min())
        hi = float(d.max())
        if hi - lo < 2 ** 22 and np.array_equal(d, np.floor(d)):
            idx = (d - np.float32(lo)).astype(np.int64)
            return _median_subtract_int(d, idx, int(n), int(hi - lo) + 1, lo)
    return _median_subtract(d, int(n))


def noise_filter(data: np.ndarray) -> np.ndarray:
    """``--filter-noise`` as documented: every 3x3 square (centred on each pixel, clipped to
    the panel) that holds a negative pixel is set to zero. A pixel is therefore zeroed when a
    negative pixel lies within 2 pixels of it (Chebyshev distance). Returns a new array.

    CrystFEL 0.12.0's code does something else (it zeroes most of the interior), see
    docs/differences.md.
    """
    neg = data < 0
    if not neg.any():
        return data
    grow = neg.copy()  # separable 5x5 dilation
    for d in (1, 2):
        grow[:, d:] |= neg[:, :-d]
        grow[:, :-d] |= neg[:, d:]
    rows = grow.copy()
    for d in (1, 2):
        grow[d:, :] |= rows[:-d, :]
        grow[:-d, :] |= rows[d:, :]
    out = np.array(data, dtype=np.float32, copy=True)
    out[grow] = 0.0
    return out
