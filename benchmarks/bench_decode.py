"""Decode throughput per payload format: MB/s of payload bytes and of decoded pixels, ms/frame.

Run: python benchmarks/bench_decode.py [--size 1024] [--repeat 20]
A 16-panel detector (4 x 4 modules) cut from one slab; Poisson-like integer pixels, as a
detector gives after photon conversion.
"""

from __future__ import annotations

import argparse
import gzip
import io
import sys
import time
from pathlib import Path

import h5py
import hdf5plugin
import msgpack
import numpy as np
import seedee

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crystream.constants import ev_to_wavelength  # noqa: E402
from crystream.geometry.detector import Detector, Panel, ValueSource  # noqa: E402
from readers.cbf_file import _byte_offset_encode  # noqa: E402
from readers.decode import decode_message  # noqa: E402
from readers.message import RawMessage  # noqa: E402
from readers.options import InputOptions  # noqa: E402


def detector(n: int) -> Detector:
    m = n // 4
    panels = []
    for i in range(4):
        for j in range(4):
            panels.append(Panel(name=f"p{i}{j}", min_fs=j * m, max_fs=(j + 1) * m - 1,
                                min_ss=i * m, max_ss=(i + 1) * m - 1, corner_x=j * m - n / 2,
                                corner_y=i * m - n / 2, fs=np.array([1.0, 0, 0]),
                                ss=np.array([0, 1.0, 0]), res=10000.0, data="/data/data"))
    return Detector(panels=panels, wavelength=ValueSource(value=ev_to_wavelength(9000.0)),
                    clen=ValueSource(value=0.1))


def cbf(img: np.ndarray) -> bytes:
    flat = img.astype(np.int64).ravel()
    out = np.empty(flat.size * 15 + 16, dtype=np.uint8)
    n = _byte_offset_encode(flat, out)
    head = ("###CBF: VERSION 1.5\r\ndata_bench\r\n_array_data.data\r\n;\r\n"
            "--CIF-BINARY-FORMAT-SECTION--\r\nContent-Type: application/octet-stream;\r\n"
            '     conversions="x-CBF_BYTE_OFFSET"\r\nContent-Transfer-Encoding: BINARY\r\n'
            f"X-Binary-Size: {n}\r\nX-Binary-ID: 1\r\n"
            'X-Binary-Element-Type: "signed 32-bit integer"\r\n'
            "X-Binary-Element-Byte-Order: LITTLE_ENDIAN\r\n"
            f"X-Binary-Number-of-Elements: {flat.size}\r\n"
            f"X-Binary-Size-Fastest-Dimension: {img.shape[1]}\r\n"
            f"X-Binary-Size-Second-Dimension: {img.shape[0]}\r\n\r\n").encode()
    return head + b"\x0c\x1a\x04\xd5" + out[:n].tobytes() + b"\r\n--CIF-BINARY-FORMAT-SECTION----\r\n;\r\n"


def h5(img: np.ndarray, **kw) -> bytes:
    bio = io.BytesIO()
    with h5py.File(bio, "w") as f:
        f.create_dataset("/data/data", data=img, chunks=img.shape if kw else None, **kw)
    return bio.getvalue()


def mp(img: np.ndarray) -> bytes:
    return msgpack.packb([{"/data/data": {b"nd": True, b"type": img.dtype.str, b"kind": b"",
                                          b"shape": list(img.shape), b"data": img.tobytes()}}],
                         use_bin_type=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=1024, help="slab edge in pixels")
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    n = args.size
    rng = np.random.default_rng(0)
    img = rng.poisson(2.0, size=(n, n)).astype(np.int32)
    img[rng.integers(0, n, 200), rng.integers(0, n, 200)] = 30000  # some Bragg peaks
    det = detector(n)
    sd_buf, sd_meta = seedee.serialize(img, seedee.COMPRESSION_BITSHUFFLE)
    sd_raw, sd_raw_meta = seedee.serialize(img, seedee.COMPRESSION_NONE)
    cases = [
        ("msgpack <i4", "msgpack", mp(img), {}),
        ("msgpack <f4", "msgpack", mp(img.astype(np.float32)), {}),
        ("msgpack <u2", "msgpack", mp(img.astype(np.uint16)), {}),
        ("hdf5 plain", "hdf5", h5(img), {}),
        ("hdf5 gzip+shuffle", "hdf5", h5(img, compression="gzip", shuffle=True), {}),
        ("hdf5 bitshuffle-lz4", "hdf5", h5(img, **hdf5plugin.Bitshuffle()), {}),
        ("seedee none", "seedee", sd_raw.tobytes(), {"_data_format": sd_raw_meta}),
        ("seedee bitshuffle-lz4", "seedee", sd_buf.tobytes(), {"_data_format": sd_meta}),
        ("cbf byte-offset", "cbf", cbf(img), {}),
        ("cbf.gz", "cbf", gzip.compress(cbf(img), 1), {}),
    ]
    pixels_mb = img.nbytes / 1e6
    print(f"slab {n} x {n} int32 ({pixels_mb:.1f} MB of pixels), 16 panels, "
          f"{args.repeat} repeats, best of 3 after warm-up")
    print(f"{'format':24s} {'payload MB':>10s} {'ms/frame':>9s} {'payload MB/s':>13s} "
          f"{'pixel MB/s':>11s}")
    for name, fmt, payload, meta in cases:
        message = RawMessage(1, "bench", "//1", payload, metadata=meta)
        for detect in (False,):  # detection costs microseconds, see the last line
            opts = InputOptions(data_format=None if detect else fmt)
            frame = decode_message(message, det, opts)  # warm-up (numba, caches)
            m = n // 4
            assert np.array_equal(frame.data[5], img[m:2 * m, m:2 * m]), name
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                for _ in range(args.repeat):
                    decode_message(message, det, opts)
                best = min(best, (time.perf_counter() - t0) / args.repeat)
            print(f"{name:24s} {len(payload) / 1e6:10.2f} {best * 1e3:9.2f} "
                  f"{len(payload) / 1e6 / best:13.0f} {pixels_mb / best:11.0f}")
    t0 = time.perf_counter()
    from readers.decode import detect_format
    for _ in range(1000):
        detect_format(cases[3][2])
    print(f"format detection: {(time.perf_counter() - t0) * 1e3:.2f} us per call")


if __name__ == "__main__":
    main()
