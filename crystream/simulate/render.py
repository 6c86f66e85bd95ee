"""Numba kernels: Gaussian spots integrated over pixels, and the detector readout.

All panels live in one flat float buffer; panel i occupies ``offsets[i]`` onwards, row-major
(ss, fs) with ``widths[i]`` columns. Only pixels within 5 sigma of a spot are touched.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import uint64

_SQRT1_2 = 1.0 / math.sqrt(2.0)


@numba.njit(cache=True, nogil=True)
def _axis_weights(centre: float, sigma: float, lo: int, hi: int, out: np.ndarray) -> float:
    """Gaussian mass in pixels lo..hi-1 (pixel j covers [j, j+1)) into out; returns the sum."""
    scale = _SQRT1_2 / sigma
    prev = math.erf((lo - centre) * scale)
    total = 0.0
    for j in range(lo, hi):
        cur = math.erf((j + 1 - centre) * scale)
        w = 0.5 * (cur - prev)
        out[j - lo] = w
        total += w
        prev = cur
    return total


@numba.njit(cache=True, nogil=True)
def render_spots(buf: np.ndarray, offsets: np.ndarray, widths: np.ndarray,
                 heights: np.ndarray, panel: np.ndarray, fs: np.ndarray, ss: np.ndarray,
                 sigma: np.ndarray, photons: np.ndarray, write: bool,
                 mass: np.ndarray, peak: np.ndarray) -> None:
    """Add each spot's photons to ``buf`` (if ``write``); report its on-panel mass fraction
    and its brightest pixel (photons) in ``mass`` and ``peak``."""
    wx = np.empty(256)
    wy = np.empty(256)
    for i in range(len(fs)):
        p = panel[i]
        sg = sigma[i]
        r = min(int(math.ceil(5.0 * sg)) + 1, 120)
        cx = int(math.floor(fs[i]))
        cy = int(math.floor(ss[i]))
        x0, x1 = cx - r, cx + r + 1
        y0, y1 = cy - r, cy + r + 1
        # normalise by the mass of the whole window, so truncation loses nothing
        totx = _axis_weights(fs[i], sg, x0, x1, wx)
        toty = _axis_weights(ss[i], sg, y0, y1, wy)
        cx0, cx1 = max(x0, 0), min(x1, widths[p])
        cy0, cy1 = max(y0, 0), min(y1, heights[p])
        m = 0.0
        best = 0.0
        base = offsets[p]
        w = widths[p]
        norm = photons[i] / (totx * toty)
        for y in range(cy0, cy1):
            vy = wy[y - y0] * norm
            row = base + y * w
            for x in range(cx0, cx1):
                v = vy * wx[x - x0]
                m += v
                if v > best:
                    best = v
                if write:
                    buf[row + x] += v
        mass[i] = m / photons[i] if photons[i] > 0 else 0.0
        peak[i] = best


@numba.njit(cache=True, nogil=True, inline="always")
def _next(state):
    """splitmix64 step: (new state, uniform in (0, 1))."""
    state = state + uint64(0x9E3779B97F4A7C15)
    z = state
    z = (z ^ (z >> uint64(30))) * uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> uint64(27))) * uint64(0x94D049BB133111EB)
    z = z ^ (z >> uint64(31))
    return state, ((z >> uint64(11)) + 0.5) * (1.0 / 9007199254740992.0)


_INV = 1.0 / np.arange(1, 257, dtype=np.float64)  # 1/k, so the Poisson loop multiplies


@numba.njit(cache=True, nogil=True)
def readout(background: np.ndarray, bg_scale: float, bg_exp: np.ndarray, spots: np.ndarray,
            out: np.ndarray, offsets: np.ndarray, gains: np.ndarray, max_adu: np.ndarray,
            defects: np.ndarray, hot_adu: float, noise: bool, seed: int,
            inv: np.ndarray = _INV) -> None:
    """out = gain * Poisson(bg_scale*background + spots), clipped at max_adu; defects: 1 dead
    (0 ADU), 2 hot (hot_adu). Poisson by inversion below 30 photons, normal above;
    ``bg_exp`` = exp(-bg_scale*background), precomputed once, spares an exp per pixel."""
    st = uint64(seed)
    npan = len(offsets) - 1
    use_defects = defects.size == out.size
    for pnl in range(npan):
        g = gains[pnl]
        top = max_adu[pnl]
        for i in range(offsets[pnl], offsets[pnl + 1]):
            extra = spots[i]
            lam = bg_scale * background[i] + extra
            if noise:
                if lam <= 0.0:
                    v = 0.0
                elif lam < 30.0:
                    st, u = _next(st)
                    p = bg_exp[i] if extra == 0.0 else math.exp(-lam)
                    c = p
                    k = 0
                    while u > c and k < 255:
                        p *= lam * inv[k]
                        k += 1
                        c += p
                    v = float(k)
                else:
                    st, u1 = _next(st)
                    st, u2 = _next(st)
                    nrm = math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)
                    v = max(0.0, math.floor(lam + math.sqrt(lam) * nrm + 0.5))
            else:
                v = lam
            v *= g
            if use_defects:
                d = defects[i]
                if d == 1:
                    v = 0.0
                elif d == 2:
                    v = hot_adu
            if v > top:
                v = top
            out[i] = v


@numba.njit(cache=True, nogil=True)
def near_sphere(hkl: np.ndarray, recip: np.ndarray, k0: float, limit: float) -> np.ndarray:
    """Indices of lattice points p = hkl @ recip with ||p|^2 + 2 k0 p_z| <= limit, i.e. close
    to the Ewald sphere (one pass, no (n, 3) temporaries)."""
    out = np.empty(len(hkl), dtype=np.int64)
    n = 0
    for i in range(len(hkl)):
        h, k, l = hkl[i, 0], hkl[i, 1], hkl[i, 2]
        x = h * recip[0, 0] + k * recip[1, 0] + l * recip[2, 0]
        y = h * recip[0, 1] + k * recip[1, 1] + l * recip[2, 1]
        z = h * recip[0, 2] + k * recip[1, 2] + l * recip[2, 2]
        if abs(x * x + y * y + z * z + 2.0 * k0 * z) <= limit:
            out[n] = i
            n += 1
    return out[:n]
