"""Unit-cell files for ``-p/--pdb``: CrystFEL cell files and PDB CRYST1 lines, read and written.

Follows CrystFEL 0.12.0 (spec geometry-and-cell.md §2). Fatal problems raise ``CellError`` with
"<file>:<line>: <what>"; oddities that CrystFEL only warns about are logged and returned by
``validate_cell``.
"""

from __future__ import annotations

import logging
import math
import os

import numpy as np

from crystream.cell import LATTICE_TYPES, UnitCell

log = logging.getLogger(__name__)

CELL_FILE_MAGIC = "CrystFEL unit cell file version 1.0"
CENTERINGS = ("P", "A", "B", "C", "I", "F", "R", "H")
UNIQUE_AXES = ("a", "b", "c")
NEEDS_UNIQUE_AXIS = ("monoclinic", "tetragonal", "hexagonal")
_LENGTH_UNITS = {"nm": 1e-9, "A": 1e-10}
_ANGLE_UNITS = {"deg": math.pi / 180.0, "rad": 1.0}
_PARAMETER_KEYS = ("a", "b", "c", "al", "be", "ga")


class CellError(ValueError):
    """A unit-cell file that cannot be used; the message starts with "<file>:<line>:"."""


def load_cell(path: str | os.PathLike) -> UnitCell:
    """Read a CrystFEL unit-cell file or a PDB file with a CRYST1 line."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError as exc:
        raise CellError(f"{name}: cannot read unit cell file: {exc.strerror}") from None
    return parse_cell(text, name)


def parse_cell(text: str, name: str = "<cell>") -> UnitCell:
    """Parse the text of a cell file; a first line other than the CrystFEL magic means PDB."""
    lines = text.splitlines()
    if lines and lines[0].rstrip() == CELL_FILE_MAGIC:
        cell = _parse_crystfel(lines, name)
    else:
        cell = _parse_pdb(lines, name)
    for problem in validate_cell(cell):
        log.warning("%s: %s", name, problem)
    return cell


# ---------------------------------------------------------------- CrystFEL format


def _parse_crystfel(lines: list[str], name: str) -> UnitCell:
    lattice, centering, unique = "triclinic", "P", "?"
    lattice_line = 0
    params: dict[str, float] = {}
    for number, line in enumerate(lines[1:], start=2):
        tokens = line.split()
        if not tokens or tokens[0].startswith(";"):
            continue
        where = f"{name}:{number}"
        if len(tokens) < 3:
            if len(tokens) == 2 and tokens[1] == "=":
                raise CellError(f"{where}: no value given for '{tokens[0]}'")
            if "=" in line:
                # CrystFEL skips such a line silently and loses the parameter; we refuse it.
                raise CellError(f"{where}: spaces are required around '=' "
                                f"(expected 'key = value [unit]'): '{line.strip()}'")
            continue
        key, eq, value = tokens[0], tokens[1], tokens[2]
        if eq != "=":
            raise CellError(f"{where}: expected 'key = value [unit]', got '{line.strip()}'")
        if key == "lattice_type":
            if value not in LATTICE_TYPES:
                raise CellError(f"{where}: unknown lattice type '{value}' "
                                f"(one of {', '.join(LATTICE_TYPES)})")
            lattice, lattice_line = value, number
        elif key == "centering":
            if value not in CENTERINGS:
                raise CellError(f"{where}: unknown centering '{value}' "
                                f"(one of {' '.join(CENTERINGS)})")
            centering = value
        elif key == "unique_axis":
            if value not in UNIQUE_AXES:
                raise CellError(f"{where}: unique_axis must be a, b or c, not '{value}'")
            unique = value
        elif key in _PARAMETER_KEYS:
            params[key] = _parameter(key, tokens, where)
        else:
            log.warning("%s: unrecognised field '%s' ignored", where, key)

    if lattice in NEEDS_UNIQUE_AXIS and unique not in UNIQUE_AXES:
        raise CellError(f"{name}:{lattice_line}: a {lattice} cell needs a unique_axis "
                        f"(a, b or c)")
    if lattice not in NEEDS_UNIQUE_AXIS and unique != "?":
        log.warning("%s: unique_axis '%s' given for a %s cell", name, unique, lattice)

    if len(params) == 6:
        return UnitCell.from_parameters(*(params[k] for k in _PARAMETER_KEYS),
                                        lattice_type=lattice, centering=centering,
                                        unique_axis=unique)
    if params:
        missing = [k for k in _PARAMETER_KEYS if k not in params]
        log.warning("%s: parameters %s missing: using the lattice type only", name,
                    ", ".join(missing))
    return lattice_only_cell(lattice, centering, unique)


def _parameter(key: str, tokens: list[str], where: str) -> float:
    try:
        value = float(tokens[2])
    except ValueError:
        raise CellError(f"{where}: '{tokens[2]}' is not a number for '{key}'") from None
    if not math.isfinite(value):
        raise CellError(f"{where}: '{tokens[2]}' is not a finite number for '{key}'")
    units = _LENGTH_UNITS if key in ("a", "b", "c") else _ANGLE_UNITS
    if len(tokens) < 4:
        raise CellError(f"{where}: unit missing for '{key}' (one of {', '.join(units)})")
    if tokens[3] not in units:
        raise CellError(f"{where}: unknown unit '{tokens[3]}' for '{key}' "
                        f"(one of {', '.join(units)})")
    return value * units[tokens[3]]


def lattice_only_cell(lattice_type: str, centering: str = "P",
                      unique_axis: str = "?") -> UnitCell:
    """A cell without parameters (NaN basis): forces --no-check-cell behaviour downstream."""
    return UnitCell(np.full((3, 3), np.nan), lattice_type, centering, unique_axis,
                    has_parameters=False)


# ---------------------------------------------------------------- PDB CRYST1


def _parse_pdb(lines: list[str], name: str) -> UnitCell:
    for number, line in enumerate(lines, start=1):
        if line.startswith("CRYST1"):
            return _parse_cryst1(line, f"{name}:{number}")
    raise CellError(f"{name}:1: neither a CrystFEL unit cell file (first line must be "
                    f"'{CELL_FILE_MAGIC}') nor a PDB file with a CRYST1 line")


def _parse_cryst1(line: str, where: str) -> UnitCell:
    """Fixed columns (1-based): a 7-15, b 16-24, c 25-33, angles 34-40, 41-47, 48-54;
    centering at 56."""
    if len(line) < 56:
        raise CellError(f"{where}: CRYST1 line too short ({len(line)} characters, "
                        f"need 56 for the space group)")
    fields = [line[6:15], line[15:24], line[24:33], line[33:40], line[40:47], line[47:54]]
    try:
        values = [float(f) for f in fields]
    except ValueError:
        raise CellError(f"{where}: CRYST1 cell parameters are not numbers: "
                        f"{[f.strip() for f in fields]}") from None
    centering = line[55]
    if centering not in CENTERINGS:
        raise CellError(f"{where}: CRYST1 space group must start with a centering letter "
                        f"({' '.join(CENTERINGS)}), got '{centering}' at column 56")
    lattice, unique = _guess_lattice(*fields)
    a, b, c = (v * 1e-10 for v in values[:3])
    al, be, ga = (math.radians(v) for v in values[3:])
    return UnitCell.from_parameters(a, b, c, al, be, ga, lattice_type=lattice,
                                    centering=centering, unique_axis=unique)


def _guess_lattice(a: str, b: str, c: str, al: str, be: str,
                   ga: str) -> tuple[str, str]:
    """CrystFEL's lattice guess from the raw CRYST1 fields, by string equality."""
    right = "  90.00"
    is90 = (al == right, be == right, ga == right)
    if a == b == c:
        if all(is90):
            return "cubic", "?"
        if al == be == ga:
            return "rhombohedral", "?"
    if all(is90):
        if a == b:
            return "tetragonal", "c"
        if a == c:
            return "tetragonal", "b"
        if b == c:
            return "tetragonal", "a"
        return "orthorhombic", "*"
    if sum(is90) == 2:
        hexa = " 120.00"
        if ga == hexa and a == b:
            return "hexagonal", "c"
        if be == hexa and a == c:
            return "hexagonal", "b"
        if al == hexa and b == c:
            return "hexagonal", "a"
        return "monoclinic", "abc"[is90.index(False)]
    return "triclinic", "?"


