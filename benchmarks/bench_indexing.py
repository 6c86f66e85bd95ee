"""Indexing speed and quality per engine against the number of spots (synthetic frames).

Prints, for each engine, cell and spot-count bin: the engine alone and the whole
``index_frame`` flow (checks + refinement) in ms per frame of CPU time (one core), the indexing
rate and the median misorientation to the truth. Run: python benchmarks/bench_indexing.py [-n N]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crystream.cellmatch import misorientation  # noqa: E402
from crystream.indexing import IndexingOptions, index_frame  # noqa: E402
from crystream.indexing.cell_free import index_cell_free  # noqa: E402
from crystream.indexing.known_cell import index_known_cell  # noqa: E402
from tests.test_indexing_synth import CELLS, frame_q, synth_frame  # noqa: E402

BINS = ((20, 40), (40, 80), (80, 150))


def engine_call(engine: str, q: np.ndarray, cell):
    if engine == "toro":
        return index_known_cell(q, cell)
    return index_cell_free(q, cell, use_cell=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-n", "--frames", type=int, default=20, help="frames per cell and bin")
    ap.add_argument("--engines", default="toro,fft1d")
    args = ap.parse_args()
    rng = np.random.default_rng(1)
    data = {(name, lo, hi): [synth_frame(cell, rng, n_spots=int(rng.integers(lo, hi + 1)),
                                         serial=i) for i in range(args.frames)]
            for name, cell in CELLS.items() for lo, hi in BINS}
    # compile the numba kernels (cached on disk after the first run) outside the timing
    warm = data[next(iter(data))][0]
    for engine in args.engines.split(","):
        index_frame(warm.frame, warm.peaks, warm.detector, CELLS["lysozyme"],
                    IndexingOptions(indexing=engine))
    print(f"{'engine':7} {'cell':13} {'spots':>8} {'engine ms':>10} {'flow ms':>8} "
          f"{'rate':>6} {'med mis deg':>12}")
    for engine in args.engines.split(","):
        opts = IndexingOptions(indexing=engine)
        for (name, lo, hi), frames in data.items():
            cell = CELLS[name]
            qs = [frame_q(s) for s in frames]
            t0 = time.process_time()
            for q in qs:
                engine_call(engine, q, cell)
            t_engine = (time.process_time() - t0) / len(qs) * 1e3
            t0 = time.process_time()
            results = [index_frame(s.frame, s.peaks, s.detector, cell, opts) for s in frames]
            t_flow = (time.process_time() - t0) / len(frames) * 1e3
            mis = [math.degrees(misorientation(r.crystals[0].cell, s.truth))
                   for r, s in zip(results, frames) if r.crystals]
            rate = len(mis) / len(frames)
            med = float(np.median(mis)) if mis else float("nan")
            print(f"{engine:7} {name:13} {f'{lo}-{hi}':>8} {t_engine:10.1f} {t_flow:8.1f} "
                  f"{rate:6.0%} {med:12.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
