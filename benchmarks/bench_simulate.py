"""Simulator and encoder throughput: frames/s for a 1-Mpixel detector on one core.

Run: python benchmarks/bench_simulate.py [--frames N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from crystream.simulate import (LYSOZYME, MONOCLINIC_C, SimulationConfig, Simulation,
                                multipanel_detector, simple_detector)
from readers.encode import encode_frame


def _rate(fn, n: int) -> tuple[float, float]:
    """(wall-clock frames/s, CPU-time frames/s): on a shared machine the CPU figure is the
    one-core throughput, the wall figure what this run got."""
    fn()  # warm-up (numba compilation, caches)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        fn()
    return n / (time.perf_counter() - t0), n / (time.process_time() - c0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--frames", type=int, default=40)
    n = ap.parse_args().frames
    cases = {
        "1024x1024 single panel, lysozyme": SimulationConfig(simple_detector(), LYSOZYME),
        "4x4 panels of 256x256 (1 Mpix), mC, 2 lattices, defects":
            SimulationConfig(multipanel_detector(rows=4, cols=4), MONOCLINIC_C, lattices=2,
                             dead_fraction=1e-3, hot_fraction=1e-4),
        "1024x1024, no noise": SimulationConfig(simple_detector(), LYSOZYME, noise=False),
    }
    for name, cfg in cases.items():
        t0 = time.perf_counter()
        sim = Simulation(cfg, seed=1)
        setup = time.perf_counter() - t0
        serial = iter(range(1, 10 ** 9))
        wall, cpu = _rate(lambda: sim.frame(next(serial)), n)
        spots = np.mean([len(c.reflections) for c in sim.frame(0).truth.crystals])
        print(f"{name}: {cpu:.1f} frames/s per CPU-second ({1000 / cpu:.1f} ms/frame),"
              f" wall {wall:.1f} frames/s; setup {setup:.2f} s; {spots:.0f} spots per lattice")
    det = simple_detector(peak_list="peak_list")
    sim = Simulation(SimulationConfig(det, LYSOZYME), seed=2)
    frame = sim.frame(1)
    peaks = frame.truth.peak_list()
    for fmt in ("msgpack", "hdf5", "seedee"):
        pk = peaks if fmt == "msgpack" else None
        size = sum(len(b) for b in encode_frame(frame, det, fmt, pk))
        wall, cpu = _rate(lambda: encode_frame(frame, det, fmt, pk), n)
        print(f"encode {fmt}: {cpu:.1f} frames/s per CPU-second ({1000 / cpu:.2f} ms/frame),"
              f" wall {wall:.1f}; {size / 1e6:.2f} MB per frame")


if __name__ == "__main__":
    main()
