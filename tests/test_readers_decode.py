"""Payload decoders against known pixels, headers and peaks (bytes built here from the spec layouts)."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import h5py
import msgpack
import numpy as np
import pytest
import seedee

from crystream.constants import ev_to_wavelength
from crystream.geometry.detector import Detector, MaskSpec, Panel, ValueSource
from readers.decode import decode_message, detect_format
from readers.errors import PayloadError
from readers.message import RawMessage
from readers.options import InputOptions

DATA = Path(__file__).parent / "data" / "samples"


# ----------------------------------------------------------------- builders (used by other tests)

def make_detector(panels=(("p0", 0, 63, 0, 47, "detector_data", ("ss", "fs")),),
                  photon_energy="beam_energy", clen="detector_distance",
                  peak_list: str | None = "peak_list", masks=None) -> Detector:
    """A small detector; photon_energy/clen are header names (eV, mm) or literal floats (eV, m)."""
    ps = []
    for i, (name, f0, f1, s0, s1, data, dims) in enumerate(panels):
        ps.append(Panel(name=name, min_fs=f0, max_fs=f1, min_ss=s0, max_ss=s1,
                        corner_x=-32.0 + 100 * i, corner_y=-24.0, fs=np.array([1.0, 0, 0]),
                        ss=np.array([0, 1.0, 0]), res=10000.0, data=data, dims=tuple(dims),
                        masks=tuple((masks or {}).get(name, ()))))
    if isinstance(photon_energy, str):
        wl = ValueSource(location=photon_energy, scale=1.0)
    else:
        wl = ValueSource(value=ev_to_wavelength(photon_energy))
    cl = (ValueSource(location=clen, scale=1e-3) if isinstance(clen, str)
          else ValueSource(value=clen))
    return Detector(panels=ps, wavelength=wl, clen=cl, peak_list=peak_list,
                    wavelength_directive="photon_energy")


def numpy_map(arr: np.ndarray, bin_keys: bool = True) -> dict:
    """msgpack-numpy's layout of an array: nd, type (str), kind, shape, data (bin)."""
    k = (lambda s: s.encode()) if bin_keys else (lambda s: s)
    return {k("nd"): True, k("type"): arr.dtype.str, k("kind"): b"", k("shape"): list(arr.shape),
            k("data"): arr.tobytes()}


def onda_msgpack(arr: np.ndarray, energy=9300.0, distance=120.5, peaks=None, wrap=True,
                 key="detector_data") -> bytes:
    """An OnDA 'ondaframedata' frame: a one-element list holding the event map."""
    event = {key: numpy_map(arr), "beam_energy": energy, "detector_distance": distance,
             "timestamp": 1.5, "frame_is_hit": True}
    if peaks is not None:
        event["peak_list"] = {"fs": list(map(float, peaks[0])), "ss": list(map(float, peaks[1])),
                              "intensity": list(map(float, peaks[2])), "num_peaks": len(peaks[0])}
    return msgpack.packb([event] if wrap else event, use_bin_type=True)


def hdf5_image(datasets: dict[str, object]) -> bytes:
    """A complete HDF5 file image holding the given datasets (h5py core driver, no disk)."""
    bio = io.BytesIO()
    with h5py.File(bio, "w") as f:
        for path, value in datasets.items():
            if isinstance(value, tuple) and value[0] == "gzip":
                f.create_dataset(path, data=value[1], compression="gzip", shuffle=True)
            else:
                f[path] = value
    return bio.getvalue()


def msg(payload: bytes, metadata: dict | None = None, serial: int = 7) -> RawMessage:
    return RawMessage(serial=serial, filename="ZMQdata", event=f"//{serial}", payload=payload,
                      metadata=metadata or {})


def truth_image(shape=(48, 64), dtype=np.float32, seed=1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 250, size=shape).astype(dtype)


# ----------------------------------------------------------------- msgpack

@pytest.mark.parametrize("dtype", ["<f4", "<i4", "<u2", "<i2", "<u4", "<f8", "|u1", ">u2", ">f4",
                                   ">i4"])
