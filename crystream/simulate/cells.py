"""Ready-made unit cells for tests and demos, and the centering's systematic absences."""

from __future__ import annotations

import math

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
