"""``toro``: a known-cell indexer in the spirit of the fast-feedback indexers (TORO, ffbidx).

Idea: a real-space lattice vector t makes t·q an integer for every observed reciprocal vector
q. For each distinct axis length L of the target cell, score directions u of a hemisphere grid
by how close L·(u·q_i) falls to integers (a tolerance that widens with |q| makes the coarse grid
safe), keep the best separated directions, sharpen them on local patches, then pair directions
whose angle matches the target's inter-axial angle. Each pair fixes an orientation of the whole
target cell; orientations are ranked by how many peaks they index, and the best are refined by
linear least squares of the real basis on the indexed peaks.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from crystream.cell import UnitCell
from crystream.indexing.sphere import hemisphere, local_patches

COARSE_SPACING_DEG = 2.0
N_CANDIDATES = 16  # directions kept per axis length
PAIR_ANGLE_TOL = math.radians(4.0)
INLIER_TOL = 0.2  # fractional-index tolerance when counting indexed peaks


@numba.njit(cache=True, nogil=True, fastmath=True)
def score_directions(dirs: np.ndarray, length: float, q: np.ndarray,
                     sigma: np.ndarray) -> np.ndarray:
    """Σ_i [max(0, 1 − (f_i/σ_i)²) − 4σ_i/3] for f_i = L·(u·q_i) − nearest integer.

    The subtracted term is the kernel's mean for random f, so a direction that indexes nothing
    scores about zero whatever the peak count."""
    m = dirs.shape[0]
    n = q.shape[0]
    out = np.empty(m)
    for k in range(m):
        ux = dirs[k, 0] * length
        uy = dirs[k, 1] * length
        uz = dirs[k, 2] * length
        s = 0.0
        for i in range(n):
            x = ux * q[i, 0] + uy * q[i, 1] + uz * q[i, 2]
            f = x - math.floor(x + 0.5)
            t = f / sigma[i]
            t2 = t * t
            if t2 < 1.0:
                s += 1.0 - t2
            s -= 1.3333333333333333 * sigma[i]
        out[k] = s
    return out


def _widths(qlen: np.ndarray, length: float, slack_rad: float, floor: float) -> np.ndarray:
    return np.minimum(0.5, floor + length * qlen * slack_rad)


def _best_separated(dirs: np.ndarray, scores: np.ndarray, k: int,
                    min_angle: float) -> np.ndarray:
    """Indices of up to k best-scoring directions, no two within ``min_angle`` (sign-blind)."""
    order = np.argsort(-scores)
    kept: list[int] = []
    cos_min = math.cos(min_angle)
    for idx in order[: 40 * k]:
        if kept and np.max(np.abs(dirs[kept] @ dirs[idx])) > cos_min:
            continue
        kept.append(int(idx))
        if len(kept) == k:
            break
    return np.array(kept, dtype=np.int64)


def axis_candidates(q: np.ndarray, length: float, n_keep: int = N_CANDIDATES) -> np.ndarray:
    """Best directions (k, 3) for a real-space lattice vector of ``length`` (same unit as 1/q)."""
    qlen = np.linalg.norm(q, axis=1)
    grid = hemisphere(COARSE_SPACING_DEG)
    spacing = math.radians(COARSE_SPACING_DEG)
    coarse = score_directions(grid, length, q, _widths(qlen, length, 0.6 * spacing, 0.12))
    dirs = grid[_best_separated(grid, coarse, n_keep, 1.6 * spacing)]
    for half, floor in ((0.75 * spacing, 0.1), (0.2 * spacing, 0.08)):
        patch = local_patches(dirs, half, 7)  # (k, 49, 3)
        flat = patch.reshape(-1, 3)
        sig = _widths(qlen, length, half / 6.0, floor)
        sc = score_directions(flat, length, q, sig).reshape(patch.shape[:2])
        dirs = patch[np.arange(len(dirs)), np.argmax(sc, axis=1)]
    return dirs


def _triad(a1: np.ndarray, a2: np.ndarray, b1: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """Rotations R (p, 3, 3) taking the frame of (a1, a2) (3,) onto each frame of (b1, b2)
    (p, 3): R a1 ∥ b1 exactly and R a2 in the (b1, b2) plane."""

    def frame(x, y):
        e1 = x / np.linalg.norm(x, axis=-1, keepdims=True)
        e3 = np.cross(x, y)
        e3 = e3 / np.linalg.norm(e3, axis=-1, keepdims=True)
        e2 = np.cross(e3, e1)
        return np.stack([e1, e2, e3], axis=-1)  # columns

    fa = frame(a1, a2)
    fb = frame(b1, b2)
    return fb @ fa.T


def indexed_masks(q: np.ndarray, reals: np.ndarray, tol: float = INLIER_TOL) -> np.ndarray:
    """(p, n) mask of the peaks whose three fractional indices are within ``tol`` of
    integers, for each real basis in ``reals`` (p, 3, 3)."""
    h = np.einsum("nk,pjk->pnj", q, reals)
    return (np.abs(h - np.rint(h)) < tol).all(axis=2)


def refine_basis(q: np.ndarray, real: np.ndarray, rounds: int = 4,
                 tol: float = INLIER_TOL) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares real basis from the peaks it indexes: minimise |q·T^T − hkl|² (linear).

    Returns (real basis, inlier mask)."""
    for _ in range(rounds):
        h = q @ real.T
        hkl = np.rint(h)
        ok = (np.abs(h - hkl) < tol).all(axis=1)
        if ok.sum() < 6:
            break
        sol, *_ = np.linalg.lstsq(q[ok], hkl[ok], rcond=None)
        real = sol.T
    h = q @ real.T
    ok = (np.abs(h - np.rint(h)) < tol).all(axis=1)
    return real, ok


