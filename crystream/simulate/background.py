"""A smooth radial background: flat term, air scatter near the beam and a water ring.

Relative photons per pixel, (flat + air*exp(-r/r0) + ring*exp(-((q - q_w)/w)^2/2)) * cos^3(2theta),
normalised to a mean of 1 per pixel so a frame's background budget just scales it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crystream.geometry.detector import Detector, lab_position, pixel_centre_grid


@dataclass(frozen=True)
class BackgroundModel:
    """Shape of the background; lengths in m, q in m^-1 (|q| = 1/d)."""

    flat: float = 0.6
    air: float = 1.2
    air_length: float = 12e-3
    water: float = 2.5
    water_q: float = 3.1e9  # 1/(3.2 A)
    water_width: float = 0.3e9


def background_map(detector: Detector, clen: float, wavelength: float,
                   model: BackgroundModel = BackgroundModel()) -> np.ndarray:
    """Relative background (mean 1 per pixel) as one flat float64 array over all panels."""
    parts = []
    for p in detector.panels:
        fs, ss = pixel_centre_grid(p)
        r = lab_position(p, fs, ss, clen)
        dist = np.linalg.norm(r, axis=-1)
        cos2t = r[..., 2] / dist
        radial = np.hypot(r[..., 0], r[..., 1])
        q = np.sqrt(np.maximum(2.0 - 2.0 * cos2t, 0.0)) / wavelength
        value = (model.flat + model.air * np.exp(-radial / model.air_length)
                 + model.water * np.exp(-0.5 * ((q - model.water_q) / model.water_width) ** 2))
        parts.append((value * cos2t ** 3).ravel())
    flat = np.concatenate(parts)
    return flat / flat.mean()
