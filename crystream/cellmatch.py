"""Cell comparison as CrystFEL does it: tolerances, Niggli reduction and reindexing to a target.

``match_to_target`` is CrystFEL's ``compare_reindexed_cell_parameters`` (indexing.md §5): both
cells made primitive and Niggli-reduced (gemmi), every {-1,0,1} matrix with det +1 tried, the
result put in the target's conventional setting and compared with the tolerances.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace
from functools import lru_cache

import gemmi
import numpy as np

from crystream.cell import UnitCell
from crystream.lattice import lattice_rotations, primitive_transform


class ToleranceError(ValueError):
    """A malformed --tolerance value."""


@dataclass(frozen=True)
class Tolerances:
    """Cell-match tolerances: length fractions (a, b, c) and angles (radians)."""

    a: float = 0.05
    b: float = 0.05
    c: float = 0.05
    al: float = math.radians(1.5)
    be: float = math.radians(1.5)
    ga: float = math.radians(1.5)

    @classmethod
    def parse(cls, text: str) -> "Tolerances":
        """``a,b,c,al,be,ga`` in percent and degrees (or the old 4-value a,b,c,angle form)."""
        try:
            vals = [float(v) for v in text.split(",")]
        except ValueError:
            raise ToleranceError(f"--tolerance: '{text}' is not a list of numbers") from None
        if len(vals) == 4:
            vals = vals[:3] + [vals[3]] * 3
        if len(vals) != 6:
            raise ToleranceError(f"--tolerance: need 4 or 6 values, got {len(vals)} in '{text}'")
        if any(v < 0 for v in vals):
            raise ToleranceError(f"--tolerance: negative value in '{text}'")
        return cls(*(v / 100.0 for v in vals[:3]), *(math.radians(v) for v in vals[3:]))

    @property
    def lengths(self) -> np.ndarray:
        return np.array([self.a, self.b, self.c])

    @property
    def angles(self) -> np.ndarray:
        return np.array([self.al, self.be, self.ga])


def parameters_of(real: np.ndarray) -> np.ndarray:
    """(…, 6) array a, b, c, alpha, beta, gamma (radians) of real bases (…, 3, 3)."""
    real = np.asarray(real, dtype=np.float64)
    lengths = np.linalg.norm(real, axis=-1)
    out = np.empty(real.shape[:-2] + (6,))
    out[..., :3] = lengths
    for k, (i, j) in enumerate(((1, 2), (0, 2), (0, 1))):
        cosang = np.einsum("...k,...k->...", real[..., i, :], real[..., j, :])
        cosang = cosang / (lengths[..., i] * lengths[..., j])
        out[..., 3 + k] = np.arccos(np.clip(cosang, -1.0, 1.0))
    return out


def _within(params: np.ndarray, reference: np.ndarray, tol: Tolerances) -> np.ndarray:
    dl = np.abs(params[..., :3] - reference[:3]) < tol.lengths * np.abs(params[..., :3])
    da = np.abs(params[..., 3:] - reference[3:]) <= tol.angles
    return dl.all(axis=-1) & da.all(axis=-1)


def _centering_equal(a: str, b: str) -> bool:
    norm = {"R": "P"}
    return norm.get(a, a) == norm.get(b, b)


def compare_cell_parameters(cell: UnitCell, reference: UnitCell, tol: Tolerances) -> bool:
    """Direct comparison, no reindexing (the post-refinement check, indexing.md §3.4)."""
    if not _centering_equal(cell.centering, reference.centering):
        return False
    return bool(_within(parameters_of(cell.real), parameters_of(reference.real), tol))


def niggli_reduce(real: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Niggli-reduce a primitive real basis with gemmi; returns (reduced rows, M) with
    reduced = M @ real and det M = +1 (handedness kept)."""
    a, b, c, al, be, ga = parameters_of(real)
    gcell = gemmi.UnitCell(a, b, c, math.degrees(al), math.degrees(be), math.degrees(ga))
    gv = gemmi.GruberVector(gcell, "P", True)
    gv.niggli_reduce(epsilon=1e-5 * float(min(a, b, c)) ** 2, iteration_limit=100)
    op = gv.change_of_basis
    m = np.rint(np.array(op.rot, dtype=float) / op.DEN).T
    if np.linalg.det(m) < 0:
        m = -m
    return m @ real, m


