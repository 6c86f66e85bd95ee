"""`crystream index` with CrystFEL's own command line on the shared samples, judged by the truth.

The samples (tests/data/samples) are 12 frames of a mC crystal with known orientations, and
CrystFEL 0.12.0's stream for them. We run the same command line as CrystFEL did (program name
swapped), in a subprocess on a real LocalCluster of worker processes, and check the stream
against the truth and against CrystFEL's peak lists.
"""

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from crystream.cell import UnitCell
from crystream.cellfile import load_cell
from crystream.cellmatch import Tolerances, match_to_target, misorientation
from crystream.stream.reader import read_stream

SAMPLES = Path(__file__).parent / "data" / "samples"
CRYSTFEL_PF8 = ("-i files.lst -g sample.geom -p sample.cell -o {out} -j 2 --peaks=peakfinder8 "
                "--threshold=6 --min-snr=4 --min-pix-count=2 --max-pix-count=50 "
                "--local-bg-radius=3 --min-peaks=10 --int-radius=3,4,5")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """The samples processed once by `crystream index`; (stream, stderr)."""
    work = tmp_path_factory.mktemp("samples")
    for f in SAMPLES.iterdir():
        shutil.copy(f, work)
    argv = CRYSTFEL_PF8.format(out="crystream.stream").split()
    proc = subprocess.run(
        [sys.executable, "-m", "flows.cli", "index", *argv, "--no-progress",
         "--dashboard-address=127.0.0.1:0"],
        cwd=work, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return read_stream(work / "crystream.stream"), proc.stderr


def truth_cell(entry: dict, target: UnitCell) -> UnitCell:
    recip = np.array([entry["astar_nm^-1"], entry["bstar_nm^-1"], entry["cstar_nm^-1"]]) * 1e9
    return target.with_reciprocal(recip)


def test_every_frame_once_in_order_with_crystfels_identity(run):
    stream, _ = run
    names = (SAMPLES / "files.lst").read_text().split()
    assert [c.filename for c in stream.chunks] == names
    assert [c.serial for c in stream.chunks] == list(range(1, 13))
    assert all(c.event == "//" for c in stream.chunks)
    assert not stream.problems
    assert stream.header.command_line.startswith("crystream index -i files.lst")


def test_peaks_and_hits_match_crystfel(run):
    stream, _ = run
    crystfel = read_stream(SAMPLES / "sample.stream")
    assert [c.num_peaks for c in stream.chunks] == [c.num_peaks for c in crystfel.chunks]
    assert [c.hit for c in stream.chunks] == [c.hit for c in crystfel.chunks]
    for ours, theirs in zip(stream.chunks, crystfel.chunks):
        if ours.num_peaks:
            assert np.allclose(ours.peaks.fs, theirs.peaks.fs, atol=0.01)
            assert np.allclose(ours.peaks.ss, theirs.peaks.ss, atol=0.01)


def test_indexed_lattices_agree_with_the_truth(run):
    stream, stderr = run
    target = load_cell(SAMPLES / "sample.cell")
    truth = json.loads((SAMPLES / "truth.json").read_text())
    tol = Tolerances.parse("5,5,5,1.5,1.5,1.5")
    angles = []
    for chunk, entry in zip(stream.chunks, truth):
        if not entry["is_hit"]:
            assert not chunk.crystals and chunk.indexed_by == "none"
            continue
        assert len(chunk.crystals) == 1, chunk.filename
        found = match_to_target(chunk.crystals[0].cell, target, tol)
        assert found is not None, f"{chunk.filename}: cell does not match the target"
        angles.append(math.degrees(misorientation(found, truth_cell(entry, target))))
        refls = chunk.crystals[0].reflections
        assert refls is not None and len(refls) > 10
    assert len(angles) == 10
    # CrystFEL's asdf on the same frames: 0.04-0.34 degrees, median about 0.15.
    print("misorientation (deg):", np.round(angles, 3))
    assert max(angles) < 0.5 and float(np.median(angles)) < 0.25, angles
    assert "10 indexable" in stderr and "12 images processed" in stderr
