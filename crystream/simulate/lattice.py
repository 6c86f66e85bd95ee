"""Miller indices of a lattice out to a resolution, with centering absences removed."""

from __future__ import annotations

import math

import numpy as np

from crystream.cell import UnitCell
from crystream.lattice import centering_allows


def enumerate_hkl(cell: UnitCell, q_max: float) -> np.ndarray:
    """All (h, k, l) with 0 < |q| <= q_max (m^-1) allowed by the centering; shape (n, 3) int32."""
    real = cell.real
    limits = [int(math.floor(q_max * float(np.linalg.norm(v)))) for v in real]
    if max(limits) > 2000:
        raise ValueError(f"resolution too high for this cell: index limits {limits}")
    h, k, l = np.meshgrid(*(np.arange(-m, m + 1, dtype=np.int32) for m in limits),
                          indexing="ij")
    hkl = np.stack([h.ravel(), k.ravel(), l.ravel()], axis=1)
    q = hkl.astype(np.float64) @ cell.reciprocal
    keep = (np.einsum("ij,ij->i", q, q) <= q_max * q_max) & np.any(hkl != 0, axis=1)
    keep &= centering_allows(hkl[:, 0], hkl[:, 1], hkl[:, 2], cell.centering)
    return np.ascontiguousarray(hkl[keep])
