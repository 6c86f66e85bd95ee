"""A corpus of malformed payloads: each gives one clear one-line PayloadError naming the frame."""

from __future__ import annotations

import gzip

import msgpack
import numpy as np
import pytest
import seedee

from readers.decode import decode_message
from readers.errors import PayloadError
from readers.options import InputOptions
from tests.test_readers_decode import (cbf_bytes, hdf5_image, make_detector, msg, numpy_map,
                                       onda_msgpack, truth_image)

IMG = truth_image()
GOOD_MP = onda_msgpack(IMG, peaks=([1.0], [2.0], [3.0]))
GOOD_H5 = hdf5_image({"detector_data": ("gzip", IMG), "beam_energy": 9000.0,
                      "detector_distance": 100.0})
SEEDEE_BUF, SEEDEE_META = seedee.serialize(IMG, seedee.COMPRESSION_BITSHUFFLE)
GOOD_CBF = cbf_bytes(IMG.astype(np.int32))


def mp(event) -> bytes:
    return msgpack.packb(event, use_bin_type=True)


def event(**changes):
    e = {"detector_data": numpy_map(IMG), "beam_energy": 9300.0, "detector_distance": 120.0,
         "peak_list": {"fs": [1.0, 2.0], "ss": [1.0, 2.0], "intensity": [5.0, 6.0]}}
    for k, v in changes.items():
        if v is None:
            e.pop(k)
        else:
            e[k] = v
    return e


def array_map(**changes):
    m = {"type": "<f4", "shape": [48, 64], "data": IMG.tobytes()}
    for k, v in changes.items():
        if v is None:
            m.pop(k)
        else:
            m[k] = v
    return m


def corrupt_h5() -> bytes:
    """Valid superblock and metadata, garbage in the gzip chunk."""
    buf = bytearray(hdf5_image({"detector_data": ("gzip", truth_image(seed=9) + 1000.0),
                                "beam_energy": 9000.0, "detector_distance": 100.0}))
    start = len(buf) - 3000
    buf[start:start + 1500] = bytes(np.random.default_rng(3).integers(0, 256, 1500, dtype=np.uint8))
    return bytes(buf)


