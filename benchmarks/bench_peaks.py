"""Peak-search speed: ms per frame and ms per Mpixel for each method on 1-, 4- and 16-Mpixel
detectors (simulated hits from crystream.simulate, panels of 1024 x 1024), one thread.

Run: python benchmarks/bench_peaks.py [--repeat N]
The first call of each method compiles (or loads) the numba kernels and is not timed.
Options are those of the samples' command lines (photon-counting data, gain 1).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from crystream.peaks import PeakSearchOptions, find_peaks
from crystream.simulate import LYSOZYME, SimulationConfig, multipanel_detector, simulate_frames

OPTIONS = {
    "zaef": PeakSearchOptions(peaks="zaef", threshold=6, min_squared_gradient=30, min_snr=4),
    "peakfinder8": PeakSearchOptions(peaks="peakfinder8", threshold=6, min_snr=4,
                                     min_pix_count=2, max_pix_count=50, local_bg_radius=3),
    "peakfinder8-fast": PeakSearchOptions(peaks="peakfinder8", threshold=6, min_snr=4,
                                          min_pix_count=2, max_pix_count=50,
                                          local_bg_radius=3, peakfinder8_fast=True),
    "peakfinder9": PeakSearchOptions(peaks="peakfinder9", min_snr_biggest_pix=7,
                                     min_snr_peak_pix=3, min_snr=5, min_sig=2.0),
}

DETECTORS = {  # Mpixel: (rows, cols) of 1024 x 1024 panels
    1: (1, 1),
    4: (2, 2),
    16: (4, 4),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=5, help="timed calls per frame")
    ap.add_argument("--frames", type=int, default=2, help="simulated frames per detector")
    args = ap.parse_args()
    # ms/frame and ms/Mpixel: median CPU time of the calling thread (robust on a shared
    # machine); best-wall: the fastest wall-clock call, per Mpixel.
    print(f"{'detector':>9} {'method':>17} {'peaks':>6} {'ms/frame':>9} {'ms/Mpixel':>10} "
          f"{'best-wall':>10}")
    for mpix, (rows, cols) in DETECTORS.items():
        det = multipanel_detector(rows=rows, cols=cols, panel_fs=1024, panel_ss=1024, gap=10,
                                  pixel=75e-6, clen=0.1 * max(rows, cols))
        cfg = SimulationConfig(detector=det, cell=LYSOZYME, spot_photons=2e5 * mpix)
        frames = list(simulate_frames(cfg, args.frames, seed=1))
        npix = sum(p.width * p.height for p in det.panels) / 1e6
        for name, opt in OPTIONS.items():
            find_peaks(frames[0], det, opt)  # compile / load kernels, build per-detector maps
            wall, cpu, counts = [], [], []
            for frame in frames:
                for _ in range(args.repeat):
                    t0, c0 = time.perf_counter(), time.thread_time()
                    pk = find_peaks(frame, det, opt)
                    cpu.append(time.thread_time() - c0)
                    wall.append(time.perf_counter() - t0)
                counts.append(len(pk))
            ms = 1e3 * float(np.median(cpu))
            best = 1e3 * float(np.min(wall))
            print(f"{npix:>7.1f}Mp {name:>17} {int(np.mean(counts)):>6} {ms:>9.2f} "
                  f"{ms / npix:>10.2f} {best / npix:>10.2f}", flush=True)


if __name__ == "__main__":
    main()