def test_msgpack_every_dtype_gives_the_pixels(dtype):
    det = make_detector()
    img = truth_image(dtype=np.dtype(dtype))
    frame = decode_message(msg(onda_msgpack(img)), det, InputOptions(data_format="msgpack"))
    assert frame.data[0].dtype == np.float32
    np.testing.assert_array_equal(frame.data[0], img.astype(np.float32))
    assert frame.wavelength == pytest.approx(ev_to_wavelength(9300.0))
    assert frame.clen == pytest.approx(0.1205)
    assert frame.headers == {"beam_energy": 9300.0, "detector_distance": 120.5}
    assert (frame.serial, frame.filename, frame.event) == (7, "ZMQdata", "//7")


def test_msgpack_two_panels_cut_from_one_slab_and_nan_is_bad():
    det = make_detector(panels=(("a", 0, 31, 0, 47, "detector_data", ("ss", "fs")),
                                ("b", 32, 63, 0, 47, "detector_data", ("ss", "fs"))))
    img = truth_image()
    img[5, 40] = np.nan
    img[6, 3] = np.inf
    frame = decode_message(msg(onda_msgpack(img)), det, InputOptions(data_format="msgpack"))
    np.testing.assert_array_equal(frame.data[0][:, :], img[:, :32])
    assert np.isnan(frame.data[1][5, 8])
    assert frame.bad[1][5, 8] and frame.bad[0][6, 3]
    assert frame.bad[0].sum() == 1 and frame.bad[1].sum() == 1


def test_msgpack_int_data_never_marked_bad_and_plain_map_accepted():
    det = make_detector()
    img = truth_image(dtype=np.int32)
    frame = decode_message(msg(onda_msgpack(img, wrap=False)), det,
                           InputOptions(data_format="msgpack"))
    assert not frame.bad[0].any()


def test_msgpack_3d_panel_stack_by_fixed_index():
    det = make_detector(panels=(("m0", 0, 63, 0, 47, "detector_data", ("0", "ss", "fs")),
                                ("m1", 0, 63, 0, 47, "detector_data", ("1", "ss", "fs"))))
    stack = np.stack([truth_image(seed=3), truth_image(seed=4)]).astype("<u2")
    frame = decode_message(msg(onda_msgpack(stack)), det, InputOptions(data_format="msgpack"))
    np.testing.assert_array_equal(frame.data[0], stack[0])
    np.testing.assert_array_equal(frame.data[1], stack[1])


def test_msgpack_exact_key_matching_and_str_keys():
    """Key 'beam' must not answer a lookup of 'beam_energy' (CrystFEL's prefix bug)."""
    det = make_detector()
    img = truth_image()
    event = {"": 1.0, "beam": 1.0, "detector_data": numpy_map(img, bin_keys=False),
             "beam_energy": 12000, "detector_distance": "150.0"}
    frame = decode_message(msg(msgpack.packb(event)), det, InputOptions(data_format="msgpack"))
    assert frame.wavelength == pytest.approx(ev_to_wavelength(12000.0))
    assert frame.clen == pytest.approx(0.150)
    assert frame.headers["beam_energy"] == 12000 and isinstance(frame.headers["beam_energy"], int)


def test_msgpack_trailing_bytes_ignored():
    det = make_detector()
    img = truth_image()
    frame = decode_message(msg(onda_msgpack(img) + b"\xc1garbage"), det,
                           InputOptions(data_format="msgpack"))
    np.testing.assert_array_equal(frame.data[0], img)


