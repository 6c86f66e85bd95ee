"""The simulator: still frames of crystals on a Detector, each with its ground truth.

Per frame: hit or not (hit_rate), 1 or 2 lattices with seeded random (or given) orientations,
lattice points -> excitation error and partiality -> diffracted rays -> panels, Gaussian spots
integrated over pixels scaled to the photon budget, plus a radial background, Poisson noise,
gain, saturation and dead/hot pixels.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from crystream.cell import UnitCell
from crystream.constants import ev_to_wavelength, wavelength_to_ev
from crystream.frame import Frame
from crystream.geometry.badpixels import bad_pixel_masks
from crystream.geometry.detector import Detector, max_resolution
from crystream.simulate.background import BackgroundModel, background_map
from crystream.simulate.ewald import (diffracted_rays, excitation, partiality, sphere_width,
                                      spot_wavenumber)
from crystream.simulate.intensities import wilson_intensities
from crystream.simulate.lattice import enumerate_hkl
from crystream.simulate.orientation import check_rotation, random_rotation
from crystream.simulate.project import rays_to_panels
from crystream.simulate.render import near_sphere, readout, render_spots
from crystream.simulate.truth import CrystalTruth, FrameTruth, TruthReflections


@dataclass(frozen=True, eq=False)
class SimulationConfig:
    """What to simulate. SI units: eV, m, m^-1, rad; B factor in m^2 (20 A^2 = 20e-20).

    ``photon_energy``/``clen``/``bandwidth`` default to the detector's literal values.
    ``profile_radius`` defaults to 1/crystal_size. ``spot_photons`` is the Bragg photon budget
    of a hit (shared equally by its lattices), ``background_photons`` that of the background
    (default 1 photon per pixel). ``divergence`` is the sigma of the beam direction per axis.
    """

    detector: Detector
    cell: UnitCell
    photon_energy: float | None = None
    clen: float | None = None
    bandwidth: float | None = None
    divergence: float = 0.0
    crystal_size: float = 0.5e-6
    profile_radius: float | None = None
    b_factor: float = 20e-20
    resolution_limit: float | None = None  # largest |q| (m^-1) the crystal diffracts to
    spot_photons: float = 2e5
    background_photons: float | None = None
    background: BackgroundModel = field(default_factory=BackgroundModel)
    psf_sigma: float = 0.7  # pixels, point spread of the detector
    hit_rate: float = 1.0
    lattices: int = 1
    orientation: np.ndarray | None = None  # fixed rotation for the first lattice
    structure_seed: int = 0
    min_partiality: float = 0.02
    noise: bool = True
    dead_fraction: float = 0.0
    hot_fraction: float = 0.0
    hot_adu: float = 65535.0
    filename: str = "simulated"


def _header_values(detector: Detector, energy_ev: float, clen: float) -> dict[str, object]:
    """Header values a payload must carry for a geometry that reads them from headers."""
    headers: dict[str, object] = {}
    wl = detector.wavelength
    if wl.from_header:
        # the source's scale converts the header to the directive's base unit (eV or m)
        if detector.wavelength_directive == "photon_energy":
            headers[wl.location] = energy_ev / wl.scale
        elif detector.wavelength_directive == "wavelength":
            headers[wl.location] = ev_to_wavelength(energy_ev) / wl.scale
        else:
            raise ValueError("simulated frames cannot supply an electron_voltage header")
    if detector.clen.from_header:
        headers[detector.clen.location] = clen / detector.clen.scale
    return headers


class Simulation:
    """A seeded frame generator; everything that does not change per frame is built once."""

    def __init__(self, config: SimulationConfig, seed: int = 0) -> None:
        c = config
        det = c.detector
        self.config = c
        self.rng = np.random.default_rng(seed)
        if c.lattices not in (1, 2):
            raise ValueError(f"lattices must be 1 or 2, not {c.lattices}")
        if not 0.0 <= c.hit_rate <= 1.0:
            raise ValueError(f"hit_rate must be in [0, 1], not {c.hit_rate}")
        if c.photon_energy is None and det.wavelength.from_header:
            raise ValueError("the geometry reads the photon energy from a header: "
                             "give SimulationConfig.photon_energy")
        if c.clen is None and det.clen.from_header:
            raise ValueError("the geometry reads clen from a header: give SimulationConfig.clen")
        self.wavelength = (ev_to_wavelength(c.photon_energy) if c.photon_energy is not None
                           else det.wavelength.resolve())
        self.photon_energy = wavelength_to_ev(self.wavelength)
        self.clen = c.clen if c.clen is not None else det.clen.resolve()
        self.bandwidth = c.bandwidth if c.bandwidth is not None else det.bandwidth
        self.profile_radius = (c.profile_radius if c.profile_radius is not None
                               else 1.0 / c.crystal_size)
        self.shift_x = self._literal(det.detector_shift_x)
        self.shift_y = self._literal(det.detector_shift_y)
        self.headers = _header_values(det, self.photon_energy, self.clen)
        q_max = max_resolution(det, self.clen, self.wavelength) * 1.02
        if c.resolution_limit is not None:
            q_max = min(q_max, c.resolution_limit)
        self.q_max = q_max
        self.hkl = enumerate_hkl(c.cell, q_max)
        self.hkl_f = self.hkl.astype(np.float64)
        q_norm = np.linalg.norm(self.hkl_f @ c.cell.reciprocal, axis=1)
        self.intensity = wilson_intensities(self.hkl, q_norm, c.b_factor, c.structure_seed)
        sizes = np.array([p.width * p.height for p in det.panels], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.widths = np.array([p.width for p in det.panels], dtype=np.int64)
        self.heights = np.array([p.height for p in det.panels], dtype=np.int64)
        self.gains = np.array([p.gain(self.photon_energy) for p in det.panels])
        self.max_adu = np.array([p.max_adu for p in det.panels], dtype=np.float64)
        self.n_pixels = int(self.offsets[-1])
        self.background = background_map(det, self.clen, self.wavelength, c.background)
        self.background_photons = (c.background_photons if c.background_photons is not None
                                   else float(self.n_pixels))
        self.bg_scale = self.background_photons / self.n_pixels
        self.bg_exp = np.exp(-self.bg_scale * self.background)
        self.defects = np.zeros(0, dtype=np.uint8)
        if c.dead_fraction > 0 or c.hot_fraction > 0:
            u = self.rng.random(self.n_pixels)
            self.defects = np.zeros(self.n_pixels, dtype=np.uint8)
            self.defects[u < c.dead_fraction] = 1
            self.defects[(u >= c.dead_fraction) & (u < c.dead_fraction + c.hot_fraction)] = 2
        self._defect_views = [self.defects[a:b].reshape(p.shape)
                              for a, b, p in zip(self.offsets[:-1], self.offsets[1:], det.panels)
                              ] if self.defects.size else []

    @staticmethod
    def _literal(src) -> float:
        return src.resolve() if src is not None and not src.from_header else 0.0

    # ------------------------------------------------------------------ per frame
    def _crystal(self, rotation: np.ndarray, budget: float, spots: np.ndarray) -> CrystalTruth:
        """Predict, scale to ``budget`` photons on the pixels and render one lattice."""
        c = self.config
        cell = c.cell.rotated(rotation)
        k0 = 1.0 / self.wavelength
        R = self.profile_radius
        # cheap pre-selection: |p|^2 + 2 k0 p_z = -s (k0 + |p + k0 z|), so points with
        # |s| above the widest possible cut-off are dropped before the full computation
        widest = np.sqrt(R ** 2 + (2 * self.bandwidth * k0) ** 2 + (k0 * c.divergence) ** 2)
        cut = np.sqrt(-2.0 * np.log(max(c.min_partiality, 1e-300))) * widest
        cand = near_sphere(self.hkl_f, cell.reciprocal, k0, cut * (2.0 * k0 + self.q_max))
        p = self.hkl_f[cand] @ cell.reciprocal
        s, u = excitation(p, k0)
        sig = sphere_width(u, k0, R, self.bandwidth, c.divergence)
        part = partiality(s, sig)
        sel = np.flatnonzero((part >= c.min_partiality) & (self.intensity[cand] > 0))
        keep = cand[sel]
        p, s, u, part = p[sel], s[sel], u[sel], part[sel]
        kbar = spot_wavenumber(p, u, k0, R, self.bandwidth)
        panel, fs, ss, dist = rays_to_panels(c.detector, diffracted_rays(p, kbar), self.clen,
                                             self.shift_x, self.shift_y)
        on = panel >= 0
        keep, p, s, u, part, kbar = keep[on], p[on], s[on], u[on], part[on], kbar[on]
        panel, fs, ss, dist = panel[on], fs[on], ss[on], dist[on]
        pitch = np.array([pp.pixel_pitch for pp in c.detector.panels])[panel]
        # spot width (isotropic): detector PSF, the lattice point's angular size R/k, the
        # beam divergence, and the spread of exciting wavelengths times |d direction / dk|
        u_perp = np.hypot(p[:, 0], p[:, 1])
        w_prof = (1.0 - u[:, 2]) ** 2 / R ** 2
        sigma_k = 1.0 / np.sqrt(1.0 / (self.bandwidth * k0) ** 2 + w_prof)
        angle = np.sqrt((R / kbar) ** 2 + c.divergence ** 2 + (u_perp * sigma_k / kbar ** 2) ** 2)
        sigma = np.sqrt(c.psf_sigma ** 2 + (dist * angle / pitch) ** 2)
        rel = self.intensity[keep] * part
        mass = np.empty(len(rel))
        peak = np.empty(len(rel))
        render_spots(spots, self.offsets, self.widths, self.heights, panel, fs, ss, sigma,
                     rel, False, mass, peak)
        total = float(np.sum(rel * mass))
        scale = budget / total if total > 0 else 0.0
        photons = rel * scale
        render_spots(spots, self.offsets, self.widths, self.heights, panel, fs, ss, sigma,
                     photons, True, mass, peak)
        gain = self.gains[panel]
        hkl = self.hkl[keep]
        refl = TruthReflections(
            h=hkl[:, 0].copy(), k=hkl[:, 1].copy(), l=hkl[:, 2].copy(), panel=panel, fs=fs,
            ss=ss, q=p, excitation_error=s, partiality=part, wavelength=1.0 / kbar,
            sigma_px=sigma, intensity_full=self.intensity[keep] * scale,
            intensity_partial=photons, intensity_adu=photons * gain, on_panel=mass,
            peak_adu=peak * gain, saturated=peak * gain > self.max_adu[panel])
        return CrystalTruth(cell=cell, rotation=rotation, profile_radius=R, reflections=refl,
                            spot_photons=float(np.sum(photons * mass)))

    def frame(self, serial: int) -> Frame:
        """Simulate one frame with this serial number (draws from the generator's stream)."""
        c = self.config
        rng = self.rng
        is_hit = bool(rng.random() < c.hit_rate)
        spots = np.zeros(self.n_pixels)
        crystals = []
        if is_hit:
            for i in range(c.lattices):
                rot = (check_rotation(c.orientation) if i == 0 and c.orientation is not None
                       else random_rotation(rng))
                crystals.append(self._crystal(rot, c.spot_photons / c.lattices, spots))
        out = np.empty(self.n_pixels, dtype=np.float32)
        readout(self.background, self.bg_scale, self.bg_exp, spots, out,
                self.offsets, self.gains, self.max_adu, self.defects, c.hot_adu, c.noise,
                int(rng.integers(1, 2 ** 63)))
        panels = c.detector.panels
        data = [out[a:b].reshape(p.shape) for a, b, p in
                zip(self.offsets[:-1], self.offsets[1:], panels)]
        truth = FrameTruth(is_hit=is_hit, crystals=crystals,
                           photon_energy_ev=self.photon_energy, wavelength=self.wavelength,
                           bandwidth=self.bandwidth, divergence=c.divergence, clen=self.clen,
                           spot_photons=sum(x.spot_photons for x in crystals),
                           background_photons=self.background_photons,
                           defects=self._defect_views)
        return Frame(serial=serial, filename=c.filename, event=f"//{serial}", data=data,
                     bad=self._bad(data),
                     wavelength=self.wavelength, clen=self.clen,
                     detector_shift_x=self.shift_x, detector_shift_y=self.shift_y,
                     headers=dict(self.headers), truth=truth)

    def _bad(self, data: list[np.ndarray]) -> list[np.ndarray]:
        """The geometry's bad pixels (flags, edges, bad regions, mask files), as a decoder
        would mark them; the simulated dead/hot pixels are in the truth only."""
        det = self.config.detector
        payload_masks = any(m.file is None for p in det.panels for m in p.masks)
        return bad_pixel_masks(det, data, no_mask_data=payload_masks, shift_x=self.shift_x,
                               shift_y=self.shift_y)

    def frames(self, n: int | None, start_serial: int = 1) -> Iterator[Frame]:
        """``n`` frames (endless if None) with consecutive serial numbers."""
        serial = start_serial
        while n is None or serial < start_serial + n:
            yield self.frame(serial)
            serial += 1


def simulate_frames(config: SimulationConfig, n: int | None, seed: int = 0,
                    start_serial: int = 1) -> Iterator[Frame]:
    """A seeded sequence of ``n`` frames (None: endless); the same seed gives the same frames."""
    return Simulation(config, seed).frames(n, start_serial)


def simulate_frame(config: SimulationConfig, seed: int = 0, serial: int = 1) -> Frame:
    """One frame (the first of ``simulate_frames(config, 1, seed)``)."""
    return Simulation(config, seed).frame(serial)
