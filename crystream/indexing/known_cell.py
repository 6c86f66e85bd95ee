"""``toro``: a known-cell indexer in the spirit of the fast-feedback indexers (TORO, ffbidx).

Idea: a real-space lattice vector t makes t·q an integer for every observed reciprocal vector
q. For each length L among the target's few shortest lattice vectors, score directions u of a
hemisphere grid by how close L·(u·q_i) falls to integers (a tolerance that widens with |q|
makes the coarse grid safe; longer vectors get a finer grid), keep the best separated
directions and sharpen them on local patches. Two directions whose angle matches the angle
between two of the target's vectors fix an orientation of the whole target cell; orientations
are ranked by how many peaks they index, and the best are refined by linear least squares of
the real basis on the indexed peaks.
"""

from __future__ import annotations

import itertools
import math

import numba
import numpy as np

from crystream.cell import UnitCell
from crystream.cellmatch import niggli_reduce
from crystream.indexing.sphere import hemisphere, local_patches
from crystream.lattice import primitive_transform

COARSE_SPACING_DEG = 2.0  # grid spacing for vectors up to COARSE_LENGTH
COARSE_LENGTH = 60.0  # Å; longer vectors get a proportionally finer grid
COARSE_MAX_PEAKS = 60
N_CANDIDATES = 12  # directions kept per vector length
N_VECTORS = 5  # shortest lattice vectors searched for
MIN_PAIR_ANGLE = math.radians(15.0)
PAIR_ANGLE_TOL = math.radians(4.0)
INLIER_TOL = 0.2  # fractional-index tolerance when counting indexed peaks
TIGHT_TOL = 0.12  # after refinement, a genuinely indexed peak sits this close to integers
MIN_TIGHT = 10  # fewer tightly indexed peaks than this is not evidence of a lattice


@numba.njit(cache=True, nogil=True, fastmath=True)
def score_directions(dirs: np.ndarray, length: float, q: np.ndarray,
                     sigma: np.ndarray) -> np.ndarray:
    """Σ_i [max(0, 1 − (f_i/σ_i)²) − 4σ_i/3] for f_i = L·(u·q_i) − nearest integer.

    The subtracted term is the kernel's mean for random f, so a direction that indexes nothing
    scores about zero whatever the peak count."""
    m = dirs.shape[0]
    n = q.shape[0]
    out = np.empty(m)
    inv = 1.0 / sigma
    base = 0.0
    for i in range(n):
        base += 1.3333333333333333 * sigma[i]
    for k in range(m):
        ux = dirs[k, 0] * length
        uy = dirs[k, 1] * length
        uz = dirs[k, 2] * length
        s = 0.0
        for i in range(n):
            x = ux * q[i, 0] + uy * q[i, 1] + uz * q[i, 2]
            t = (x - math.floor(x + 0.5)) * inv[i]
            t2 = t * t
            if t2 < 1.0:
                s += 1.0 - t2
        out[k] = s - base
    return out


def _widths(qlen: np.ndarray, length: float, slack_rad: float, floor: float) -> np.ndarray:
    return np.minimum(0.5, floor + length * qlen * slack_rad)


def _best_separated(dirs: np.ndarray, scores: np.ndarray, k: int,
                    min_angle: float) -> np.ndarray:
    """Indices of up to k best-scoring directions, no two within ``min_angle`` (sign-blind)."""
    top = min(40 * k, len(scores))
    part = np.argpartition(-scores, top - 1)[:top]
    order = part[np.argsort(-scores[part], kind="stable")]
    kept: list[int] = []
    cos_min = math.cos(min_angle)
    for idx in order:
        if kept and np.max(np.abs(dirs[kept] @ dirs[idx])) > cos_min:
            continue
        kept.append(int(idx))
        if len(kept) == k:
            break
    return np.array(kept, dtype=np.int64)


