"""Prediction refinement (CrystFEL 0.12.0 ``refine_prediction``, indexing.md §6).

Peaks are paired with the reflections their q rounds to (crystream.prediction.pair_peaks); the
sum of squared residuals (1e-7·excitation error, fs and ss offsets of the predicted spot) is
minimised by Gauss–Newton on the normal equations, solved by Jacobi-scaled SVD (singular
values below max/1e6 dropped): five iterations treating the cell as triclinic, then, with a
target, five more under the target's Bravais constraints. Parameters are the cell's lengths and free angles plus three lab-frame
rotations; the Jacobian is taken by finite differences of the vectorised prediction.
"""

from __future__ import annotations

import math

import numpy as np

from crystream.cell import UnitCell
from crystream.cellmatch import parameters_of
from crystream.frame import PeakList
from crystream.geometry.detector import Detector
from crystream.prediction import ewald_model, pair_peaks

PROFILE_RADIUS = 0.02e9  # m^-1, what CrystFEL sets before the checks
N_ITERATIONS = 5
_DEG90 = math.pi / 2
_DEG120 = 2 * math.pi / 3


def _constraints(cell: UnitCell, bravais: bool) -> tuple[list[list[int]], list[list[int]],
                                                         dict[int, float]]:
    """(length groups, free angle groups, fixed angles) for the cell's Bravais lattice.

    Indices: lengths 0..2 = a, b, c; angles 0..2 = alpha, beta, gamma."""
    free3 = [[0], [1], [2]]
    if not bravais or cell.lattice_type == "triclinic":
        return free3, free3, {}
    ua = {"a": 0, "b": 1, "c": 2}.get(cell.unique_axis, 2)
    others = [i for i in range(3) if i != ua]
    lt = cell.lattice_type
    if lt == "monoclinic":
        return free3, [[ua]], {i: _DEG90 for i in others}
    if lt == "orthorhombic":
        return free3, [], {0: _DEG90, 1: _DEG90, 2: _DEG90}
    if lt == "tetragonal":
        return [others, [ua]], [], {0: _DEG90, 1: _DEG90, 2: _DEG90}
    if lt == "hexagonal":
        fixed = {i: _DEG90 for i in others}
        fixed[ua] = _DEG120
        return [others, [ua]], [], fixed
    if lt == "rhombohedral":
        return [[0, 1, 2]], [[0, 1, 2]], {}
    if lt == "cubic":
        return [[0, 1, 2]], [], {0: _DEG90, 1: _DEG90, 2: _DEG90}
    return free3, free3, {}


def _rotations(w: np.ndarray) -> np.ndarray:
    """Rotation matrices (b, 3, 3) for rotation vectors ``w`` (b, 3) (Rodrigues)."""
    th = np.linalg.norm(w, axis=1)
    k = w / np.where(th > 0, th, 1.0)[:, None]
    z = np.zeros(len(w))
    kx = np.stack([np.stack([z, -k[:, 2], k[:, 1]], -1), np.stack([k[:, 2], z, -k[:, 0]], -1),
                   np.stack([-k[:, 1], k[:, 0], z], -1)], axis=1)
    s = np.sin(th)[:, None, None]
    c = (1 - np.cos(th))[:, None, None]
    return np.eye(3)[None] + s * kx + c * (kx @ kx)


