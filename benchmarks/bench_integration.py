"""Prediction + integration speed on simulated frames: prints ms per crystal and per stage.

Usage: python benchmarks/bench_integration.py [n_frames]
Two cases: a 1024x1024 panel with lysozyme (~hundreds of reflections per crystal) and a
4x4-panel detector with thermolysin (larger cell, more reflections).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from crystream.chunk import Crystal
from crystream.integration import (IntegrationOptions, diffraction_resolution_limit,
                                   estimate_profile_radius, frame_pixels, integrate_crystals,
                                   integrate_predicted)
from crystream.integration.background import background_mask
from crystream.prediction import predict_reflections
from crystream.simulate import (LYSOZYME, THERMOLYSIN, SimulationConfig, multipanel_detector,
                                simple_detector, simulate_frames)


def _stage_times(frame, det, cell, opts):
    peaks = frame.truth.peak_list()
    t = [time.perf_counter()]
    radius = estimate_profile_radius(cell, peaks, det, frame.wavelength, frame.clen,
                                     det.bandwidth)
    t.append(time.perf_counter())
    diffraction_resolution_limit(cell, peaks, det, frame.clen, frame.wavelength)
    t.append(time.perf_counter())
    pred = predict_reflections(cell, det, frame.wavelength, frame.clen, det.bandwidth, radius)
    t.append(time.perf_counter())
    counts = background_mask(det, pred.panel, pred.fs, pred.ss, opts.radii[0])
    pixels = frame_pixels(frame, det, counts, opts.highres)
    t.append(time.perf_counter())
    gains = np.array([p.gain(frame.photon_energy_ev) for p in det.panels])
    refl, _, _ = integrate_predicted(pixels, pred, opts.method, opts.radii, gains)
    t.append(time.perf_counter())
    return np.diff(t) * 1e3, len(pred), len(refl)


def run(name, det, cell, n_frames, integration="rings-nocen-nosat-nograd"):
    cfg = SimulationConfig(detector=det, cell=cell, profile_radius=0.003e9, spot_photons=5e5)
    frames = list(simulate_frames(cfg, n_frames, seed=1))
    opts = IntegrationOptions(integration=integration)
    # warm-up (imports, caches)
    f0 = frames[0]
    integrate_crystals(f0, f0.truth.peak_list(), [Crystal(f0.truth.crystals[0].cell)], det, opts)
    totals, stages, npred, nrefl = [], [], [], []
    for f in frames:
        cell_f = f.truth.crystals[0].cell
        peaks = f.truth.peak_list()
        t0 = time.perf_counter()
        integrate_crystals(f, peaks, [Crystal(cell_f)], det, opts)
        totals.append((time.perf_counter() - t0) * 1e3)
        st, n_p, n_r = _stage_times(f, det, cell_f, opts)
        stages.append(st)
        npred.append(n_p)
        nrefl.append(n_r)
    st = np.median(np.array(stages), axis=0)
    tot = float(np.median(totals))
    print(f"{name} [{integration}]: {tot:.2f} ms per crystal (median of {n_frames}), "
          f"{np.mean(npred):.0f} predicted, {np.mean(nrefl):.0f} written; "
          f"{tot / max(np.mean(npred), 1) * 1e3:.1f} us per predicted reflection")
    print(f"    stages (ms): profile radius {st[0]:.2f}, resolution {st[1]:.2f}, "
          f"prediction {st[2]:.2f}, bg mask + pixels {st[3]:.2f}, rings {st[4]:.2f}")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    single = simple_detector(n=1024, pixel=75e-6, clen=0.1, photon_energy=12000,
                             bandwidth=0.002)
    multi = multipanel_detector(rows=4, cols=4, panel_fs=256, panel_ss=256, gap=8,
                                pixel=100e-6, clen=0.1, bandwidth=0.002)
    run("1024x1024 panel, lysozyme", single, LYSOZYME, n)
    run("1024x1024 panel, lysozyme", single, LYSOZYME, n, "rings-cen-grad")
    run("1024x1024 panel, lysozyme", single, LYSOZYME, n, "prof2d")
    run("4x4 panels, thermolysin", multi, THERMOLYSIN, n)


if __name__ == "__main__":
    main()
