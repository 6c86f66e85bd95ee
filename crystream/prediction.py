"""Where an oriented lattice's reflections fall on the detector for a still (integration.md §1).

Everything is vectorised over reflections: the hkl candidates are enumerated row by row along l
by solving where each (h, k) row crosses a shell around the Ewald sphere, then the CrystFEL
still model (kpred, partiality, excitation error) is evaluated with numpy and the rays are
intersected with the panels in file order.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from crystream.cell import UnitCell
from crystream.geometry.detector import Detector, Panel, max_resolution
from crystream.lattice import centering_allows

log = logging.getLogger(__name__)

#: Reflections are predicted only with partiality at least this (exp(-1.7^2/2)).
MIN_PARTIALITY = math.exp(-0.5 * 1.7 * 1.7)
MAX_INDEX = 511
_DBL_MIN = np.finfo(np.float64).tiny


@dataclass
class Predicted:
    """Predicted reflections as parallel arrays; positions panel-relative, corner-referenced."""

    h: np.ndarray
    k: np.ndarray
    l: np.ndarray
    panel: np.ndarray  # int index into Detector.panels
    fs: np.ndarray
    ss: np.ndarray
    partiality: np.ndarray
    exerr: np.ndarray  # signed excitation error, m^-1, positive inside the sphere
    kpred: np.ndarray  # m^-1

    def __len__(self) -> int:
        return len(self.h)

    def take(self, index: np.ndarray) -> "Predicted":
        return Predicted(*(getattr(self, f)[index] for f in
                           ("h", "k", "l", "panel", "fs", "ss", "partiality", "exerr", "kpred")))

    @classmethod
    def empty(cls) -> "Predicted":
        i = np.zeros(0, dtype=np.int32)
        f = np.zeros(0)
        return cls(i, i.copy(), i.copy(), i.copy(), f, f.copy(), f.copy(), f.copy(), f.copy())


# ------------------------------------------------------------------ lattice helpers


def cell_is_usable(cell: UnitCell) -> bool:
    """A finite, non-singular reciprocal basis (anything else cannot be predicted from)."""
    rec = np.asarray(cell.reciprocal, dtype=np.float64)
    return bool(rec.shape == (3, 3) and np.all(np.isfinite(rec))
                and abs(np.linalg.det(rec)) > 0.0)


def cell_is_sensible(cell: UnitCell) -> bool:
    """The angle-sum tests: each angle below the sum of the others, and the sum below 360 deg."""
    if not cell_is_usable(cell):
        return False
    _, _, _, al, be, ga = cell.parameters
    return not (al + be < ga or be + ga < al or al + ga < be or al + be + ga > 2.0 * math.pi)


def lowest_reflection(cell: UnitCell) -> float:
    """sin(theta)/lambda = 1/(2d) of the lowest-order allowed reflection, in m^-1."""
    r = np.arange(-5, 6)
    h, k, l = (a.ravel() for a in np.meshgrid(r, r, r, indexing="ij"))
    keep = centering_allows(h, k, l, cell.centering) & ((h != 0) | (k != 0) | (l != 0))
    hkl = np.stack([h[keep], k[keep], l[keep]], axis=1).astype(np.float64)
    return float(np.linalg.norm(hkl @ cell.reciprocal, axis=1).min()) / 2.0


def _index_limits(cell: UnitCell, mres: float) -> tuple[int, int, int]:
    lengths = np.linalg.norm(cell.real, axis=1)
    lim = np.floor(mres * lengths)
    if np.any(lim > MAX_INDEX):
        log.warning("Resolution/cell too large: Miller indices capped at %d", MAX_INDEX)
    lim = np.minimum(lim, MAX_INDEX)
    return int(lim[0]), int(lim[1]), int(lim[2])


def _shell_candidates(cell: UnitCell, k0: float, shell: float,
                      limits: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All (h, k, l) in the index box whose lattice point is within ``shell`` of the sphere.

    For each (h, k) row, |v + l c*|^2 is a quadratic in l; the l values with
    (k0 - shell)^2 <= |v + l c*|^2 <= (k0 + shell)^2 form at most two intervals.
    """
    hmax, kmax, lmax = limits
    astar, bstar, cstar = cell.reciprocal
    hh, kk = np.meshgrid(np.arange(-hmax, hmax + 1), np.arange(-kmax, kmax + 1), indexing="ij")
    hh = hh.ravel()
    kk = kk.ravel()
    v = hh[:, None] * astar + kk[:, None] * bstar + np.array([0.0, 0.0, k0])
    a = float(cstar @ cstar)
    b = 2.0 * (v @ cstar)
    c0 = np.einsum("ij,ij->i", v, v)
    hi2 = (k0 + shell) ** 2
    lo2 = max(k0 - shell, 0.0) ** 2

    def roots(target: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        disc = b * b - 4.0 * a * (c0 - target)
        ok = disc >= 0
        sq = np.sqrt(np.where(ok, disc, 0.0))
        return ok, (-b - sq) / (2 * a), (-b + sq) / (2 * a)

    ok_out, l1, l2 = roots(hi2)
    ok_in, l3, l4 = roots(lo2)
    lo_a = np.ceil(l1)
    hi_a = np.where(ok_in, np.floor(l3), np.floor(l2))
    lo_b = np.where(ok_in, np.ceil(l4), np.inf)
    hi_b = np.where(ok_in, np.floor(l2), -np.inf)
    out_h, out_k, out_l = [], [], []
    for lo, hi in ((lo_a, hi_a), (lo_b, hi_b)):
        lo = np.maximum(lo, -lmax)
        hi = np.minimum(hi, lmax)
        use = ok_out & np.isfinite(lo) & np.isfinite(hi) & (hi >= lo)
        lo = lo[use].astype(np.int64)
        counts = hi[use].astype(np.int64) - lo + 1
        if counts.sum() == 0:
            continue
        rows = np.repeat(np.arange(len(lo)), counts)
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        out_l.append(lo[rows] + (np.arange(counts.sum()) - starts))
        out_h.append(hh[use][rows])
        out_k.append(kk[use][rows])
    if not out_h:
        z = np.zeros(0, dtype=np.int64)
        return z, z.copy(), z.copy()
    return np.concatenate(out_h), np.concatenate(out_k), np.concatenate(out_l)


# ------------------------------------------------------------------ the still model


def ewald_model(points: np.ndarray, wavelength: float, bandwidth: float,
                profile_radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kpred, partiality, exerr) for lattice points (n, 3) in m^-1 (integration.md §1, 1-7)."""
    k0 = 1.0 / wavelength
    sigma_k = bandwidth / wavelength
    r = abs(profile_radius)
    xl, yl, zl = points[:, 0], points[:, 1], points[:, 2]
    shifted = points + np.array([0.0, 0.0, k0])
    norm = np.linalg.norm(shifted, axis=1)
    u = shifted / norm[:, None]
    pprime = k0 * u - np.array([0.0, 0.0, k0])
    sigma_proj = (1.0 - u[:, 2]) * sigma_k
    e2 = np.einsum("ij,ij->i", pprime - points, pprime - points)
    with np.errstate(divide="ignore", invalid="ignore"):
        w0 = 1.0 / (r * r) if r > 0 else np.inf
        w1 = 1.0 / (sigma_proj * sigma_proj)
        pz = np.minimum(zl, 0.0)
        wsum = w0 + w1
        bx = (xl * w0 + pprime[:, 0] * w1) / wsum
        by = (yl * w0 + pprime[:, 1] * w1) / wsum
        bz = (pz * w0 + pprime[:, 2] * w1) / wsum
        kgen = -(bx * bx + by * by + bz * bz) / (2.0 * bz)
        khalf = -(xl * xl + yl * yl + zl * zl) / (2.0 * zl)
        kpred = np.where(w1 / w0 < _DBL_MIN, khalf,
                         np.where((w0 / w1 < _DBL_MIN) | ~np.isfinite(kgen), k0, kgen))
        width2 = r * r + sigma_proj * sigma_proj
        overlap = np.exp(-0.5 * e2 / width2) * r / np.sqrt(width2)
        partiality = overlap * math.sqrt((r * r + sigma_k * sigma_k) / (r * r)) if r > 0 \
            else np.zeros(len(points))
    exerr = k0 - norm
    return kpred, np.nan_to_num(partiality), exerr


def _panel_frame(panel: Panel, clen: float, shift_x: float, shift_y: float) -> np.ndarray:
    """Inverse of the 3x3 matrix with columns C, F, S (pixel units), for ray-plane solving."""
    pitch = panel.pixel_pitch
    corner = np.array([panel.corner_x + shift_x / pitch, panel.corner_y + shift_y / pitch,
                       (clen + panel.coffset) / pitch])
    m = np.column_stack([corner, np.asarray(panel.fs, float), np.asarray(panel.ss, float)])
    return np.linalg.inv(m)


def project_on_panel(panel: Panel, rays: np.ndarray, clen: float, shift_x: float = 0.0,
                     shift_y: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fs, ss, alpha) where rays (n, 3) meet the panel's plane, on or off the panel."""
    coef = rays @ _panel_frame(panel, clen, shift_x, shift_y).T
    alpha = coef[:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        return coef[:, 1] / alpha, coef[:, 2] / alpha, alpha


def locate_rays(detector: Detector, rays: np.ndarray, clen: float, shift_x: float = 0.0,
                shift_y: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(panel, fs, ss) of rays (n, 3): the first panel in file order that the ray hits; panel -1 if none."""
    n = len(rays)
    panel = np.full(n, -1, dtype=np.int32)
    fs = np.full(n, np.nan)
    ss = np.full(n, np.nan)
    todo = np.arange(n)
    for i, p in enumerate(detector.panels):
        if len(todo) == 0:
            break
        f, s, alpha = project_on_panel(p, rays[todo], clen, shift_x, shift_y)
        hit = (alpha > 0) & (f >= 0) & (f < p.width) & (s >= 0) & (s < p.height)
        idx = todo[hit]
        panel[idx] = i
        fs[idx] = f[hit]
        ss[idx] = s[hit]
        todo = todo[~hit]
    return panel, fs, ss


def predict_reflections(cell: UnitCell, detector: Detector, wavelength: float, clen: float,
                        bandwidth: float, profile_radius: float, max_q: float = math.inf,
                        shift_x: float = 0.0, shift_y: float = 0.0,
                        overpredict: bool = False) -> Predicted:
    """Reflections of ``cell`` that a still excites and that land on a panel.

    ``max_q`` is the crystal's resolution limit plus --push-res (m^-1, inf for no cut);
    ``overpredict`` multiplies the profile radius by 5 for this prediction only.
    """
    if not cell_is_sensible(cell):
        log.warning("Cell is not sensible: nothing predicted")
        return Predicted.empty()
    k0 = 1.0 / wavelength
    r = abs(profile_radius) * (5.0 if overpredict else 1.0)
    sigma_k = bandwidth / wavelength
    mres = min(max_resolution(detector, clen, wavelength), max_q)
    if not mres > 0:
        return Predicted.empty()
    limits = _index_limits(cell, mres)
    # Lattice points much beyond the detector's |q| cannot land on it (the ray's angle
    # differs from p's only through kpred - k0, a few bandwidths), so they are not examined.
    p_max = min(mres * (1.05 + 10.0 * bandwidth), 2.0 * k0)
    # Generous shell: partiality >= MIN_PARTIALITY needs e^2 <= 2 W ln(gain/MIN_PARTIALITY),
    # W = R^2 + sigma_proj^2, sigma_proj = (1 - u_z) sigma_k with 1 - u_z ~ |p|^2/(2 k0^2),
    # and gain <= sqrt(R^2 + sigma_k^2)/R.
    one_minus_uz = min(2.0, 1.2 * p_max * p_max / (2.0 * k0 * k0) + 0.01)
    w2 = r * r + (one_minus_uz * sigma_k) ** 2
    gain = math.sqrt(1.0 + (sigma_k / r) ** 2) if r > 0 else 1.0
    shell = math.sqrt(2.0 * w2 * max(math.log(gain / MIN_PARTIALITY), 1.0)) * 1.01
    h, k, l = _shell_candidates(cell, k0, shell, limits)
    keep = centering_allows(h, k, l, cell.centering) & ((h != 0) | (k != 0) | (l != 0))
    h, k, l = h[keep], k[keep], l[keep]
    points = np.stack([h, k, l], axis=1).astype(np.float64) @ cell.reciprocal
    keep = np.linalg.norm(points, axis=1) <= min(max_q, p_max)
    h, k, l, points = h[keep], k[keep], l[keep], points[keep]
    kpred, partiality, exerr = ewald_model(points, wavelength, bandwidth, r)
    keep = partiality >= MIN_PARTIALITY
    h, k, l, points = h[keep], k[keep], l[keep], points[keep]
    kpred, partiality, exerr = kpred[keep], partiality[keep], exerr[keep]
    rays = points + np.column_stack([np.zeros((len(kpred), 2)), kpred])
    panel, fs, ss = locate_rays(detector, rays, clen, shift_x, shift_y)
    on = panel >= 0
    return Predicted(h[on].astype(np.int32), k[on].astype(np.int32), l[on].astype(np.int32),
                     panel[on], fs[on], ss[on], partiality[on], exerr[on], kpred[on])


# ------------------------------------------------------------------ peak pairing


@dataclass
class Pairs:
    """Peaks paired with the reflection their q rounds to (indexing.md §6, ``pair_peaks``)."""

    peak: np.ndarray  # index into the peak list
    h: np.ndarray
    k: np.ndarray
    l: np.ndarray
    exerr: np.ndarray  # m^-1, signed
    fs: np.ndarray  # predicted position on the peak's panel (may lie off the panel)
    ss: np.ndarray

    def __len__(self) -> int:
        return len(self.peak)

    def take(self, index: np.ndarray) -> "Pairs":
        return Pairs(*(getattr(self, f)[index] for f in
                       ("peak", "h", "k", "l", "exerr", "fs", "ss")))


def outlier_transition(abs_exerr_sorted: np.ndarray) -> int:
    """How many of the pairs (sorted by |exerr|) to keep before the first jump to outliers.

    The first i in 1..n-2 such that every later |e_j| >= 0.001e9 + (|e_i|/i)*j; else n.
    """
    e = np.asarray(abs_exerr_sorted, dtype=np.float64)
    n = len(e)
    if n < 3:
        return n
    # |e_j| >= 0.001e9 + slope*j for all j > i  <=>  min_{j>i} (|e_j| - 0.001e9)/j >= slope
    j = np.arange(n)
    g = np.full(n, np.inf)
    g[1:] = (e[1:] - 0.001e9) / j[1:]
    suffix_min = np.minimum.accumulate(g[::-1])[::-1]
    i = np.arange(1, n - 1)
    good = suffix_min[i + 1] >= e[i] / i
    hits = np.flatnonzero(good)
    return int(i[hits[0]]) if len(hits) else n


def pair_peaks(cell: UnitCell, peaks, detector: Detector, wavelength: float, clen: float,
               bandwidth: float, profile_radius: float, shift_x: float = 0.0,
               shift_y: float = 0.0) -> Pairs:
    """Pair each peak with its nearest reflection and keep the plausible pairs.

    A pair survives if the q of the reflection's predicted position (on the peak's panel)
    is within lowest_reflection/3 of the peak's q, and it lies before the outlier transition
    in |excitation error|.
    """
    from crystream.geometry.detector import peaks_to_q, scattering_vectors

    empty = Pairs(np.zeros(0, dtype=np.int64), *(np.zeros(0, dtype=np.int32),) * 3,
                  np.zeros(0), np.zeros(0), np.zeros(0))
    if len(peaks) == 0 or not cell_is_usable(cell):
        return empty
    q = peaks_to_q(detector, peaks.panel, peaks.fs, peaks.ss, clen, wavelength, shift_x, shift_y)
    hkl = np.rint(q @ cell.real.T)
    keep = np.any(hkl != 0, axis=1) & np.all(np.abs(hkl) < 512, axis=1)
    idx = np.flatnonzero(keep)
    if len(idx) == 0:
        return empty
    hkl = hkl[idx]
    points = hkl @ cell.reciprocal
    kpred, _, exerr = ewald_model(points, wavelength, bandwidth, profile_radius)
    rays = points + np.column_stack([np.zeros((len(idx), 2)), kpred])
    fs = np.full(len(idx), np.nan)
    ss = np.full(len(idx), np.nan)
    dist = np.full(len(idx), np.inf)
    panels = np.asarray(peaks.panel)[idx]
    for pi in np.unique(panels):
        sel = panels == pi
        panel = detector.panels[int(pi)]
        f, s, _ = project_on_panel(panel, rays[sel], clen, shift_x, shift_y)
        fs[sel], ss[sel] = f, s
        qp = scattering_vectors(panel, f, s, clen, wavelength, shift_x, shift_y)
        dist[sel] = np.linalg.norm(qp - q[idx[sel]], axis=1)
    with np.errstate(invalid="ignore"):
        close = dist <= lowest_reflection(cell) / 3.0
    pairs = Pairs(idx[close], *(hkl[close, i].astype(np.int32) for i in range(3)),
                  exerr[close], fs[close], ss[close])
    order = np.argsort(np.abs(pairs.exerr), kind="stable")
    pairs = pairs.take(order)
    return pairs.take(np.arange(outlier_transition(np.abs(pairs.exerr))))
