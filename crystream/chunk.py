"""What processing makes of one frame: the content of one stream chunk and its crystal blocks."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from crystream.cell import UnitCell
from crystream.frame import PeakList


@dataclass
class Reflections:
    """An integrated reflection table; positions panel-relative, ``panel`` indexes Detector.panels."""

    h: np.ndarray
    k: np.ndarray
    l: np.ndarray
    intensity: np.ndarray
    sigma: np.ndarray
    peak: np.ndarray  # maximum pixel value in the box
    background: np.ndarray  # mean of the background annulus
    fs: np.ndarray
    ss: np.ndarray
    panel: np.ndarray

    def __len__(self) -> int:
        return len(self.h)

    def take(self, index: np.ndarray) -> "Reflections":
        return Reflections(*(getattr(self, f)[index] for f in
                             ("h", "k", "l", "intensity", "sigma", "peak", "background",
                              "fs", "ss", "panel")))


@dataclass
class Crystal:
    """One indexed lattice and what integration measured for it."""

    cell: UnitCell
    profile_radius: float = 0.0  # m^-1
    resolution_limit: float = 0.0  # m^-1 (diffraction_resolution_limit)
    notes: list[str] = field(default_factory=list)  # e.g. predict_refine/* lines, verbatim
    reflections: Reflections | None = None  # None: "No integrated reflections."
    num_saturated: int = 0
    num_implausible: int = 0


@dataclass
class Chunk:
    """One frame's chunk in the stream; pixels are not kept."""

    filename: str
    event: str
    serial: int
    hit: bool = False
    indexed_by: str = "none"
    n_indexing_tries: int = 0
    photon_energy_ev: float = 0.0
    beam_divergence: float = 0.0  # rad
    beam_bandwidth: float = 1e-8
    headers: list[tuple[str, object]] = field(default_factory=list)  # (location, value), in order
    average_camera_length: float = 0.0  # m
    peaks: PeakList | None = None  # None with --no-peaks-in-stream
    peak_resolutions: np.ndarray | None = None  # |q| (m^-1) of each peak, for the 1/d column
    num_peaks: int = 0
    peak_resolution: float = 0.0  # m^-1
    crystals: list[Crystal] = field(default_factory=list)
    error: str | None = None  # why processing failed (logged and counted, never written)