@lru_cache(maxsize=1)
def unimodular_matrices() -> np.ndarray:
    """Every 3x3 matrix with entries in {-1, 0, 1} and determinant +1."""
    allm = np.array(list(itertools.product((-1, 0, 1), repeat=9)), dtype=np.float64)
    allm = allm.reshape(-1, 3, 3)
    return allm[np.abs(np.linalg.det(allm) - 1.0) < 1e-6].copy()


def g6(real: np.ndarray) -> np.ndarray:
    """G6 vector(s) (a.a, b.b, c.c, 2 b.c, 2 a.c, 2 a.b) of real bases (…, 3, 3)."""
    g = np.einsum("...ik,...jk->...ij", real, real)
    return np.stack([g[..., 0, 0], g[..., 1, 1], g[..., 2, 2], 2 * g[..., 1, 2],
                     2 * g[..., 0, 2], 2 * g[..., 0, 1]], axis=-1)


def match_to_target(candidate: UnitCell, target: UnitCell, tol: Tolerances,
                    rng: np.random.Generator | None = None) -> UnitCell | None:
    """The candidate reindexed into the target's conventional setting, or None if no {-1,0,1}
    reindexing of its reduced primitive cell matches within ``tol``. Ties (G6 distance within
    0.1% of the best) are broken at random, as CrystFEL does."""
    cand_prim = primitive_transform(candidate.centering) @ candidate.real
    red_c, _ = niggli_reduce(cand_prim)
    t_ref = primitive_transform(target.centering)
    red_r, m_r = niggli_reduce(t_ref @ target.real)
    to_conv = np.linalg.inv(m_r @ t_ref)  # reduced reference -> conventional reference
    trial = to_conv @ unimodular_matrices() @ red_c
    ref_par = parameters_of(target.real)
    ok = _within(parameters_of(trial), ref_par, tol)
    if not ok.any():
        return None
    good = trial[ok]
    ref_g6 = g6(target.real)
    dist = np.linalg.norm(g6(good) - ref_g6, axis=-1)
    best = dist.min()
    # rounding noise in an exact match must not decide a tie
    ties = np.flatnonzero(dist <= best * 1.001 + 1e-9 * np.linalg.norm(ref_g6))
    pick = ties[0] if rng is None or len(ties) == 1 else ties[rng.integers(len(ties))]
    real = good[pick]
    return replace(target, reciprocal=np.linalg.inv(real).T.copy(), has_parameters=True)


def orientation_rotation(found_real: np.ndarray, truth_real: np.ndarray) -> np.ndarray:
    """Proper rotation R (nearest, by SVD) with found ≈ truth @ R^T, rows as vectors."""
    m = np.linalg.solve(truth_real, found_real)  # found = truth @ m
    u, _, vt = np.linalg.svd(m.T)
    r = u @ vt
    if np.linalg.det(r) < 0:
        u[:, -1] *= -1
        r = u @ vt
    return r


def misorientation(found: UnitCell, truth: UnitCell) -> float:
    """Smallest rotation angle (radians) between two orientations of the truth's lattice,
    modulo the lattice's point group. ``found`` must be in the truth's setting (see
    ``match_to_target``)."""
    ops = lattice_rotations(truth)
    best = math.pi
    for w in ops:
        r = orientation_rotation(found.real, w @ truth.real)
        ang = math.acos(max(-1.0, min(1.0, (np.trace(r) - 1.0) / 2.0)))
        best = min(best, ang)
    return best
