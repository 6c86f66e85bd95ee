"""Ready-made unit cells for tests and demos, and the centering's systematic absences."""

from __future__ import annotations

import math

import numpy as np

from crystream.cell import UnitCell

_A = 1e-10
_DEG = math.pi / 180.0


def _cell(a: float, b: float, c: float, al: float, be: float, ga: float, lattice_type: str,
          centering: str, unique_axis: str) -> UnitCell:
    return UnitCell.from_parameters(a * _A, b * _A, c * _A, al * _DEG, be * _DEG, ga * _DEG,
                                    lattice_type=lattice_type, centering=centering,
                                    unique_axis=unique_axis)


#: Hen egg-white lysozyme, tP (P4(3)2(1)2), unique axis c.
LYSOZYME = _cell(79.1, 79.1, 37.9, 90, 90, 90, "tetragonal", "P", "c")
#: Thermolysin, hP (P6(1)22), unique axis c.
THERMOLYSIN = _cell(93.0, 93.0, 131.0, 90, 90, 120, "hexagonal", "P", "c")
#: The samples' monoclinic C-centred cell (mC, unique axis b), as in samples/sample.cell.
MONOCLINIC_C = _cell(61.2, 91.4, 66.5, 90, 115.0, 90, "monoclinic", "C", "b")
#: A general triclinic cell (aP).
TRICLINIC = _cell(51.3, 62.1, 71.8, 78.2, 84.6, 95.3, "triclinic", "P", "?")

NAMED_CELLS = {"lysozyme": LYSOZYME, "thermolysin": THERMOLYSIN,
               "monoclinic_c": MONOCLINIC_C, "triclinic": TRICLINIC}


def centering_allows(h: np.ndarray, k: np.ndarray, l: np.ndarray,
                     centering: str) -> np.ndarray:
    """True where (h, k, l) is not a systematic absence of the lattice centering.

    A: k+l even; B: h+l even; C: h+k even; I: h+k+l even; F: unmixed parity;
    H (hexagonal axes, obverse): -h+k+l divisible by 3; P and R: no absences.
    """
    h, k, l = (np.asarray(v, dtype=np.int64) for v in (h, k, l))
    if centering == "A":
        return (k + l) % 2 == 0
    if centering == "B":
        return (h + l) % 2 == 0
    if centering == "C":
        return (h + k) % 2 == 0
    if centering == "I":
        return (h + k + l) % 2 == 0
    if centering == "F":
        return ((h + k) % 2 == 0) & ((h + l) % 2 == 0)
    if centering == "H":
        return (-h + k + l) % 3 == 0
    if centering in ("P", "R"):
        return np.ones(np.broadcast(h, k, l).shape, dtype=bool)
    raise ValueError(f"unknown centering '{centering}'")
