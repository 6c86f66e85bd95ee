"""Geometry parsing, bad-pixel masks and file reading: prints ms per call / per frame.

Run: python benchmarks/bench_geometry_files.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import h5py
import hdf5plugin
import numpy as np

from crystream.geometry.badpixels import bad_pixel_masks
from crystream.geometry.parser import load_geometry, parse_geometry
from readers.files import FileListSource, load_frame

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "geometry"

BIG = """photon_energy = 12000
clen = 0.1
res = 13333
adu_per_photon = 1
data = /entry/data
dim0 = %
dim1 = ss
dim2 = fs
flag_morethan = 65000
mask_edge_pixels = 2
""" + "".join(f"""m{i}/min_fs = 0
m{i}/max_fs = 1023
m{i}/min_ss = {256 * i}
m{i}/max_ss = {256 * i + 255}
m{i}/corner_x = -512
m{i}/corner_y = {-512 + 266 * i}
m{i}/fs = x
m{i}/ss = y
""" for i in range(4)) + """bad_stop/min_x = -10
bad_stop/max_x = 10
bad_stop/min_y = -10
bad_stop/max_y = 10
"""


def timeit(fn, n: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e3


def main() -> None:
    text_b = (DATA / "example_B.geom").read_text()
    print(f"parse example B geometry:          {timeit(lambda: parse_geometry(text_b, 'B'), 200):8.3f} ms")
    det_b = load_geometry(DATA / "example_B.geom")
    data = [np.random.default_rng(0).poisson(5, (256, 256)).astype(np.float32) for _ in range(4)]
    masks = [[np.zeros((256, 256), np.uint8)] for _ in range(4)]
    print(f"bad pixels, detector B (262k px):  {timeit(lambda: bad_pixel_masks(det_b, data, masks), 200):8.3f} ms/frame")
    det = parse_geometry(BIG, "big")
    t0 = time.perf_counter()
    bad_pixel_masks(det, None)
    first = (time.perf_counter() - t0) * 1e3
    frame = [np.random.default_rng(1).poisson(5, (256, 1024)).astype(np.float32) for _ in range(4)]
    per = timeit(lambda: bad_pixel_masks(det, frame), 50)
    print(f"bad pixels, 1M px, first call:     {first:8.3f} ms (static part cached)")
    print(f"bad pixels, 1M px, per frame:      {per:8.3f} ms/frame")

    det_s = load_geometry(DATA / "sample.geom")
    t = timeit(lambda: load_frame(str(DATA / "sample_00.h5"), None, det_s), 50)
    print(f"load sample_00.h5 (gzip, 512x512): {t:8.3f} ms/frame")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stack.h5"
        rng = np.random.default_rng(2)
        stack = rng.poisson(3, (20, 1024, 1024)).astype(np.uint16)
        with h5py.File(path, "w") as fh:
            fh.create_dataset("/entry/data", data=stack, chunks=(1, 1024, 1024),
                              **hdf5plugin.Bitshuffle(cname="lz4"))
        (Path(tmp) / "l.lst").write_text(f"{path}\n")
        t0 = time.perf_counter()
        msgs = list(FileListSource(str(Path(tmp) / "l.lst"), det))
        t_list = (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        for m in msgs:
            load_frame(m.filename, m.event, det, m.serial, path=m.path)
        t_load = (time.perf_counter() - t0) * 1e3 / len(msgs)
        print(f"expand 20-frame stack into events: {t_list:8.3f} ms")
        print(f"load 1M px u2 bitshuffle-LZ4 frame:{t_load:8.3f} ms/frame (4 panels, 1 read)")


if __name__ == "__main__":
    main()