def test_msgpack_peaks_mapped_to_panels_without_half_pixel_shift():
    det = make_detector(panels=(("a", 0, 31, 0, 47, "detector_data", ("ss", "fs")),
                                ("b", 32, 63, 0, 47, "detector_data", ("ss", "fs"))))
    fs = np.array([10.0, 40.25, 31.7, 70.0, 31.2])  # 31.7 + 0.5 lands on panel b; 70 on none
    ss = np.array([5.0, 20.5, 3.0, 3.0, 47.6])      # 47.6 + 0.5 is off both panels
    inten = np.array([100.0, 200.0, 300.0, 400.0, 500.0])
    payload = onda_msgpack(truth_image(), peaks=(fs, ss, inten))
    frame = decode_message(msg(payload), det, InputOptions(data_format="msgpack", peaks="msgpack"))
    p = frame.peaks
    assert list(p.panel) == [0, 1, 1]
    np.testing.assert_allclose(p.fs, [10.0, 8.25, -0.3])
    np.testing.assert_allclose(p.ss, [5.0, 20.5, 3.0])
    np.testing.assert_allclose(p.intensity, [100.0, 200.0, 300.0])
    # without the shift, 31.7 stays on panel a
    frame = decode_message(msg(payload), det, InputOptions(data_format="msgpack", peaks="msgpack",
                                                           half_pixel_shift=False))
    assert list(frame.peaks.panel) == [0, 1, 0, 0]


def test_no_image_data_keeps_peaks_om_layout():
    """OM's hits-only answer: no detector_data at all, float64 peak lists, int peak arrays ok."""
    det = make_detector()
    event = {"peak_list": {"num_peaks": 2, "fs": [3, 12.5], "ss": [4, 40.0],
                           "intensity": [55.0, 66.0], "snr": [9.0, 8.0]},
             "beam_energy": 9300.0, "detector_distance": 120.5, "event_id": "run7:12"}
    frame = decode_message(msg(msgpack.packb(event, use_bin_type=True)), det,
                           InputOptions(data_format="msgpack", peaks="msgpack",
                                        no_image_data=True, copy_header=("event_id",)))
    assert frame.data is None
    np.testing.assert_allclose(frame.peaks.fs, [3.0, 12.5])  # ints read as numbers, not garbled
    assert frame.headers["event_id"] == "run7:12"


# ----------------------------------------------------------------- HDF5

def test_hdf5_sample_file_image_gzip_shuffle():
    buf = (DATA / "sample_03.h5").read_bytes()
    det = make_detector(panels=(("p0", 0, 511, 0, 511, "/data/data", ("ss", "fs")),),
                        photon_energy=9500.0, clen=0.080)
    frame = decode_message(msg(buf), det, InputOptions(data_format="hdf5"))
    with h5py.File(DATA / "sample_03.h5", "r") as f:
        truth = f["/data/data"][()]
    np.testing.assert_array_equal(frame.data[0], truth.astype(np.float32))
    assert frame.data[0].max() == 37022  # the sample README's brightest pixel
    assert frame.wavelength == pytest.approx(1.3051e-10, rel=1e-4)


