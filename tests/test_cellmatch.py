"""Cell matching against known answers: every Bravais lattice, tolerances, ties, misorientation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crystream.cell import UnitCell
from crystream.cellmatch import (Tolerances, ToleranceError, compare_cell_parameters,
                                 match_to_target, misorientation, niggli_reduce, parameters_of,
                                 unimodular_matrices)
from crystream.indexing.sphere import random_rotation
from crystream.lattice import bravais_symbol, lattice_rotations, primitive_transform

D = math.pi / 180
A = 1e-10


def _cell(a, b, c, al, be, ga, lt, cen, ua):
    return UnitCell.from_parameters(a * A, b * A, c * A, al * D, be * D, ga * D, lt, cen, ua)


BRAVAIS = {
    "aP": _cell(42, 51.5, 63.2, 82, 97, 106, "triclinic", "P", "?"),
    "mP": _cell(45, 70, 52, 90, 108, 90, "monoclinic", "P", "b"),
    "mC": _cell(61.2, 91.4, 66.5, 90, 115, 90, "monoclinic", "C", "b"),
    "oP": _cell(40, 55, 72, 90, 90, 90, "orthorhombic", "P", "*"),
    "oC": _cell(50, 95, 60, 90, 90, 90, "orthorhombic", "C", "*"),
    "oI": _cell(60, 70, 90, 90, 90, 90, "orthorhombic", "I", "*"),
    "oF": _cell(60, 75, 95, 90, 90, 90, "orthorhombic", "F", "*"),
    "tP": _cell(79.1, 79.1, 38.0, 90, 90, 90, "tetragonal", "P", "c"),
    "tI": _cell(60, 60, 110, 90, 90, 90, "tetragonal", "I", "c"),
    "hP": _cell(93.2, 93.2, 130.9, 90, 90, 120, "hexagonal", "P", "c"),
    "hR": _cell(70, 70, 70, 75, 75, 75, "rhombohedral", "R", "*"),
    "hH": _cell(80, 80, 180, 90, 90, 120, "hexagonal", "H", "c"),
    "cP": _cell(55, 55, 55, 90, 90, 90, "cubic", "P", "*"),
    "cI": _cell(80, 80, 80, 90, 90, 90, "cubic", "I", "*"),
    "cF": _cell(100, 100, 100, 90, 90, 90, "cubic", "F", "*"),
}

HOLOHEDRY_ORDER = {"a": 1, "m": 2, "o": 4, "t": 8, "c": 24}


def _scrambled(target: UnitCell, rng) -> tuple[UnitCell, UnitCell]:
    """(truth in a random orientation, the same lattice as a triclinic P cell in a random
    primitive setting)."""
    truth = target.rotated(random_rotation(rng))
    prim = primitive_transform(target.centering) @ truth.real
    m = unimodular_matrices()[rng.integers(len(unimodular_matrices()))]
    scrambled = m @ niggli_reduce(prim)[0]
    return truth, UnitCell(np.linalg.inv(scrambled).T.copy())


@pytest.mark.parametrize("symbol", sorted(BRAVAIS))
def test_reindexing_recovers_every_bravais_lattice(symbol):
    target = BRAVAIS[symbol]
    rng = np.random.default_rng(abs(hash(symbol)) % 2**32)
    for _ in range(3):
        truth, candidate = _scrambled(target, rng)
        matched = match_to_target(candidate, target, Tolerances(), rng)
        assert matched is not None
        assert (matched.lattice_type, matched.centering, matched.unique_axis) == \
            (target.lattice_type, target.centering, target.unique_axis)
        assert np.allclose(parameters_of(matched.real), parameters_of(target.real), rtol=1e-6,
                           atol=1e-9)
        assert misorientation(matched, truth) < 1e-5
        assert matched.volume > 0  # right-handed


@pytest.mark.parametrize("symbol", sorted(BRAVAIS))
def test_lattice_symmetry_order_from_gemmi(symbol):
    target = BRAVAIS[symbol]
    ops = lattice_rotations(target)
    letter = bravais_symbol(target)[0]
    expected = {"h": 12 if target.lattice_type == "hexagonal" and target.centering == "P"
                else 6}.get(letter, HOLOHEDRY_ORDER.get(letter))
    assert len(ops) == expected
    g = target.real @ target.real.T
    for w in ops:  # each op keeps the metric: the same lattice
        assert np.allclose(w @ g @ w.T, g, rtol=1e-9, atol=1e-30)
        assert round(np.linalg.det(w)) == 1


def test_misorientation_is_the_rotation_angle_modulo_point_group():
    rng = np.random.default_rng(3)
    tp = BRAVAIS["tP"].rotated(random_rotation(rng))
    axis = tp.real[2] / np.linalg.norm(tp.real[2])
    kx = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])

    def rot(angle):
        return np.eye(3) + math.sin(angle) * kx + (1 - math.cos(angle)) * kx @ kx

    assert misorientation(tp.rotated(rot(0.7 * D)), tp) == pytest.approx(0.7 * D, rel=1e-6)
    # a 4-fold about c is a symmetry of tP: 90.5 deg away is 0.5 deg away
    assert misorientation(tp.rotated(rot(90.5 * D)), tp) == pytest.approx(0.5 * D, rel=1e-6)
    ap = BRAVAIS["aP"].rotated(random_rotation(rng))
    assert misorientation(ap.rotated(rot(90.0 * D)), ap) == pytest.approx(90 * D, rel=1e-6)


def test_ties_are_broken_at_random_between_equivalent_settings():
    """For mC with beta != 90 the 2-fold-related setting (a*, c* negated) is an exact tie."""
    target = BRAVAIS["mC"]
    rng = np.random.default_rng(11)
    truth, candidate = _scrambled(target, rng)
    settings = set()
    for seed in range(12):
        m = match_to_target(candidate, target, Tolerances(), np.random.default_rng(seed))
        sign_a = np.sign(m.reciprocal[0] @ truth.reciprocal[0])
        settings.add(("a*", sign_a))
        assert misorientation(m, truth) < 1e-5
    assert ("a*", 1.0) in settings and ("a*", -1.0) in settings


def test_tolerances_reject_a_wrong_cell():
    target = BRAVAIS["oP"]
    rng = np.random.default_rng(2)
    bigger = _cell(40 * 1.06, 55, 72, 90, 90, 90, "orthorhombic", "P", "*")
    _, candidate = _scrambled(bigger, rng)
    assert match_to_target(candidate, target, Tolerances(), rng) is None
    loose = Tolerances.parse("7,5,5,1.5")
    assert match_to_target(candidate, target, loose, rng) is not None


def test_tolerance_parsing_and_errors():
    t = Tolerances.parse("5,5,5,1.5,1.5,1.5")
    assert t == Tolerances()
    t4 = Tolerances.parse("1,2,3,4")
    assert (t4.a, t4.b, t4.c) == (0.01, 0.02, 0.03) and t4.al == t4.be == t4.ga == 4 * D
    for bad in ("1,2,3", "a,b,c,d,e,f", "1,2,3,4,5,6,7", "-1,2,3,4"):
        with pytest.raises(ToleranceError, match="--tolerance"):
            Tolerances.parse(bad)


def test_compare_cell_parameters_uses_real_space_lengths_and_centering():
    ref = BRAVAIS["oC"]
    close = _cell(50 * 1.049, 95, 60, 90, 90, 90, "orthorhombic", "C", "*")
    far = _cell(50 * 1.06, 95, 60, 90, 90, 90, "orthorhombic", "C", "*")
    tilted = _cell(50, 95, 60, 90, 90, 91.6, "orthorhombic", "C", "*")
    other_centering = _cell(50, 95, 60, 90, 90, 90, "orthorhombic", "P", "*")
    assert compare_cell_parameters(close, ref, Tolerances())
    assert not compare_cell_parameters(far, ref, Tolerances())
    assert not compare_cell_parameters(tilted, ref, Tolerances())
    assert not compare_cell_parameters(other_centering, ref, Tolerances())
    r_as_p = _cell(70, 70, 70, 75, 75, 75, "rhombohedral", "P", "*")
    assert compare_cell_parameters(r_as_p, BRAVAIS["hR"], Tolerances())  # P == R
