"""Unit-cell files: CrystFEL format, PDB CRYST1, validation warnings, written form."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import gemmi
import numpy as np
import pytest

from crystream.cell import UnitCell
from crystream.cellfile import (CellError, format_cell, is_bravais, load_cell, parse_cell,
                                validate_cell)

DATA = Path(__file__).parent / "data"
MAGIC = "CrystFEL unit cell file version 1.0\n"


def cryst1(a, b, c, al, be, ga, group):
    """A CRYST1 record in the PDB's fixed-column layout."""
    return f"CRYST1{a:9.3f}{b:9.3f}{c:9.3f}{al:7.2f}{be:7.2f}{ga:7.2f} {group:<11s}{1:4d}\n"


def assert_parameters(cell, a, b, c, al, be, ga):
    """Parameters in Å and degrees; also checks the basis against gemmi's independent maths."""
    got = cell.parameters
    np.testing.assert_allclose(np.array(got[:3]) * 1e10, [a, b, c], rtol=1e-12)
    np.testing.assert_allclose(np.degrees(got[3:]), [al, be, ga], atol=1e-10)
    ref = gemmi.UnitCell(a, b, c, al, be, ga)
    assert cell.volume * 1e30 == pytest.approx(ref.volume, rel=1e-10)
    rec = ref.reciprocal()
    lengths = np.linalg.norm(cell.reciprocal, axis=1) * 1e-10  # Å^-1
    np.testing.assert_allclose(lengths, [rec.a, rec.b, rec.c], rtol=1e-10)


def test_sample_cell_file():
    cell = load_cell(DATA / "samples" / "sample.cell")
    assert (cell.lattice_type, cell.centering, cell.unique_axis) == ("monoclinic", "C", "b")
    assert cell.has_parameters
    assert_parameters(cell, 61.2, 91.4, 66.5, 90.0, 115.0, 90.0)
    # CrystFEL's standard setting: a along x, b in the xy plane.
    real = cell.real
    assert abs(real[0, 1]) < 1e-20 and abs(real[0, 2]) < 1e-20 and abs(real[1, 2]) < 1e-20
    assert validate_cell(cell) == []


def test_units_nm_and_rad_defaults_and_comments():
    text = (MAGIC + "; a comment = with three tokens\n\n"
            "a = 6.12 nm\n b = 9.14\tnm\nc = 6.65 nm\n"
            f"al = {math.pi / 2!r} rad\nbe = {math.radians(115.0)!r} rad\nga = 90 deg\n")
    cell = parse_cell(text, "units.cell")
    assert (cell.lattice_type, cell.centering, cell.unique_axis) == ("triclinic", "P", "?")
    assert_parameters(cell, 61.2, 91.4, 66.5, 90.0, 115.0, 90.0)


def test_lattice_type_only_and_partial_parameters(caplog):
    cell = parse_cell(MAGIC + "lattice_type = cubic\ncentering = F\n", "latt.cell")
    assert not cell.has_parameters
    assert (cell.lattice_type, cell.centering) == ("cubic", "F")
    with caplog.at_level(logging.WARNING):
        partial = parse_cell(MAGIC + "lattice_type = orthorhombic\na = 10 A\nb = 20 A\n"
                             "c = 30 A\nal = 90 deg\nbe = 90 deg\n", "partial.cell")
    assert not partial.has_parameters
    assert "ga" in caplog.text


