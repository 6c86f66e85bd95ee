"""Ground truth carried by every simulated frame in ``Frame.truth``."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from crystream.cell import UnitCell
from crystream.frame import PeakList


@dataclass
class TruthReflections:
    """Every reflection drawn on the detector, as parallel arrays.

    fs/ss are panel-relative, corner-referenced spot centres; ``q`` is the lattice point
    (m^-1, lab frame); intensities are in photons (full = at partiality 1) and ADU;
    ``on_panel`` is the fraction of the spot's photons that fell on pixels; ``peak_adu`` the
    spot's brightest pixel without background or noise; ``wavelength`` the mean wavelength
    that excited it (sets the ray direction).
    """

    h: np.ndarray
    k: np.ndarray
    l: np.ndarray
    panel: np.ndarray
    fs: np.ndarray
    ss: np.ndarray
    q: np.ndarray
    excitation_error: np.ndarray
    partiality: np.ndarray
    wavelength: np.ndarray
    sigma_px: np.ndarray
    intensity_full: np.ndarray
    intensity_partial: np.ndarray
    intensity_adu: np.ndarray
    on_panel: np.ndarray
    peak_adu: np.ndarray
    saturated: np.ndarray

    def __len__(self) -> int:
        return len(self.h)

    @property
    def hkl(self) -> np.ndarray:
        return np.stack([self.h, self.k, self.l], axis=1)

    def take(self, index: np.ndarray) -> "TruthReflections":
        return TruthReflections(*(getattr(self, f.name)[index] for f in fields(self)))


@dataclass
class CrystalTruth:
    """One lattice in the frame: its cell in the lab frame (as a stream's astar/bstar/cstar)."""

    cell: UnitCell
    rotation: np.ndarray  # lab = rotation @ standard orientation
    profile_radius: float  # m^-1
    reflections: TruthReflections
    spot_photons: float  # photons this lattice put on the pixels


@dataclass
class FrameTruth:
    """What was simulated: beam, crystals, budgets and detector defects."""

    is_hit: bool
    crystals: list[CrystalTruth]
    photon_energy_ev: float
    wavelength: float
    bandwidth: float
    divergence: float
    clen: float
    spot_photons: float
    background_photons: float
    defects: list[np.ndarray] = field(default_factory=list)  # per panel: 0 ok, 1 dead, 2 hot

    def peak_list(self, min_photons: float = 30.0) -> PeakList:
        """Spots with at least ``min_photons`` on the pixels, as a PeakList (intensity in ADU)."""
        parts = [c.reflections for c in self.crystals]
        if not parts:
            return PeakList.empty()
        keep = [r.take(r.intensity_partial * r.on_panel >= min_photons) for r in parts]
        return PeakList(np.concatenate([r.fs for r in keep]),
                        np.concatenate([r.ss for r in keep]),
                        np.concatenate([r.panel for r in keep]).astype(np.int32),
                        np.concatenate([r.intensity_adu * r.on_panel for r in keep]))
