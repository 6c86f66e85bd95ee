"""Geometry files: the spec's examples, units, inheritance, quirks and every fatal line (§1.11)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from crystream.geometry.parser import GeometryError, load_geometry, parse_geometry

DATA = Path(__file__).parent / "data" / "geometry"
SAMPLES = Path(__file__).parent / "data" / "samples"
HC_EV_A = 12398.4125  # hc/e in eV*Angstrom (spec §0)


def test_example_a_single_panel():
    det = load_geometry(DATA / "example_A.geom")
    assert det.source_name.endswith("example_A.geom")
    assert det.source_text == (DATA / "example_A.geom").read_text()
    assert det.wavelength_directive == "photon_energy"
    assert det.resolve_wavelength() == pytest.approx(HC_EV_A / 12400 * 1e-10, rel=1e-7)
    assert det.clen.resolve() == pytest.approx(0.120)
    assert det.bandwidth == pytest.approx(1e-8)
    assert det.preamble.startswith("; test detector A")
    (p,) = det.panels
    assert p.name == "det0"
    assert (p.min_fs, p.max_fs, p.min_ss, p.max_ss) == (0, 1023, 0, 1023)
    assert p.shape == (1024, 1024)
    assert (p.corner_x, p.corner_y) == (-512.0, -512.0)
    np.testing.assert_array_equal(p.fs, [1, 0, 0])
    np.testing.assert_array_equal(p.ss, [0, 1, 0])
    assert p.res == pytest.approx(13333.333)
    assert p.pixel_pitch == pytest.approx(75e-6, rel=1e-6)
    assert p.adu_per_photon == 1.0 and p.adu_per_ev is None
    assert p.data == "/entry/data/data" and p.dims == ("ss", "fs")
    assert p.coffset == 0.0 and p.max_adu == math.inf
    (b,) = det.bad_regions
    assert b.is_xy and (b.min_x, b.max_x, b.min_y, b.max_y) == (-12, 12, -12, 12)
    assert det.groups == {"all": ["det0"]}
    assert det.warnings == []


def test_example_a_stack_dims():
    text = (DATA / "example_A.geom").read_text().replace(
        "data = /entry/data/data\n", "data = /entry/data/data\ndim0 = %\ndim1 = ss\ndim2 = fs\n")
    assert parse_geometry(text, "A3").panels[0].dims == ("%", "ss", "fs")


def test_example_b_quadrants():
    det = load_geometry(DATA / "example_B.geom")
    assert det.wavelength_directive == "wavelength"
    assert det.resolve_wavelength() == pytest.approx(1e-10)
    assert det.clen.resolve() == pytest.approx(0.100)  # 100 mm
    assert [p.name for p in det.panels] == ["q0", "q1", "q2", "q3"]
    slabs = [(p.min_fs, p.max_fs, p.min_ss, p.max_ss) for p in det.panels]
    assert slabs == [(0, 255, 0, 255), (256, 511, 0, 255), (0, 255, 256, 511),
                     (256, 511, 256, 511)]
    corners = [(p.corner_x, p.corner_y) for p in det.panels]
    assert corners == [(-261, -261), (5, -261), (-261, 5), (5, 5)]
    for p in det.panels:  # every default reaches every panel
        assert p.res == 10000 and p.adu_per_ev == 0.001 and p.adu_per_photon is None
        assert p.max_adu == 60000 and p.mask_edge_pixels == 1
        assert [(f.kind, f.value) for f in p.flags] == [("morethan", 65000)]
        assert [(m.data, m.file, m.goodbits, m.badbits) for m in p.masks] == [
            ("/data/mask", None, 0, 0xFF)]
        # 12.398 ADU/photon at 1 A = 12398.4 eV
        assert p.gain(HC_EV_A) == pytest.approx(12.3984, rel=1e-4)
    assert [p.coffset for p in det.panels] == [0, 0, 0, 0.0005]
    (b,) = det.bad_regions
    # slab fs 300-301 on q1 (min_fs 256) -> panel-relative 44-45
    assert (b.panel, b.min_fs, b.max_fs, b.min_ss, b.max_ss) == ("q1", 44, 45, 0, 255)
    assert det.groups == {"bottom": ["q0", "q1"], "top": ["q2", "q3"], "all": ["bottom", "top"]}
    assert any("max_adu" in w for w in det.warnings)


def test_example_c_panel_stack():
    det = load_geometry(DATA / "example_C.geom")
    # photon_energy = 9000 without unit -> eV -> 1.3776e-10 m (spec §0)
    assert det.resolve_wavelength() == pytest.approx(1.3776e-10, rel=1e-4)
    assert det.resolve_wavelength() == pytest.approx(HC_EV_A / 9000 * 1e-10, rel=1e-7)
    assert det.clen.resolve() == 0.05
    pa, pb = det.panels
    assert pa.dims == ("%", "0", "ss", "fs") and pb.dims == ("%", "1", "ss", "fs")
    assert pa.data == pb.data == "/entry/data"
    assert (pa.corner_x, pa.corner_y, pb.corner_x, pb.corner_y) == (-100, -105, -100, 5)
    assert pa.res == 5000 and pa.adu_per_photon == 1


def test_sample_geom():
    det = load_geometry(SAMPLES / "sample.geom")
    (p,) = det.panels
    assert det.resolve_wavelength() == pytest.approx(1.3051e-10, rel=1e-4)
    assert det.bandwidth == 0.003 and det.clen.resolve() == 0.080
    assert p.shape == (512, 512) and (p.corner_x, p.corner_y) == (-256, -256)
    assert p.data == "/data/data" and p.adu_per_photon == 1


def test_header_locations_and_units():
    text = """photon_energy = /instrument/photon_energy_eV keV
