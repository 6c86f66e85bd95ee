"""Integration of simulated frames against the simulator's ground truth (crystream.simulate).

Only the simulator's truth output is used: spot positions, partial intensities, noiseless
peak values. Intensities are compared in ADU (truth photons x gain x fraction on pixels).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from crystream.chunk import Crystal
from crystream.integration import IntegrationOptions, integrate_crystals
from crystream.simulate import (LYSOZYME, MONOCLINIC_C, SimulationConfig, simple_detector,
                                simulate_frame)


def _detector(**kw):
    args = dict(n=512, pixel=100e-6, clen=0.08, photon_energy=12000, bandwidth=0.002)
    args.update(kw)
    return simple_detector(**args)


def _truth_table(truth):
    r = truth.reflections
    return {x: i for i, x in enumerate(zip(r.h.tolist(), r.k.tolist(), r.l.tolist()))}


def _matched(refl, truth):
    """(index into refl, index into truth) for written reflections the simulator drew."""
    where = _truth_table(truth)
    pairs = [(i, where[x]) for i, x in enumerate(zip(refl.h.tolist(), refl.k.tolist(),
                                                     refl.l.tolist())) if x in where]
    a = np.array(pairs, dtype=int).reshape(-1, 2)
    return a[:, 0], a[:, 1]


def _true_adu(truth, idx):
    r = truth.reflections
    return r.intensity_adu[idx] * r.on_panel[idx]


@pytest.mark.parametrize("cell, seed, lattices, method", [
    (LYSOZYME, 3, 1, "rings"), (MONOCLINIC_C, 4, 1, "rings"), (LYSOZYME, 5, 2, "rings"),
    (LYSOZYME, 3, 1, "prof2d"), (MONOCLINIC_C, 4, 1, "rings-cen-grad")])
def test_intensities_correlate_with_true_partials(cell, seed, lattices, method):
    det = _detector()
    cfg = SimulationConfig(detector=det, cell=cell, profile_radius=0.003e9, spot_photons=3e5,
                           lattices=lattices)
    frame = simulate_frame(cfg, seed=seed)
    peaks = frame.truth.peak_list()
    crystals = [Crystal(t.cell) for t in frame.truth.crystals]
    out = integrate_crystals(frame, peaks, crystals, det, IntegrationOptions(integration=method))
    for cr, truth in zip(out, frame.truth.crystals):
        ri, ti = _matched(cr.reflections, truth)
        strong = cr.reflections.intensity[ri] / cr.reflections.sigma[ri] >= 5
        assert strong.sum() >= 30
        measured = cr.reflections.intensity[ri][strong]
        true = _true_adu(truth, ti)[strong]
        assert np.corrcoef(measured, true)[0, 1] >= 0.95
        assert 0.9 < np.median(measured / true) < 1.1
        # written positions are the predictions with the *estimated* radius (CrystFEL's
        # ~98th-percentile excitation error, here ~2.8x the simulated Gaussian width), which
        # shifts kpred a little; test_prediction checks 0.3 px with the true radius
        dev = np.hypot(cr.reflections.fs[ri] - truth.reflections.fs[ti],
                       cr.reflections.ss[ri] - truth.reflections.ss[ti])
        assert np.median(dev) < 0.3
        if not IntegrationOptions(integration=method).method.centre:
            assert dev.max() < 1.0  # -cen moves boxes (and positions) by whole pixels
        assert cr.profile_radius > 0 and cr.resolution_limit > 0
        assert cr.num_implausible == 0


def test_sigma_matches_scatter_of_repeated_noise():
    gain = 2.0
    det = _detector(adu_per_photon=gain)
    cfg = SimulationConfig(detector=det, cell=LYSOZYME, profile_radius=0.003e9,
                           spot_photons=1e5, noise=False)
    clean = simulate_frame(cfg, seed=21)
    truth = clean.truth.crystals[0]
    peaks = clean.truth.peak_list()
    opts = IntegrationOptions(fix_profile_radius=0.003e9)
    rng = np.random.default_rng(0)
    runs_i, runs_s, keys = [], [], None
    for _ in range(40):
        noisy = [gain * rng.poisson(d / gain).astype(np.float32) for d in clean.data]
        frame = replace(clean, data=noisy)
        refl = integrate_crystals(frame, peaks, [Crystal(truth.cell)], det, opts)[0].reflections
        k = list(zip(refl.h.tolist(), refl.k.tolist(), refl.l.tolist()))
        table = dict(zip(k, zip(refl.intensity, refl.sigma)))
        keys = set(k) if keys is None else keys & set(k)
        runs_i.append(table)
    keys = sorted(keys)
    intens = np.array([[run[x][0] for x in keys] for run in runs_i])
    sigmas = np.array([[run[x][1] for x in keys] for run in runs_i])
    assert len(keys) >= 50
    scatter = intens.std(axis=0, ddof=1)
    predicted = np.sqrt((sigmas ** 2).mean(axis=0))
    ratio = scatter / predicted
    # 40 realisations: each ratio is itself uncertain by ~11%; the ensemble must agree to 20%
    assert 0.8 < np.median(ratio) < 1.2
    assert 0.8 < math.sqrt(np.mean(scatter ** 2) / np.mean(predicted ** 2)) < 1.2


@pytest.mark.parametrize("via", ["max_adu", "saturation_map"])
def test_saturated_reflections_flagged_and_dropped(via):
    level = 400.0
    det = _detector()
    cfg = SimulationConfig(detector=det, cell=LYSOZYME, profile_radius=0.003e9, spot_photons=4e5)
    frame = simulate_frame(cfg, seed=8)
    truth = frame.truth.crystals[0]
    if via == "max_adu":
        det = replace(det, panels=[replace(p, max_adu=level) for p in det.panels])
    else:
        frame = replace(frame, saturation=[np.full(p.shape, level) for p in det.panels])
    peaks = frame.truth.peak_list()
    cell = [Crystal(truth.cell)]
    nosat = integrate_crystals(frame, peaks, cell, det, IntegrationOptions())[0]
    withsat = integrate_crystals(frame, peaks, cell, det,
                                 IntegrationOptions(integration="rings-sat"))[0]
    assert nosat.num_saturated == withsat.num_saturated > 0
    assert len(withsat.reflections) - len(nosat.reflections) == nosat.num_saturated
    r = truth.reflections
    ri, ti = _matched(withsat.reflections, truth)
    clearly = r.peak_adu[ti] > 1.5 * level
    clearly_not = r.peak_adu[ti] < 0.3 * level
    assert clearly.sum() >= 3 and clearly_not.sum() >= 20
    kept = set(zip(nosat.reflections.h.tolist(), nosat.reflections.k.tolist(),
                   nosat.reflections.l.tolist()))
    sat_keys = [(int(r.h[t]), int(r.k[t]), int(r.l[t])) for t in ti[clearly]]
    assert not any(k in kept for k in sat_keys)
    # weak reflections far from any bright one are unaffected
    calm = [(int(r.h[t]), int(r.k[t]), int(r.l[t])) for t in ti[clearly_not]]
    assert sum(k in kept for k in calm) >= 0.9 * len(calm)


def test_cell_parameters_only_and_none_give_no_reflections():
    det = _detector()
    cfg = SimulationConfig(detector=det, cell=LYSOZYME, profile_radius=0.003e9, noise=False)
    frame = simulate_frame(cfg, seed=2)
    truth = frame.truth.crystals[0]
    peaks = frame.truth.peak_list()
    for opts in (IntegrationOptions(cell_parameters_only=True),
                 IntegrationOptions(integration="none")):
        cr = integrate_crystals(frame, peaks, [Crystal(truth.cell)], det, opts)[0]
        assert cr.reflections is None and cr.num_saturated == 0
        assert cr.profile_radius > 0 and cr.resolution_limit > 0
    fixed = integrate_crystals(frame, peaks, [Crystal(truth.cell)], det,
                               IntegrationOptions(fix_profile_radius=0.0042e9))[0]
    assert fixed.profile_radius == 0.0042e9


def test_push_res_and_highres_limit_the_reflections():
    det = _detector()
    cfg = SimulationConfig(detector=det, cell=LYSOZYME, profile_radius=0.003e9, noise=False)
    frame = simulate_frame(cfg, seed=6)
    truth = frame.truth.crystals[0]
    peaks = frame.truth.peak_list()
    cell = truth.cell
    full = integrate_crystals(frame, peaks, [Crystal(cell)], det, IntegrationOptions())[0]
    pushed = integrate_crystals(frame, peaks, [Crystal(cell)], det,
                                IntegrationOptions(push_res=0.0))[0]

    def inv_d(refl):
        return np.linalg.norm(np.stack([refl.h, refl.k, refl.l], 1) @ cell.reciprocal.astype(
            float), axis=1)

    assert inv_d(pushed.reflections).max() <= pushed.resolution_limit
    assert 0 < len(pushed.reflections) < len(full.reflections)
    highres = 1e10 / (0.8 * inv_d(full.reflections).max())  # Angstrom
    cut = integrate_crystals(frame, peaks, [Crystal(cell)], det,
                             IntegrationOptions(highres=highres))[0]
    assert 0 < len(cut.reflections) < len(full.reflections)
    # every written box centre lies inside the --highres sphere (edge slack: 8 px at 0.1 mm)
    assert inv_d(cut.reflections).max() < 1.0 / (highres * 1e-10) * 1.05
