"""Encoders: decoded directly with msgpack/h5py/seedee (and by readers.decode), every pixel,
header and peak must come back; peaks must sit on the true spots."""

from __future__ import annotations

import io
import json

import h5py
import msgpack
import numpy as np
import pytest
import seedee

from crystream.geometry.parser import parse_geometry
from crystream.simulate import (LYSOZYME, MONOCLINIC_C, SimulationConfig, multipanel_detector,
                                simple_detector, simulate_frame)
from readers.encode import encode_frame, encode_hdf5, encode_msgpack, encode_seedee

STACKED_GEOM = """\
photon_energy = 9000 eV
clen = 0.05 m
res = 5000
adu_per_photon = 1
data = /entry/data
pA/dim0 = 0
pA/dim1 = ss
pA/dim2 = fs
pA/min_fs = 0
pA/max_fs = 99
pA/min_ss = 0
pA/max_ss = 99
pA/corner_x = -100
pA/corner_y = -105
pA/fs = x
pA/ss = y
pB/dim0 = 1
pB/dim1 = ss
pB/dim2 = fs
pB/min_fs = 0
pB/max_fs = 99
pB/min_ss = 0
pB/max_ss = 99
pB/corner_x = -100
pB/corner_y = 5
pB/fs = x
pB/ss = y
"""


@pytest.fixture(scope="module")
def quad():
    det = multipanel_detector(peak_list="peak_list", header_values=True)
    cfg = SimulationConfig(det, MONOCLINIC_C, photon_energy=9500.0, clen=0.09,
                           crystal_size=0.2e-6)
    return det, simulate_frame(cfg, seed=5)


def _msgpack_array(obj: dict) -> np.ndarray:
    assert set(obj) == {b"nd", b"type", b"kind", b"shape", b"data"}  # msgpack-numpy, bin keys
    assert isinstance(obj[b"type"], str) and isinstance(obj[b"data"], bytes)
    return np.frombuffer(obj[b"data"], dtype=np.dtype(obj[b"type"])).reshape(obj[b"shape"])


def _panel_views(slab, det):
    return [slab[p.min_ss:p.max_ss + 1, p.min_fs:p.max_fs + 1] for p in det.panels]


def test_msgpack_onda_layout_pixels_headers_and_peaks(quad):
    det, frame = quad
    peaks = frame.truth.peak_list(min_photons=30)
    assert len(peaks) > 10
    (buf,) = encode_frame(frame, det, "msgpack", peaks)
    top = msgpack.unpackb(buf, raw=False, strict_map_key=False)
    assert isinstance(top, list) and len(top) == 1  # OnDA: a one-map list
    main = top[0]
    slab = _msgpack_array(main["/data/data"])
    assert slab.dtype == np.dtype("<f4") and slab.shape == (512, 512)
    for got, want in zip(_panel_views(slab, det), frame.data):
        assert np.array_equal(got, want)
    assert main["beam_energy"] == pytest.approx(9500.0)
    assert main["detector_distance"] == pytest.approx(90.0)
    pk = main["peak_list"]
    assert len(pk["fs"]) == len(pk["ss"]) == len(pk["intensity"]) == len(peaks)
    # slab pixel-index coordinates: +0.5 and minus the panel origin give the true spot
    for fs, ss, panel in zip(pk["fs"], pk["ss"], peaks.panel):
        p = det.panels[panel]
        r = np.concatenate([c.reflections.fs for c in frame.truth.crystals]), \
            np.concatenate([c.reflections.ss for c in frame.truth.crystals])
        d = np.hypot(r[0] - (fs + 0.5 - p.min_fs), r[1] - (ss + 0.5 - p.min_ss))
        assert d.min() < 1e-9


def test_msgpack_plain_map_and_int32():
    det = simple_detector(n=64)
    frame = simulate_frame(SimulationConfig(det, LYSOZYME), seed=1)
    main = msgpack.unpackb(encode_msgpack(frame, det, dtype="<i4", onda_list=False),
                           raw=False, strict_map_key=False)
    arr = _msgpack_array(main["/data/data"])
    assert arr.dtype == np.dtype("<i4") and np.array_equal(arr, frame.data[0])
    with pytest.raises(ValueError, match="<f8"):
        encode_msgpack(frame, det, dtype="<f8")


