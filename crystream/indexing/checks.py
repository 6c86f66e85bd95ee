"""The per-crystal checks of CrystFEL's indexing flow (indexing.md §3): peak alignment,
explained peaks (for --multi) and duplicate lattices."""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from crystream.cell import UnitCell
from crystream.cellmatch import unimodular_matrices

SANE_TOL = 0.25


def fractional_indices(cell: UnitCell, q: np.ndarray) -> np.ndarray:
    """h = q·a, k = q·b, l = q·c (n, 3) for reciprocal vectors ``q`` (n, 3, m^-1)."""
    return q @ cell.real.T


def sane_mask(cell: UnitCell, q: np.ndarray) -> np.ndarray:
    """Peaks whose three fractional indices are each within 0.25 of an integer."""
    h = fractional_indices(cell, q)
    return (np.abs(h - np.rint(h)) <= SANE_TOL).all(axis=1)


def peak_alignment_ok(cell: UnitCell, q: np.ndarray, multi: bool) -> bool:
    """CrystFEL's ``indexing_peak_check`` on the current working peak list."""
    n = len(q)
    if n == 0:
        return False
    n_sane = int(sane_mask(cell, q).sum())
    if multi:
        return n_sane > 70 or (n_sane > 25 and n_sane > 0.3 * n) or n_sane > 0.4 * n
    return n_sane / n >= 0.5


def explained_mask(cell: UnitCell, q: np.ndarray) -> np.ndarray:
    """Peaks a crystal explains: |fractional − rounded (h,k,l)| (Euclidean) < 0.25."""
    h = fractional_indices(cell, q)
    return np.linalg.norm(h - np.rint(h), axis=1) < 0.25


@lru_cache(maxsize=1)
def _signed_unimodular() -> np.ndarray:
    m = unimodular_matrices()
    return np.concatenate([m, -m])  # det +1 and det -1


def is_duplicate(cell: UnitCell, others: list[UnitCell], length_tol: float = 0.10,
                 angle_tol: float = math.radians(5.0)) -> bool:
    """True if some {-1,0,1} matrix with det ±1 makes ``cell``'s axes agree with another
    crystal's in length (10%) and direction (5°)."""
    if not others:
        return False
    trial = _signed_unimodular() @ cell.real  # (m, 3, 3)
    tl = np.linalg.norm(trial, axis=2)
    cos_min = math.cos(angle_tol)
    for other in others:
        ref = other.real
        rl = np.linalg.norm(ref, axis=1)
        len_ok = (np.abs(tl - rl) <= length_tol * rl).all(axis=1)
        if not len_ok.any():
            continue
        cosang = np.einsum("mij,ij->mi", trial[len_ok], ref) / (tl[len_ok] * rl)
        if (cosang >= cos_min).all(axis=1).any():
            return True
    return False
