"""Physical constants and unit conversions, with CrystFEL's values so numbers match its output."""

import math

PLANCK = 6.62606896e-34  # J s
ELECTRON_CHARGE = 1.6021773e-19  # C
SPEED_OF_LIGHT = 299792458.0  # m/s
ELECTRON_MASS = 9.1093837015e-31  # kg


def ev_to_wavelength(energy_ev: float) -> float:
    """Photon energy in eV -> wavelength in metres."""
    return PLANCK * SPEED_OF_LIGHT / (ELECTRON_CHARGE * energy_ev)


def wavelength_to_ev(wavelength_m: float) -> float:
    """Wavelength in metres -> photon energy in eV."""
    return PLANCK * SPEED_OF_LIGHT / (ELECTRON_CHARGE * wavelength_m)


def electron_wavelength(voltage_v: float) -> float:
    """Relativistic electron wavelength (m) for an accelerating voltage in volts."""
    e_v = ELECTRON_CHARGE * voltage_v
    corrected = e_v * (1.0 + e_v / (2.0 * ELECTRON_MASS * SPEED_OF_LIGHT**2))
    return PLANCK / math.sqrt(2.0 * ELECTRON_MASS * corrected)
