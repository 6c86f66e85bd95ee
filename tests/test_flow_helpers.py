"""Shared pieces of the flow tests (no tests here): the 12 sample frames with their truth.

The frames are the simulated sample (tests/data/samples, README in shared/samples): 10 hits,
2 blanks; CrystFEL 0.12.0's zaef peak counts on them with the options below are in
sample-zaef-peaks.stream.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np

DATA = Path(__file__).parent / "data" / "samples"
GEOM = str(DATA / "sample.geom")
CELL = str(DATA / "sample.cell")
# CrystFEL 0.12.0: indexamajig --peaks=zaef --threshold=6 --min-squared-gradient=30
# --min-snr=4 --min-peaks=10 --indexing=none (sample-zaef-peaks.stream)
CRYSTFEL_ZAEF = [17, 32, 22, 33, 24, 21, 0, 29, 0, 24, 37, 10]


def truth() -> list[dict]:
    return json.loads((DATA / "truth.json").read_text())


def sample_files() -> list[str]:
    return [str(DATA / f"sample_{i:02d}.h5") for i in range(12)]


def pipeline_config(indexing: bool = False):
    from crystream.indexing import IndexingOptions
    from crystream.peaks.options import PeakSearchOptions
    from crystream.pipeline import PipelineConfig
    peaks = PeakSearchOptions(peaks="zaef", threshold=6, min_squared_gradient=30, min_snr=4,
                              min_peaks=10)
    return PipelineConfig(peaks=peaks, indexing=IndexingOptions(
        indexing=None if indexing else "none"))


def sample_frames(repeat: int = 1):
    """Frames of the sample, each carrying header frame_id = its index in files.lst."""
    from crystream.frame import Frame
    from crystream.geometry.parser import load_geometry
    det = load_geometry(GEOM)
    out = []
    for r in range(repeat):
        for i, path in enumerate(sample_files()):
            with h5py.File(path) as f:
                data = f["/data/data"][()].astype(np.float32)
            out.append(Frame(serial=r * 12 + i + 1, filename=os.path.basename(path),
                             data=[data], bad=[np.zeros(data.shape, bool)],
                             wavelength=det.wavelength.resolve(), clen=det.clen.resolve(),
                             headers={"frame_id": i}))
    return det, out


def frame_ids(chunks) -> list[int]:
    """The frame_id header of each chunk, in stream order."""
    out = []
    for c in chunks:
        ids = [int(v) for k, v in c.headers if k.endswith("frame_id")]
        assert len(ids) == 1, f"chunk {c.serial} has frame_id headers {ids}"
        out.append(ids[0])
    return out


def check_science(chunks) -> None:
    """Each chunk's hit flag is the truth's, its zaef peak count CrystFEL's (±2)."""
    t = truth()
    for c, fid in zip(chunks, frame_ids(chunks)):
        assert c.hit == t[fid]["is_hit"], f"frame {fid}: hit={c.hit}, truth {t[fid]['is_hit']}"
        assert abs(c.num_peaks - CRYSTFEL_ZAEF[fid]) <= 2, \
            f"frame {fid}: {c.num_peaks} peaks, CrystFEL found {CRYSTFEL_ZAEF[fid]}"


def test_file_list_source_gets_prefix_and_wait_for_file(tmp_path, monkeypatch):
    """-x/--prefix and --wait-for-file reach the file source the writer opens."""
    from crystream.geometry.parser import load_geometry
    from flows.config import FlowConfig
    from flows.sources import open_file_list
    from readers.options import InputOptions
    (tmp_path / "run7").mkdir()
    shutil.copy(DATA / "sample_00.h5", tmp_path / "run7" / "a.h5")
    (tmp_path / "l.lst").write_text("a.h5\nlate.h5\n")
    monkeypatch.chdir(tmp_path)
    config = FlowConfig(source="files", geometry=str(DATA / "sample.geom"), output="o",
                        input=InputOptions(input="l.lst", prefix="run7/", wait_for_file=0.2))
    source = open_file_list(config, load_geometry(DATA / "sample.geom"))
    assert [m.filename for m in source] == ["run7/a.h5"]
    assert len(source.errors) == 1 and "run7/late.h5" in source.errors[0]