def axis_candidates(q: np.ndarray, length: float, n_keep: int = N_CANDIDATES) -> np.ndarray:
    """Best directions (k, 3) for a real-space lattice vector of ``length`` (same unit as 1/q)."""
    qlen = np.linalg.norm(q, axis=1)
    spacing_deg = COARSE_SPACING_DEG * min(1.0, COARSE_LENGTH / length)
    spacing_deg = round(max(spacing_deg, 0.75), 2)
    grid = hemisphere(spacing_deg)
    spacing = math.radians(spacing_deg)
    sig = _widths(qlen, length, 0.6 * spacing, 0.12)
    # peaks too far out say little on the coarse grid; the sharpest few dozen are enough
    use = np.argsort(sig, kind="stable")[:COARSE_MAX_PEAKS]
    use = use[sig[use] < 0.45] if (sig[use] < 0.45).sum() >= 8 else use[:8]
    coarse = score_directions(grid, length, np.ascontiguousarray(q[use]), sig[use])
    dirs = grid[_best_separated(grid, coarse, n_keep, 1.6 * spacing)]
    for half, floor in ((0.75 * spacing, 0.1), (0.2 * spacing, 0.08)):
        patch = local_patches(dirs, half, 7)  # (k, 49, 3)
        flat = patch.reshape(-1, 3)
        sig = _widths(qlen, length, half / 6.0, floor)
        sc = score_directions(flat, length, q, sig).reshape(patch.shape[:2])
        dirs = patch[np.arange(len(dirs)), np.argmax(sc, axis=1)]
    return dirs


def _triad(a1: np.ndarray, a2: np.ndarray, b1: np.ndarray, b2: np.ndarray) -> np.ndarray:
    """Rotations R (p, 3, 3) taking each frame of (a1, a2) onto the frame of (b1, b2), all
    (p, 3): R a1 ∥ b1 exactly and R a2 in the (b1, b2) plane."""

    def frame(x, y):
        e1 = x / np.linalg.norm(x, axis=-1, keepdims=True)
        e3 = np.cross(x, y)
        e3 = e3 / np.linalg.norm(e3, axis=-1, keepdims=True)
        e2 = np.cross(e3, e1)
        return np.stack([e1, e2, e3], axis=-1)  # columns

    fa = frame(a1, a2)
    fb = frame(b1, b2)
    return fb @ np.transpose(fa, (0, 2, 1))


@numba.njit(cache=True, nogil=True, fastmath=True)
def count_indexed(q: np.ndarray, reals: np.ndarray, tol: float) -> np.ndarray:
    """How many peaks each real basis (p, 3, 3) indexes within ``tol`` in all three indices."""
    p = reals.shape[0]
    out = np.zeros(p, dtype=np.int64)
    for k in range(p):
        c = 0
        for i in range(q.shape[0]):
            ok = True
            for j in range(3):
                x = reals[k, j, 0] * q[i, 0] + reals[k, j, 1] * q[i, 1] + reals[k, j, 2] * q[i, 2]
                if abs(x - math.floor(x + 0.5)) >= tol:
                    ok = False
                    break
            if ok:
                c += 1
        out[k] = c
    return out


def indexed_masks(q: np.ndarray, reals: np.ndarray, tol: float = INLIER_TOL) -> np.ndarray:
    """(p, n) mask of the peaks whose three fractional indices are within ``tol`` of
    integers, for each real basis in ``reals`` (p, 3, 3)."""
    h = np.einsum("nk,pjk->pnj", q, reals)
    return (np.abs(h - np.rint(h)) < tol).all(axis=2)


