"""File lists end to end on a LocalCluster of 2 worker processes, with and without a worker
killed mid-run: every frame of the list is in the stream exactly once, in list order, with
the sample's truth (hit flags, CrystFEL's zaef peak counts)."""

from __future__ import annotations

import os
import signal
import time

import pytest

from tests.test_flow_helpers import GEOM, check_science, pipeline_config, sample_files, truth

pytestmark = pytest.mark.timeout(240)


def _config(tmp_path, repeat=1, **kw):
    from flows.config import FlowConfig
    from readers.options import InputOptions
    lst = tmp_path / "files.lst"
    lst.write_text("".join(f"{p}\n" for p in sample_files() * repeat))
    return FlowConfig(source="files", geometry=GEOM, output=str(tmp_path / "out.stream"),
                      input=InputOptions(input=str(lst)), pipeline=pipeline_config(),
                      workers=2, dashboard_address=None, progress=False, **kw)


def _check(tmp_path, n):
    from crystream.stream.reader import read_stream
    stream = read_stream(str(tmp_path / "out.stream"))
    assert not stream.problems, stream.problems
    chunks = stream.chunks
    assert [c.serial for c in chunks] == list(range(1, n + 1))  # each frame once, in order
    names = [os.path.basename(p) for p in sample_files()]
    assert [c.filename.rsplit("/", 1)[-1] for c in chunks] == (names * (n // 12))
    t = truth()
    for c in chunks:
        fid = (c.serial - 1) % 12
        c.headers.append(("frame_id", fid))  # identity from the list position
    check_science(chunks)
    assert sum(c.hit for c in chunks) == sum(x["is_hit"] for x in t) * (n // 12)


def test_flow_files(tmp_path):
    from flows.run import start_flow
    with start_flow(_config(tmp_path)) as flow:
        counters = flow.wait(120)
    assert counters["processed"] == 12 and counters["failed"] == 0
    assert counters["hits"] == 10
    _check(tmp_path, 12)


def test_flow_files_worker_killed(tmp_path):
    """SIGKILL one worker process while frames are in flight; its frames are redone."""
    from flows.run import start_flow
    with start_flow(_config(tmp_path, repeat=6, max_in_flight=8)) as flow:
        workers = flow.processing_workers()
        pids = flow.client.run(os.getpid, workers=workers)
        while flow.counters.get("processed", 0) < 6:
            time.sleep(0.05)
        victim = workers[1]
        os.kill(pids[victim], signal.SIGKILL)
        counters = flow.wait(180)
    assert counters["processed"] == 72, counters
    assert counters["failed"] == 0, counters["errors"]
    _check(tmp_path, 72)


def test_flow_files_full_pipeline_against_truth(tmp_path):
    """Peaks, indexing with the target cell and integration through the flow (the sample
    command line of shared/samples): all 10 hits indexed, each in the true orientation."""
    import math
    import numpy as np
    from crystream.cell import UnitCell
    from crystream.cellmatch import misorientation
    from crystream.indexing import IndexingOptions
    from crystream.integration import IntegrationOptions
    from crystream.peaks.options import PeakSearchOptions
    from crystream.pipeline import PipelineConfig
    from crystream.stream.reader import read_stream
    from flows.run import start_flow
    from tests.test_flow_helpers import DATA
    peaks = PeakSearchOptions(peaks="peakfinder8", threshold=6, min_snr=4, min_pix_count=2,
                              max_pix_count=50, local_bg_radius=3, min_peaks=10,
                              peak_radius=(3, 4, 5))
    pipe = PipelineConfig(peaks=peaks, indexing=IndexingOptions(),
                          integration=IntegrationOptions(int_radius=(3, 4, 5)))
    cfg = _config(tmp_path).with_(pipeline=pipe, cell=str(DATA / "sample.cell"))
    with start_flow(cfg) as flow:
        counters = flow.wait(180)
    assert counters["processed"] == 12 and counters["indexed"] == 10
    hist = counters["cell_histograms"]["beta"]
    assert sum(hist["counts"]) == 10 and 113 < hist["edges"][0] and hist["edges"][-1] < 117
    chunks = read_stream(str(tmp_path / "out.stream")).chunks
    for c, t in zip(chunks, truth()):
        assert (len(c.crystals) == 1) == t["is_hit"], c.filename
        if not t["is_hit"]:
            continue
        true = UnitCell.from_reciprocal(*(np.array(t[k]) * 1e9 for k in
                                          ("astar_nm^-1", "bstar_nm^-1", "cstar_nm^-1")),
                                        lattice_type="monoclinic", centering="C",
                                        unique_axis="b")
        angle = math.degrees(misorientation(c.crystals[0].cell, true))
        assert angle < 1.0, f"{c.filename}: {angle:.2f} deg from the true orientation"
        assert c.crystals[0].reflections is not None and len(c.crystals[0].reflections) > 10


def test_index_to_stdout(tmp_path):
    """`crystream index -o -`: the stream goes to standard output, logs to standard error."""
    import io
    import subprocess
    import sys
    from crystream.stream.reader import read_stream
    lst = tmp_path / "files.lst"
    lst.write_text("".join(f"{p}\n" for p in sample_files()))
    exe = os.path.join(os.path.dirname(sys.executable), "crystream")
    launcher = [exe] if os.path.exists(exe) else [sys.executable, "-m", "flows.cli"]
    proc = subprocess.run([*launcher, "index", "-i", str(lst), "-g", GEOM, "-o", "-", "-j", "1",
                           "--peaks=zaef", "--threshold=6", "--min-squared-gradient=30",
                           "--min-snr=4", "--min-peaks=10", "--indexing=none",
                           "--dashboard-address=127.0.0.1:0", "--no-progress"],
                          capture_output=True, text=True, timeout=200)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("CrystFEL stream format 2.3\n")
    stream = read_stream(io.StringIO(proc.stdout))
    assert [c.serial for c in stream.chunks] == list(range(1, 13))
    assert "Final: 12 images processed, 10 hits" in proc.stderr
