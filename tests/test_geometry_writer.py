"""Geometry writer: parse -> write -> parse gives the same detector, for every kind of field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crystream.geometry.detector import Detector
from crystream.geometry.parser import parse_geometry
from crystream.geometry.writer import write_geometry

DATA = Path(__file__).parent / "data" / "geometry"
SAMPLES = Path(__file__).parent / "data" / "samples"

FULL = """; a detector with a bit of everything
electron_voltage = /beam/hv kV
bandwidth = 0.002
clen = /det/distance
detector_shift_x = 1.5 mm
detector_shift_y = /det/sy m
peak_list = /entry/peaks
peak_list_type = cxi
res = 5000
adu_per_eV = 0.0042
data = /entry/%/data
dim0 = %
dim1 = ss
dim2 = fs
t0/min_fs = 0
t0/max_fs = 49
t0/min_ss = 0
t0/max_ss = 29
t0/corner_x = -60.25
t0/corner_y = 12.5
t0/fs = +0.999848x +0.017452y -0.0001z
t0/ss = -0.017452x +0.999848y
t0/coffset = 0.00125
t0/max_adu = 16000
t0/mask_edge_pixels = 3
t0/flag_lessthan = -10
t0/flag_equal = 65535
t0/mask0_data = /entry/%/mask
t0/mask0_goodbits = 0x1
t0/mask0_badbits = 0x6
t0/mask5_data = /pixel_mask
t0/mask5_file = /tmp/mask.h5
t0/saturation_map = /sat
t0/saturation_map_file = sat.h5
t1/min_fs = 50
t1/max_fs = 99
t1/min_ss = 0
t1/max_ss = 29
t1/corner_x = 0
t1/corner_y = 0
t1/fs = -y
t1/ss = +x
t1/no_index = 1
t1/adu_per_photon = 3
bad_a/min_x = -5.5
bad_a/max_x = 5
bad_a/min_y = -2
bad_a/max_y = 2.25
bad_b/panel = t1
bad_b/min_fs = 60
bad_b/max_fs = 61
bad_b/min_ss = 10
bad_b/max_ss = 29
group_left = t0
group_all = left,t1
"""


def assert_same_detector(a: Detector, b: Detector) -> None:
    """Field-by-field equality; direction vectors to the 6 decimals of the written form."""
    assert a.wavelength_directive == b.wavelength_directive
    for name in ("wavelength", "clen", "detector_shift_x", "detector_shift_y"):
        sa, sb = getattr(a, name), getattr(b, name)
        if sa is None or sb is None:
            assert sa is sb is None, name
            continue
        assert sa.location == sb.location and sa.scale == pytest.approx(sb.scale), name
        assert (sa.value is None) == (sb.value is None), name
        if sa.value is not None:
            assert sa.value == pytest.approx(sb.value, rel=1e-12), name
    assert (a.bandwidth, a.peak_list, a.peak_list_type) == (b.bandwidth, b.peak_list,
                                                              b.peak_list_type)
    assert a.groups == b.groups
    assert a.bad_regions == b.bad_regions
    assert len(a.panels) == len(b.panels)
    for p, q in zip(a.panels, b.panels):
        for f in p.__dataclass_fields__:
            if f in ("fs", "ss"):
                np.testing.assert_allclose(getattr(p, f), getattr(q, f), atol=5e-7)
            else:
                assert getattr(p, f) == getattr(q, f), (p.name, f)


@pytest.mark.parametrize("path", [DATA / "example_A.geom", DATA / "example_B.geom",
                                  DATA / "example_C.geom", SAMPLES / "sample.geom"],
                         ids=lambda p: p.name)
def test_examples_round_trip(path):
    first = parse_geometry(path.read_text(), path.name)
    text = write_geometry(first)
    second = parse_geometry(text, "written")
    assert_same_detector(first, second)
    assert write_geometry(second) == text  # and the written form is a fixed point


def test_full_round_trip():
    first = parse_geometry(FULL, "full.geom")
    # the values the round trip must keep, checked against the text above
    t0, t1 = first.panels
    assert t0.dims == ("%", "ss", "fs") and t0.data == "/entry/%/data"
    assert first.detector_shift_x.value == pytest.approx(1.5e-3)
    assert first.detector_shift_y.location == "/det/sy" and first.detector_shift_y.scale == 1
    assert first.clen.location == "/det/distance" and first.clen.scale == 1e-3
    assert first.wavelength.location == "/beam/hv" and first.wavelength.scale == 1000
    np.testing.assert_allclose(t1.fs, [0, -1, 0])
    np.testing.assert_allclose(t0.fs, [0.999848, 0.017452, -0.0001])
    assert t1.no_index and t1.adu_per_photon == 3 and t1.adu_per_ev == 0.0042
    text = write_geometry(first)
    assert "t0/fs = 0.999848x +0.017452y -0.000100z" in text
    assert "bad_b/min_fs = 60" in text  # slab coordinates again
    second = parse_geometry(text, "written")
    assert_same_detector(first, second)
    assert text.startswith("; a detector with a bit of everything\n")


@pytest.mark.parametrize("line", ["photon_energy = 9300 eV", "wavelength = 1.2 A",
                                  "electron_voltage = 200 kV", "photon_energy = /e keV",
                                  "wavelength = /w A"])
def test_wavelength_directive_round_trip(line):
    text = FULL.replace("electron_voltage = /beam/hv kV", line)
    first = parse_geometry(text, "w")
    second = parse_geometry(write_geometry(first), "w2")
    assert_same_detector(first, second)
    if not first.wavelength.from_header:
        assert second.resolve_wavelength() == pytest.approx(first.resolve_wavelength(),
                                                            rel=1e-13)
