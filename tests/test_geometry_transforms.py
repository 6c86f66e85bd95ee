"""Pixel -> lab -> reciprocal space for a tilted, offset panel, against the spec's formulas (§1.6)
evaluated by hand here, not by the code under test."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from crystream.geometry.detector import (lab_position, lab_to_panel, max_resolution,
                                         peaks_to_q, scattering_vectors)
from crystream.geometry.parser import load_geometry, parse_geometry

TILTED = """wavelength = 1.0 A
clen = 100 mm
detector_shift_x = 1 mm
detector_shift_y = -0.5 mm
tilt/min_fs = 10
tilt/max_fs = 59
tilt/min_ss = 0
tilt/max_ss = 39
tilt/corner_x = 100
tilt/corner_y = -50
tilt/fs = +0.8x +0.6z
tilt/ss = +1.0y
tilt/res = 10000
tilt/coffset = 0.002
tilt/adu_per_photon = 1
"""


def test_tilted_offset_panel_by_hand():
    det = parse_geometry(TILTED, "tilt.geom")
    lam, clen, sx, sy = det.resolve_beam({})
    assert (lam, clen, sx, sy) == pytest.approx((1e-10, 0.1, 1e-3, -0.5e-3))
    p = det.panels[0]
    # position fs = 10.5, ss = 20.25 (panel-relative, corner-referenced)
    # cnx = 100 + 1e-3 / 1e-4 = 110; cny = -50 - 5 = -55; cnz = (0.1 + 0.002) / 1e-4 = 1020
    # x = 110 + 10.5*0.8 = 118.4; y = -55 + 20.25 = -34.75; z = 1020 + 10.5*0.6 = 1026.3 px
    x, y, z = 0.01184, -0.003475, 0.10263  # metres (x 1e-4 m per pixel)
    r = lab_position(p, 10.5, 20.25, clen, sx, sy)
    np.testing.assert_allclose(r, [x, y, z], rtol=1e-12)
    norm = math.sqrt(x * x + y * y + z * z)
    expected_q = [x / (lam * norm), y / (lam * norm), z / (lam * norm) - 1 / lam]
    q = scattering_vectors(p, np.array([10.5]), np.array([20.25]), clen, lam, sx, sy)[0]
    np.testing.assert_allclose(q, expected_q, rtol=1e-9)
    # |q| = 2 sin(theta) / lambda with cos(2 theta) = z / |r|
    two_theta = math.acos(z / norm)
    assert np.linalg.norm(q) == pytest.approx(2 * math.sin(two_theta / 2) / lam, rel=1e-9)
    # and back: a ray along r meets the panel at the same place
    fs, ss = lab_to_panel(p, np.array([[x, y, z]]) * 3.7, clen, sx, sy)
    assert (fs[0], ss[0]) == pytest.approx((10.5, 20.25), abs=1e-9)
    # a ray pointing away from the detector misses it
    fs, ss = lab_to_panel(p, np.array([[-x, -y, -z]]), clen, sx, sy)
    assert math.isnan(fs[0]) and math.isnan(ss[0])
    q2 = peaks_to_q(det, np.array([0]), np.array([10.5]), np.array([20.25]), clen, lam, sx, sy)
    np.testing.assert_allclose(q2[0], expected_q, rtol=1e-9)


def test_max_resolution_is_largest_corner():
    det = parse_geometry(TILTED.replace("detector_shift_x = 1 mm\ndetector_shift_y = -0.5 mm\n",
                                        ""), "t")
    # corners (fs, ss) in pixels; width 50, height 40; the far corner is (50, 0) or (50, 40)
    best = 0.0
    for fs, ss in ((0, 0), (50, 0), (0, 40), (50, 40)):
        x = (100 + 0.8 * fs) * 1e-4
        y = (-50 + ss) * 1e-4
        z = (1020 + 0.6 * fs) * 1e-4
        n = math.sqrt(x * x + y * y + z * z)
        qq = math.sqrt((x / n) ** 2 + (y / n) ** 2 + (z / n - 1) ** 2) / 1e-10
        best = max(best, qq)
    assert max_resolution(det, 0.1, 1e-10) == pytest.approx(best, rel=1e-12)


def test_sample_detector_resolution_matches_readme():
    # sample README: 5.55 A at the middle of the panel edges, 4.0 A in the corners
    det = load_geometry(Path(__file__).parent / "data" / "samples" / "sample.geom")
    lam, clen, _, _ = det.resolve_beam({})
    assert 1e10 / max_resolution(det, clen, lam) == pytest.approx(4.0, abs=0.05)
    q_edge = scattering_vectors(det.panels[0], np.array([512.0]), np.array([256.0]), clen, lam)
    assert 1e10 / np.linalg.norm(q_edge) == pytest.approx(5.55, abs=0.02)