# ---------------------------------------------------------------- checks


def validate_cell(cell: UnitCell) -> list[str]:
    """CrystFEL's non-fatal warnings about a cell: sense, Bravais lattice, handedness."""
    out = []
    lattice, cen, ua = cell.lattice_type, cell.centering, cell.unique_axis
    if cell.has_parameters:
        a, b, c, al, be, ga = cell.parameters
        if not _is_sensible(al, be, ga) or min(a, b, c) <= 0:
            out.append("cell parameters are not sensible (angles "
                       f"{math.degrees(al):.2f}, {math.degrees(be):.2f}, "
                       f"{math.degrees(ga):.2f} deg)")
        if cell.volume < 0:
            out.append("the cell is left-handed")
    if not is_bravais(lattice, cen, ua):
        out.append(f"{lattice} {cen} (unique axis {ua}) is not a Bravais lattice")
    if lattice == "monoclinic" and cen in "ABC" and cen.lower() == ua:
        out.append(f"monoclinic {cen} centering on the unique axis {ua}")
    return out


def _is_sensible(al: float, be: float, ga: float) -> bool:
    """The angle-sum conditions for three vectors to span a cell."""
    if min(al, be, ga) <= 0 or max(al, be, ga) >= math.pi:
        return False
    if al + be + ga >= 2 * math.pi:
        return False
    return al < be + ga and be < al + ga and ga < al + be


def is_bravais(lattice_type: str, centering: str, unique_axis: str) -> bool:
    """CrystFEL's rules for which lattice/centering combinations are Bravais lattices."""
    if centering == "P":
        return True
    if centering in ("A", "B", "C"):
        if lattice_type == "orthorhombic":
            return True
        return lattice_type == "monoclinic" and centering.lower() != unique_axis
    if centering == "I":
        return lattice_type in ("monoclinic", "orthorhombic", "tetragonal", "cubic")
    if centering == "F":
        return lattice_type in ("orthorhombic", "cubic")
    if centering == "H":
        return lattice_type == "hexagonal" and unique_axis == "c"
    if centering == "R":
        return lattice_type == "rhombohedral"
    return False


# ---------------------------------------------------------------- writing


def format_cell(cell: UnitCell) -> str:
    """The cell in CrystFEL's written cell-file form (also the stream's target-cell block)."""
    out = [CELL_FILE_MAGIC, "", f"lattice_type = {cell.lattice_type}"]
    if cell.lattice_type in NEEDS_UNIQUE_AXIS:
        out.append(f"unique_axis = {cell.unique_axis}")
    out.append(f"centering = {cell.centering}")
    if cell.has_parameters:
        a, b, c, al, be, ga = cell.parameters
        out += [f"a = {a * 1e10:.2f} A", f"b = {b * 1e10:.2f} A", f"c = {c * 1e10:.2f} A",
                f"al = {math.degrees(al):.2f} deg", f"be = {math.degrees(be):.2f} deg",
                f"ga = {math.degrees(ga):.2f} deg"]
    return "\n".join(out) + "\n"