def test_hdf5_headers_fixed_dims_peaks_and_payload_mask():
    stack = np.stack([truth_image(seed=5), truth_image(seed=6)]).astype(np.float64)
    stack[1, 2, 2] = np.nan
    mask = np.zeros((48, 64), dtype=np.uint16)
    mask[10, 11] = 4
    list3 = np.array([[5.0, 6.0, 70.0, 0.0], [60.2, 30.1, 80.0, 0.0]])
    buf = hdf5_image({"/entry/data": ("gzip", stack), "/entry/mask": mask,
                      "/LCLS/photon_energy_eV": np.float32(9100.0),
                      "/LCLS/detector_distance": np.array([[130]]),
                      "/LCLS/name": np.bytes_(b"run12"), "/entry/peaks": list3,
                      "/cxi/nPeaks": np.array([2]), "/cxi/peakXPosRaw": np.array([[5.0, 60.2, 0]]),
                      "/cxi/peakYPosRaw": np.array([[6.0, 30.1, 0]]),
                      "/cxi/peakTotalIntensity": np.array([[70.0, 80.0, 0]])})
    masks = {"m1": (MaskSpec(data="/entry/mask", goodbits=0, badbits=4),)}
    det = make_detector(panels=(("m1", 0, 63, 0, 47, "/entry/data", ("1", "ss", "fs")),),
                        photon_energy="/LCLS/photon_energy_eV", clen="/LCLS/detector_distance",
                        peak_list="/entry/peaks", masks=masks)
    opts = InputOptions(data_format="hdf5", peaks="hdf5", copy_header=("/LCLS/name",))
    frame = decode_message(msg(buf), det, opts)
    np.testing.assert_array_equal(frame.data[0][3:], stack[1, 3:].astype(np.float32))
    assert frame.bad[0][2, 2] and frame.bad[0][10, 11] and frame.bad[0].sum() == 2
    assert frame.wavelength == pytest.approx(ev_to_wavelength(9100.0))
    assert frame.clen == pytest.approx(0.130)
    assert frame.headers["/LCLS/name"] == "run12"
    np.testing.assert_allclose(frame.peaks.fs, [5.0, 60.2])
    det_cxi = make_detector(panels=(("m1", 0, 63, 0, 47, "/entry/data",
                                            ("1", "ss", "fs")),),
                            photon_energy="/LCLS/photon_energy_eV",
                            clen="/LCLS/detector_distance", peak_list="/cxi")
    frame = decode_message(msg(buf), det_cxi, InputOptions(data_format="hdf5", peaks="cxi"))
    np.testing.assert_allclose(frame.peaks.ss, [6.0, 30.1])
    np.testing.assert_allclose(frame.peaks.intensity, [70.0, 80.0])
    # --no-mask-data skips the payload mask
    frame = decode_message(msg(buf), det, InputOptions(data_format="hdf5", no_mask_data=True))
    assert frame.bad[0].sum() == 1


# ----------------------------------------------------------------- seedee, CBF

@pytest.mark.parametrize("compression", [seedee.COMPRESSION_NONE, seedee.COMPRESSION_BITSHUFFLE,
                                         seedee.COMPRESSION_LZ4, seedee.COMPRESSION_DEFLATE])
@pytest.mark.parametrize("dtype", [np.uint16, np.int32, np.float32, np.float64])
def test_seedee_with_asapo_metadata(compression, dtype):
    img = truth_image(dtype=dtype)
    buf, meta = seedee.serialize(img, compression)
    det = make_detector(photon_energy="photon_energy_ev", clen=0.09)
    user_meta = {"_data_format": meta, "photon_energy_ev": 8000.0}
    frame = decode_message(msg(buf.tobytes(), user_meta), det, InputOptions(data_format="seedee"))
    np.testing.assert_array_equal(frame.data[0], img.astype(np.float32))
    assert frame.wavelength == pytest.approx(ev_to_wavelength(8000.0))
    assert frame.clen == pytest.approx(0.09)


def cbf_bytes(img: np.ndarray) -> bytes:
    """A byte-offset CBF written by fabio (an independent writer)."""
    import tempfile

    from fabio.cbfimage import CbfImage
    with tempfile.NamedTemporaryFile(suffix=".cbf") as tmp:
        CbfImage(data=img).write(tmp.name)
        return Path(tmp.name).read_bytes()


def test_cbf_and_gzipped_cbf():
    img = truth_image(dtype=np.int32)
    img[0, 0] = 2_000_000_000  # needs the 32-bit escape
    img[0, 1] = -2
    img[1, 0] = 40000  # 16-bit escape
    det = make_detector(photon_energy=9000.0, clen=0.1)
    buf = cbf_bytes(img)
    for payload in (buf, gzip.compress(buf)):
        frame = decode_message(msg(payload), det, InputOptions(data_format="cbf"))
        np.testing.assert_array_equal(frame.data[0], img.astype(np.float32))


# ----------------------------------------------------------------- detection