@pytest.mark.parametrize("body, line, what", [
    ("lattice_type = monoclinic\ncentering = C\n", 2, "unique_axis"),
    ("\nlattice_type = hexagonal\n", 3, "unique_axis"),
    ("a = 61.2\n", 2, "unit missing"),
    ("a = 61.2 pm\n", 2, "unknown unit 'pm'"),
    ("al = ninety deg\n", 2, "not a number"),
    ("lattice_type = monocline\n", 2, "unknown lattice type"),
    ("centering = Q\n", 2, "unknown centering"),
    ("lattice_type = monoclinic\nunique_axis = x\n", 3, "unique_axis must be"),
    ("\n\na=61.2 A\n", 4, "spaces are required"),
    ("b : 61.2 A\n", 2, "expected 'key = value"),
    ("centering =\n", 2, "no value"),
])
def test_bad_cell_files_name_file_and_line(body, line, what):
    with pytest.raises(CellError) as err:
        parse_cell(MAGIC + body, "bad.cell")
    msg = str(err.value)
    assert msg.startswith(f"bad.cell:{line}: "), msg
    assert what in msg
    assert "\n" not in msg


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(CellError, match="nothere.cell: cannot read"):
        load_cell(tmp_path / "nothere.cell")
    path = tmp_path / "junk.pdb"
    path.write_text("HEADER    junk\nATOM      1  N   ALA A   1\n")
    with pytest.raises(CellError, match=r"junk.pdb:1: neither a CrystFEL"):
        load_cell(path)


@pytest.mark.parametrize("params, group, lattice, centering, unique", [
    ((79.1, 79.1, 38.2, 90, 90, 90), "P 43 21 2", "tetragonal", "P", "c"),
    ((38.2, 79.1, 79.1, 90, 90, 90), "P 4 2 2", "tetragonal", "P", "a"),
    ((79.1, 38.2, 79.1, 90, 90, 90), "I 4", "tetragonal", "I", "b"),
    ((61.2, 91.4, 66.5, 90, 115, 90), "C 1 2 1", "monoclinic", "C", "b"),
    ((61.2, 91.4, 66.5, 101, 90, 90), "P 1 1 21", "monoclinic", "P", "a"),
    ((40.0, 40.0, 120.0, 90, 90, 120), "P 61 2 2", "hexagonal", "P", "c"),
    ((40.0, 40.0, 120.0, 90, 90, 120), "H 3", "hexagonal", "H", "c"),
    ((50.0, 60.0, 70.0, 90, 90, 120), "P 1 2 1", "monoclinic", "P", "c"),
    ((100.0, 100.0, 100.0, 90, 90, 90), "I 2 3", "cubic", "I", "?"),
    ((50.0, 50.0, 50.0, 80, 80, 80), "R 3", "rhombohedral", "R", "?"),
    ((30.0, 50.0, 70.0, 90, 90, 90), "P 21 21 21", "orthorhombic", "P", "*"),
    ((30.0, 50.0, 70.0, 80, 85, 95), "P 1", "triclinic", "P", "?"),
])
def test_pdb_cryst1(tmp_path, params, group, lattice, centering, unique):
    path = tmp_path / "model.pdb"
    path.write_text("HEADER    TEST\n" + cryst1(*params, group) + "ATOM      1  N\n")
    cell = load_cell(path)
    assert (cell.lattice_type, cell.centering, cell.unique_axis) == (lattice, centering, unique)
    assert_parameters(cell, *params)


def test_pdb_cryst1_string_equality_not_numeric():
    # 90.001 prints as "  90.00": string equality sees a right angle, as CrystFEL does.
    cell = parse_cell(cryst1(30, 50, 70, 90.001, 90, 90, "P 1"), "x.pdb")
    assert cell.lattice_type == "orthorhombic"
    # Equal lengths written with different precision are different strings.
    line = "CRYST1   79.100   79.10    38.200  90.00  90.00  90.00 P 43 21 2     8\n"
    assert parse_cell(line, "y.pdb").lattice_type == "orthorhombic"


def test_pdb_bad_lines():
    with pytest.raises(CellError, match=r"^s.pdb:2: CRYST1 line too short"):
        parse_cell("REMARK\nCRYST1   79.100   79.100\n", "s.pdb")
    with pytest.raises(CellError, match=r"^s.pdb:1: CRYST1 cell parameters are not numbers"):
        parse_cell(cryst1(1, 2, 3, 90, 90, 90, "P 1").replace("  90.00", "  9x.00", 1),
                   "s.pdb")
    with pytest.raises(CellError, match=r"^s.pdb:1: .*column 56"):
        parse_cell(cryst1(1, 2, 3, 90, 90, 90, "P 1").replace(" P 1", " 1 P", 1), "s.pdb")