def refine_basis(q: np.ndarray, real: np.ndarray, rounds: int = 5,
                 tol: float = INLIER_TOL) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares real basis from the peaks it indexes: minimise |q·T^T − hkl|² (linear).
    The last two rounds use only the tightly indexed peaks, so that a few misindexed ones
    cannot distort the cell.

    Returns (real basis, inlier mask at ``tol``)."""
    for r in range(rounds):
        h = q @ real.T
        hkl = np.rint(h)
        ok = (np.abs(h - hkl) < (tol if r < rounds - 2 else TIGHT_TOL)).all(axis=1)
        if ok.sum() < 6:
            break
        sol, *_ = np.linalg.lstsq(q[ok], hkl[ok], rcond=None)
        real = sol.T
    h = q @ real.T
    ok = (np.abs(h - np.rint(h)) < tol).all(axis=1)
    return real, ok


def search_vectors(target: UnitCell, n_vectors: int = N_VECTORS) -> np.ndarray:
    """The target's shortest lattice vectors (up to sign), rows in metres, standard
    orientation: short vectors need the least angular precision to be found, and several of
    them give several chances when a frame has few spots."""
    prim = primitive_transform(target.centering) @ target.real
    reduced, _ = niggli_reduce(prim)
    combos = np.array([c for c in itertools.product((-1, 0, 1), repeat=3)
                       if any(c) and next(x for x in c if x) > 0], dtype=float)
    vecs = combos @ reduced
    lengths = np.linalg.norm(vecs, axis=1)
    order = np.argsort(lengths, kind="stable")[:n_vectors]
    # longer vectors than the reduced basis cost a finer grid and add little
    limit = 1.1 * float(np.linalg.norm(reduced, axis=1).max())
    return vecs[order[lengths[order] <= limit]]


def significant(q: np.ndarray, real: np.ndarray, min_fraction: float) -> bool:
    """Is the basis real evidence of a lattice? At least ``MIN_TIGHT`` peaks and
    ``min_fraction`` of all peaks within ``TIGHT_TOL`` of integer indices after refinement.

    Random peak lists reach ~30% for the best of the thousands of orientations an engine
    tries, which is why CrystFEL's own 50% check at 0.25 alone lets blanks through."""
    h = q @ real.T
    tight = int((np.abs(h - np.rint(h)) < TIGHT_TOL).all(axis=1).sum())
    return tight >= MIN_TIGHT and tight >= min_fraction * len(q)


def index_known_cell(q: np.ndarray, target: UnitCell, min_indexed: int = 6,
                     max_lattices: int = 3, min_fraction: float = 0.5) -> list[UnitCell]:
    """Lattices (in the target's conventional setting) found among reciprocal vectors ``q``
    (n, 3, m^-1), best first; see ``significant`` for ``min_fraction``."""
    if len(q) < 3:
        return []
    scale = 1e-10  # work in Å and Å^-1 for well-scaled numbers
    qa = np.ascontiguousarray(q * scale)
    t_real = target.real / scale  # rows a, b, c in Å, standard orientation
    vecs = search_vectors(target) / scale  # shortest lattice vectors, in the lab frame
    lengths = np.linalg.norm(vecs, axis=1)

    cands: dict[float, np.ndarray] = {}
    per_vec = []
    for L in lengths:
        key = round(float(L), 2)
        if key not in cands:
            cands[key] = axis_candidates(qa, float(L))
        per_vec.append(cands[key])

    rots = []
    for i in range(len(vecs)):
        for j in range(i + 1, len(vecs)):
            vi, vj = vecs[i], vecs[j]
            want = math.acos(float(np.clip(vi @ vj / (lengths[i] * lengths[j]), -1, 1)))
            if not (MIN_PAIR_ANGLE < want < math.pi - MIN_PAIR_ANGLE):
                continue
            u, v = per_vec[i], per_vec[j]
            cosuv = u @ v.T  # (ku, kv)
            for sign in (1.0, -1.0):
                ang = np.arccos(np.clip(sign * cosuv, -1.0, 1.0))
                iu, iv = np.nonzero(np.abs(ang - want) < PAIR_ANGLE_TOL)
                if len(iu) == 0:
                    continue
                for s_u in (1.0, -1.0):
                    k = len(iu)
                    rots.append((np.broadcast_to(vi, (k, 3)), np.broadcast_to(vj, (k, 3)),
                                 s_u * u[iu], s_u * sign * v[iv]))
    if not rots:
        return []
    rot = _triad(*(np.concatenate([r[m] for r in rots]) for m in range(4)))
    reals = t_real[None] @ np.transpose(rot, (0, 2, 1))  # rows rotated: a' = R a
    counts = count_indexed(qa, np.ascontiguousarray(reals), INLIER_TOL)
    order = np.argsort(-counts, kind="stable")[: 8 * max_lattices]
    masks = np.zeros((len(counts), len(qa)), dtype=bool)
    masks[order] = indexed_masks(qa, reals[order])

    found: list[tuple[int, np.ndarray, np.ndarray]] = []
    for idx in order:
        if counts[idx] < min_indexed:
            break
        pre = masks[idx]
        if any((pre & prev_ok).sum() > 0.5 * min(pre.sum(), prev_ok.sum())
               for _, _, prev_ok in found):
            continue  # an orientation of a lattice already found
        real, ok = refine_basis(qa, reals[idx])
        n_ok = int(ok.sum())
        if n_ok < min_indexed or not significant(qa, real, min_fraction):
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