def test_hdf5_image_pixels_headers_and_list3_peaks(quad):
    det, frame = quad
    peaks = frame.truth.peak_list()
    det_h5 = multipanel_detector(peak_list="/data/peaks", header_values=True)
    (buf,) = encode_frame(frame, det_h5, "hdf5", peaks)
    assert buf[:8] == b"\x89HDF\r\n\x1a\n"
    with h5py.File(io.BytesIO(buf), "r") as f:
        slab = f["/data/data"][()]
        for got, want in zip(_panel_views(slab, det), frame.data):
            assert np.array_equal(got, want)
        assert f["beam_energy"][()] == pytest.approx(9500.0)
        assert f["detector_distance"][()] == pytest.approx(90.0)
        table = f["/data/peaks"][()]
    assert table.shape == (len(peaks), 3)
    slab_fs = peaks.fs + np.array([p.min_fs for p in det.panels])[peaks.panel] - 0.5
    assert np.allclose(table[:, 0], slab_fs) and np.allclose(table[:, 2], peaks.intensity)


def test_hdf5_fixed_index_dims_make_a_stack():
    det = parse_geometry(STACKED_GEOM, "stacked.geom")
    frame = simulate_frame(SimulationConfig(det, LYSOZYME), seed=2)
    with h5py.File(io.BytesIO(encode_hdf5(frame, det, compression="gzip")), "r") as f:
        stack = f["/entry/data"][()]
    assert stack.shape == (2, 100, 100)
    assert np.array_equal(stack[0], frame.data[0]) and np.array_equal(stack[1], frame.data[1])
    with pytest.raises(ValueError, match="msgpack"):
        encode_frame(frame, det, "msgpuck")


def test_seedee_buffer_and_metadata(quad):
    det, frame = quad
    buf, meta = encode_frame(frame, det, "seedee")
    info = json.loads(meta)  # the second ZeroMQ frame is seedee's own meta JSON
    assert info["protocol"] == "seedee" and info["array"]["ndims"] == 2
    arr = seedee.deserialize(buf, meta.decode())
    assert arr.dtype == np.dtype("<f8")  # CrystFEL reads f8 but not f4
    for got, want in zip(_panel_views(arr, det), frame.data):
        assert np.array_equal(got, want)
    # ASAP::O user-metadata form: the meta embedded as a string, plus the header values
    buf2, meta2 = encode_seedee(frame, det, compression=seedee.COMPRESSION_BITSHUFFLE,
                                asapo_metadata=True)
    metadata = json.loads(meta2)
    assert json.loads(metadata["_data_format"])["compression"] == 32008
    assert metadata["beam_energy"] == pytest.approx(9500.0)
    assert len(buf2) < len(buf)
    assert np.array_equal(seedee.deserialize(buf2, metadata["_data_format"]), arr)


@pytest.mark.parametrize("fmt", ["msgpack", "hdf5", "seedee"])
def test_readers_decode_reads_what_we_encode(quad, fmt):
    decode = pytest.importorskip("readers.decode")
    from readers.message import RawMessage
    from readers.options import InputOptions
    det, frame = quad
    peaks = frame.truth.peak_list() if fmt == "msgpack" else None
    parts = encode_frame(frame, det, fmt, peaks)
    if fmt == "seedee":  # seedee has no header reader: the ASAP::O metadata carries them
        parts = encode_seedee(frame, det, asapo_metadata=True)
    metadata = json.loads(parts[1]) if fmt == "seedee" else {}
    options = InputOptions(data_format=fmt, peaks="msgpack" if peaks is not None else "zaef")
    got = decode.decode_message(RawMessage(1, "ZMQdata", "//1", parts[0], None, metadata),
                                det, options)
    for a, b in zip(got.data, frame.data):
        assert np.array_equal(a, b)
    assert got.wavelength == pytest.approx(frame.wavelength, rel=1e-9)
    assert got.clen == pytest.approx(frame.clen, rel=1e-9)
    if peaks is not None:  # the decoder leaves the +0.5 to the peak stage
        assert np.allclose(got.peaks.fs + 0.5, peaks.fs) and np.array_equal(got.peaks.panel,
                                                                            peaks.panel)
