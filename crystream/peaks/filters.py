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


def median_filter(data: np.ndarray, n: int) -> np.ndarray:
    """``--median-filter=n``: subtract the median of the (2n+1)x(2n+1) window clipped to the
    panel (element count/2 of the sorted window, the upper median). Returns a new array."""
    if n <= 0:
        return data
    return _median_subtract(np.ascontiguousarray(data, dtype=np.float32), int(n))


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