class _Model:
    """The crystal as a parameter vector under a set of constraints."""

    def __init__(self, cell: UnitCell, bravais: bool):
        self.lgroups, self.agroups, self.fixed = _constraints(cell, bravais)
        p = parameters_of(cell.real)
        lengths = [float(np.mean(p[g])) for g in self.lgroups]
        angles = [float(np.mean(p[3 + np.array(g)])) for g in self.agroups]
        self.x0 = np.array(lengths + angles + [0.0, 0.0, 0.0])
        std = self._standard(self.x0)[0]
        m = np.linalg.solve(std, cell.reciprocal)  # reciprocal = std @ U^T
        u, _, vt = np.linalg.svd(m)
        self.ut = u @ vt  # nearest rotation: impose_bravais keeps the orientation
        lscale = [v for v in lengths]
        self.steps = np.array([1e-5 * s for s in lscale] + [1e-6] * len(angles) + [1e-6] * 3)

    def _params6(self, xs: np.ndarray) -> np.ndarray:
        """(b, 6) cell parameters for parameter vectors (b, k)."""
        p = np.empty((len(xs), 6))
        nl = len(self.lgroups)
        for j, g in enumerate(self.lgroups):
            p[:, g] = xs[:, j:j + 1]
        for j, g in enumerate(self.agroups):
            p[:, 3 + np.array(g)] = xs[:, nl + j:nl + j + 1]
        for i, v in self.fixed.items():
            p[:, 3 + i] = v
        return p

    def _standard(self, xs: np.ndarray) -> np.ndarray:
        """Reciprocal bases (b, 3, 3) in CrystFEL's standard orientation."""
        a, b, c, al, be, ga = self._params6(np.atleast_2d(xs)).T
        cosa, cosb, cosg, sing = np.cos(al), np.cos(be), np.cos(ga), np.sin(ga)
        cx = c * cosb
        cy = c * (cosa - cosb * cosg) / sing
        cz = np.sqrt(np.maximum(c * c - cx * cx - cy * cy, 0.0))
        z = np.zeros_like(a)
        real = np.stack([np.stack([a, z, z], -1), np.stack([b * cosg, b * sing, z], -1),
                         np.stack([cx, cy, cz], -1)], axis=1)
        return np.transpose(np.linalg.inv(real), (0, 2, 1))

    def valid(self, x: np.ndarray) -> bool:
        """Positive lengths and angles that make a cell (the angle-sum tests)."""
        p = self._params6(x[None])[0]
        al, be, ga = p[3:]
        return bool(np.all(p[:3] > 0) and np.all(p[3:] > 0) and np.all(p[3:] < math.pi)
                    and al + be > ga and be + ga > al and al + ga > be
                    and al + be + ga < 2 * math.pi)

    def reciprocal(self, xs: np.ndarray) -> np.ndarray:
        """Reciprocal bases (b, 3, 3) for parameter vectors (b, k)."""
        xs = np.atleast_2d(xs)
        return self._standard(xs) @ self.ut @ np.transpose(_rotations(xs[:, -3:]), (0, 2, 1))


