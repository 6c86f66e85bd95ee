"""CBF file input: byte-offset encoding checked byte by byte, round trips (plain and gzipped),
panels cut from the CBF slab, CBF mask files, and agreement with fabio when it is installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crystream.geometry.parser import parse_geometry
from readers.cbf_file import encode_cbf
from readers.cbf_format import decode_cbf
from readers.errors import PayloadError
from readers.files import FileListSource, load_frame

GEOM = """photon_energy = 12000
clen = 0.2
res = 5814
adu_per_photon = 1
left/min_fs = 0
left/max_fs = 49
left/min_ss = 0
left/max_ss = 59
left/corner_x = -50
left/corner_y = -30
left/fs = x
left/ss = y
right/min_fs = 50
right/max_fs = 99
right/min_ss = 0
right/max_ss = 59
right/corner_x = 2
right/corner_y = -30
right/fs = x
right/ss = y
"""


def _binary(cbf: bytes) -> bytes:
    start = cbf.index(b"\x0c\x1a\x04\xd5") + 4
    return cbf[start:cbf.index(b"\r\n--CIF-BINARY-FORMAT-SECTION----", start)]


def test_byte_offset_bytes_by_hand():
    img = np.array([[0, 5, 200], [70000, -3, 3000000003]], dtype=np.int64)
    # deltas 0, 5, 195, 69800, -70003, 3000000006 -> 1, 1, 1+2, 1+2+4, 1+2+4, 1+2+4+8 bytes
    expected = bytes.fromhex("00" "05" "80c300" "800080a8100100" "8000808deefeff"
                             "8000800000008006" "5ed0b200000000")
    cbf = encode_cbf(img)
    assert _binary(cbf) == expected
    assert b"X-Binary-Size: 34\r\n" in cbf
    back = decode_cbf(cbf, "hand.cbf")
    assert back.shape == (2, 3)
    np.testing.assert_array_equal(back, img)


@pytest.mark.parametrize("gz", [False, True])
def test_cbf_round_trip(gz):
    rng = np.random.default_rng(7)
    img = rng.poisson(3.0, size=(97, 131)).astype(np.int32)
    img[5, 7] = 1_000_000
    img[5, 8] = -1  # Pilatus-style dead pixel
    img[50, 60] = 2**31 - 1
    cbf = encode_cbf(img, gz=gz)
    assert (cbf[:2] == b"\x1f\x8b") == gz
    back = decode_cbf(cbf, "x.cbf")
    assert back.dtype == np.int32
    np.testing.assert_array_equal(back, img)


def test_cbf_files_through_the_file_source(tmp_path):
    det = parse_geometry(GEOM, "cbf.geom")
    slab = (np.arange(60 * 100).reshape(60, 100) * 7 % 5000).astype(np.int32)
    slab[10, 75] = -2
    (tmp_path / "a.cbf").write_bytes(encode_cbf(slab))
    (tmp_path / "b.cbf.gz").write_bytes(encode_cbf(slab + 1, gz=True))
    (tmp_path / "bad.cbf").write_bytes(b"###CBF: VERSION 1.5\r\nnothing binary here\r\n")
    (tmp_path / "l.lst").write_text("a.cbf\nbad.cbf\nb.cbf.gz\n")
    src = FileListSource(str(tmp_path / "l.lst"), det, serial_start=3, base_dir=str(tmp_path))
    msgs = list(src)  # a CBF always has the single event //
    assert [(m.filename, m.event, m.serial) for m in msgs] == [
        ("a.cbf", "//", 3), ("bad.cbf", "//", 4), ("b.cbf.gz", "//", 5)]
    frames = {}
    for m in msgs:
        try:
            frames[m.filename] = load_frame(m.filename, m.event, det, m.serial, path=m.path)
        except PayloadError as exc:
            assert str(exc).startswith("bad.cbf //: not a CBF")
    assert set(frames) == {"a.cbf", "b.cbf.gz"}
    for name, offset in (("a.cbf", 0), ("b.cbf.gz", 1)):
        left, right = frames[name].data
        np.testing.assert_array_equal(left, slab[:, :50] + offset)
        np.testing.assert_array_equal(right, slab[:, 50:] + offset)
        assert right[10, 25] == -2 + offset
    assert frames["a.cbf"].serial == 3 and frames["b.cbf.gz"].serial == 5


def test_cbf_mask_file_and_headers(tmp_path):
    mask = np.zeros((60, 100), np.int32)
    mask[3, 4] = 1
    mask[20, 90] = 1
    (tmp_path / "mask.cbf").write_bytes(encode_cbf(mask))
    text = GEOM + (f"left/mask0_data = /m\nleft/mask0_file = {tmp_path / 'mask.cbf'}\n"
                   "left/mask0_badbits = 1\n"
                   f"right/mask0_data = /m\nright/mask0_file = {tmp_path / 'mask.cbf'}\n"
                   "right/mask0_badbits = 1\n")
    det = parse_geometry(text, "m.geom")
    (tmp_path / "img.cbf").write_bytes(encode_cbf(np.ones((60, 100), np.int32)))
    frame = load_frame(str(tmp_path / "img.cbf"), None, det)
    assert list(zip(*np.nonzero(frame.bad[0]))) == [(3, 4)]
    assert list(zip(*np.nonzero(frame.bad[1]))) == [(20, 40)]
    hdet = parse_geometry(GEOM.replace("clen = 0.2", "clen = /distance"), "h.geom")
    with pytest.raises(PayloadError, match="img.cbf //: Couldn't find header value"):
        load_frame(str(tmp_path / "img.cbf"), None, hdet)


def test_agrees_with_fabio(tmp_path):
    fabio = pytest.importorskip("fabio")
    from fabio.cbfimage import CbfImage

    rng = np.random.default_rng(11)
    img = rng.integers(-5, 70000, size=(40, 33)).astype(np.int32)
    CbfImage(data=img).write(str(tmp_path / "fabio.cbf"))
    np.testing.assert_array_equal(decode_cbf((tmp_path / "fabio.cbf").read_bytes(), "f"), img)
    (tmp_path / "ours.cbf").write_bytes(encode_cbf(img))
    np.testing.assert_array_equal(fabio.open(str(tmp_path / "ours.cbf")).data, img)