clen = /instrument/distance
detector_shift_x = /shift/x mm
detector_shift_y = /shift/y
res = 10000
adu_per_photon = 1
p/min_fs = 0
p/max_fs = 9
p/min_ss = 0
p/max_ss = 9
p/corner_x = 0
p/corner_y = 0
p/fs = x
p/ss = y
"""
    det = parse_geometry(text, "h.geom")
    assert det.header_locations() == ["/instrument/photon_energy_eV", "/instrument/distance",
                                      "/shift/x", "/shift/y"]
    headers = {"/instrument/photon_energy_eV": 12.4, "/instrument/distance": 100,
               "/shift/x": 2, "/shift/y": 0.001}
    lam, clen, sx, sy = det.resolve_beam(headers)
    assert lam == pytest.approx(HC_EV_A / 12400 * 1e-10, rel=1e-7)
    assert clen == pytest.approx(0.1)  # header clen without unit is mm
    assert sx == pytest.approx(0.002) and sy == pytest.approx(0.001)  # shift default is m
    with pytest.raises(KeyError, match="distance"):
        det.resolve_beam({"/instrument/photon_energy_eV": 12.4})
    clen_m = parse_geometry(text.replace("/instrument/distance", "/d m"), "h")
    assert clen_m.resolve_beam({**headers, "/d": 0.25})[1] == 0.25


@pytest.mark.parametrize("line, expected", [
    ("photon_energy = 9000 eV", HC_EV_A / 9000 * 1e-10),
    ("photon_energy = 9 keV", HC_EV_A / 9000 * 1e-10),
    ("wavelength = 1.5 A", 1.5e-10),
    ("wavelength = 1.5e-10 m", 1.5e-10),
    ("electron_voltage = 300 kV", 1.9687e-12),
    ("electron_voltage = 300000 V", 1.9687e-12),
])
def test_wavelength_directives(line, expected):
    det = parse_geometry(BASE.replace("photon_energy = 9000 eV", line), "w.geom")
    assert det.resolve_wavelength() == pytest.approx(expected, rel=1e-4)


def test_wavelength_from_header_per_directive():
    for line, value, expected in (("wavelength = /lam A", 2.0, 2e-10),
                                  ("electron_voltage = /v kV", 300, 1.9687e-12),
                                  ("photon_energy = /e", 9000, 1.3776e-10)):
        det = parse_geometry(BASE.replace("photon_energy = 9000 eV", line), "w")
        key = line.split()[2]
        assert det.resolve_beam({key: value})[0] == pytest.approx(expected, rel=1e-4)


def test_last_wavelength_directive_wins():
    det = parse_geometry("wavelength = 2 A\n" + BASE, "w")
    assert det.resolve_wavelength() == pytest.approx(HC_EV_A / 9000 * 1e-10, rel=1e-7)


BASE = """photon_energy = 9000 eV
clen = 0.1
res = 10000
adu_per_photon = 1
p0/min_fs = 0
p0/max_fs = 99
p0/min_ss = 0
p0/max_ss = 99
p0/corner_x = -50
p0/corner_y = -50
p0/fs = x
p0/ss = y
"""


def test_defaults_are_copied_at_first_mention():
    text = """photon_energy = 9000
