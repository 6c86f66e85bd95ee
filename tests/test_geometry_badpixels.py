"""Bad-pixel masks (spec §1.5) on detector B and friends, against pixels chosen by hand."""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import pytest

from crystream.geometry.badpixels import bad_pixel_masks, highres_masks
from crystream.geometry.parser import load_geometry, parse_geometry

DATA = Path(__file__).parent / "data" / "geometry"
SAMPLES = Path(__file__).parent / "data" / "samples"


def _edge(n=256):
    e = np.zeros((n, n), dtype=bool)
    e[0, :] = e[-1, :] = e[:, 0] = e[:, -1] = True
    return e


def test_detector_b_masks():
    det = load_geometry(DATA / "example_B.geom")
    data = [np.zeros((256, 256), dtype=np.float32) for _ in range(4)]
    masks = [[np.zeros((256, 256), dtype=np.uint16)] for _ in range(4)]
    data[0][10, 20] = 65001  # > 65000: bad
    data[0][11, 20] = 65000  # strict comparison: good
    data[2][50, 50] = np.nan  # non-finite: bad
    data[2][51, 50] = np.inf
    masks[1][0][100, 100] = 0x01  # inside badbits 0xff: bad
    masks[1][0][101, 100] = 0x100  # outside badbits: good
    bad = bad_pixel_masks(det, data, masks)
    exp = [_edge() for _ in range(4)]
    exp[0][10, 20] = True
    exp[2][50, 50] = exp[2][51, 50] = True
    exp[1][100, 100] = True
    exp[1][:, 44:46] = True  # bad_col: slab fs 300-301 on q1 (min_fs 256)
    for b, e in zip(bad, exp):
        assert b.dtype == bool and b.shape == (256, 256)
        np.testing.assert_array_equal(b, e)
    assert [int(b.sum()) for b in bad] == [1021, 1020 + 508 + 1, 1022, 1020]
    # --no-mask-data drops only the mask
    bad2 = bad_pixel_masks(det, data, None, no_mask_data=True)
    assert not bad2[1][100, 100] and bad2[1][50, 44] and bad2[0][10, 20]
    # a mask read from the image must be supplied
    with pytest.raises(ValueError, match="q0: mask '/data/mask'"):
        bad_pixel_masks(det, data, None)


def test_no_index_marks_whole_panel():
    text = (DATA / "example_B.geom").read_text() + "q3/no_index = true\n"
    det = parse_geometry(text, "b")
    data = [np.zeros((256, 256), dtype=np.float32) for _ in range(4)]
    masks = [[np.zeros((256, 256), dtype=np.int32)] for _ in range(4)]
    bad = bad_pixel_masks(det, data, masks)
    assert bad[3].all() and bad[2].sum() == 1020


def test_xy_region_strict_and_shifted():
    det = load_geometry(DATA / "example_A.geom")
    (bad,) = bad_pixel_masks(det, [np.zeros((1024, 1024), np.float32)])
    # corner-referenced x = -512 + fs, strictly inside (-12, 12): fs = 501..523
    exp = np.zeros((1024, 1024), bool)
    exp[501:524, 501:524] = True
    np.testing.assert_array_equal(bad, exp)
    # a 1 mm detector shift in x moves the corner by 1e-3 / 75e-6 = 13.33 px:
    # -498.67 + fs in (-12, 12): fs = 487..510
    text = (DATA / "example_A.geom").read_text().replace(
        "bandwidth", "detector_shift_x = 1 mm\ndetector_shift_y = 0 m\nbandwidth")
    (bad,) = bad_pixel_masks(parse_geometry(text, "s"), [np.zeros((1024, 1024), np.float32)])
    exp = np.zeros((1024, 1024), bool)
    exp[501:524, 487:511] = True
    np.testing.assert_array_equal(bad, exp)


def test_flag_quirks():
    text = (SAMPLES / "sample.geom").read_text() + ("p0/flag_lessthan = 0.5\n"
                                                 "p0/flag_equal = 7.9\n")
    det = parse_geometry(text, "f")
    d = np.ones((512, 512), np.float32)
    d[0, 0] = -0.2   # < 0 (0.5 truncated to 0): bad
    d[0, 1] = 0.2    # not < 0: good
    d[0, 2] = 6.6    # rint 7 == 7 (7.9 truncated): bad
    d[0, 3] = 7.6    # rint 8: good
    (bad,) = bad_pixel_masks(det, [d])
    assert np.flatnonzero(bad).tolist() == [0, 2]


def test_external_mask_file_good_and_bad_bits(tmp_path):
    path = tmp_path / "mask.h5"
    m = np.full((512, 512), 0b001, dtype=np.uint8)  # bit 0 = "good"
    m[5, 6] = 0b000  # lacks the good bit: bad
    m[7, 8] = 0b101  # has bad bit 2: bad
    m[9, 9] = 0b011  # bit 1 is neither: good
    with h5py.File(path, "w") as fh:
        fh["/m"] = m
    text = (SAMPLES / "sample.geom").read_text() + (
        f"p0/mask0_data = /m\np0/mask0_file = {path}\np0/mask0_goodbits = 0x1\n"
        "p0/mask0_badbits = 0x4\n")
    det = parse_geometry(text, "m")
    (bad,) = bad_pixel_masks(det, [np.zeros((512, 512), np.float32)])
    assert sorted(zip(*np.nonzero(bad))) == [(5, 6), (7, 8)]
    (bad,) = bad_pixel_masks(det, [np.zeros((512, 512), np.float32)], no_mask_data=True)
    assert not bad.any()


def test_highres_cut_at_pixel_corners():
    det = load_geometry(SAMPLES / "sample.geom")
    lam = 12398.4125 / 9500 * 1e-10
    highres = 4.5e-10
    (bad,) = bad_pixel_masks(det, [np.zeros((512, 512), np.float32)], highres=highres,
                             clen=0.08, wavelength=lam)
    # by hand for a few pixels: corner (fs, ss) -> lab -> |q| = 2 sin(theta)/lambda
    pitch = 1 / 13333.333
    for fs, ss in ((0, 0), (256, 256), (0, 256), (40, 40), (60, 60), (511, 30)):
        x, y, z = (-256 + fs) * pitch, (-256 + ss) * pitch, 0.08
        two_theta = math.atan2(math.hypot(x, y), z)
        q = 2 * math.sin(two_theta / 2) / lam
        assert bad[ss, fs] == (q >= 1 / highres), (fs, ss)
    assert bad[0, 0] and not bad[256, 256]
    assert highres_masks(det, highres, 0.08, lam)[0] is highres_masks(det, highres, 0.08, lam)[0]
