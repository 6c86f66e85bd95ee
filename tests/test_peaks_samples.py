"""Peak search on the 12 calibration frames against CrystFEL 0.12.0's own peak lists.

The command lines are those on the third line of each stream (samples README): peakfinder8
with --threshold=6 --min-snr=4 --min-pix-count=2 --max-pix-count=50 --local-bg-radius=3 and
zaef with --threshold=6 --min-squared-gradient=30 --min-snr=4, both with --min-peaks=10.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from crystream.frame import Frame
from crystream.geometry.parser import load_geometry
from crystream.peaks import (PeakSearchOptions, find_peaks, is_hit, peak_q_magnitudes,
                             peak_resolution_of)

DATA = Path(__file__).parent / "data" / "samples"
FILES = [f"sample_{i:02d}.h5" for i in range(12)]

RUNS = {
    "peakfinder8": ("sample.stream",
                    PeakSearchOptions(peaks="peakfinder8", threshold=6, min_snr=4,
                                      min_pix_count=2, max_pix_count=50, local_bg_radius=3,
                                      min_peaks=10)),
    "zaef": ("sample-zaef-peaks.stream",
             PeakSearchOptions(peaks="zaef", threshold=6, min_squared_gradient=30, min_snr=4,
                               min_peaks=10)),
}


def read_stream_peaks(path: Path) -> dict[str, dict]:
    """Per image: the peak table (fs, ss, 1/d, I), hit flag and peak_resolution in nm^-1."""
    out: dict[str, dict] = {}
    cur = None
    in_table = False
    for line in path.read_text().splitlines():
        if line.startswith("Image filename: "):
            cur = {"rows": []}
            out[line.split(": ", 1)[1]] = cur
        elif line.startswith("hit = "):
            cur["hit"] = line.endswith("1")
        elif line.startswith("peak_resolution = "):
            cur["res"] = float(line.split()[2])
        elif line == "Peaks from peak search":
            in_table = True
        elif line == "End of peak list":
            in_table = False
        elif in_table and not line.lstrip().startswith("fs/px"):
            cur["rows"].append([float(x) for x in line.split()[:4]])
    for v in out.values():
        v["rows"] = np.array(v["rows"], dtype=float).reshape(-1, 4)
    return out


@pytest.fixture(scope="module")
def detector():
    return load_geometry(DATA / "sample.geom")


@pytest.fixture(scope="module")
def frames(detector):
    out = []
    for i, name in enumerate(FILES):
        with h5py.File(DATA / name, "r") as f:
            data = f["/data/data"][()]
        assert data.dtype == np.int32 and data.shape == (512, 512)
        out.append(Frame(serial=i + 1, filename=name, data=[data.astype(np.float32)],
                         bad=[np.zeros(data.shape, bool)],
                         wavelength=detector.wavelength.resolve(),
                         clen=detector.clen.resolve()))
    return out


@pytest.mark.parametrize("method", sorted(RUNS))
def test_same_peaks_as_crystfel(method, detector, frames):
    stream, options = RUNS[method]
    ref = read_stream_peaks(DATA / stream)
    truth = {t["file"]: t["is_hit"] for t in json.loads((DATA / "truth.json").read_text())}
    for frame in frames:
        want = ref[frame.filename]
        pk = find_peaks(frame, detector, options)
        rows = want["rows"]
        assert len(pk) == len(rows), f"{frame.filename}: {len(pk)} peaks, CrystFEL {len(rows)}"
        assert is_hit(len(pk), options) == want["hit"] == truth[frame.filename]
        if len(rows) == 0:
            assert peak_resolution_of(pk, detector, frame) == 0.0
            continue
        # One-to-one: every CrystFEL peak has ours within the table's 0.01 px rounding.
        d = np.hypot(rows[:, 0][:, None] - pk.fs[None, :], rows[:, 1][:, None] - pk.ss[None, :])
        nearest = d.argmin(axis=1)
        assert len(set(nearest.tolist())) == len(rows)
        assert d.min(axis=1).max() < 0.0075
        # Intensities agree to the printed 0.01 ADU up to CrystFEL's float32 sums (one bright
        # peak whose first-pass centre sits 1.5e-4 px from a rounding edge differs by 4e-5).
        np.testing.assert_allclose(pk.intensity[nearest], rows[:, 3], rtol=5e-5, atol=0.011)
        inv_d = peak_q_magnitudes(pk, detector, frame)[nearest] / 1e9
        np.testing.assert_allclose(inv_d, rows[:, 2], atol=0.0051)
        assert peak_resolution_of(pk, detector, frame) / 1e9 == pytest.approx(want["res"],
                                                                             abs=2e-6)
        assert np.all(pk.panel == 0)


def test_crystfel_order_is_kept_for_peakfinder8(detector, frames):
    """peakfinder8 reports peaks in seed raster order, as CrystFEL's table does."""
    stream, options = RUNS["peakfinder8"]
    ref = read_stream_peaks(DATA / stream)
    frame = frames[10]
    pk = find_peaks(frame, detector, options)
    rows = ref[frame.filename]["rows"]
    np.testing.assert_allclose(pk.fs, rows[:, 0], atol=0.0075)
    np.testing.assert_allclose(pk.ss, rows[:, 1], atol=0.0075)
