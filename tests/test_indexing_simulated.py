"""End to end on pixels: crystream.simulate frames -> peakfinder8 -> both engines, vs the
simulator's ground-truth orientation; blanks must stay unindexed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crystream.cellmatch import misorientation, parameters_of
from crystream.indexing import IndexingOptions, index_frame
from crystream.peaks import PeakSearchOptions, find_peaks
from crystream.simulate import (LYSOZYME, MONOCLINIC_C, THERMOLYSIN, TRICLINIC,
                                SimulationConfig, simple_detector, simulate_frame)

PEAKS = PeakSearchOptions(peaks="peakfinder8", threshold=0, min_snr=5, min_pix_count=2,
                          max_pix_count=50, local_bg_radius=3)


@pytest.fixture(scope="module")
def detector():
    return simple_detector(n=1024, clen=0.1, photon_energy=12000.0)


@pytest.mark.parametrize("cell", [LYSOZYME, THERMOLYSIN, MONOCLINIC_C, TRICLINIC],
                         ids=["tP", "hP", "mC", "aP"])
def test_simulated_frames_index_to_the_true_orientation(detector, cell):
    """Eight frames per cell with photon budgets spread over a factor 20 (about 15-250
    peaks): every frame with >= 25 peaks indexed by both engines, none wrongly, median
    misorientation <= 0.1 deg, cell edges within 0.5%."""
    angles = []
    for n_peaks, found, truth in _run(detector, cell, np.random.default_rng(0)):
        if found is None:
            assert n_peaks < 25
            continue
        angle = math.degrees(misorientation(found, truth))
        assert angle < 1.0  # never a wrong lattice
        p, p0 = parameters_of(found.real), parameters_of(cell.real)
        assert max(abs(p[:3] / p0[:3] - 1)) < 0.005
        angles.append(angle)
    assert len(angles) >= 12
    assert np.median(angles) <= 0.1


def _run(detector, cell, rng):
    """(number of peaks, found cell or None, true cell) per frame and engine."""
    for i in range(8):
        photons = float(np.exp(rng.uniform(np.log(1.5e3), np.log(3e4))))
        cfg = SimulationConfig(detector=detector, cell=cell, profile_radius=0.003e9,
                               spot_photons=photons)
        frame = simulate_frame(cfg, seed=100 + i)
        peaks = find_peaks(frame, detector, PEAKS)
        truth = frame.truth.crystals[0].cell
        for engine in ("toro", "fft1d"):
            result = index_frame(frame, peaks, detector, cell, IndexingOptions(indexing=engine))
            assert len(result.crystals) <= 1
            yield len(peaks), (result.crystals[0].cell if result.crystals else None), truth


def test_simulated_blanks_are_not_indexed(detector):
    """Blanks with hot pixels and a permissive peak search: many false peaks, no crystal."""
    cfg = SimulationConfig(detector=detector, cell=MONOCLINIC_C, hit_rate=0.0,
                           hot_fraction=5e-5)
    permissive = PeakSearchOptions(peaks="peakfinder8", threshold=0, min_snr=6,
                                   min_pix_count=1, max_pix_count=50, local_bg_radius=3)
    for seed in (3, 4):
        frame = simulate_frame(cfg, seed=seed)
        assert not frame.truth.is_hit
        peaks = find_peaks(frame, detector, permissive)
        assert len(peaks) >= 20
        for engine in ("toro", "fft1d"):
            result = index_frame(frame, peaks, detector, MONOCLINIC_C,
                                 IndexingOptions(indexing=engine))
            assert result.crystals == [] and result.indexed_by == "none"
