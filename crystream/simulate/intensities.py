"""Wilson-distributed reflection intensities, reproducible per (hkl, structure seed).

Each reflection's intensity is a hash of its indices and a seed, so one "structure" gives the
same intensities on every frame and in every order of enumeration (what merging tests need).
Friedel mates are equal; all reflections are treated as acentric (exponential distribution).
"""

from __future__ import annotations

import numpy as np

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """Vectorised splitmix64 finaliser: uint64 -> well-mixed uint64."""
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK
        return x ^ (x >> np.uint64(31))


def wilson_intensities(hkl: np.ndarray, q: np.ndarray, b_factor: float,
                       seed: int) -> np.ndarray:
    """Relative full intensities: Exp(1) draws times exp(-B |q|^2 / 2) (B in m^2, q in m^-1).

    exp(-B q^2/2) is the usual Debye-Waller fall-off exp(-2B sin^2(theta)/lambda^2).
    """
    hkl = np.asarray(hkl, dtype=np.int64)
    # Friedel: use the lexicographically positive one of (h, k, l) and (-h, -k, -l).
    first = np.where(hkl[:, 0] != 0, hkl[:, 0], np.where(hkl[:, 1] != 0, hkl[:, 1], hkl[:, 2]))
    canon = np.where((first < 0)[:, None], -hkl, hkl) + 2048
    key = ((canon[:, 0].astype(np.uint64) << np.uint64(24))
           | (canon[:, 1].astype(np.uint64) << np.uint64(12))
           | canon[:, 2].astype(np.uint64))
    key ^= _splitmix64(np.full(1, np.uint64(seed & 0xFFFFFFFFFFFFFFFF)))[0]
    u = ((_splitmix64(key) >> np.uint64(11)).astype(np.float64) + 0.5) / 9007199254740992.0
    return -np.log(u) * np.exp(-0.5 * b_factor * np.asarray(q) ** 2)
