"""File input: list files, event expansion and HDF5 reading (stacks, panel stacks, compressed
data, dtypes, headers, masks, broken files) against arrays written here with h5py."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np
import pytest

from crystream.geometry.parser import load_geometry, parse_geometry
from readers.errors import PayloadError
from readers.files import FileListSource, load_frame, read_file_list

DATA = Path(__file__).parent / "data" / "geometry"
SAMPLES = Path(__file__).parent / "data" / "samples"
HC_EV_A = 12398.4125

STACK_GEOM = """photon_energy = /entry/energy eV
clen = /entry/distance
res = 10000
adu_per_photon = 1
data = /entry/data
dim0 = %
dim1 = ss
dim2 = fs
p/min_fs = 0
p/max_fs = 63
p/min_ss = 0
p/max_ss = 47
p/corner_x = -32
p/corner_y = -24
p/fs = x
p/ss = y
"""


def test_read_file_list(tmp_path, monkeypatch):
    lst = tmp_path / "files.lst"
    lst.write_text("a.h5\n\n  b.h5 //3  \nname with spaces.h5 //\nrun.h5 run_1//2/0\n"
                   "odd.h5 notanevent\n")
    assert read_file_list(str(lst)) == [("a.h5", None), ("b.h5", "//3"),
                                        ("name with spaces.h5", "//"), ("run.h5", "run_1//2/0"),
                                        ("odd.h5 notanevent", None)]
    monkeypatch.setattr("sys.stdin", io.StringIO("x.cbf\ny.h5 //1\n"))
    assert read_file_list("-") == [("x.cbf", None), ("y.h5", "//1")]
    with pytest.raises(OSError, match="nope.lst: cannot read input list"):
        read_file_list(str(tmp_path / "nope.lst"))


def test_3d_stack_with_per_frame_headers(tmp_path):
    frames = (np.arange(5)[:, None, None] * 1000
              + np.arange(48 * 64).reshape(48, 64)[None]).astype(np.int16)
    energies = np.array([9000.0, 9100.0, 9200.0, 9300.0, 9400.0])
    with h5py.File(tmp_path / "stack.h5", "w") as fh:
        fh["/entry/data"] = frames
        fh["/entry/energy"] = energies
        fh["/entry/distance"] = np.int32(120)  # header clen without unit: mm
    (tmp_path / "files.lst").write_text("stack.h5\nstack.h5 //3\n")
    det = parse_geometry(STACK_GEOM, "stack.geom")
    src = FileListSource(str(tmp_path / "files.lst"), det, serial_start=7,
                         base_dir=str(tmp_path))
    msgs = list(src)
    assert [(m.serial, m.filename, m.event) for m in msgs] == [
        (7, "stack.h5", "//0"), (8, "stack.h5", "//1"), (9, "stack.h5", "//2"),
        (10, "stack.h5", "//3"), (11, "stack.h5", "//4"), (12, "stack.h5", "//3")]
    assert all(m.payload is None and m.path == str(tmp_path / "stack.h5") for m in msgs)
    for m in msgs:
        i = int(m.event[2:])
        frame = load_frame(m.filename, m.event, det, m.serial, path=m.path)
        assert frame.serial == m.serial and frame.event == m.event
        (pix,) = frame.data
        assert pix.dtype == np.float32 and pix.shape == (48, 64)
        np.testing.assert_array_equal(pix, frames[i].astype(np.float32))
        assert frame.wavelength == pytest.approx(HC_EV_A / energies[i] * 1e-10, rel=1e-7)
        assert frame.clen == pytest.approx(0.120)
        assert frame.headers == {"/entry/energy": energies[i], "/entry/distance": 120}
        assert isinstance(frame.headers["/entry/distance"], int)
        assert not frame.bad[0].any()


def test_4d_panel_stack_example_c(tmp_path):
    det = load_geometry(DATA / "example_C.geom")
    rng = np.random.default_rng(3)
    arr = rng.normal(100, 10, size=(3, 2, 100, 100)).astype(np.float32)
    arr[1, 1, 7, 9] = np.nan
    arr[2, 0, 0, 0] = np.inf
    with h5py.File(tmp_path / "c.h5", "w") as fh:
        fh.create_dataset("/entry/data", data=arr, chunks=(1, 1, 100, 100))
    (tmp_path / "c.lst").write_text(f"{tmp_path / 'c.h5'}\n")
    msgs = list(FileListSource(str(tmp_path / "c.lst"), det))
    assert [m.event for m in msgs] == ["//0", "//1", "//2"]
    assert [m.serial for m in msgs] == [1, 2, 3]
    for i, m in enumerate(msgs):
        frame = load_frame(m.filename, m.event, det, m.serial)
        np.testing.assert_array_equal(frame.data[0], arr[i, 0])  # pA: dim1 = 0
        np.testing.assert_array_equal(frame.data[1], arr[i, 1])  # pB: dim1 = 1
        assert frame.wavelength == pytest.approx(HC_EV_A / 9000 * 1e-10, rel=1e-7)
        n_bad = [int(b.sum()) for b in frame.bad]
        assert n_bad == {0: [0, 0], 1: [0, 1], 2: [1, 0]}[i]
    assert load_frame(msgs[1].filename, "//1", det).bad[1][7, 9]


def _write_detector_b(path: Path, slab: np.ndarray, mask: np.ndarray, compress: bool) -> None:
    kw = dict(hdf5plugin.Bitshuffle(cname="lz4")) if compress else {}
    with h5py.File(path, "w") as fh:
        fh.create_dataset("/data/data", data=slab, chunks=(128, 512), **kw)
        fh.create_dataset("/data/mask", data=mask, chunks=(128, 512), **kw)


def test_bitshuffle_lz4_detector_b(tmp_path):
    det = load_geometry(DATA / "example_B.geom")
    slab = np.arange(512 * 512, dtype=np.uint32).reshape(512, 512) % 60000
    slab = slab.astype(np.uint16)
    slab[300, 400] = 65535  # q3 (ss 256-511, fs 256-511) at panel (44, 144): > 65000
    mask = np.zeros((512, 512), np.uint8)
    mask[10, 310] = 4  # q1 at panel (10, 54): badbits 0xff
    _write_detector_b(tmp_path / "b.h5", slab, mask, compress=True)
    with h5py.File(tmp_path / "b.h5") as fh:  # the test really exercises the filter
        assert "32008" in fh["/data/data"]._filters
    frame = load_frame(str(tmp_path / "b.h5"), None, det)
    assert frame.event == "//"
    for p, pix in zip(det.panels, frame.data):
        np.testing.assert_array_equal(pix, slab[p.min_ss:p.max_ss + 1,
                                                p.min_fs:p.max_fs + 1].astype(np.float32))
    assert frame.bad[3][44, 144] and frame.bad[1][10, 54]
    assert frame.bad[1][:, 44:46].all()  # bad_col
    edge = 1020
    assert [int(b.sum()) for b in frame.bad] == [edge, edge + 508 + 1, edge, edge + 1]
    assert frame.clen == pytest.approx(0.1) and frame.wavelength == pytest.approx(1e-10)
    nomask = load_frame(str(tmp_path / "b.h5"), None, det, no_mask_data=True)
    assert not nomask.bad[1][10, 54] and nomask.bad[3][44, 144]
    empty = load_frame(str(tmp_path / "b.h5"), None, det, no_image_data=True)
    assert empty.data is None and empty.bad[1][10, 54] and not empty.bad[3][44, 144]


@pytest.mark.parametrize("dtype", ["u1", "u2", "i2", "i4", "u4", "f4", "f8"])
def test_dtypes_convert_to_float32(tmp_path, dtype):
    info = np.iinfo(dtype) if dtype[0] in "ui" else None
    values = np.linspace(info.min if info else -1e6, info.max if info else 1e6, 64 * 48)
    arr = values.astype(dtype).reshape(1, 48, 64)
    with h5py.File(tmp_path / "d.h5", "w") as fh:
        fh["/entry/data"] = arr
        fh["/entry/energy"] = 9000.0
        fh["/entry/distance"] = 100.0
    det = parse_geometry(STACK_GEOM, "g")
    (pix,) = load_frame(str(tmp_path / "d.h5"), "//0", det).data
    assert pix.dtype == np.float32
    np.testing.assert_array_equal(pix, arr[0].astype(np.float64).astype(np.float32))
    assert pix.min() == float(np.float32(arr.min())) and pix.max() == float(np.float32(arr.max()))


def test_path_placeholders_and_string_headers(tmp_path):
    text = STACK_GEOM.replace("data = /entry/data\ndim0 = %\ndim1 = ss\ndim2 = fs\n",
                              "data = /%/data\n").replace(
        "/entry/energy", "/%/energy").replace("/entry/distance", "/distance")
    det = parse_geometry(text, "g")
    with h5py.File(tmp_path / "r.h5", "w") as fh:
        for k, run in enumerate(("run_1", "run_2")):
            fh[f"/{run}/data"] = np.full((48, 64), k + 1, np.int32)
            fh[f"/{run}/energy"] = 9000.0 + k
        fh["/run_2/note"] = "hello"
        fh["/distance"] = 50.0
    (tmp_path / "l.lst").write_text(f"{tmp_path / 'r.h5'}\n")
    msgs = list(FileListSource(str(tmp_path / "l.lst"), det))
    assert [m.event for m in msgs] == ["run_1//", "run_2//"]
    f2 = load_frame(msgs[1].filename, msgs[1].event, det, copy_header=("/%/note",))
    assert (f2.data[0] == 2).all()
    assert f2.headers == {"/%/energy": 9001.0, "/distance": 50.0, "/%/note": "hello"}
    assert f2.clen == pytest.approx(0.05)


def test_broken_files_are_reported_and_skipped(tmp_path, caplog):
    det = load_geometry(SAMPLES / "sample.geom")
    good = np.arange(512 * 512, dtype=np.int32).reshape(512, 512)
    with h5py.File(tmp_path / "good.h5", "w") as fh:
        fh["/data/data"] = good
    with h5py.File(tmp_path / "wrong.h5", "w") as fh:
        fh["/other"] = good
    (tmp_path / "garbage.h5").write_bytes(b"this is not HDF5" * 10)
    (tmp_path / "l.lst").write_text("good.h5\nmissing.h5\ngarbage.h5\nwrong.h5\ngood.h5\n")
    src = FileListSource(str(tmp_path / "l.lst"), det, base_dir=str(tmp_path))
    with caplog.at_level(logging.ERROR):
        msgs = list(src)
    assert [(m.filename, m.serial) for m in msgs] == [("good.h5", 1), ("good.h5", 2)]
    assert len(src.errors) == 3
    for name, err in zip(("missing.h5", "garbage.h5", "wrong.h5"), src.errors):
        assert name in err and "\n" not in err
    assert "no panel p0 data '/data/data'" in src.errors[2]
    with pytest.raises(PayloadError) as exc:
        load_frame("wrong.h5", "//", det, path=str(tmp_path / "wrong.h5"))
    assert str(exc.value).startswith("wrong.h5 //: ") and "\n" not in str(exc.value)
    with h5py.File(tmp_path / "two.h5", "w") as fh:
        fh["/entry/data"] = np.zeros((2, 48, 64), np.int16)
    with pytest.raises(PayloadError, match=r"two.h5 //4: data for panel p is outside"):
        load_frame(str(tmp_path / "two.h5"), "//4", parse_geometry(STACK_GEOM, "g"))
    # a corrupt chunk inside a valid file
    with h5py.File(tmp_path / "chunky.h5", "w") as fh:
        fh.create_dataset("/data/data", data=good, chunks=(512, 512), compression="gzip")
        offset = fh["/data/data"].id.get_chunk_info(0).byte_offset
    raw = bytearray((tmp_path / "chunky.h5").read_bytes())
    raw[offset:offset + 64] = b"\x00" * 64
    (tmp_path / "chunky.h5").write_bytes(bytes(raw))
    with pytest.raises(PayloadError, match=r"chunky.h5 //: cannot read '/data/data'"):
        load_frame(str(tmp_path / "chunky.h5"), "//", det)


def test_missing_header_fails_the_frame(tmp_path):
    with h5py.File(tmp_path / "s.h5", "w") as fh:
        fh["/entry/data"] = np.zeros((2, 48, 64), np.int32)
        fh["/entry/energy"] = np.array([9000.0, 9100.0])
    det = parse_geometry(STACK_GEOM, "g")
    with pytest.raises(PayloadError, match=r"s.h5 //1: No such numeric field '/entry/distance'"):
        load_frame(str(tmp_path / "s.h5"), "//1", det)


# CrystFEL 0.12.0's peakfinder8 peaks for sample_00.h5 (sample.stream), slab coordinates
SAMPLE_00_PEAKS = [(439.05, 1.97), (93.50, 68.55), (148.54, 292.47), (365.54, 381.49),
                   (165.33, 135.50), (304.54, 327.47)]


def test_sample_00_pixels():
    det = load_geometry(SAMPLES / "sample.geom")
    frame = load_frame(str(SAMPLES / "sample_00.h5"), None, det, serial=1)
    (pix,) = frame.data
    with h5py.File(SAMPLES / "sample_00.h5") as fh:
        raw = fh["/data/data"][()]
    assert raw.dtype == np.int32
    np.testing.assert_array_equal(pix, raw.astype(np.float32))
    assert frame.wavelength == pytest.approx(HC_EV_A / 9500 * 1e-10, rel=1e-7)
    assert frame.clen == 0.080 and not frame.bad[0].any() and frame.headers == {}
    # README: about 1 photon per pixel of background; CrystFEL found bright peaks here
    assert np.median(pix) == pytest.approx(1.0, abs=1.0)
    for fs, ss in SAMPLE_00_PEAKS:
        i, j = int(ss), int(fs)  # corner-referenced: pixel index = truncation
        assert pix[max(i - 1, 0):i + 2, j - 1:j + 2].max() > 50, (fs, ss)


def test_decode_message_dispatches_file_messages(tmp_path):
    from readers.decode import decode_message
    from readers.options import InputOptions

    det = load_geometry(SAMPLES / "sample.geom")
    (tmp_path / "l.lst").write_text(f"{SAMPLES / 'sample_00.h5'}\n")
    (msg,) = list(FileListSource(str(tmp_path / "l.lst"), det, serial_start=5))
    frame = decode_message(msg, det, InputOptions(input=str(tmp_path / "l.lst")))
    assert (frame.serial, frame.filename, frame.event) == (5, str(SAMPLES / "sample_00.h5"), "//")
    with h5py.File(SAMPLES / "sample_00.h5") as fh:
        np.testing.assert_array_equal(frame.data[0], fh["/data/data"][()].astype(np.float32))


def test_masks_and_saturation_maps_follow_the_event(tmp_path):
    text = (DATA / "example_C.geom").read_text().replace(
        "dim0 = %", "dim0 = %\nmask0_data = /entry/mask\nmask0_badbits = 1\n"
                    "mask1_data = /static_mask\nmask1_goodbits = 2\n"
                    "saturation_map = /entry/sat")
    det = parse_geometry(text, "c_masks.geom")
    assert [len(p.masks) for p in det.panels] == [2, 2]
    mask = np.zeros((3, 2, 100, 100), np.uint8)
    mask[2, 1, 4, 5] = 1  # frame 2, panel pB only
    static = np.full((100, 100), 2, np.int16)
    static[0, 99] = 0  # lacks the good bit: bad in every frame and both panels
    sat = np.full((3, 2, 100, 100), 5000.0, np.float32)
    sat[1, 0] = 7000.0
    with h5py.File(tmp_path / "c.h5", "w") as fh:
        fh["/entry/data"] = np.ones((3, 2, 100, 100), np.float32)
        fh["/entry/mask"] = mask
        fh["/static_mask"] = static
        fh["/entry/sat"] = sat
    for ev in range(3):
        frame = load_frame(str(tmp_path / "c.h5"), f"//{ev}", det)
        for k in range(2):
            expected = {(0, 99)} | ({(4, 5)} if (ev, k) == (2, 1) else set())
            assert set(zip(*np.nonzero(frame.bad[k]))) == expected, (ev, k)
            assert (frame.saturation[k] == sat[ev, k]).all()


def test_wait_for_file_and_lazy_stdin(tmp_path, monkeypatch):
    import threading

    det = load_geometry(SAMPLES / "sample.geom")
    late = tmp_path / "late.h5"

    def write_later():
        with h5py.File(tmp_path / "tmp.h5", "w") as fh:
            fh["/data/data"] = np.full((512, 512), 3, np.int32)
        (tmp_path / "tmp.h5").rename(late)

    timer = threading.Timer(0.3, write_later)
    timer.start()
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{late}\n{tmp_path / 'never.h5'}\n"))
    src = FileListSource("-", det, wait_for_file=1.0)
    msgs = list(src)
    timer.join()
    assert [m.path for m in msgs] == [str(late)]
    assert src.errors == [f"{tmp_path / 'never.h5'}: file did not appear within 1 s"]
    assert (load_frame(msgs[0].filename, msgs[0].event, det).data[0] == 3).all()


def test_prefix_is_put_in_front_of_every_listed_name(tmp_path):
    det = load_geometry(SAMPLES / "sample.geom")
    (tmp_path / "run1").mkdir()
    with h5py.File(tmp_path / "run1" / "a.h5", "w") as fh:
        fh["/data/data"] = np.ones((512, 512), np.int32)
    (tmp_path / "l.lst").write_text("a.h5\n")
    src = FileListSource(str(tmp_path / "l.lst"), det, base_dir=str(tmp_path), prefix="run1/")
    msgs = list(src)
    assert [m.filename for m in msgs] == ["run1/a.h5"] and not src.errors
    assert msgs[0].path == str(tmp_path / "run1" / "a.h5")
