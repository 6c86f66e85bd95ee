"""process_frame: the stages composed into a chunk, on simulated frames with a known answer."""

import math
from dataclasses import replace

import numpy as np
import pytest

from crystream.cellmatch import Tolerances, match_to_target, misorientation
from crystream.indexing import IndexingOptions
from crystream.integration import IntegrationOptions
from crystream.peaks import PeakSearchOptions
from crystream.pipeline import PipelineConfig, process_frame
from crystream.simulate import LYSOZYME, SimulationConfig, simple_detector, simulate_frame

DETECTOR = simple_detector(n=512, pixel=150e-6, clen=0.1, photon_energy=12000)
PEAKS = PeakSearchOptions(peaks="peakfinder8", threshold=20, min_snr=5, min_pix_count=2,
                          max_pix_count=50, min_peaks=10)
CONFIG = PipelineConfig(peaks=PEAKS, indexing=IndexingOptions(seed=1),
                        integration=IntegrationOptions())


@pytest.fixture(scope="module")
def frame():
    return simulate_frame(SimulationConfig(DETECTOR, LYSOZYME, spot_photons=4e5), seed=3)


def _check_orientation(chunk, frame):
    truth = frame.truth.crystals[0].cell
    found = match_to_target(chunk.crystals[0].cell, LYSOZYME, Tolerances.parse("5,5,5,1.5"))
    assert found is not None
    assert math.degrees(misorientation(found, truth)) < 0.3


def test_a_hit_is_found_indexed_and_integrated(frame):
    chunk = process_frame(frame, DETECTOR, LYSOZYME, CONFIG)
    assert chunk.hit and chunk.num_peaks >= 25 and chunk.indexed_by == "toro-latt-cell"
    assert len(chunk.peak_resolutions) == chunk.num_peaks and chunk.peak_resolution > 0
    _check_orientation(chunk, frame)
    crystal = chunk.crystals[0]
    assert crystal.profile_radius > 0 and crystal.resolution_limit > 0
    assert crystal.reflections is not None and len(crystal.reflections) > 30
    assert chunk.photon_energy_ev == pytest.approx(12000, rel=1e-6)


@pytest.mark.parametrize("integration", [IntegrationOptions(cell_parameters_only=True),
                                         IntegrationOptions(integration="none")])
def test_cell_only_modes_still_estimate_the_profile_radius(frame, integration):
    chunk = process_frame(frame, DETECTOR, LYSOZYME, replace(CONFIG, integration=integration))
    crystal = chunk.crystals[0]
    assert crystal.reflections is None
    assert crystal.profile_radius > 0 and crystal.resolution_limit > 0


def test_peaks_only_frames_index_without_pixels(frame):
    """--no-image-data with peaks from the payload: cells, no reflections, no failure."""
    peaks_only = replace(frame, data=None, peaks=frame.truth.peak_list(min_photons=50))
    config = replace(CONFIG, peaks=replace(PEAKS, peaks="msgpack", revalidate=False,
                                           half_pixel_shift=False))
    chunk = process_frame(peaks_only, DETECTOR, LYSOZYME, config)
    assert chunk.hit and chunk.crystals
    _check_orientation(chunk, frame)
    assert chunk.crystals[0].reflections is None


def test_a_blank_is_not_a_hit():
    blank = simulate_frame(SimulationConfig(DETECTOR, LYSOZYME, hit_rate=0.0), seed=4)
    chunk = process_frame(blank, DETECTOR, LYSOZYME, CONFIG)
    assert not chunk.hit and chunk.indexed_by == "none" and not chunk.crystals
    assert chunk.n_indexing_tries == 0 and np.all(chunk.peak_resolutions >= 0)
