"""One frame's whole processing: peaks -> index -> integrate, composed into a stream Chunk.

A pure function of its inputs (no Dask, no sockets), so it can be called from a notebook, a
test or a Dask task alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from crystream.chunk import Chunk
from crystream.frame import Frame, PeakList
from crystream.geometry.detector import Detector
from crystream.indexing import IndexingOptions, index_frame
from crystream.integration import IntegrationOptions, integrate_crystals
from crystream.peaks import (PeakSearchOptions, find_peaks, is_hit, peak_q_magnitudes,
                             peak_resolution)


@dataclass(frozen=True)
class PipelineConfig:
    """The stage options, plus the one per-chunk option that belongs to no single stage."""

    peaks: PeakSearchOptions = field(default_factory=PeakSearchOptions)
    indexing: IndexingOptions = field(default_factory=IndexingOptions)
    integration: IntegrationOptions = field(default_factory=IntegrationOptions)
    fix_divergence: float = 0.0  # --fix-divergence, rad, written as beam_divergence

    @property
    def peak_method(self) -> str:
        return self.peaks.peaks

    @property
    def indexing_on(self) -> bool:
        return self.indexing.indexing is None or self.indexing.indexing != "none"


def process_frame(frame: Frame, detector: Detector, target, config: PipelineConfig) -> Chunk:
    """Peaks, indexing and integration of one decoded frame, as the Chunk the stream gets."""
    peaks = find_peaks(frame, detector, config.peaks)
    q_norms = peak_q_magnitudes(peaks, detector, frame)
    hit = is_hit(len(peaks), config.peaks)

    crystals: list = []
    indexed_by, tries = "none", 0
    if hit and config.indexing_on:
        result = index_frame(frame, peaks, detector, target, config.indexing)
        crystals = list(result.crystals)
        if crystals:
            indexed_by, tries = result.indexed_by, int(result.n_indexing_tries)
    if crystals:
        integration = config.integration
        if not frame.has_image:
            # --no-image-data: CrystFEL integrates zero-filled pixels; we keep the cells and
            # profile radii and write no reflections (docs/differences.md).
            integration = replace(integration, cell_parameters_only=True)
        crystals = integrate_crystals(frame, peaks, crystals, detector, integration)

    clens = [frame.clen + p.coffset for p in detector.panels]
    return Chunk(
        filename=frame.filename, event=frame.event, serial=frame.serial, hit=hit,
        indexed_by=indexed_by, n_indexing_tries=tries,
        photon_energy_ev=frame.photon_energy_ev if frame.wavelength > 0 else 0.0,
        beam_divergence=config.fix_divergence, beam_bandwidth=detector.bandwidth,
        headers=list(frame.headers.items()),
        average_camera_length=float(np.mean(clens)) if clens else 0.0,
        peaks=peaks if peaks is not None else PeakList.empty(), peak_resolutions=q_norms,
        num_peaks=len(peaks), peak_resolution=peak_resolution(q_norms), crystals=crystals)