def test_format_cell_matches_crystfel_stream_block():
    """CrystFEL 0.12.0 wrote sample.cell into sample.stream's target-cell block."""
    lines = (DATA / "samples" / "sample.stream").read_text().splitlines()
    start = lines.index("----- Begin unit cell -----") + 1
    end = lines.index("; Please note: this is the target unit cell.")
    expected = "\n".join(lines[start:end]) + "\n"
    assert format_cell(load_cell(DATA / "samples" / "sample.cell")) == expected


def test_format_cell_round_trip_and_unique_axis_rule():
    cell = UnitCell.from_parameters(40e-10, 50e-10, 60e-10, math.radians(90),
                                    math.radians(90), math.radians(90), "orthorhombic", "I",
                                    "*")
    text = format_cell(cell)
    assert "unique_axis" not in text
    back = parse_cell(text, "rt.cell")
    assert (back.lattice_type, back.centering) == ("orthorhombic", "I")
    np.testing.assert_allclose(back.reciprocal, cell.reciprocal, rtol=1e-12, atol=1)
    only = parse_cell(MAGIC + "lattice_type = tetragonal\nunique_axis = c\n", "t.cell")
    assert format_cell(only) == (MAGIC + "\nlattice_type = tetragonal\nunique_axis = c\n"
                                 "centering = P\n")


@pytest.mark.parametrize("lattice, centering, unique, ok", [
    ("triclinic", "P", "?", True), ("monoclinic", "C", "b", True),
    ("monoclinic", "B", "b", False), ("monoclinic", "I", "b", True),
    ("orthorhombic", "A", "*", True), ("orthorhombic", "F", "*", True),
    ("tetragonal", "C", "c", False), ("tetragonal", "I", "c", True),
    ("cubic", "F", "?", True), ("cubic", "C", "?", False),
    ("hexagonal", "H", "c", True), ("hexagonal", "H", "a", False),
    ("rhombohedral", "R", "?", True), ("hexagonal", "R", "c", False),
    ("tetragonal", "F", "c", False),
])
def test_bravais_rules(lattice, centering, unique, ok):
    assert is_bravais(lattice, centering, unique) is ok


def test_validate_cell_warnings(caplog):
    with caplog.at_level(logging.WARNING):
        cell = parse_cell(MAGIC + "lattice_type = monoclinic\nunique_axis = c\ncentering = C\n"
                          "a = 10 A\nb = 20 A\nc = 30 A\nal = 90 deg\nbe = 90 deg\n"
                          "ga = 100 deg\n", "w.cell")
    problems = validate_cell(cell)
    assert any("not a Bravais lattice" in p for p in problems)
    assert any("on the unique axis c" in p for p in problems)
    assert "w.cell: " in caplog.text
    flat = UnitCell.from_parameters(1e-9, 1e-9, 1e-9, math.radians(120), math.radians(120),
                                    math.radians(120))
    assert any("not sensible" in p for p in validate_cell(flat))
    good = UnitCell.from_parameters(1e-9, 2e-9, 3e-9, 1.4, 1.5, 1.6)
    assert validate_cell(good) == []
    left = good.with_reciprocal(-good.reciprocal)
    assert validate_cell(left) == ["the cell is left-handed"]


def test_unique_axis_on_other_lattice_warns(caplog):
    with caplog.at_level(logging.WARNING):
        cell = parse_cell(MAGIC + "lattice_type = orthorhombic\nunique_axis = c\n", "o.cell")
    assert cell.unique_axis == "c"
    assert "unique_axis 'c' given for a orthorhombic cell" in caplog.text
