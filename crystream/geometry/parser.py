"""CrystFEL geometry files (0.12.0 syntax) -> Detector, with every fatal case naming file:line.

The rules followed are those of shared/spec/geometry-and-cell.md §1: lexical rules, a
"defaults" panel template copied at a panel's first mention, true top-level directives with
their units, per-panel fields, bad regions and groups. Non-fatal problems (unknown fields, a
bad ``bandwidth``, a malformed ``dimN``) are collected in ``Detector.warnings`` and logged.
"""

from __future__ import annotations

import copy
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from crystream.constants import electron_wavelength, ev_to_wavelength
from crystream.geometry.detector import (BadRegion, Detector, MaskSpec, Panel, PixelFlag,
                                         ValueSource)

log = logging.getLogger(__name__)

MAX_FLAGS = 16
MAX_MASKS = 8
MAX_DIMS = 16
MAX_GROUPS = 512
MAX_GROUP_MEMBERS = 64

_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INT = re.compile(r"[+-]?\d+")
_DIRECTION_TERM = re.compile(r"([+-]?)(\d+\.?\d*|\.\d+)?([xyz])")
_MASK_FIELD = re.compile(r"mask([0-7])_(data|file|goodbits|badbits)")
_LEGACY_MASK = {"mask": "data", "mask_file": "file", "mask_good": "goodbits",
                "mask_bad": "badbits"}
_TOP_LEVEL = ("photon_energy", "wavelength", "electron_voltage", "bandwidth", "clen",
              "detector_shift_x", "detector_shift_y", "peak_list", "peak_list_type")
_SLAB_FIELDS = ("min_fs", "max_fs", "min_ss", "max_ss")
_BAD_FIELDS = ("min_x", "max_x", "min_y", "max_y") + _SLAB_FIELDS


class GeometryError(ValueError):
    """A geometry file CrystFEL would reject; the message is "<file>:<line>: <what>"."""

    def __init__(self, name: str, line: int, what: str) -> None:
        self.file = name
        self.line = line
        self.what = what
        super().__init__(f"{name}:{line}: {what}")


def is_number(text: str) -> bool:
    """True if ``text`` is a whole decimal number (else it is a header location)."""
    return _FLOAT.fullmatch(text) is not None


def c_atof(text: str) -> float:
    """C's atof: the longest leading number, 0.0 if there is none."""
    m = _FLOAT.match(text.strip())
    return float(m.group(0)) if m else 0.0


def parse_bits(text: str) -> int:
    """Mask bits as strtod reads them: decimal or 0x-hex."""
    t = text.strip()
    sign = -1 if t.startswith("-") else 1
    body = t.lstrip("+-")
    if body[:2].lower() == "0x":
        return sign * int(body[2:] or "0", 16)
    return int(c_atof(t))


def parse_direction(text: str) -> np.ndarray | None:
    """'+0.9999x -0.0012y' -> (3,) vector; None if not made of [sign][coefficient]axis terms."""
    s = text.replace(" ", "").replace("\t", "")
    if not s or re.fullmatch(r"[0-9.+\-xyz]+", s) is None:
        return None
    out = np.zeros(3)
    pos = 0
    while pos < len(s):
        m = _DIRECTION_TERM.match(s, pos)
        if m is None:
            return None
        coeff = float(m.group(2)) if m.group(2) else 1.0
        out["xyz".index(m.group(3))] += -coeff if m.group(1) == "-" else coeff
        pos = m.end()
    return out


@dataclass
class _MaskDraft:
    data: str | None = None
    file: str | None = None
    goodbits: int | None = None
    badbits: int | None = None
    line: int = 0  # last line that set any part of this mask