clen = 0.1
res = 10000
adu_per_photon = 1
a/min_fs = 0
res = 5000
mask_edge_pixels = 2
b/min_fs = 0
a/res = 2000
""" + "".join(f"{n}/{k} = {v}\n" for n in "ab" for k, v in (
        ("max_fs", 9), ("min_ss", 0), ("max_ss", 9), ("corner_x", 0), ("corner_y", 0),
        ("fs", "x"), ("ss", "y")))
    a, b = parse_geometry(text, "d").panels
    assert (a.res, a.mask_edge_pixels) == (2000, 0)
    assert (b.res, b.mask_edge_pixels) == (5000, 2)


def test_flag_values_are_truncated_signed_ints():
    det = parse_geometry(BASE + "p0/flag_lessthan = 0.5\np0/flag_morethan = 65534.9\n"
                         "p0/flag_equal = -3.7\n", "f")
    assert [(f.kind, f.value) for f in det.panels[0].flags] == [
        ("lessthan", 0), ("morethan", 65534), ("equal", -3)]


def test_masks_legacy_names_and_hex_bits():
    det = parse_geometry(BASE + "p0/mask = /m0\np0/mask_file = masks.h5\np0/mask_good = 0x3\n"
                         "p0/mask_bad = 12\np0/mask7_data = /m7\np0/mask7_badbits = 0x100\n"
                         "p0/saturation_map = /sat\np0/saturation_map_file = sat.h5\n", "m")
    p = det.panels[0]
    assert [(m.data, m.file, m.goodbits, m.badbits) for m in p.masks] == [
        ("/m0", "masks.h5", 3, 12), ("/m7", None, 0, 256)]
    assert (p.saturation_map, p.saturation_map_file) == ("/sat", "sat.h5")


def test_lexical_rules_and_non_fatal_warnings():
    text = ("; preamble\r\n\r\n" + BASE.replace("\n", "\r\n").replace("p0/corner_x", "\t  p0/corner_x")
            + "p0/no_index = true ; comment\n"
            + "bandwidth = lots\np0/unknown_thing = 3\nrigid_group_a = p0\n"
            + "rigid_group_collection_c = a\np0/badrow_direction = x\np0/dim0 = zz\n"
            + "bad1/colour = red\nbad1/min_x = 1\nbad1/max_x = 2\nbad1/min_y=1\nbad1/max_y =2\n")
    det = parse_geometry(text, "lex.geom")
    p = det.panels[0]
    assert p.corner_x == -50 and p.no_index and p.dims == ("ss", "fs")
    assert det.bandwidth == 1e-8
    assert det.preamble == "; preamble\n\n"
    joined = "\n".join(det.warnings)
    for what in ("bandwidth", "unknown_thing", "badrow_direction", "dim0", "colour"):
        assert what in joined
    # CRLF counts as one line break: the bandwidth line is line 16 of the file
    assert "lex.geom:16: Invalid value for bandwidth" in joined
    assert not any("rigid_group" in w for w in det.warnings)


def test_group_prefixed_panel_names_are_panels():
    det = parse_geometry(BASE.replace("p0/", "group_x/"), "g")
    assert det.panels[0].name == "group_x"


def _drop(text: str, prefix: str) -> str:
    return "".join(l for l in text.splitlines(keepends=True) if not l.startswith(prefix))


def _flags(n: int) -> str:
    return "".join("p0/flag_lessthan = 0\n" for _ in range(n))


GROUP_LINES = "group_g0 = p0\n" + "".join(f"group_g{i} = g{i-1}\n" for i in range(1, 513))

# (geometry text, line the error must name, words the message must contain)
REJECTED = [
    (BASE.replace("photon_energy = 9000 eV", "wavelength = 1.0"), 1, "unit"),
    (_drop(BASE, "res"), 4, "pixel size"),
    (_drop(BASE, "p0/min_fs"), 5, "minimum FS"),
    (_drop(BASE, "p0/max_ss"), 5, "maximum SS"),
    (_drop(BASE, "p0/corner_y"), 5, "corner Y"),
    (_drop(BASE, "p0/fs"), 5, "FS direction"),
    (_drop(BASE, "p0/ss"), 5, "SS direction"),
    (_drop(BASE, "adu_per_photon"), 4, "adu_per_eV or adu_per_photon"),
    (BASE + "p0/clen = 0.1\n", 13, "top-level property"),
    (BASE + "bad1/min_x = 0\nbad1/min_fs = 0\n", 13, "mixes"),
    (BASE + "bad1/panel = p0\n", 13, "no coordinates"),
    (BASE + "bad1/panel = p0\nbad1/min_fs = 0\nbad1/max_fs = 100\nbad1/min_ss = 0\n"
     "bad1/max_ss = 9\n", 13, "outside panel p0"),
    (BASE + "bad1/panel = nope\nbad1/min_fs = 0\nbad1/max_fs = 1\nbad1/min_ss = 0\n"
     "bad1/max_ss = 9\n", 13, "no panel named"),
    (BASE + "p0/fs = 1e-3x\n", 13, "Invalid fs direction"),
    (BASE + "p0/ss = +1.0y +q\n", 13, "Invalid ss direction"),
    (BASE + "res = 10000\n", 13, "no effect"),
    ("".join(BASE.splitlines(keepends=True)[:4]), 4, "No panel descriptions"),
    (BASE.replace("p0/max_fs = 99", "p0/max_fs 99"), 6, "Bad line in geometry file"),
    (_drop(BASE, "photon_energy"), 11, "must specify the wavelength"),
    (_drop(BASE, "clen"), 11, "must specify clen"),
    (BASE.replace("9000 eV", "9000 J"), 1, "Invalid unit 'J' for photon_energy"),
    (BASE.replace("9000 eV", "9000 eV extra"), 1, "Invalid value"),
    (BASE.replace("clen = 0.1", "clen = 10 cm"), 2, "Invalid unit 'cm' for clen"),
    (BASE.replace("photon_energy = 9000 eV", "wavelength = 1 nm"), 1, "Invalid unit 'nm'"),
    (BASE.replace("photon_energy = 9000 eV", "wavelength = /lam"), 1, "needs a unit"),
    (BASE.replace("photon_energy = 9000 eV", "electron_voltage = 300"), 1, "needs a unit"),
    (BASE.replace("photon_energy = 9000 eV", "electron_voltage = 3 MV"), 1, "Invalid unit"),
    (BASE + _flags(17), 29, "Too many flag entries"),
    (BASE + "p0/mask_edge_pixels = 1.5\n", 13, "mask_edge_pixels"),
    (BASE + "p0/mask0_data = data/mask\n", 13, "must start with '/'"),
    (BASE + "p0/mask3_file = m.h5\n", 13, "mask3_file is given without mask3_data"),
    (BASE + "p0/mask_good = 0x1\n", 13, "without a location"),
    (BASE + "p0/mask1_badbits = 1\n", 13, "without a location"),
    (BASE + "p0/mask0_data = /a/%/m\n", 13, "placeholders"),
    (BASE + "p0/dim0 = ss\n", 5, "both an fs and an ss dimension"),
    (BASE + "p0/dim0 = %\np0/dim1 = fs\np0/dim3 = ss\n", 5, "both an fs and an ss"),
    (BASE + "p0/dim0 = fs\np0/dim1 = ss\n", 5, "Fast scan dimension must be higher"),
    (BASE + "group_a = p0\ngroup_a = p0\n", 14, "Duplicate group name 'a'"),
    (BASE + "group_p0 = p0\n", 13, "Duplicate group name 'p0'"),
    (BASE + "group_a = \n", 13, "no members"),
    (BASE + "group_a = p0,p0\n", 13, "twice"),
    (BASE + "group_a = p0,q9\n", 13, "unknown member 'q9'"),
    (BASE + "group_all = a\ngroup_a = p0\n", 13, "unknown member 'a'"),
    (BASE + "group_a = " + ",".join(["p0"] + [f"g{i}" for i in range(64)]) + "\n", 13,
     "too many members"),
    (BASE + GROUP_LINES, 525, "Too many groups"),
]


@pytest.mark.parametrize("text, line, words", REJECTED,
                         ids=[f"{i:02d}-{w}" for i, (_, _, w) in enumerate(REJECTED)])
def test_rejected(text, line, words):
    with pytest.raises(GeometryError) as err:
        parse_geometry(text, "bad.geom")
    assert str(err.value).startswith(f"bad.geom:{line}: "), str(err.value)
    assert words in str(err.value)
    assert "\n" not in str(err.value)


def test_base_is_valid_and_group_order_is_free():
    parse_geometry(BASE, "ok")  # the negative cases differ from a valid file
    det = parse_geometry("group_a = p0\n" + BASE + "group_all = a\n", "ok")
    assert det.groups == {"a": ["p0"], "all": ["a"]}
    det = parse_geometry(BASE + "bad1/min_fs = 1\nbad1/max_fs = 2\nbad1/min_ss = 3\n"
                         "bad1/max_ss = 4\n", "one")  # no panel: allowed with one panel
    assert det.bad_regions[0].panel == "p0" and det.warnings


def test_load_geometry_missing_file(tmp_path):
    with pytest.raises(GeometryError, match="nope.geom:0: cannot read"):
        load_geometry(tmp_path / "nope.geom")
