"""Unit cells: real and reciprocal bases in the lab frame, lattice type, centering, unique axis.

A cell is stored as its reciprocal basis (rows a*, b*, c*, in m^-1, in the lab frame), which is
what indexing finds and what a stream's astar/bstar/cstar lines hold. Lengths are in metres and
angles in radians, as in CrystFEL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

LATTICE_TYPES = ("triclinic", "monoclinic", "orthorhombic", "tetragonal", "rhombohedral",
                 "hexagonal", "cubic")


def basis_from_parameters(a: float, b: float, c: float, alpha: float, beta: float,
                          gamma: float) -> np.ndarray:
    """Real-space basis (rows a, b, c) in CrystFEL's standard setting: a along x, b in xy."""
    cosa, cosb, cosg = math.cos(alpha), math.cos(beta), math.cos(gamma)
    sing = math.sin(gamma)
    cx = c * cosb
    cy = c * (cosa - cosb * cosg) / sing
    cz = math.sqrt(max(c * c - cx * cx - cy * cy, 0.0))
    return np.array([[a, 0.0, 0.0], [b * cosg, b * sing, 0.0], [cx, cy, cz]])


@dataclass(frozen=True)
class UnitCell:
    """A lattice with an orientation: ``reciprocal`` holds rows a*, b*, c* in m^-1 (lab frame)."""

    reciprocal: np.ndarray
    lattice_type: str = "triclinic"
    centering: str = "P"
    unique_axis: str = "?"
    has_parameters: bool = True

    @classmethod
    def from_parameters(cls, a: float, b: float, c: float, alpha: float, beta: float,
                        gamma: float, lattice_type: str = "triclinic", centering: str = "P",
                        unique_axis: str = "?") -> "UnitCell":
        """A cell in the standard orientation from a, b, c (m) and angles (rad)."""
        real = basis_from_parameters(a, b, c, alpha, beta, gamma)
        return cls(np.linalg.inv(real).T.copy(), lattice_type, centering, unique_axis)

    @classmethod
    def from_reciprocal(cls, astar, bstar, cstar, **kind) -> "UnitCell":
        return cls(np.array([astar, bstar, cstar], dtype=np.float64), **kind)

    @property
    def real(self) -> np.ndarray:
        """Real-space basis, rows a, b, c in metres."""
        return np.linalg.inv(self.reciprocal).T

    @property
    def parameters(self) -> tuple[float, float, float, float, float, float]:
        """(a, b, c) in metres and (alpha, beta, gamma) in radians."""
        a, b, c = self.real
        la, lb, lc = (float(np.linalg.norm(v)) for v in (a, b, c))

        def angle(u, v, lu, lv):
            return math.acos(max(-1.0, min(1.0, float(np.dot(u, v)) / (lu * lv))))

        return la, lb, lc, angle(b, c, lb, lc), angle(a, c, la, lc), angle(a, b, la, lb)

    @property
    def volume(self) -> float:
        """Real-space cell volume in m^3 (negative for a left-handed basis)."""
        return float(np.linalg.det(self.real))

    def rotated(self, rotation: np.ndarray) -> "UnitCell":
        """The same cell with its lab-frame vectors rotated by ``rotation`` (3x3)."""
        return replace(self, reciprocal=self.reciprocal @ np.asarray(rotation).T)

    def with_reciprocal(self, reciprocal: np.ndarray) -> "UnitCell":
        return replace(self, reciprocal=np.asarray(reciprocal, dtype=np.float64))
