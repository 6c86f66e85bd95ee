"""SIGINT (and SIGTERM) on `crystream index` run as a subprocess: it stops pulling, finishes
the frames in flight, closes a well-formed stream in which every frame taken appears exactly
once (a gap-free prefix of the list, in order, with the sample's truth) and prints
indexamajig's summary; exit status 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.test_flow_helpers import GEOM, check_science, sample_files

pytestmark = pytest.mark.timeout(180)


def _chunks_written(path) -> int:
    try:
        with open(path) as fh:
            return fh.read().count("----- End chunk -----")
    except FileNotFoundError:
        return 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_index_stops_cleanly_on_signal(tmp_path, sig):
    lst = tmp_path / "files.lst"
    lst.write_text("".join(f"{p}\n" for p in sample_files() * 50))  # 600 frames
    out = tmp_path / "out.stream"
    exe = os.path.join(os.path.dirname(sys.executable), "crystream")  # the installed command
    launcher = [exe] if os.path.exists(exe) else [sys.executable, "-m", "flows.cli"]
    cmd = [*launcher, "index", "-i", str(lst), "-g", GEOM,
           "-o", str(out), "-j", "2", "--peaks=zaef", "--threshold=6",
           "--min-squared-gradient=30", "--min-snr=4", "--min-peaks=10", "--indexing=none",
           "--dashboard-address=127.0.0.1:0"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        deadline = time.time() + 120
        while _chunks_written(out) < 10 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err[-3000:]
    assert "Final:" in err and "images processed" in err
    from crystream.stream.reader import read_stream
    stream = read_stream(str(out))
    assert not stream.problems, stream.problems
    text = out.read_text()
    assert text.endswith("----- End chunk -----\n")
    n = len(stream.chunks)
    assert 10 <= n < 600, n  # stopped early, after the frames in flight
    assert [c.serial for c in stream.chunks] == list(range(1, n + 1))
    for c in stream.chunks:
        c.headers.append(("frame_id", (c.serial - 1) % 12))
    check_science(stream.chunks)
    final = [line for line in err.splitlines() if line.startswith("Final:")][0]
    assert final.startswith(f"Final: {n} images processed")


def test_index_bad_geometry_one_line_error(tmp_path):
    """A geometry file with a bad line: a non-zero exit status and one line naming
    file:line (whether the command line check or the flow's start finds it)."""
    geom = tmp_path / "bad.geom"
    text = open(GEOM).read() + "p0/fs = banana\n"
    geom.write_text(text)
    lst = tmp_path / "files.lst"
    lst.write_text(sample_files()[0] + "\n")
    exe = os.path.join(os.path.dirname(sys.executable), "crystream")
    launcher = [exe] if os.path.exists(exe) else [sys.executable, "-m", "flows.cli"]
    proc = subprocess.run([*launcher, "index", "-i", str(lst), "-g", str(geom), "-o",
                           str(tmp_path / "o.stream"), "--dashboard-address=127.0.0.1:0"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode in (1, 2)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    n = len(text.splitlines())
    assert lines[0].startswith(f"crystream: {geom}:{n}:"), lines[0]
    from flows.config import FlowConfig
    from flows.run import run_flow
    from readers.options import InputOptions
    status = run_flow(FlowConfig(source="files", geometry=str(geom), output="-",
                                 input=InputOptions(input=str(lst)), progress=False))
    assert status == 1  # refused before any cluster is started