def index_known_cell(q: np.ndarray, target: UnitCell, min_indexed: int = 6,
                     max_lattices: int = 3) -> list[UnitCell]:
    """Lattices (in the target's conventional setting) found among reciprocal vectors ``q``
    (n, 3, m^-1), best first."""
    if len(q) < 3:
        return []
    scale = 1e-10  # work in Å and Å^-1 for well-scaled numbers
    qa = np.ascontiguousarray(q * scale)
    t_real = target.real / scale  # rows a, b, c in Å, standard orientation
    lengths = np.linalg.norm(t_real, axis=1)

    cands: dict[float, np.ndarray] = {}
    per_axis = []
    for L in lengths:
        key = round(float(L), 3)
        if key not in cands:
            cands[key] = axis_candidates(qa, float(L))
        per_axis.append(cands[key])

    rots = []
    for i, j in ((0, 1), (0, 2), (1, 2)):
        ai, aj = t_real[i], t_real[j]
        want = math.acos(float(ai @ aj) / (lengths[i] * lengths[j]))
        u, v = per_axis[i], per_axis[j]
        cosuv = u @ v.T  # (ku, kv)
        for sign in (1.0, -1.0):
            ang = np.arccos(np.clip(sign * cosuv, -1.0, 1.0))
            iu, iv = np.nonzero(np.abs(ang - want) < PAIR_ANGLE_TOL)
            if len(iu) == 0:
                continue
            for s_u in (1.0, -1.0):
                rots.append(_triad(ai, aj, s_u * u[iu], s_u * sign * v[iv]))
    if not rots:
        return []
    rot = np.concatenate(rots)
    reals = t_real[None] @ np.transpose(rot, (0, 2, 1))  # rows rotated: a' = R a
    masks = indexed_masks(qa, reals)
    counts = masks.sum(axis=1)
    order = np.argsort(-counts, kind="stable")

    found: list[tuple[int, np.ndarray, np.ndarray]] = []
    for idx in order[: 8 * max_lattices]:
        if counts[idx] < min_indexed:
            break
        pre = masks[idx]
        if any((pre & prev_ok).sum() > 0.5 * min(pre.sum(), prev_ok.sum())
               for _, _, prev_ok in found):
            continue  # an orientation of a lattice already found
        real, ok = refine_basis(qa, reals[idx])
        n_ok = int(ok.sum())
        if n_ok < min_indexed:
            continue
        if any((ok & prev_ok).sum() > 0.5 * min(n_ok, prev_ok.sum()) for _, _, prev_ok in found):
            continue  # the same lattice again (or a near relative of it)
        found.append((n_ok, real, ok))
        if len(found) == max_lattices:
            break
    found.sort(key=lambda t: -t[0])
    out = []
    for _, real, _ in found:
        if np.linalg.det(real) <= 0:
            continue
        out.append(UnitCell(np.linalg.inv(real * scale).T.copy(), target.lattice_type,
                            target.centering, target.unique_axis))
    return out
