"""One frame's whole processing: peaks -> index -> integrate, composed into a stream Chunk.

A pure function of its inputs (no Dask, no sockets), so it can be called from a notebook, a
test or a Dask task alike. Stages that are switched off (``--peaks=none``, ``--indexing=none``,
``--integration=none``) are skipped; a stage that is switched on but not installed raises
StageUnavailable, so a run never writes a result that no stage computed.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from crystream.chunk import Chunk
from crystream.frame import Frame, PeakList
from crystream.geometry.detector import Detector, peaks_to_q


class StageUnavailable(RuntimeError):
    """A stage the options switch on is not part of this installation."""


@dataclass(frozen=True)
class PipelineConfig:
    """The stage options (crystream.peaks/indexing/integration dataclasses; None = defaults)
    plus the few per-chunk options that belong to no single stage."""

    peaks: Any = None  # crystream.peaks.PeakSearchOptions
    indexing: Any = None  # crystream.indexing.IndexingOptions
    integration: Any = None  # crystream.integration.IntegrationOptions
    min_peaks: int | None = None  # --min-peaks; None: the peak options' min_peaks
    fix_divergence: float = 0.0  # --fix-divergence, rad, written as beam_divergence

    @property
    def peak_method(self) -> str:
        return str(getattr(self.peaks, "peaks", "zaef"))

    @property
    def indexing_on(self) -> bool:
        method = getattr(self.indexing, "indexing", None)
        return method is None or str(method) != "none"

    @property
    def integration_on(self) -> bool:
        method = getattr(self.integration, "integration", "rings")
        return not str(method).startswith("none") and not getattr(
            self.integration, "cell_parameters_only", False)


@lru_cache(maxsize=None)
def _stage(module: str, name: str) -> Any:
    """The stage function ``module.name``, or None if that module has not been installed."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name is not None and module.startswith(exc.name):
            return None
        raise
    return getattr(mod, name, None)


def _options(value: Any, module: str, cls: str) -> Any:
    if value is not None:
        return value
    klass = _stage(module, cls)
    if klass is None:
        raise StageUnavailable(f"{module}.{cls} is not available in this installation")
    return klass()


def _require(module: str, name: str, what: str) -> Any:
    fn = _stage(module, name)
    if fn is None:
        raise StageUnavailable(f"{what} is switched on but {module}.{name} is not available "
                               "in this installation")
    return fn


def peak_resolution(q_norms: np.ndarray) -> float:
    """CrystFEL's chunk peak_resolution (m^-1): the |q| of the (n/50)-th strongest-resolution
    peak, ignoring that cut when it is below 2 (peak-search.md §8)."""
    n = len(q_norms)
    if n == 0:
        return 0.0
    ncut = n // 50
    if ncut < 2:
        ncut = 0
    return float(np.sort(q_norms)[n - 1 - ncut])


def process_frame(frame: Frame, detector: Detector, target: Any,
                  config: PipelineConfig) -> Chunk:
    """Peaks, indexing and integration of one decoded frame, as the Chunk the stream gets."""
    if config.peak_method == "none":
        peaks = PeakList.empty()
    else:
        find_peaks = _require("crystream.peaks", "find_peaks", "peak search")
        peaks = find_peaks(frame, detector,
                           _options(config.peaks, "crystream.peaks", "PeakSearchOptions"))

    q_of = _stage("crystream.peaks.resolution", "peak_q_magnitudes")
    if q_of is not None:  # the peak search's own definition of the 1/d column
        q_norms = q_of(peaks, detector, frame)
    elif len(peaks):
        q = peaks_to_q(detector, peaks.panel, peaks.fs, peaks.ss, frame.clen, frame.wavelength)
        q_norms = np.linalg.norm(q, axis=1)
    else:
        q_norms = np.zeros(0)
    min_peaks = config.min_peaks
    if min_peaks is None:
        min_peaks = int(getattr(config.peaks, "min_peaks", 0))
    hit = len(peaks) >= min_peaks

    crystals: list = []
    indexed_by, tries = "none", 0
    if hit and config.indexing_on:
        index_frame = _require("crystream.indexing", "index_frame", "indexing")
        result = index_frame(frame, peaks, detector, target,
                             _options(config.indexing, "crystream.indexing", "IndexingOptions"))
        crystals = list(result.crystals)
        if crystals:
            indexed_by, tries = result.indexed_by, int(result.n_indexing_tries)
    if crystals and config.integration_on:
        integrate = _require("crystream.integration", "integrate_crystals", "integration")
        crystals = integrate(frame, peaks, crystals, detector,
                             _options(config.integration, "crystream.integration",
                                      "IntegrationOptions"))

    clens = [frame.clen + p.coffset for p in detector.panels]
    return Chunk(
        filename=frame.filename, event=frame.event, serial=frame.serial, hit=hit,
        indexed_by=indexed_by, n_indexing_tries=tries,
        photon_energy_ev=frame.photon_energy_ev if frame.wavelength > 0 else 0.0,
        beam_divergence=config.fix_divergence, beam_bandwidth=detector.bandwidth,
        headers=list(frame.headers.items()),
        average_camera_length=float(np.mean(clens)) if clens else 0.0,
        peaks=peaks, peak_resolutions=q_norms, num_peaks=len(peaks),
        peak_resolution=peak_resolution(q_norms), crystals=crystals)
