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
from crystream.lattice import forbidden_mask

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
    hmax = np.ceil(qmax * np.linalg.norm(truth.real, axis=1)).astype(int)
    h, k, l = (x.ravel() for x in np.meshgrid(*(np.arange(-m, m + 1) for m in hmax),
                                               indexing="ij"))
    keep = ~((h == 0) & (k == 0) & (l == 0)) & ~forbidden_mask(h, k, l, cell.centering)
    hkl = np.stack([h[keep], k[keep], l[keep]], axis=1).astype(float)
    p = hkl @ truth.reciprocal
    p = p[np.linalg.norm(p, axis=1) <= qmax]
    k0 = 1.0 / lam
    exerr = k0 - np.linalg.norm(p + np.array([0, 0, k0]), axis=1)
    # widen the shell (a larger mosaic spread / bandwidth) until enough spots could be seen
    while (np.abs(exerr) < profile_radius).sum() < 1.5 * n_spots and profile_radius < 2e7:
        profile_radius *= 1.4
    near = np.abs(exerr) < profile_radius
    p, exerr = p[near], exerr[near]
    # prefer spots close to the sphere, with some randomness, like partial reflections
    weight = np.exp(-0.5 * (exerr / (0.5 * profile_radius)) ** 2) * rng.random(len(p))
    order = np.argsort(-weight)
    rays = p + np.array([0, 0, k0])
    fs_all, ss_all, pn_all = [], [], []
    for idx in order:
        for pi, panel in enumerate(det.panels):
            fs, ss = lab_to_panel(panel, rays[idx:idx + 1], clen)
            if np.isfinite(fs[0]) and 0 <= fs[0] < panel.width and 0 <= ss[0] < panel.height:
                fs_all.append(fs[0])
                ss_all.append(ss[0])
                pn_all.append(pi)
                break
        if len(fs_all) == n_spots:
            break
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
    assert not forbidden_mask(*np.rint(hkl).astype(int).T, "C").any()


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
