"""Both engines through CrystFEL's flow on synthetic frames with a known orientation.

The brief's acceptance numbers, per engine over lysozyme (tP), thermolysin (hP), a monoclinic C
cell and a triclinic cell with 20-150 spots, 0.3 px position noise and 10% spurious peaks:
indexing rate >= 95% of the frames with >= 25 spots, median misorientation <= 0.1 deg modulo
the point group, refined cell edges within 0.5%, at most 1% of frames wrongly indexed (blank
frames included).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from crystream.cellmatch import Tolerances, match_to_target, misorientation, parameters_of
from crystream.indexing import IndexingOptions, index_frame
from tests.test_cellmatch import BRAVAIS
from tests.test_indexing_synth import CELLS, synth_blank, synth_frame

N_PER_CELL = 24
N_BLANK = 16
WRONG_DEG = 1.0


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(20261130)
    out = []
    for name, cell in CELLS.items():
        for i in range(N_PER_CELL):
            n = int(rng.integers(20, 151))
            out.append((name, cell, synth_frame(cell, rng, n_spots=n, serial=i)))
    blanks = [synth_blank(rng, int(rng.integers(20, 80)), serial=1000 + i)
              for i in range(N_BLANK)]
    return out, blanks


@pytest.mark.parametrize("engine", ["toro", "fft1d"])
def test_engine_meets_rate_accuracy_and_reliability(frames, engine):
    hits, blanks = frames
    opts = IndexingOptions(indexing=engine)
    wrong = 0
    for name in CELLS:
        mis, dev, eligible, indexed = [], [], 0, 0
        for cname, cell, s in hits:
            if cname != name:
                continue
            result = index_frame(s.frame, s.peaks, s.detector, cell, opts)
            if s.n_true >= 25:
                eligible += 1
            if not result.crystals:
                continue
            assert result.indexed_by == f"{engine}-{'latt' if engine == 'toro' else 'nolatt'}-cell"
            assert result.n_indexing_tries >= 1
            c = result.crystals[0].cell
            assert (c.lattice_type, c.centering, c.unique_axis) == \
                (cell.lattice_type, cell.centering, cell.unique_axis)
            angle = math.degrees(misorientation(c, s.truth))
            if angle > WRONG_DEG or len(result.crystals) > 1:
                wrong += 1
                continue
            if s.n_true >= 25:
                indexed += 1
            mis.append(angle)
            p, p0 = parameters_of(c.real), parameters_of(cell.real)
            dev.append(float(np.max(np.abs(p[:3] / p0[:3] - 1))))
        assert indexed >= 0.95 * eligible, f"{engine} {name}: {indexed}/{eligible} indexed"
        assert np.median(mis) <= 0.1, f"{engine} {name}: median misorientation {np.median(mis)}"
        assert max(dev) <= 0.005, f"{engine} {name}: cell edge off by {max(dev):.4f}"
    for s in blanks:
        if index_frame(s.frame, s.peaks, s.detector, CELLS["monoclinic_c"], opts).crystals:
            wrong += 1
    total = len(hits) + len(blanks)
    assert wrong <= 0.01 * total, f"{engine}: {wrong} of {total} frames wrongly indexed"


@pytest.mark.parametrize("symbol", sorted(BRAVAIS))
def test_every_bravais_lattice_indexes_with_both_engines(symbol):
    """Each lattice comes out in the target's setting with the right orientation, modulo the
    lattice's point group (CrystFEL's cell check reindexes into the target's setting)."""
    target = BRAVAIS[symbol]
    rng = np.random.default_rng(sum(map(ord, symbol)))
    for engine in ("toro", "fft1d"):
        s = synth_frame(target, rng, n_spots=60)
        result = index_frame(s.frame, s.peaks, s.detector, target,
                             IndexingOptions(indexing=engine))
        assert len(result.crystals) == 1, f"{symbol} {engine} not indexed"
        cell = result.crystals[0].cell
        assert (cell.lattice_type, cell.centering) == (target.lattice_type, target.centering)
        assert math.degrees(misorientation(cell, s.truth)) < 0.1


def test_cell_free_engine_without_target_gives_the_reduced_primitive_lattice():
    """No -p: a triclinic P cell that reindexes onto the truth (checked with our own matcher)."""
    rng = np.random.default_rng(7)
    for name in ("monoclinic_c", "lysozyme"):
        s = synth_frame(CELLS[name], rng, n_spots=70)
        result = index_frame(s.frame, s.peaks, s.detector, None, IndexingOptions())
        assert result.indexed_by == "fft1d-nolatt-nocell"
        cell = result.crystals[0].cell
        assert (cell.lattice_type, cell.centering) == ("triclinic", "P")
        matched = match_to_target(cell, CELLS[name], Tolerances.parse("1,1,1,0.5"))
        assert matched is not None
        assert math.degrees(misorientation(matched, s.truth)) < 0.1
