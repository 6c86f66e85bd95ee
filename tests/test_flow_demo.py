"""`crystream demo` as a user runs it: a simulated ZeroMQ stream processed end to end on the
embedded cluster. With one worker (one REQ connection) chunk n is pattern (n-1) % patterns
of the sender's pool, so every chunk is checked against the simulator's truth: hit flag and,
for hits, the orientation of the indexed lattice."""

from __future__ import annotations

import math
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.timeout(240)


def test_demo_end_to_end(tmp_path):
    from crystream.cellmatch import misorientation
    from crystream.simulate import NAMED_CELLS, SimulationConfig, simple_detector, \
        simulate_frames
    from crystream.stream.reader import read_stream
    exe = os.path.join(os.path.dirname(sys.executable), "crystream")
    launcher = [exe] if os.path.exists(exe) else [sys.executable, "-m", "flows.cli"]
    out = tmp_path / "demo.stream"
    proc = subprocess.run([*launcher, "demo", "--frames", "18", "--patterns", "6", "-j", "1",
                           "-o", str(out), "--dashboard-address", "127.0.0.1:0",
                           "--no-progress"], capture_output=True, text=True, timeout=220)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "dashboard at http://127.0.0.1:" in proc.stderr
    assert "Final: 18 images processed" in proc.stderr
    pool = list(simulate_frames(SimulationConfig(simple_detector(), NAMED_CELLS["lysozyme"],
                                                 hit_rate=0.8), 6, seed=1))
    chunks = read_stream(str(out)).chunks
    assert [c.serial for c in chunks] == list(range(1, 19))
    for c in chunks:
        truth = pool[(c.serial - 1) % 6].truth
        assert c.hit == truth.is_hit, c.serial
        assert (len(c.crystals) == 1) == truth.is_hit, c.serial
        if truth.is_hit:
            angle = math.degrees(misorientation(c.crystals[0].cell, truth.crystals[0].cell))
            assert angle < 1.0, f"chunk {c.serial}: {angle:.2f} deg off"
