"""Direction sampling for the indexing searches: hemisphere Fibonacci grids and local patches."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=16)
def hemisphere(spacing_deg: float) -> np.ndarray:
    """Unit vectors (m, 3) spread evenly over the z >= 0 hemisphere, about ``spacing_deg`` apart.

    A direction and its opposite give the same projections up to sign, so half a sphere covers
    every lattice direction once."""
    s = math.radians(spacing_deg)
    m = max(8, int(round(2.0 * math.pi / (s * s))))
    i = np.arange(m) + 0.5
    z = 1.0 - i / m  # uniform in z over (0, 1]
    r = np.sqrt(1.0 - z * z)
    phi = i * math.pi * (3.0 - math.sqrt(5.0))
    out = np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)
    out.setflags(write=False)
    return out


def tangent_frames(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two unit vectors perpendicular to each row of ``u`` (k, 3) and to each other."""
    helper = np.where(np.abs(u[:, :1]) < 0.9, np.array([[1.0, 0, 0]]), np.array([[0, 1.0, 0]]))
    e1 = np.cross(u, helper)
    e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
    e2 = np.cross(u, e1)
    return e1, e2


def local_patches(u: np.ndarray, half_width: float, steps: int) -> np.ndarray:
    """For each row of ``u`` (k, 3), a steps x steps grid of directions within ``half_width``
    radians of it: shape (k, steps*steps, 3)."""
    e1, e2 = tangent_frames(u)
    t = np.linspace(-half_width, half_width, steps)
    x, y = (g.ravel() for g in np.meshgrid(t, t, indexing="ij"))
    d = u[:, None, :] + x[None, :, None] * e1[:, None, :] + y[None, :, None] * e2[:, None, :]
    return d / np.linalg.norm(d, axis=2, keepdims=True)


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly distributed proper rotation matrix (from a random unit quaternion)."""
    w, x, y, z = rng.normal(size=4) / 1.0
    n = math.sqrt(w * w + x * x + y * y + z * z)
    w, x, y, z = w / n, x / n, y / n, z / n
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])