def test_format_detected_when_data_format_omitted():
    img = truth_image()
    det = make_detector(photon_energy=9000.0, clen=0.1)
    buf, meta = seedee.serialize(img, seedee.COMPRESSION_BITSHUFFLE)
    cases = {
        "msgpack": msg(onda_msgpack(img)),
        "hdf5": msg(hdf5_image({"detector_data": img})),
        "cbf": msg(gzip.compress(cbf_bytes(img.astype(np.int32)))),
        "seedee": msg(buf.tobytes(), {"_data_format": meta}),
    }
    for fmt, m in cases.items():
        assert detect_format(m.payload, m.metadata) == fmt
        frame = decode_message(m, det, InputOptions())
        np.testing.assert_array_equal(frame.data[0], img)
    with pytest.raises(PayloadError, match="cannot tell the payload format"):
        decode_message(msg(b"\x00\x01 random bytes"), det, InputOptions())


# ----------------------------------------------------------------- against readers.encode

@pytest.mark.parametrize("fmt", ["msgpack", "hdf5", "seedee", "seedee-asapo"])
def test_roundtrip_through_the_simulator_encoder(fmt):
    """The sender's encoder (written independently from the same spec) and our decoder agree."""
    encode = pytest.importorskip("readers.encode")
    from crystream.frame import Frame, PeakList
    from readers.zmq_source import split_parts
    det = make_detector(panels=(("a", 0, 31, 0, 47, "/data/data", ("ss", "fs")),
                                ("b", 32, 63, 0, 47, "/data/data", ("ss", "fs"))),
                        photon_energy="beam_energy", clen="detector_distance",
                        peak_list="/peaks")
    img = truth_image()
    frame = Frame(serial=3, filename="sim.h5", data=[img[:, :32].copy(), img[:, 32:].copy()],
                  wavelength=ev_to_wavelength(9400.0), clen=0.111)
    frame.headers = {"beam_energy": 9400.0, "detector_distance": 111.0}
    peaks = PeakList(np.array([3.5, 10.5]), np.array([4.5, 40.5]), np.array([0, 1]),
                     np.array([10.0, 20.0]))
    if fmt == "seedee-asapo":
        parts = encode.encode_seedee(frame, det, asapo_metadata=True)
        fmt = "seedee"
    else:
        parts = encode.encode_frame(frame, det, fmt, None if fmt == "seedee" else peaks)
    _topic, payload, metadata = split_parts(parts)
    opts = InputOptions(data_format=fmt, peaks="zaef" if fmt == "seedee" else
                        ("msgpack" if fmt == "msgpack" else "hdf5"))
    if fmt == "seedee" and "beam_energy" not in metadata:
        det = make_detector(panels=(("a", 0, 31, 0, 47, "/data/data", ("ss", "fs")),
                                    ("b", 32, 63, 0, 47, "/data/data", ("ss", "fs"))),
                            photon_energy=9400.0, clen=0.111)
    out = decode_message(msg(payload, metadata), det, opts)
    np.testing.assert_array_equal(out.data[0], img[:, :32])
    np.testing.assert_array_equal(out.data[1], img[:, 32:])
    assert out.wavelength == pytest.approx(ev_to_wavelength(9400.0))
    assert out.clen == pytest.approx(0.111)
    if out.peaks is not None:
        assert list(out.peaks.panel) == [0, 1]
        # the encoder writes pixel-index slab coordinates (centre - 0.5); the shift restores them
        np.testing.assert_allclose(out.peaks.fs + 0.5, [3.5, 10.5])
        np.testing.assert_allclose(out.peaks.ss + 0.5, [4.5, 40.5])


def test_msgpack_payload_mask_and_flags():
    """A mask carried in the msgpack map (no mask_file): CrystFEL crashes, we apply it."""
    img = truth_image()
    mask = np.zeros((48, 64), dtype=np.int32)
    mask[7, 9] = 1  # badbits
    mask[30, 50] = 2  # goodbit 2 present: good
    masks = {"p0": (MaskSpec(data="mask", goodbits=0, badbits=1),)}
    det = make_detector(masks=masks)
    event = {"detector_data": numpy_map(img), "mask": numpy_map(mask), "beam_energy": 9000.0,
             "detector_distance": 100.0}
    frame = decode_message(msg(msgpack.packb(event, use_bin_type=True)), det,
                           InputOptions(data_format="msgpack"))
    assert frame.bad[0][7, 9] and frame.bad[0].sum() == 1
