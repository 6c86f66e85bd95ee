"""Bravais-lattice helpers: centering transforms, forbidden reflections and lattice symmetry.

The lattice rotations come from gemmi (``find_lattice_symmetry``), so no point-group tables are
written by hand here. Real-space bases are 3x3 arrays with the basis vectors as rows.
"""

from __future__ import annotations

from functools import lru_cache

import gemmi
import numpy as np

from crystream.cell import UnitCell

# Rows express primitive vectors in the conventional basis: primitive = T @ conventional.
_PRIMITIVE_FROM_CONVENTIONAL = {
    "P": np.eye(3),
    "R": np.eye(3),  # CrystFEL's R: rhombohedral axes, already primitive
    "A": np.array([[1.0, 0, 0], [0, 0.5, -0.5], [0, 0.5, 0.5]]),
    "B": np.array([[0.5, 0, -0.5], [0, 1.0, 0], [0.5, 0, 0.5]]),
    "C": np.array([[0.5, -0.5, 0], [0.5, 0.5, 0], [0, 0, 1.0]]),
    "I": np.array([[-0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.5, 0.5, -0.5]]),
    "F": np.array([[0, 0.5, 0.5], [0.5, 0, 0.5], [0.5, 0.5, 0]]),
    # hexagonal axes of a rhombohedral lattice (obverse, -h+k+l = 3n)
    "H": np.array([[2.0, 1.0, 1.0], [-1.0, 1.0, 1.0], [-1.0, -2.0, 1.0]]) / 3.0,
}

LATTICE_LETTER = {"triclinic": "a", "monoclinic": "m", "orthorhombic": "o", "tetragonal": "t",
                  "rhombohedral": "h", "hexagonal": "h", "cubic": "c"}

# CrystFEL centering letter -> gemmi centring letter for the same conventional basis.
_GEMMI_CENTRING = {"P": "P", "A": "A", "B": "B", "C": "C", "I": "I", "F": "F", "R": "P",
                   "H": "R"}


def primitive_transform(centering: str) -> np.ndarray:
    """T with primitive basis rows = T @ conventional basis rows (right-handed, det > 0)."""
    try:
        return _PRIMITIVE_FROM_CONVENTIONAL[centering]
    except KeyError:
        raise ValueError(f"unknown centering '{centering}'") from None


def lattice_points_per_cell(centering: str) -> int:
    """How many lattice points the conventional cell holds (1/det T)."""
    return int(round(1.0 / np.linalg.det(primitive_transform(centering))))


def bravais_symbol(cell: UnitCell) -> str:
    """Two-letter Bravais symbol, e.g. 'mC', 'tP', 'hR' (rhombohedral or H-centred hexagonal)."""
    if cell.lattice_type == "rhombohedral" or cell.centering == "H":
        return "hR"
    return LATTICE_LETTER.get(cell.lattice_type, "a") + cell.centering


def centering_allows(h: np.ndarray, k: np.ndarray, l: np.ndarray,
                     centering: str) -> np.ndarray:
    """True where (h, k, l) is not a systematic absence of the lattice centering.

    A: k+l even; B: h+l even; C: h+k even; I: h+k+l even; F: unmixed parity;
    H (hexagonal axes, obverse): -h+k+l divisible by 3; P and R: no absences.
    """
    h, k, l = (np.asarray(v, dtype=np.int64) for v in (h, k, l))
    if centering == "A":
        return (k + l) % 2 == 0
    if centering == "B":
        return (h + l) % 2 == 0
    if centering == "C":
        return (h + k) % 2 == 0
    if centering == "I":
        return (h + k + l) % 2 == 0
    if centering == "F":
        return ((h + k) % 2 == 0) & ((h + l) % 2 == 0)
    if centering == "H":
        return (-h + k + l) % 3 == 0
    if centering in ("P", "R"):
        return np.ones(np.broadcast(h, k, l).shape, dtype=bool)
    raise ValueError(f"unknown centering '{centering}'")


@lru_cache(maxsize=64)
def _lattice_ops(params: tuple[float, ...], centering: str, max_obliq: float) -> np.ndarray:
    gcell = gemmi.UnitCell(*params)
    ops = gemmi.find_lattice_symmetry(gcell, _GEMMI_CENTRING[centering], max_obliq)
    mats = [np.array(op.rot, dtype=float) / op.DEN for op in ops.sym_ops]
    return np.array(mats)


def lattice_rotations(cell: UnitCell, max_obliq_deg: float = 0.05) -> np.ndarray:
    """Basis changes W (k,3,3) with ``W @ real`` describing the same lattice, one per holohedry
    rotation (gemmi's lattice symmetry of the conventional cell, within ``max_obliq_deg``)."""
    a, b, c, al, be, ga = cell.parameters
    params = (round(a * 1e10, 4), round(b * 1e10, 4), round(c * 1e10, 4),
              round(np.degrees(al), 4), round(np.degrees(be), 4), round(np.degrees(ga), 4))
    # gemmi's ops act on fractional coordinates (x' = R x); the basis rows change by R^T.
    return np.transpose(_lattice_ops(params, cell.centering, max_obliq_deg), (0, 2, 1)).copy()