@dataclass
class _PanelDraft:
    """A panel (or the defaults template) while the file is being read."""

    name: str = ""
    line: int = 0
    min_fs: int | None = None
    max_fs: int | None = None
    min_ss: int | None = None
    max_ss: int | None = None
    corner_x: float | None = None
    corner_y: float | None = None
    fs: np.ndarray | None = None
    ss: np.ndarray | None = None
    res: float | None = None
    coffset: float = 0.0
    adu_per_photon: float | None = None
    adu_per_ev: float | None = None
    max_adu: float = float("inf")
    data: str = "/data/data"
    dims: dict[int, str] = field(default_factory=dict)
    mask_edge_pixels: int = 0
    no_index: bool = False
    flags: list[PixelFlag] = field(default_factory=list)
    masks: list[_MaskDraft] = field(default_factory=lambda: [_MaskDraft()
                                                             for _ in range(MAX_MASKS)])
    saturation_map: str | None = None
    saturation_map_file: str | None = None
    saturation_line: int = 0


class _Parser:
    def __init__(self, text: str, name: str) -> None:
        self.text = text
        self.name = name
        self.warnings: list[str] = []
        self.defaults = _PanelDraft()
        self.panels: dict[str, _PanelDraft] = {}
        self.bad: dict[str, tuple[int, dict[str, object]]] = {}
        self.groups: list[tuple[str, str, int]] = []
        self.defaults_line: int | None = None  # first default line no later panel inherits
        self.top: dict[str, tuple[str, int]] = {}
        self.wavelength_key: tuple[str, str, int] | None = None

    # ------------------------------------------------------------ helpers
    def fail(self, line: int, what: str) -> GeometryError:
        return GeometryError(self.name, line, what)

    def warn(self, line: int, what: str) -> None:
        msg = f"{self.name}:{line}: {what}"
        self.warnings.append(msg)
        log.warning(msg)

    # ------------------------------------------------------------ reading
    def run(self) -> Detector:
        text = self.text.replace("\r\n", "\n").replace("\r", "\n")
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        preamble: list[str] = []
        seen_real = False
        for number, raw in enumerate(lines, start=1):
            line = raw.lstrip(" \t")
            content = line.split(";", 1)[0].strip()
            if not content:
                if not seen_real:
                    preamble.append(raw)
                continue
            seen_real = True
            self.line(content, number)
        eof = max(len(lines), 1)
        return self.finish(eof, "\n".join(preamble) + ("\n" if preamble else ""))

    def line(self, content: str, number: int) -> None:
        if "=" not in content:
            raise self.fail(number, f"Bad line in geometry file: '{content}'")
        key, value = content.split("=", 1)
        key = key.rstrip(" \t")
        value = value.strip(" \t")
        if "/" not in key:
            self.top_level(key, value, number)
            return
        owner, fieldname = key.split("/", 1)
        if owner.startswith("bad"):
            self.bad_field(owner, fieldname, value, number)
            return
        panel = self.panels.get(owner)
        if panel is None:
            panel = copy.deepcopy(self.defaults)
            panel.name = owner
            panel.line = number
            self.panels[owner] = panel
            self.defaults_line = None
        self.panel_field(panel, fieldname, value, number)

    def top_level(self, key: str, value: str, number: int) -> None:
        if key.startswith("rigid_group"):
            return
        if key.startswith("group_"):
            self.groups.append((key[len("group_"):], value, number))
            return
        if key in ("photon_energy", "wavelength", "electron_voltage"):
            self.wavelength_key = (key, value, number)
            return
        if key in _TOP_LEVEL:
            self.top[key] = (value, number)
            return
        if self.panel_field(self.defaults, key, value, number) and self.defaults_line is None:
            self.defaults_line = number

    def panel_field(self, p: _PanelDraft, key: str, value: str, number: int) -> bool:
        """Apply one panel field; False if it is not a field the parser knows."""
        where = f"panel {p.name}" if p.name else "the defaults"
        if key in _SLAB_FIELDS:
            setattr(p, key, int(c_atof(value)))
        elif key in ("corner_x", "corner_y", "coffset", "res", "adu_per_photon"):
            setattr(p, key, c_atof(value))
        elif key == "adu_per_eV":
            p.adu_per_ev = c_atof(value)
        elif key == "max_adu":
            p.max_adu = c_atof(value)
            self.warn(number, "max_adu is set in the geometry; consider --max-adu when merging"
                      " instead")
        elif key in ("fs", "ss"):
            vec = parse_direction(value)
            if vec is None:
                raise self.fail(number, f"Invalid {key} direction '{value}' for {where}"
                                " (only [sign][number]x/y/z terms, no exponents)")
            setattr(p, key, vec)
        elif key == "clen":
            raise self.fail(number, "'clen' is a top-level property in this version of"
                            " CrystFEL.")
        elif key == "data":
            p.data = value
        elif key.startswith("dim") and key != "dim":
            self.dim_field(p, key, value, number)
        elif key == "mask_edge_pixels":
            if _INT.fullmatch(value) is None or int(value) < 0:
                raise self.fail(number, f"mask_edge_pixels must be a non-negative integer,"
                                f" not '{value}'")
            p.mask_edge_pixels = int(value)
        elif key == "no_index":
            low = value.lower()
            if low in ("true", "false"):
                p.no_index = low == "true"
            elif _INT.fullmatch(value):
                p.no_index = int(value) != 0
            else:
                self.warn(number, f"Invalid value '{value}' for no_index (true, false or an"
                          " integer); ignored")
        elif key in ("flag_lessthan", "flag_morethan", "flag_equal"):
            if len(p.flags) >= MAX_FLAGS:
                raise self.fail(number, f"Too many flag entries for {where}"
                                f" (at most {MAX_FLAGS})")
            # CrystFEL stores the value as a (truncated) signed int.
            p.flags.append(PixelFlag(key[len("flag_"):], int(c_atof(value))))
        elif key in ("saturation_map", "saturation_map_file"):
            setattr(p, key, value)
            p.saturation_line = number
        elif key == "badrow_direction":
            self.warn(number, "badrow_direction is ignored in this version of CrystFEL")
        elif _MASK_FIELD.fullmatch(key) or key in _LEGACY_MASK:
            m = _MASK_FIELD.fullmatch(key)
            index, part = (int(m.group(1)), m.group(2)) if m else (0, _LEGACY_MASK[key])
            self.mask_field(p.masks[index], index, part, value, number)
        else:
            self.warn(number, f"Unrecognised field '{key}' for {where}")
            return False
        return True

    def dim_field(self, p: _PanelDraft, key: str, value: str, number: int) -> None:
        digits = key[3:]
        if not digits.isdigit() or int(digits) >= MAX_DIMS:
            self.warn(number, f"Invalid dimension number in '{key}'")
            return
        v = value.strip()
        if v not in ("fs", "ss", "%") and not v.isdigit():
            self.warn(number, f"Invalid value '{value}' for {key} (fs, ss, % or an index)")
            return
        p.dims[int(digits)] = v

    def mask_field(self, m: _MaskDraft, index: int, part: str, value: str, number: int) -> None:
        if part == "data":
            if not value.startswith("/"):
                raise self.fail(number, f"mask{index}_data must start with '/' (got '{value}')")
            m.data = value
        elif part == "file":
            m.file = value
        else:
            setattr(m, part, parse_bits(value))
        m.line = number

    def bad_field(self, owner: str, key: str, value: str, number: int) -> None:
        line, fields = self.bad.setdefault(owner, (number, {}))
        if key == "panel":
            fields["panel"] = value
        elif key in ("min_x", "max_x", "min_y", "max_y"):
            fields[key] = c_atof(value)
        elif key in _SLAB_FIELDS:
            fields[key] = int(c_atof(value))
        else:
            self.warn(number, f"Unrecognised field '{key}' for bad region {owner}")

    # ------------------------------------------------------------ units
    def value_source(self, value: str, number: int, key: str, units: dict[str, float],
                     literal_default: str | None, header_default: str | None) -> ValueSource:
        """A literal (converted to SI) or header location with its unit scale."""
        parts = value.split()
        if not parts or len(parts) > 2:
            raise self.fail(number, f"Invalid value '{value}' for {key}")
        literal = is_number(parts[0])
        if len(parts) == 2:
            unit = parts[1]
            if unit not in units:
                raise self.fail(number, f"Invalid unit '{unit}' for {key}"
                                f" (use {' or '.join(units)})")
        else:
            unit = literal_default if literal else header_default
            if unit is None:
                raise self.fail(number, f"{key} needs a unit ({' or '.join(units)})")
        scale = units[unit]
        if literal:
            return ValueSource(value=float(parts[0]) * scale)
        return ValueSource(location=parts[0], scale=scale)

    def beam(self, eof: int) -> tuple[ValueSource, str, str]:
        if self.wavelength_key is None:
            raise self.fail(eof, "Geometry file must specify the wavelength (photon_energy,"
                            " wavelength or electron_voltage)")
        key, value, number = self.wavelength_key
        if key == "photon_energy":
            src = self.value_source(value, number, key, {"eV": 1.0, "keV": 1000.0}, "eV", "eV")
            conv = ev_to_wavelength
        elif key == "wavelength":
            src = self.value_source(value, number, key, {"m": 1.0, "A": 1e-10}, None, None)
            conv = float
        else:
            src = self.value_source(value, number, key, {"V": 1.0, "kV": 1000.0}, None, None)
            conv = electron_wavelength
        if not src.from_header:
            if not src.value or src.value <= 0:
                raise self.fail(number, f"{key} must be positive (got '{value}')")
            src = ValueSource(value=conv(src.value))
        return src, key, value

    # ------------------------------------------------------------ end of file
    def finish(self, eof: int, preamble: str) -> Detector:
        if not self.panels:
            raise self.fail(eof, "No panel descriptions in geometry file")
        if self.defaults_line is not None:
            raise self.fail(self.defaults_line, "There are statements at the end of the"
                            " geometry file which have no effect (no panel is defined after"
                            " them)")
        wavelength, directive, wtext = self.beam(eof)
        if "clen" not in self.top:
            raise self.fail(eof, "Geometry file must specify clen")
        value, number = self.top["clen"]
        clen = self.value_source(value, number, "clen", {"m": 1.0, "mm": 1e-3}, "m", "mm")
        shifts = []
        for key in ("detector_shift_x", "detector_shift_y"):
            if key in self.top:
                value, number = self.top[key]
                shifts.append(self.value_source(value, number, key, {"m": 1.0, "mm": 1e-3},
                                                "m", "m"))
            else:
                shifts.append(None)
        if shifts[0] is None and shifts[1] is not None:
            self.warn(self.top["detector_shift_y"][1], "detector_shift_y without"
                      " detector_shift_x is ignored")
            shifts[1] = None
        elif shifts[0] is not None and shifts[1] is None:
            self.warn(self.top["detector_shift_x"][1], "detector_shift_x without"
                      " detector_shift_y: every frame will fail; give both or neither")
        bandwidth = 1e-8
        if "bandwidth" in self.top:
            value, number = self.top["bandwidth"]
            if is_number(value):
                bandwidth = float(value)
            else:
                self.warn(number, f"Invalid value for bandwidth '{value}'")
        peak_list_type = "auto"
        if "peak_list_type" in self.top:
            value, number = self.top["peak_list_type"]
            if value not in ("auto", "cxi", "list3"):
                raise self.fail(number, f"Invalid peak_list_type '{value}'"
                                " (auto, cxi or list3)")
            peak_list_type = value
        panels = [self.finish_panel(p) for p in self.panels.values()]
        bad_regions = [self.finish_bad(name, line, fields, panels)
                       for name, (line, fields) in self.bad.items()]
        groups = self.finish_groups(panels)
        return Detector(panels=panels, wavelength=wavelength, clen=clen, bandwidth=bandwidth,
                        detector_shift_x=shifts[0], detector_shift_y=shifts[1],
                        peak_list=self.top["peak_list"][0] if "peak_list" in self.top else None,
                        peak_list_type=peak_list_type, bad_regions=bad_regions, groups=groups,
                        source_text=self.text, source_name=self.name,
                        wavelength_directive=directive, wavelength_text=wtext,
                        preamble=preamble, warnings=self.warnings)

    def finish_panel(self, p: _PanelDraft) -> Panel:
        n, name = p.line, p.name
        for key, what in (("min_fs", "minimum FS"), ("max_fs", "maximum FS"),
                          ("min_ss", "minimum SS"), ("max_ss", "maximum SS")):
            if getattr(p, key) is None:
                raise self.fail(n, f"Please specify the {what} coordinate for panel {name}")
        if p.max_fs < p.min_fs or p.max_ss < p.min_ss:
            raise self.fail(n, f"Panel {name} has an empty pixel range (max below min)")
        for key in ("corner_x", "corner_y"):
            if getattr(p, key) is None:
                raise self.fail(n, f"Please specify the corner {key[-1].upper()} coordinate"
                                f" for panel {name}")
        for key in ("fs", "ss"):
            if getattr(p, key) is None:
                raise self.fail(n, f"Please specify the {key.upper()} direction for panel {name}")
        if p.res is None or p.res <= 0:
            raise self.fail(n, f"Please specify the pixel size for panel {name}")
        if p.adu_per_photon is None and p.adu_per_ev is None:
            raise self.fail(n, f"Please specify either adu_per_eV or adu_per_photon for panel"
                            f" {name}")
        dims = self.finish_dims(p)
        n_placeholders = p.data.count("%")
        masks = []
        for i, m in enumerate(p.masks):
            if m.data is None:
                if m.file is not None:
                    raise self.fail(m.line, f"mask{i}_file is given without mask{i}_data"
                                    f" for panel {name}")
                if m.goodbits is not None or m.badbits is not None:
                    raise self.fail(m.line, f"mask{i} good/bad bits are given without a"
                                    f" location (mask{i}_data) for panel {name}")
                continue
            if m.data.count("%") > n_placeholders:
                raise self.fail(m.line, f"mask{i}_data has more '%' placeholders than the"
                                f" data location for panel {name}")
            masks.append(MaskSpec(m.data, m.file, m.goodbits or 0, m.badbits or 0))
        if p.saturation_map is not None and p.saturation_map.count("%") > n_placeholders:
            raise self.fail(p.saturation_line, "saturation_map has more '%' placeholders than"
                            f" the data location for panel {name}")
        return Panel(name=name, min_fs=p.min_fs, max_fs=p.max_fs, min_ss=p.min_ss,
                     max_ss=p.max_ss, corner_x=p.corner_x, corner_y=p.corner_y, fs=p.fs,
                     ss=p.ss, res=p.res, coffset=p.coffset, adu_per_photon=p.adu_per_photon,
                     adu_per_ev=p.adu_per_ev, max_adu=p.max_adu, data=p.data, dims=dims,
                     mask_edge_pixels=p.mask_edge_pixels, no_index=p.no_index,
                     flags=tuple(p.flags), masks=tuple(masks), saturation_map=p.saturation_map,
                     saturation_map_file=p.saturation_map_file)

    def finish_dims(self, p: _PanelDraft) -> tuple[str, ...]:
        if not p.dims:
            return ("ss", "fs")
        dims: list[str] = []
        while len(dims) in p.dims:  # the search stops at the first undefined dim
            dims.append(p.dims[len(dims)])
        if "fs" not in dims or "ss" not in dims:
            raise self.fail(p.line, f"Panel {p.name} needs both an fs and an ss dimension"
                            f" (dims: {', '.join(dims) or 'none'})")
        if dims.count("fs") > 1 or dims.count("ss") > 1:
            raise self.fail(p.line, f"Panel {p.name} has more than one fs or ss dimension")
        if dims.index("ss") > dims.index("fs"):
            raise self.fail(p.line, f"Fast scan dimension must be higher than slow scan"
                            f" (panel {p.name})")
        return tuple(dims)

    def finish_bad(self, name: str, line: int, f: dict[str, object],
                   panels: list[Panel]) -> BadRegion:
        has_xy = any(k in f for k in ("min_x", "max_x", "min_y", "max_y"))
        has_fs = any(k in f for k in _SLAB_FIELDS)
        if has_xy and has_fs:
            raise self.fail(line, f"Bad region {name} mixes x/y and fs/ss coordinates")
        if not has_xy and not has_fs:
            raise self.fail(line, f"Bad region {name} has no coordinates")
        if has_xy:
            missing = [k for k in ("min_x", "max_x", "min_y", "max_y") if k not in f]
            if missing:
                raise self.fail(line, f"Bad region {name} lacks {', '.join(missing)}")
            if "panel" in f:
                self.warn(line, f"Bad region {name}: panel is ignored for an x/y region")
            return BadRegion(name, min_x=f["min_x"], max_x=f["max_x"], min_y=f["min_y"],
                             max_y=f["max_y"])
        missing = [k for k in _SLAB_FIELDS if k not in f]
        if missing:
            raise self.fail(line, f"Bad region {name} lacks {', '.join(missing)}")
        if "panel" not in f:
            if len(panels) != 1:
                raise self.fail(line, f"Bad region {name} needs a panel (the detector has"
                                f" {len(panels)} panels)")
            self.warn(line, f"Bad region {name} has no panel; using the only panel"
                      f" {panels[0].name}")
            panel = panels[0]
        else:
            matches = [p for p in panels if p.name == f["panel"]]
            if not matches:
                raise self.fail(line, f"Bad region {name}: no panel named '{f['panel']}'")
            panel = matches[0]
        if not (panel.min_fs <= f["min_fs"] <= f["max_fs"] <= panel.max_fs
                and panel.min_ss <= f["min_ss"] <= f["max_ss"] <= panel.max_ss):
            raise self.fail(line, f"Bad region {name} (fs {f['min_fs']}-{f['max_fs']},"
                            f" ss {f['min_ss']}-{f['max_ss']}) is outside panel {panel.name}"
                            f" (fs {panel.min_fs}-{panel.max_fs}, ss {panel.min_ss}-"
                            f"{panel.max_ss})")
        return BadRegion(name, panel=panel.name, min_fs=f["min_fs"] - panel.min_fs,
                         max_fs=f["max_fs"] - panel.min_fs, min_ss=f["min_ss"] - panel.min_ss,
                         max_ss=f["max_ss"] - panel.min_ss)

    def finish_groups(self, panels: list[Panel]) -> dict[str, list[str]]:
        names = {p.name for p in panels}
        if not self.groups:
            return {"all": [p.name for p in panels]}
        if len(self.groups) > MAX_GROUPS:
            raise self.fail(self.groups[MAX_GROUPS][2], f"Too many groups (at most {MAX_GROUPS})")
        groups: dict[str, list[str]] = {}
        for gname, value, line in self.groups:
            if gname in groups or gname in names:
                raise self.fail(line, f"Duplicate group name '{gname}'")
            members = [m.strip() for m in value.split(",") if m.strip()]
            if not members:
                raise self.fail(line, f"Group '{gname}' has no members")
            if len(members) > MAX_GROUP_MEMBERS:
                raise self.fail(line, f"Group '{gname}' has too many members"
                                f" (at most {MAX_GROUP_MEMBERS})")
            for i, m in enumerate(members):
                if m in members[:i]:
                    raise self.fail(line, f"Group '{gname}' lists '{m}' twice")
                if m not in names and m not in groups:
                    raise self.fail(line, f"Group '{gname}': unknown member '{m}' (members"
                                    " must be panels or groups defined earlier)")
            groups[gname] = members
        return groups


def parse_geometry(text: str, name: str = "<geometry>") -> Detector:
    """Parse geometry-file text; ``name`` is used in error messages and kept on the Detector."""
    return _Parser(text, name).run()


def load_geometry(path: str | Path) -> Detector:
    """Read and parse a geometry file; GeometryError("<path>:<line>: ...") if it is invalid."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise GeometryError(name, 0, f"cannot read geometry file ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return parse_geometry(text, name)