class _Residuals:
    """Residuals of the pairs for a batch of reciprocal bases, all evaluated in one go."""

    def __init__(self, pairs, peaks: PeakList, detector: Detector, wavelength: float,
                 clen: float, shift: tuple[float, float]):
        self.hkl = np.stack([pairs.h, pairs.k, pairs.l], axis=1).astype(float)
        panel = np.asarray(peaks.panel)[pairs.peak]
        self.fs_obs = np.asarray(peaks.fs, float)[pairs.peak]
        self.ss_obs = np.asarray(peaks.ss, float)[pairs.peak]
        self.lam = wavelength
        self.bandwidth = detector.bandwidth
        # per pair, the inverse of [C F S] of its panel: (fs, ss) = coef[1:]/coef[0]
        frames = {}
        for p in np.unique(panel):
            pan = detector.panels[int(p)]
            pitch = pan.pixel_pitch
            corner = [pan.corner_x + shift[0] / pitch, pan.corner_y + shift[1] / pitch,
                      (clen + pan.coffset) / pitch]
            m = np.column_stack([corner, np.asarray(pan.fs, float), np.asarray(pan.ss, float)])
            frames[int(p)] = np.linalg.inv(m)
        self.inv = np.array([frames[int(p)] for p in panel])  # (m, 3, 3)

    def parts(self, recips: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(1e-7·exerr, Δfs, Δss), each (b, m), for reciprocal bases (b, 3, 3)."""
        points = np.einsum("mi,bij->bmj", self.hkl, recips)
        b, m = points.shape[:2]
        flat = points.reshape(-1, 3)
        kpred, _, exerr = ewald_model(flat, self.lam, self.bandwidth, PROFILE_RADIUS)
        rays = flat.copy()
        rays[:, 2] += kpred
        coef = np.einsum("mij,bmj->bmi", self.inv, rays.reshape(b, m, 3))
        with np.errstate(divide="ignore", invalid="ignore"):
            fs = coef[..., 1] / coef[..., 0]
            ss = coef[..., 2] / coef[..., 0]
        return 1e-7 * exerr.reshape(b, m), fs - self.fs_obs, ss - self.ss_obs

    def vectors(self, recips: np.ndarray) -> np.ndarray:
        return np.concatenate(self.parts(recips), axis=1)

    def summary(self, recip: np.ndarray) -> tuple[float, float, float, float]:
        e, f, s = (float(np.sum(v * v)) for v in self.parts(recip[None]))
        return e + f + s, e, f, s


def _gauss_newton(model: _Model, res: _Residuals, iterations: int) -> np.ndarray:
    x = model.x0.copy()
    k = len(x)
    for _ in range(iterations):
        xs = np.repeat(x[None], k + 1, axis=0)
        xs[1:] += np.diag(model.steps)
        rv = res.vectors(model.reciprocal(xs))
        r0 = rv[0]
        jac = ((rv[1:] - r0) / model.steps[:, None]).T
        if not np.all(np.isfinite(jac)) or not np.all(np.isfinite(r0)):
            break
        # normal equations (with CrystFEL's 1e-18 ridge), Jacobi-scaled, solved by SVD with
        # singular values below max/1e6 dropped
        m = jac.T @ jac + 1e-18 * np.eye(len(x))
        v = -jac.T @ r0
        diag = np.sqrt(np.diag(m))
        scale = np.where(diag > 0, 1.0 / np.where(diag > 0, diag, 1.0), 1.0)
        u, sv, vt = np.linalg.svd(m * scale[:, None] * scale[None, :])
        keep = sv > sv.max() / 1e6 if sv.size and sv.max() > 0 else np.zeros_like(sv, bool)
        inv = np.where(keep, 1.0 / np.where(keep, sv, 1.0), 0.0)
        step = (vt.T @ (inv * (u.T @ (v * scale)))) * scale
        step = np.where(np.isfinite(step), step, 0.0)
        if not model.valid(x + step):
            break  # a step into an impossible cell: the pairing was nonsense
        x = x + step
    return x


def _note(kind: str, values: tuple[float, float, float, float]) -> str:
    return f"predict_refine/{kind}_residual = %f (%f %f %f)" % values


def refine_prediction(cell: UnitCell, peaks: PeakList, detector: Detector, wavelength: float,
                      clen: float, target: UnitCell | None,
                      shift: tuple[float, float] = (0.0, 0.0)
                      ) -> tuple[UnitCell, list[str]] | None:
    """The refined cell and its two residual notes, or None when fewer than 3 peaks pair
    (before or after). ``target``: impose its Bravais lattice in the second stage (the cell
    must already be in the target's setting)."""
    try:
        return _refine(cell, peaks, detector, wavelength, clen, target, shift)
    except np.linalg.LinAlgError:
        return None


def _refine(cell: UnitCell, peaks: PeakList, detector: Detector, wavelength: float,
            clen: float, target: UnitCell | None,
            shift: tuple[float, float]) -> tuple[UnitCell, list[str]] | None:
    pairs = pair_peaks(cell, peaks, detector, wavelength, clen, detector.bandwidth,
                       PROFILE_RADIUS, *shift)
    if len(pairs) < 3:
        return None
    res = _Residuals(pairs, peaks, detector, wavelength, clen, shift)
    initial = res.summary(cell.reciprocal)
    model = _Model(cell, bravais=False)
    recip = model.reciprocal(_gauss_newton(model, res, N_ITERATIONS))[0]
    current = cell.with_reciprocal(recip)
    if target is not None:
        model = _Model(current, bravais=True)
        recip = model.reciprocal(_gauss_newton(model, res, N_ITERATIONS))[0]
        current = current.with_reciprocal(recip)
    if not np.all(np.isfinite(current.reciprocal)):
        return None
    final = res.summary(current.reciprocal)
    again = pair_peaks(current, peaks, detector, wavelength, clen, detector.bandwidth,
                       PROFILE_RADIUS, *shift)
    if len(again) < 3:
        return None
    return current, [_note("initial", initial), _note("final", final)]