# (case id, data format or None for detection, payload, metadata, options, expected text)
CASES = [
    ("random-bytes-msgpack", "msgpack", bytes(range(7, 200)), None, {}, "MessagePack|not a map"),
    ("random-bytes-hdf5", "hdf5", bytes(range(256)) * 4, None, {}, "couldn't open HDF5"),
    ("random-bytes-detect", None, b"\x00\x17" + bytes(300), None, {}, "cannot tell the payload"),
    ("empty-payload", None, b"", None, {}, "cannot tell the payload"),
    ("truncated-msgpack", "msgpack", GOOD_MP[:len(GOOD_MP) // 2], None, {}, "unpack failed"),
    ("truncated-msgpack-header", "msgpack", GOOD_MP[:3], None, {}, "unpack failed"),
    ("msgpack-not-a-map", "msgpack", mp(42), None, {}, "not a map or array"),
    ("msgpack-empty-array", "msgpack", mp([]), None, {}, "No array elements"),
    ("msgpack-array-of-int", "msgpack", mp([1, 2]), None, {}, "first element"),
    ("missing-data-key", "msgpack", mp(event(detector_data=None)), None, {},
     "Couldn't find 'detector_data'"),
    ("data-not-a-map", "msgpack", mp(event(detector_data=[1, 2, 3])), None, {}, "is not a map"),
    ("missing-type", "msgpack", mp(event(detector_data=array_map(type=None))), None, {},
     "'type' not found"),
    ("type-not-string", "msgpack", mp(event(detector_data=array_map(type=7))), None, {},
     "'type' isn't a string"),
    ("unknown-dtype", "msgpack", mp(event(detector_data=array_map(type="<q9"))), None, {},
     "unrecognised data type"),
    ("complex-dtype", "msgpack", mp(event(detector_data=array_map(type="<c8"))), None, {},
     "unsupported data type"),
    ("missing-shape", "msgpack", mp(event(detector_data=array_map(shape=None))), None, {},
     "'shape' not found"),
    ("shape-not-array", "msgpack", mp(event(detector_data=array_map(shape="48x64"))), None, {},
     "'shape' isn't an array"),
    ("shape-1d", "msgpack", mp(event(detector_data=array_map(shape=[3072]))), None, {},
     "wrong number of dimensions"),
    ("shape-negative", "msgpack", mp(event(detector_data=array_map(shape=[-48, -64]))), None, {},
     "non-negative integers"),
    ("shape-wrong-size", "msgpack", mp(event(detector_data=array_map(shape=[64, 64]))), None, {},
     "needs"),
    ("panel-outside-array", "msgpack",
     mp(event(detector_data=array_map(shape=[48, 32], data=IMG[:, :32].tobytes()))), None, {},
     "outside data array bounds"),
    ("data-truncated", "msgpack", mp(event(detector_data=array_map(data=IMG.tobytes()[:-4]))),
     None, {}, "bytes but shape"),
    ("data-is-str", "msgpack", mp(event(detector_data=array_map(data="abc"))), None, {},
     "isn't binary"),
    ("missing-header", "msgpack", mp(event(beam_energy=None)), None, {},
     "beam_energy"),
    ("header-is-list", "msgpack", mp(event(detector_distance=[1, 2])), None, {},
     "unsupported MsgPack type"),
    ("header-bad-string", "msgpack", mp(event(beam_energy="lots")), None, {},
     "can't be converted"),
    ("peaks-unequal", "msgpack", mp(event(peak_list={"fs": [1.0], "ss": [1.0, 2.0],
                                                     "intensity": [3.0]})), None,
     {"peaks": "msgpack"}, "equal size"),
    ("peaks-not-map", "msgpack", mp(event(peak_list=[[1.0, 2.0, 3.0]])), None,
     {"peaks": "msgpack"}, "wrong structure"),
    ("peaks-missing-intensity", "msgpack",
     mp(event(peak_list={"fs": [1.0], "ss": [2.0]})), None, {"peaks": "msgpack"},
     "wrong structure"),
    ("peaks-text", "msgpack", mp(event(peak_list={"fs": ["a"], "ss": [2.0], "intensity": [1.0]})),
     None, {"peaks": "msgpack"}, "non-numeric"),
    ("peaks-missing", "msgpack", mp(event(peak_list=None)), None, {"peaks": "msgpack"},
     "Peak list object not found"),
    ("peaks-from-hdf5-payload-for-msgpack", "hdf5", GOOD_H5, None, {"peaks": "msgpack"},
     "needs a msgpack payload"),
    ("truncated-hdf5", "hdf5", GOOD_H5[:len(GOOD_H5) // 2], None, {}, "HDF5"),
    ("corrupt-hdf5-chunk", "hdf5", corrupt_h5(), None, {}, "cannot read|HDF5"),
    ("hdf5-missing-dataset", "hdf5", hdf5_image({"other": IMG, "beam_energy": 1.0,
                                                 "detector_distance": 1.0}), None, {},
     "no panel data 'detector_data'"),
    ("hdf5-header-array", "hdf5", hdf5_image({"detector_data": IMG, "beam_energy": np.ones(3),
                                              "detector_distance": 1.0}), None, {},
     "only single values"),
    ("hdf5-string-data", "hdf5", hdf5_image({"detector_data": np.bytes_(b"x"), "beam_energy": 1.0,
                                             "detector_distance": 1.0}), None, {},
     "non-numeric"),
    ("hdf5-wrong-rank", "hdf5", hdf5_image({"detector_data": IMG[None], "beam_energy": 1.0,
                                            "detector_distance": 1.0}), None, {},
     "dimensions"),
    ("seedee-no-metadata", "seedee", SEEDEE_BUF.tobytes(), None, {}, "without metadata"),
    ("seedee-meta-not-string", "seedee", SEEDEE_BUF.tobytes(), {"_data_format": 5}, {},
     "isn't a string"),
    ("seedee-meta-not-json", "seedee", SEEDEE_BUF.tobytes(), {"_data_format": "{nope"}, {},
     "not valid seedee JSON"),
    ("seedee-truncated", "seedee", SEEDEE_BUF.tobytes()[:100], {"_data_format": SEEDEE_META}, {},
     "deserialisation failed"),
    ("seedee-1d", "seedee", seedee.serialize(np.arange(10, dtype=np.uint16), 0)[0].tobytes(),
     {"_data_format": seedee.serialize(np.arange(10, dtype=np.uint16), 0)[1]}, {},
     "unexpected number of dimensions"),
    ("cbf-truncated", "cbf", GOOD_CBF[:len(GOOD_CBF) // 2], None, {}, "truncated|ends before"),
    ("cbf-no-binary", "cbf", b"###CBF: VERSION 1.5\r\ndata_x\r\n", None, {},
     "no binary section"),
    ("gzip-corrupt", "cbf", gzip.compress(GOOD_CBF)[:200], None, {}, "corrupt gzipped CBF"),
]


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_malformed_payload_gives_one_line_error_naming_frame(case):
    name, fmt, payload, metadata, extra, expected = case
    det = make_detector()
    options = InputOptions(data_format=fmt, **extra)
    with pytest.raises(PayloadError) as info:
        decode_message(msg(payload, metadata, serial=31), det, options)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("ZMQdata //31 (serial 31): ")
    assert __import__("re").search(expected, text), text


def test_corpus_is_large_enough():
    assert len(CASES) >= 30


@pytest.mark.parametrize("fmt,good", [("msgpack", GOOD_MP), ("hdf5", GOOD_H5), ("cbf", GOOD_CBF),
                                      (None, GOOD_MP)])
def test_every_truncation_and_bit_flip_is_a_payload_error_or_a_frame(fmt, good):
    """Fuzz: no decoder may raise anything but PayloadError, whatever the bytes."""
    det = make_detector()
    rng = np.random.default_rng(11)
    variants = [good[:n] for n in rng.integers(0, len(good), 25)]
    for _ in range(25):
        b = bytearray(good)
        idx = rng.integers(0, len(b), 8)
        for i in idx:
            b[i] ^= int(rng.integers(1, 256))
        variants.append(bytes(b))
    for v in variants:
        try:
            decode_message(msg(v), det, InputOptions(data_format=fmt))
        except PayloadError as exc:
            assert "\n" not in str(exc)
