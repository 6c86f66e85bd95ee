"""Synthetic still-diffraction peak lists with a known answer, for the indexing tests.

A random orientation of a known cell; reciprocal lattice points (centering-allowed) within a
shell of the Ewald sphere; each projected through the sphere centre onto a two-panel detector
with crystream.geometry transforms; Gaussian position noise and spurious peaks added.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from crystream.cell import UnitCell
from crystream.frame import Frame, PeakList
from crystream.geometry.detector import (Detector, Panel, ValueSource, lab_to_panel,
                                         max_resolution, peaks_to_q)
from crystream.indexing.sphere import random_rotation
from crystream.lattice import centering_allows

DEG = math.pi / 180
A = 1e-10

CELLS = {
    "lysozyme": UnitCell.from_parameters(79.1 * A, 79.1 * A, 38.0 * A, 90 * DEG, 90 * DEG,
                                         90 * DEG, "tetragonal", "P", "c"),
    "thermolysin": UnitCell.from_parameters(93.2 * A, 93.2 * A, 130.9 * A, 90 * DEG, 90 * DEG,
                                            120 * DEG, "hexagonal", "P", "c"),
    "monoclinic_c": UnitCell.from_parameters(61.2 * A, 91.4 * A, 66.5 * A, 90 * DEG, 115 * DEG,
                                             90 * DEG, "monoclinic", "C", "b"),
    "triclinic": UnitCell.from_parameters(42.0 * A, 51.5 * A, 63.2 * A, 82 * DEG, 97 * DEG,
                                          106 * DEG, "triclinic", "P", "?"),
}


def two_panel_detector(clen: float = 0.08, wavelength: float = 1.3e-10) -> Detector:
    """Two 1024 x 512 panels of 75 µm pixels, one above the other, beam through the gap."""
    res = 1.0 / 75e-6
    panels = [
        Panel("top", 0, 1023, 0, 511, -512.0, 4.0, np.array([1.0, 0, 0]), np.array([0, 1.0, 0]),
              res),
        Panel("bottom", 0, 1023, 512, 1023, -512.0, -516.0, np.array([1.0, 0, 0]),
              np.array([0, 1.0, 0]), res),
    ]
    return Detector(panels, ValueSource(wavelength), ValueSource(clen))


def _shell_points(cell: UnitCell, k0: float, shell: float, qmax: float) -> np.ndarray:
    """Integer (h, k, l), shape (n, 3), of lattice points within ``shell`` of the Ewald
    sphere (centre (0, 0, -k0)) and within ``qmax`` of the origin: for each (h, k) row, the l
    ranges where the row crosses the shell, from two quadratics."""
    hmax = np.ceil(qmax * np.linalg.norm(cell.real[:2], axis=1)).astype(int)
    h, k = (x.ravel() for x in np.meshgrid(np.arange(-hmax[0], hmax[0] + 1),
                                           np.arange(-hmax[1], hmax[1] + 1), indexing="ij"))
    base = h[:, None] * cell.reciprocal[0] + k[:, None] * cell.reciprocal[1]
    base[:, 2] += k0  # relative to the sphere centre
    c = cell.reciprocal[2]
    qa = c @ c
    qb = 2.0 * base @ c
    qc = np.einsum("ij,ij->i", base, base)
    hs, ks, ls = [], [], []
    for lo_r, hi_r in ((k0 - shell, k0 + shell),):  # inner and outer radius
        d_out = qb * qb - 4 * qa * (qc - hi_r * hi_r)
        d_in = qb * qb - 4 * qa * (qc - lo_r * lo_r)
        ok = d_out > 0
        so = np.sqrt(np.where(ok, d_out, 0.0))
        si = np.sqrt(np.where(d_in > 0, d_in, 0.0))
        l_out = ((-qb - so) / (2 * qa), (-qb + so) / (2 * qa))
        l_in = ((-qb - si) / (2 * qa), (-qb + si) / (2 * qa))
        inner = d_in > 0
        # two bands per row: [out_lo, in_lo] and [in_hi, out_hi] (one band if no inner cut)
        bands = [(l_out[0], np.where(inner, l_in[0], l_out[1])),
                 (np.where(inner, l_in[1], l_out[1]), np.where(inner, l_out[1], l_out[1] - 1))]
        for lo, hi in bands:
            lo_i = np.ceil(lo).astype(int)
            hi_i = np.floor(hi).astype(int)
            cnt = np.where(ok, np.maximum(hi_i - lo_i + 1, 0), 0)
            rows = np.repeat(np.arange(len(h)), cnt)
            offs = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            hs.append(h[rows])
            ks.append(k[rows])
            ls.append(lo_i[rows] + offs)
    hkl = np.stack([np.concatenate(hs), np.concatenate(ks), np.concatenate(ls)], axis=1)
    hkl = np.unique(hkl, axis=0)
    hkl = hkl[np.any(hkl != 0, axis=1)]
    pts = hkl @ cell.reciprocal
    return hkl[np.linalg.norm(pts, axis=1) <= qmax]


@dataclass
class SynthFrame:
    frame: Frame
    peaks: PeakList
    detector: Detector
    truth: UnitCell  # the oriented cell, target's conventional setting
    n_true: int


def synth_frame(cell: UnitCell, rng: np.random.Generator, n_spots: int = 60,
                detector: Detector | None = None, profile_radius: float = 5e6,
                position_noise: float = 0.3, spurious_fraction: float = 0.1,
                serial: int = 1) -> SynthFrame:
    """A peak list from ``cell`` in a random orientation: ``n_spots`` lattice spots (the ones
    closest to the Ewald sphere within ``profile_radius`` m^-1 are preferred at random) plus
    spurious peaks."""
    det = detector or two_panel_detector()
    lam = det.wavelength.resolve()
    clen = det.clen.resolve()
    truth = cell.rotated(random_rotation(rng))
    qmax = max_resolution(det, clen, lam)
    k0 = 1.0 / lam
    while True:
        hkl = _shell_points(truth, k0, profile_radius, qmax)
        hkl = hkl[centering_allows(*hkl.T, cell.centering)]
        # widen the shell (a larger mosaic spread / bandwidth) until enough spots could be seen
        if len(hkl) >= 1.5 * n_spots or profile_radius >= 2e7:
            break
        profile_radius *= 1.4
    p = hkl.astype(float) @ truth.reciprocal
    exerr = k0 - np.linalg.norm(p + np.array([0, 0, k0]), axis=1)
    # prefer spots close to the sphere, with some randomness, like partial reflections
    weight = np.exp(-0.5 * (exerr / (0.5 * profile_radius)) ** 2) * rng.random(len(p))
    order = np.argsort(-weight)
    rays = (p + np.array([0, 0, k0]))[order]
    fs_hit = np.full(len(rays), np.nan)
    ss_hit = np.full(len(rays), np.nan)
    pn_hit = np.full(len(rays), -1)
    for pi in reversed(range(len(det.panels))):  # the first panel in file order wins
        panel = det.panels[pi]
        fs, ss = lab_to_panel(panel, rays, clen)
        on = np.isfinite(fs) & (fs >= 0) & (fs < panel.width) & (ss >= 0) & (ss < panel.height)
        fs_hit[on], ss_hit[on], pn_hit[on] = fs[on], ss[on], pi
    seen = np.flatnonzero(pn_hit >= 0)[:n_spots]
    fs_all, ss_all, pn_all = fs_hit[seen], ss_hit[seen], pn_hit[seen]
    n_true = len(fs_all)
    fs_arr = np.array(fs_all) + rng.normal(0, position_noise, n_true)
    ss_arr = np.array(ss_all) + rng.normal(0, position_noise, n_true)
    pn_arr = np.array(pn_all, dtype=np.int32)
    n_spur = int(round(spurious_fraction * n_true))
    sp_panel = rng.integers(0, len(det.panels), n_spur).astype(np.int32)
    sp_fs = rng.uniform(0, 1024, n_spur)
    sp_ss = rng.uniform(0, 512, n_spur)
    inten = np.concatenate([rng.exponential(1000.0, n_true) + 50, rng.exponential(150.0, n_spur)])
    peaks = PeakList(np.concatenate([fs_arr, sp_fs]), np.concatenate([ss_arr, sp_ss]),
                     np.concatenate([pn_arr, sp_panel]), inten)
    shuffle = rng.permutation(len(peaks))
    peaks = peaks.take(shuffle)
    frame = Frame(serial=serial, filename=f"synth_{serial}.h5", wavelength=lam, clen=clen,
                  peaks=peaks, truth=truth)
    return SynthFrame(frame, peaks, det, truth, n_true)


def frame_q(s: SynthFrame) -> np.ndarray:
    return peaks_to_q(s.detector, s.peaks.panel, s.peaks.fs, s.peaks.ss, s.frame.clen,
                      s.frame.wavelength)


def test_synthetic_spots_index_to_integers_with_truth():
    """The generator's true spots sit on the truth lattice (within the Ewald shell and noise)."""
    rng = np.random.default_rng(5)
    s = synth_frame(CELLS["monoclinic_c"], rng, n_spots=60, position_noise=0.0,
                    spurious_fraction=0.0)
    assert s.n_true == 60
    hkl = frame_q(s) @ s.truth.real.T
    assert np.abs(hkl - np.rint(hkl)).max() < 0.1
    assert centering_allows(*np.rint(hkl).astype(int).T, "C").all()


def synth_blank(rng: np.random.Generator, n_peaks: int = 30, serial: int = 1,
                detector: Detector | None = None) -> SynthFrame:
    """A non-hit: only spurious peaks, uniformly over the panels."""
    det = detector or two_panel_detector()
    lam = det.wavelength.resolve()
    clen = det.clen.resolve()
    peaks = PeakList(rng.uniform(0, 1024, n_peaks), rng.uniform(0, 512, n_peaks),
                     rng.integers(0, len(det.panels), n_peaks).astype(np.int32),
                     rng.exponential(300.0, n_peaks))
    frame = Frame(serial=serial, filename=f"blank_{serial}.h5", wavelength=lam, clen=clen,
                  peaks=peaks)
    return SynthFrame(frame, peaks, det, None, 0)
