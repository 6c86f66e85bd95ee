"""``fft1d``: a cell-free indexer of the MOSFLM / DIALS-fft1d / asdf family.

For every direction u of a hemisphere grid the peaks' projections u·q are histogrammed and
Fourier-transformed; a strong frequency d means real-space lattice planes along u with period d,
i.e. a candidate lattice vector t = d·u. The strongest well-separated candidates are refined by
linear least squares (t·q_i ≈ integer), a basis is assembled from the non-coplanar triple that
indexes the most peaks in the smallest volume, refined on the indexed peaks and Niggli-reduced
with gemmi. The result is a primitive, reduced, right-handed triclinic cell.
"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

import numba
import numpy as np

from crystream.cell import UnitCell
from crystream.cellmatch import niggli_reduce
from crystream.indexing.known_cell import (INLIER_TOL, TIGHT_TOL, count_indexed, refine_basis,
                                          significant)
from crystream.indexing.sphere import hemisphere
from crystream.lattice import lattice_points_per_cell

SPACING_DEG = 2.0
N_VECTORS = 30
D_MIN = 3.0  # Å, shortest lattice vector considered
N_TRIALS = 30  # leading triples refined and compared


@numba.njit(cache=True, nogil=True, fastmath=True)
def _histograms(dirs: np.ndarray, q: np.ndarray, half_range: float, nbins: int) -> np.ndarray:
    """Histogram of the projections u·q over [-half_range, half_range) for every direction."""
    m = dirs.shape[0]
    out = np.zeros((m, nbins))
    scale = nbins / (2.0 * half_range)
    for k in range(m):
        for i in range(q.shape[0]):
            p = dirs[k, 0] * q[i, 0] + dirs[k, 1] * q[i, 1] + dirs[k, 2] * q[i, 2]
            b = int((p + half_range) * scale)
            if 0 <= b < nbins:
                out[k, b] += 1.0
    return out


@numba.njit(cache=True, nogil=True)
def _solve3(m: np.ndarray, b: np.ndarray) -> np.ndarray:
    """3x3 solve by Cramer's rule (numba's LAPACK needs scipy, which we do not ship)."""
    c00 = m[1, 1] * m[2, 2] - m[1, 2] * m[2, 1]
    c01 = m[1, 2] * m[2, 0] - m[1, 0] * m[2, 2]
    c02 = m[1, 0] * m[2, 1] - m[1, 1] * m[2, 0]
    det = m[0, 0] * c00 + m[0, 1] * c01 + m[0, 2] * c02
    out = np.empty(3)
    if det == 0.0:
        out[:] = np.nan
        return out
    inv = np.empty((3, 3))
    inv[0, 0] = c00
    inv[1, 0] = c01
    inv[2, 0] = c02
    inv[0, 1] = m[0, 2] * m[2, 1] - m[0, 1] * m[2, 2]
    inv[1, 1] = m[0, 0] * m[2, 2] - m[0, 2] * m[2, 0]
    inv[2, 1] = m[0, 1] * m[2, 0] - m[0, 0] * m[2, 1]
    inv[0, 2] = m[0, 1] * m[1, 2] - m[0, 2] * m[1, 1]
    inv[1, 2] = m[0, 2] * m[1, 0] - m[0, 0] * m[1, 2]
    inv[2, 2] = m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0]
    for r in range(3):
        out[r] = (inv[r, 0] * b[0] + inv[r, 1] * b[1] + inv[r, 2] * b[2]) / det
    return out


@numba.njit(cache=True, nogil=True)
def _refine_vector(q: np.ndarray, t: np.ndarray, tol: float, rounds: int) -> tuple:
    """Least-squares t with t·q_i ≈ nearest integer over the peaks within ``tol``."""
    n = q.shape[0]
    count = 0
    for _ in range(rounds):
        ata = np.zeros((3, 3))
        atb = np.zeros(3)
        count = 0
        for i in range(n):
            x = t[0] * q[i, 0] + t[1] * q[i, 1] + t[2] * q[i, 2]
            m = math.floor(x + 0.5)
            if abs(x - m) < tol:
                count += 1
                for r in range(3):
                    atb[r] += q[i, r] * m
                    for c in range(3):
                        ata[r, c] += q[i, r] * q[i, c]
        if count < 4:
            break
        t_new = _solve3(ata, atb)
        if not np.isfinite(t_new[0]):
            break
        t = t_new
    count = 0
    for i in range(n):
        x = t[0] * q[i, 0] + t[1] * q[i, 1] + t[2] * q[i, 2]
        if abs(x - math.floor(x + 0.5)) < tol:
            count += 1
    return t, count


def candidate_vectors(q: np.ndarray, d_max: float, n_keep: int = N_VECTORS) -> np.ndarray:
    """Real-space lattice-vector candidates (k, 3) in Å from the 1-D FFT search, best first."""
    qlen = np.linalg.norm(q, axis=1)
    half = float(qlen.max()) * 1.0001
    nbins = int(2 ** math.ceil(math.log2(max(64.0, 4.0 * half * d_max))))
    dirs = hemisphere(SPACING_DEG)
    hist = _histograms(dirs, q, half, nbins)
    amp = np.abs(np.fft.rfft(hist, axis=1))
    freq_d = np.arange(amp.shape[1]) / (2.0 * half)  # period in Å for each frequency index
    valid = (freq_d >= D_MIN) & (freq_d <= d_max)
    amp[:, ~valid] = 0.0
    best_k = np.argmax(amp, axis=1)
    best_amp = amp[np.arange(len(dirs)), best_k] / len(q)
    # prefer the fundamental: the smallest period reaching 80% of the direction's best
    strong = amp >= 0.8 * amp[np.arange(len(dirs)), best_k][:, None]
    strong &= valid[None, :]
    first = np.argmax(strong, axis=1)
    vecs = dirs * freq_d[first][:, None]

    order = np.argsort(-best_amp)
    cos_min = math.cos(math.radians(2.5 * SPACING_DEG))
    kept: list[np.ndarray] = []
    scores: list[int] = []
    for idx in order[: 60 * n_keep]:
        t0 = vecs[idx]
        if kept:
            k = np.array(kept)
            cosang = np.abs(k @ t0) / (np.linalg.norm(k, axis=1) * np.linalg.norm(t0))
            if cosang.max() > cos_min:
                continue
        t, count = _refine_vector(q, t0.copy(), INLIER_TOL, 4)
        if count < 6 or not np.all(np.isfinite(t)) or np.linalg.norm(t) < D_MIN:
            continue
        if kept:
            k = np.array(kept)
            same = np.linalg.norm(np.abs(k) - np.abs(t), axis=1) < 0.02 * np.linalg.norm(t)
            if same.any() and np.max(np.abs(k @ t) / (np.linalg.norm(k, axis=1)
                                                      * np.linalg.norm(t))) > 0.999:
                continue
        kept.append(t)
        scores.append(count)
        if len(kept) == n_keep:
            break
    if not kept:
        return np.zeros((0, 3))
    kept_arr = np.array(kept)
    order2 = np.lexsort((np.linalg.norm(kept_arr, axis=1), -np.array(scores)))
    return kept_arr[order2]


def _tight_count(q: np.ndarray, real: np.ndarray) -> int:
    h = q @ real.T
    return int((np.abs(h - np.rint(h)) < TIGHT_TOL).all(axis=1).sum())


@lru_cache(maxsize=8)
def _triples(n: int) -> np.ndarray:
    """All index triples i < j < k below n, shape (t, 3)."""
    idx = np.array(list(itertools.combinations(range(n), 3)), dtype=np.int64)
    return idx.reshape(-1, 3)


def index_cell_free(q: np.ndarray, target: UnitCell | None = None, use_cell: bool = False,
                    min_indexed: int = 6, max_lattices: int = 3,
                    min_fraction: float = 0.5) -> list[UnitCell]:
    """Primitive reduced lattices (triclinic P) for reciprocal vectors ``q`` (n, 3, m^-1).

    With ``use_cell`` and a target with parameters, the target only bounds the search: longest
    vector 3·max(a, b, c) and primitive volume within ±10% (as asdf's prior)."""
    if len(q) < 4:
        return []
    scale = 1e-10
    qa = np.ascontiguousarray(q * scale)
    d_max, vmin, vmax = 300.0, 100.0, 1e8
    if use_cell and target is not None and target.has_parameters:
        t_len = np.linalg.norm(target.real, axis=1) / scale
        d_max = 3.0 * float(t_len.max())
        vprim = abs(target.volume) / scale**3 / lattice_points_per_cell(target.centering)
        vmin, vmax = 0.9 * vprim, 1.1 * vprim
    vecs = candidate_vectors(qa, d_max)
    if len(vecs) < 3:
        return []
    tri = _triples(len(vecs))
    bases = vecs[tri]  # (t, 3, 3)
    vol = np.abs(np.linalg.det(bases))
    ok = (vol >= vmin) & (vol <= vmax)
    lengths = np.linalg.norm(bases, axis=2)
    ok &= vol > 0.2 * lengths.prod(axis=1)  # not nearly coplanar
    bases, vol = bases[ok], vol[ok]
    if len(bases) == 0:
        return []
    counts = count_indexed(qa, np.ascontiguousarray(bases), INLIER_TOL)
    # Every sublattice of the real lattice indexes the true peaks too, and among thousands of
    # triples some catch a few extra spurious peaks by chance: take the smallest cell among
    # those close to the best count.
    near_best = counts >= counts.max() - max(2, int(0.05 * counts.max()))
    order = np.lexsort((vol, -counts))
    order = np.concatenate([np.flatnonzero(near_best)[np.argsort(vol[near_best],
                                                                 kind="stable")],
                            order[~near_best[order]]])

    # Refine the leading triples and judge them by how many peaks they index tightly: a wrong
    # small cell can match a loose count on a sparse frame, never a tight one.
    trials: list[tuple[int, float, np.ndarray, np.ndarray]] = []
    for idx in order[:N_TRIALS]:
        if counts[idx] < min_indexed:
            break
        real, inl = refine_basis(qa, bases[idx])
        v = abs(np.linalg.det(real))
        if inl.sum() < min_indexed or not (vmin <= v <= vmax):
            continue
        if not significant(qa, real, min_fraction):
            continue
        trials.append((_tight_count(qa, real), v, real, inl))
    found: list[tuple[int, float, np.ndarray, np.ndarray]] = []
    while trials and len(found) < max_lattices:
        best = max(t[0] for t in trials)
        # among (nearly) equally tight cells the smallest: sublattices index as well
        pick = min((t for t in trials if t[0] >= best - 1), key=lambda t: t[1])
        found.append(pick)
        trials = [t for t in trials if (t[3] & pick[3]).sum() <= 0.5 * min(t[3].sum(),
                                                                        pick[3].sum())]
    out = []
    for _, _, real, _ in found:
        if np.linalg.det(real) < 0:
            real = -real
        reduced, _ = niggli_reduce(real * scale)
        out.append(UnitCell(np.linalg.inv(reduced).T.copy(), "triclinic", "P", "?"))
    return out
