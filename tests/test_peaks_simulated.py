"""Peak search on crystream.simulate frames of a four-panel detector with gaps, against the
simulator's ground truth (reflection panel, position and photons).

A reflection's SNR is its photons over the noise of a radius-4 disc of the expected
background at its position: N / sqrt(N + 49 b). Only isolated reflections (no other
reflection within 12 px) at least 8 px inside their panel are scored.
"""

from __future__ import annotations

import numpy as np
import pytest

from crystream.peaks import PeakSearchOptions, find_peaks
from crystream.simulate import (LYSOZYME, Simulation, SimulationConfig, multipanel_detector)

SNR_CUT = 10.0

OPTIONS = {
    "zaef": PeakSearchOptions(peaks="zaef", threshold=8, min_squared_gradient=30, min_snr=5),
    "peakfinder8": PeakSearchOptions(peaks="peakfinder8", threshold=0, min_snr=5,
                                     min_pix_count=2, max_pix_count=50, local_bg_radius=3),
    "peakfinder9": PeakSearchOptions(peaks="peakfinder9", min_snr_biggest_pix=7,
                                     min_snr_peak_pix=3, min_snr=5, min_sig=1.5),
}


@pytest.fixture(scope="module")
def simulated():
    det = multipanel_detector(rows=2, cols=2, panel_fs=256, panel_ss=256, gap=10,
                              pixel=100e-6, clen=0.08)
    cfg = SimulationConfig(detector=det, cell=LYSOZYME, spot_photons=6e4, hit_rate=1.0,
                           background_photons=1.5 * 4 * 256 * 256)
    sim = Simulation(cfg, seed=11)
    frames = [sim.frame(i + 1) for i in range(4)]
    expected_bg = [(sim.background * sim.bg_scale)[a:b].reshape(p.shape)
                   for a, b, p in zip(sim.offsets[:-1], sim.offsets[1:], det.panels)]
    blank_cfg = SimulationConfig(detector=det, cell=LYSOZYME, hit_rate=0.0,
                                 background_photons=1.5 * 4 * 256 * 256)
    blanks = [f for f in Simulation(blank_cfg, seed=12).frames(4)]
    return det, frames, expected_bg, blanks


def scored_reflections(det, frame, expected_bg):
    refl = frame.truth.crystals[0].reflections
    n = len(refl.fs)
    inside = np.array([8 <= refl.fs[i] <= det.panels[refl.panel[i]].width - 8
                       and 8 <= refl.ss[i] <= det.panels[refl.panel[i]].height - 8
                       for i in range(n)])
    same = refl.panel[:, None] == refl.panel[None, :]
    d = np.hypot(refl.fs[:, None] - refl.fs[None, :], refl.ss[:, None] - refl.ss[None, :])
    d[~same] = np.inf
    np.fill_diagonal(d, np.inf)
    visible = refl.intensity_partial * refl.on_panel > 5  # neighbours that matter
    isolated = ~(d[:, visible] < 12).any(axis=1)
    b = np.array([expected_bg[refl.panel[i]][int(refl.ss[i]), int(refl.fs[i])]
                  for i in range(n)])
    photons = refl.intensity_partial * refl.on_panel
    snr = photons / np.sqrt(photons + 49 * b)
    keep = inside & isolated
    return refl.panel[keep], refl.fs[keep], refl.ss[keep], snr[keep]


@pytest.mark.parametrize("method", sorted(OPTIONS))
def test_simulated_multipanel_recall(method, simulated):
    det, frames, expected_bg, _ = simulated
    dists, snrs = [], []
    for frame in frames:
        panel, fs, ss, snr = scored_reflections(det, frame, expected_bg)
        pk = find_peaks(frame, det, OPTIONS[method])
        d = np.full(len(fs), np.inf)
        for i in range(len(fs)):
            on = pk.panel == panel[i]
            if on.any():
                d[i] = np.hypot(pk.fs[on] - fs[i], pk.ss[on] - ss[i]).min()
        dists.append(d)
        snrs.append(snr)
    d = np.concatenate(dists)
    snr = np.concatenate(snrs)
    strong = snr >= SNR_CUT
    assert strong.sum() >= 40
    assert len(set(np.concatenate([scored_reflections(det, f, expected_bg)[0]
                                   for f in frames]).tolist())) == 4  # all panels take part
    recall = (d[strong] <= 0.3).mean()
    assert recall >= 0.95, f"{method}: {recall:.3f} of {strong.sum()} within 0.3 px"


@pytest.mark.parametrize("method", sorted(OPTIONS))
def test_simulated_blank_frames(method, simulated):
    det, _, _, blanks = simulated
    for frame in blanks:
        assert not frame.truth.is_hit
        assert len(find_peaks(frame, det, OPTIONS[method])) <= 1
