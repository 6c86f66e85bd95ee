"""Still diffraction physics: excitation error, partiality and the diffracted ray.

A reciprocal lattice point p is a 3-D Gaussian of width R (the profile radius, ~1/crystal
size). The Ewald sphere (centre (0, 0, -k0), k0 = 1/lambda) is smeared by the spectrum
(Gaussian, sigma_k = bandwidth * k0) and by the beam divergence (Gaussian tilt, sigma per
axis). Along the sphere normal at p these add in quadrature to a width sigma_s; the recorded
fraction of the full reflection is exp(-s^2 / (2 sigma_s^2)), s being the signed distance of p
from the sphere (positive inside).
"""

from __future__ import annotations

import numpy as np


def excitation(p: np.ndarray, k0: float) -> tuple[np.ndarray, np.ndarray]:
    """Signed excitation error s (m^-1, positive inside the sphere) and the unit sphere normal u."""
    c = p.copy()
    c[:, 2] += k0
    length = np.sqrt(np.einsum("ij,ij->i", c, c))
    return k0 - length, c / length[:, None]


def sphere_width(u: np.ndarray, k0: float, profile_radius: float, bandwidth: float,
                 divergence: float) -> np.ndarray:
    """sigma_s: profile, spectrum and divergence widths along the sphere normal, in quadrature.

    Changing k moves the sphere surface at p by (1 - u_z) dk; tilting the beam by d(angle)
    moves it by k0 * u_perp * d(angle).
    """
    sk = bandwidth * k0
    return np.sqrt(profile_radius ** 2 + ((1.0 - u[:, 2]) * sk) ** 2
                   + (k0 * divergence) ** 2 * (u[:, 0] ** 2 + u[:, 1] ** 2))


def partiality(s: np.ndarray, sigma_s: np.ndarray) -> np.ndarray:
    """Fraction of the full reflection recorded in this still, in [0, 1]."""
    return np.exp(-0.5 * (s / sigma_s) ** 2)


def spot_wavenumber(p: np.ndarray, u: np.ndarray, k0: float, profile_radius: float,
                    bandwidth: float) -> np.ndarray:
    """The intensity-weighted k of the wavelengths that excite p.

    Wavelengths are weighted by the spectrum N(k0, sigma_k) times the lattice point's profile
    exp(-s(k)^2/2R^2), s(k) ~ (1 - u_z)(k - k_Bragg); the product is Gaussian in k, and its
    mean sets the direction of the diffracted ray.
    """
    sk = bandwidth * k0
    with np.errstate(divide="ignore", invalid="ignore"):
        k_bragg = -np.einsum("ij,ij->i", p, p) / (2.0 * p[:, 2])
    w_spec = 1.0 / sk ** 2
    w_prof = (1.0 - u[:, 2]) ** 2 / profile_radius ** 2
    kbar = (k0 * w_spec + k_bragg * w_prof) / (w_spec + w_prof)
    return np.where(np.isfinite(kbar) & (p[:, 2] < 0), kbar, k0)


def diffracted_rays(p: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Direction of the diffracted beam from the sample, k_out = p + (0, 0, k); shape (n, 3)."""
    out = p.copy()
    out[:, 2] += k
    return out
