"""Prediction for stills: positions against simulated ground truth and the still model's rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crystream.geometry.detector import Detector, Panel, ValueSource
from crystream.lattice import centering_allows
from crystream.prediction import (MIN_PARTIALITY, Predicted, _shell_candidates,
                                  ewald_model, lowest_reflection,
                                  outlier_transition, pair_peaks, predict_reflections)
from crystream.simulate import (LYSOZYME, MONOCLINIC_C, TRICLINIC, SimulationConfig,
                                multipanel_detector, random_rotation, simple_detector,
                                simulate_frame)

DEG = math.pi / 180


def _keys(h, k, l):
    return list(zip(np.asarray(h).tolist(), np.asarray(k).tolist(), np.asarray(l).tolist()))


def _match(pred: Predicted, truth):
    """Index pairs (pred, truth) with the same hkl."""
    where = {x: i for i, x in enumerate(_keys(truth.h, truth.k, truth.l))}
    pi, ti = [], []
    for i, x in enumerate(_keys(pred.h, pred.k, pred.l)):
        if x in where:
            pi.append(i)
            ti.append(where[x])
    return np.array(pi, dtype=int), np.array(ti, dtype=int)


@pytest.mark.parametrize("cell, seed, bandwidth", [(LYSOZYME, 1, 0.002), (MONOCLINIC_C, 2, 1e-8),
                                                    (TRICLINIC, 3, 0.01)])
def test_positions_match_simulated_spot_centres(cell, seed, bandwidth):
    det = simple_detector(n=512, pixel=100e-6, clen=0.08, photon_energy=12000,
                          bandwidth=bandwidth)
    cfg = SimulationConfig(detector=det, cell=cell, profile_radius=0.003e9, noise=False)
    frame = simulate_frame(cfg, seed=seed)
    truth = frame.truth.crystals[0]
    pred = predict_reflections(truth.cell, det, frame.wavelength, frame.clen, bandwidth,
                               truth.profile_radius)
    pi, ti = _match(pred, truth.reflections)
    # CrystFEL's partiality carries a bandwidth gain factor, so with a wide band it predicts
    # a few reflections the simulator considers too weak to draw
    assert len(pred) > 30 and len(pi) >= 0.95 * len(pred)
    assert np.all(pred.panel[pi] == truth.reflections.panel[ti])
    dev = np.hypot(pred.fs[pi] - truth.reflections.fs[ti], pred.ss[pi] - truth.reflections.ss[ti])
    assert dev.max() < 0.3
    # and every reflection the simulator drew with a substantial partiality is predicted
    strong = truth.reflections.partiality > 0.3
    assert set(_keys(*(a[strong] for a in (truth.reflections.h, truth.reflections.k,
                                           truth.reflections.l)))) <= set(_keys(pred.h, pred.k,
                                                                                pred.l))


def test_multipanel_first_panel_wins_and_gaps_drop():
    det = multipanel_detector(rows=2, cols=2, panel_fs=200, panel_ss=200, gap=12, pixel=100e-6,
                              clen=0.08, bandwidth=0.002)
    cfg = SimulationConfig(detector=det, cell=LYSOZYME, profile_radius=0.003e9, noise=False)
    frame = simulate_frame(cfg, seed=5)
    truth = frame.truth.crystals[0]
    pred = predict_reflections(truth.cell, det, frame.wavelength, frame.clen, 0.002,
                               truth.profile_radius)
    pi, ti = _match(pred, truth.reflections)
    assert len(pi) == len(pred) and len(set(pred.panel.tolist())) == 4
    assert np.all(pred.panel[pi] == truth.reflections.panel[ti])
    assert np.hypot(pred.fs[pi] - truth.reflections.fs[ti],
                    pred.ss[pi] - truth.reflections.ss[ti]).max() < 0.3
    for i, p in enumerate(det.panels):
        sel = pred.panel == i
        assert np.all((pred.fs[sel] >= 0) & (pred.fs[sel] < p.width))
        assert np.all((pred.ss[sel] >= 0) & (pred.ss[sel] < p.height))


def test_shell_enumeration_equals_brute_force():
    cell = TRICLINIC.rotated(random_rotation(np.random.default_rng(7)))
    k0 = 1 / 1.0e-10
    shell = 0.02e9
    limits = (20, 24, 28)
    h, k, l = _shell_candidates(cell, k0, shell, limits)
    r = [np.arange(-m, m + 1) for m in limits]
    H, K, L = (a.ravel() for a in np.meshgrid(*r, indexing="ij"))
    p = np.stack([H, K, L], 1) @ cell.reciprocal
    dist = np.abs(np.linalg.norm(p + [0, 0, k0], axis=1) - k0)
    brute = set(_keys(H[dist <= shell], K[dist <= shell], L[dist <= shell]))
    mine = set(_keys(h, k, l))
    assert brute <= mine
    # the candidates beyond the shell are only rounding at its edge
    extra = mine - brute
    assert len(extra) <= 0.01 * len(brute) + 2


def test_partiality_threshold_and_excitation_error_sign():
    lam = 1e-10
    k0 = 1 / lam
    # points on a ray at 10 degrees from the beam, moved off the sphere radially
    u = np.array([math.sin(10 * DEG), 0.0, math.cos(10 * DEG)])
    on_sphere = k0 * u - [0, 0, k0]
    offsets = np.linspace(-0.02e9, 0.02e9, 41)
    points = on_sphere + offsets[:, None] * u
    R = 0.005e9
    kpred, part, exerr = ewald_model(points, lam, 1e-8, R)
    assert np.allclose(exerr, -offsets, atol=1e3)  # inside the sphere (offset < 0) is positive
    # bandwidth negligible: partiality is the Gaussian overlap
    assert np.allclose(part, np.exp(-0.5 * offsets ** 2 / R ** 2), rtol=1e-4, atol=1e-9)
    assert np.allclose(kpred, k0, rtol=1e-6)  # monochromatic: the ray through p' on the sphere
    cut = np.abs(offsets) <= 1.7 * R
    assert np.array_equal(part >= MIN_PARTIALITY, cut)


def test_overpredict_and_push_res():
    det = simple_detector(n=512, pixel=100e-6, clen=0.08, bandwidth=1e-8)
    cell = LYSOZYME.rotated(random_rotation(np.random.default_rng(3)))
    lam, clen = det.wavelength.resolve(), 0.08
    base = predict_reflections(cell, det, lam, clen, 1e-8, 0.002e9)
    over = predict_reflections(cell, det, lam, clen, 1e-8, 0.002e9, overpredict=True)
    wide = predict_reflections(cell, det, lam, clen, 1e-8, 0.01e9)
    assert len(over) > 2 * len(base)
    assert set(_keys(over.h, over.k, over.l)) == set(_keys(wide.h, wide.k, wide.l))
    limit = 2.0e9
    cut = predict_reflections(cell, det, lam, clen, 1e-8, 0.01e9, max_q=limit)
    q = np.linalg.norm(np.stack([cut.h, cut.k, cut.l], 1) @ cell.reciprocal, axis=1)
    assert q.max() <= limit and len(cut) < len(wide)
    qw = np.linalg.norm(np.stack([wide.h, wide.k, wide.l], 1) @ cell.reciprocal, axis=1)
    assert set(_keys(cut.h, cut.k, cut.l)) == set(_keys(*(a[qw <= limit] for a in
                                                          (wide.h, wide.k, wide.l))))


def test_centering_rules_and_absences_not_predicted():
    h, k, l = np.array([1, 1, 1, 2, 1]), np.array([1, 0, 1, 0, 1]), np.array([0, 0, 1, 0, 2])
    assert centering_allows(h, k, l, "C").tolist() == [True, False, True, True, True]
    assert centering_allows(h, k, l, "I").tolist() == [True, False, False, True, True]
    assert centering_allows(h, k, l, "F").tolist() == [False, False, True, True, False]
    assert centering_allows(h, k, l, "A").tolist() == [False, True, True, True, False]
    assert centering_allows(h, k, l, "H").tolist() == [True, False, False, False, False]
    assert centering_allows(h, k, l, "P").all()
    det = simple_detector(n=512, pixel=100e-6, clen=0.08, bandwidth=0.003)
    cell = MONOCLINIC_C.rotated(random_rotation(np.random.default_rng(1)))
    pred = predict_reflections(cell, det, det.wavelength.resolve(), 0.08, 0.003, 0.005e9)
    assert len(pred) > 20 and np.all((pred.h + pred.k) % 2 == 0)
    # lowest allowed reflection of mC is not (1,0,0) but e.g. (0,0,1)/(2,0,0)/(1,1,0)
    assert math.isclose(lowest_reflection(cell),
                        min(np.linalg.norm(np.array(v) @ cell.reciprocal) / 2
                            for v in ((0, 0, 1), (1, 1, 0), (2, 0, 0), (1, 0, 1), (1, 0, -1),
                                      (0, 2, 0))), rel_tol=1e-12)


def test_pair_peaks_on_simulated_spots():
    det = simple_detector(n=512, pixel=100e-6, clen=0.08, bandwidth=0.002)
    cfg = SimulationConfig(detector=det, cell=LYSOZYME, profile_radius=0.003e9, noise=False)
    frame = simulate_frame(cfg, seed=11)
    truth = frame.truth.crystals[0]
    peaks = frame.truth.peak_list(min_photons=50)
    pairs = pair_peaks(truth.cell, peaks, det, frame.wavelength, frame.clen, 0.002, 0.02e9)
    assert len(pairs) >= 0.8 * len(peaks)
    # each paired peak is the truth spot of that hkl
    where = {x: i for i, x in enumerate(_keys(truth.reflections.h, truth.reflections.k,
                                              truth.reflections.l))}
    for j, x in zip(pairs.peak, _keys(pairs.h, pairs.k, pairs.l)):
        t = where[x]
        assert abs(truth.reflections.fs[t] - peaks.fs[j]) < 1e-6
    assert np.all(np.diff(np.abs(pairs.exerr)) >= 0)


def test_outlier_transition():
    good = np.linspace(1e5, 1e6, 20)
    assert outlier_transition(good) == 20
    jump = np.concatenate([good, [5e7, 6e7, 7e7]])
    # the pair that sets the slope (i = 19) is dropped with the outliers, as CrystFEL does;
    # its profile radii on the sample frames (test_integration_crystfel) depend on this
    assert outlier_transition(jump) == 19
    assert outlier_transition(np.array([1.0, 2.0])) == 2


def test_degenerate_cell_predicts_nothing():
    from crystream.cell import UnitCell
    from crystream.frame import PeakList
    det = simple_detector(n=256, pixel=100e-6, clen=0.08)
    flat = UnitCell(np.array([[1e8, 0, 0], [0, 1e8, 0], [0, 0, 0.0]]))
    nan = UnitCell(np.full((3, 3), np.nan))
    peaks = PeakList(np.array([10.0, 20, 30]), np.array([10.0, 20, 30]),
                     np.zeros(3, dtype=np.int32), np.ones(3))
    for cell in (flat, nan):
        assert len(predict_reflections(cell, det, 1e-10, 0.08, 1e-8, 0.01e9)) == 0
        assert len(pair_peaks(cell, peaks, det, 1e-10, 0.08, 1e-8, 0.02e9)) == 0


@pytest.mark.parametrize("bandwidth, radius, overpredict", [(1e-8, 0.003e9, False),
                                                            (0.003, 0.001e9, False),
                                                            (0.02, 0.005e9, False),
                                                            (0.003, 0.004e9, True)])
def test_same_set_as_the_full_index_cube(bandwidth, radius, overpredict):
    """The row search finds exactly what CrystFEL's loop over the whole hkl cube finds."""
    from crystream.geometry.detector import max_resolution
    from crystream.prediction import locate_rays
    det = multipanel_detector(rows=2, cols=2, panel_fs=160, panel_ss=160, gap=6, pixel=100e-6,
                              clen=0.06, bandwidth=bandwidth)
    cell = MONOCLINIC_C.rotated(random_rotation(np.random.default_rng(4)))
    lam = det.wavelength.resolve()
    pred = predict_reflections(cell, det, lam, 0.06, bandwidth, radius, overpredict=overpredict)
    mres = max_resolution(det, 0.06, lam)
    lim = np.floor(mres * np.linalg.norm(cell.real, axis=1)).astype(int)
    H, K, L = (a.ravel() for a in np.meshgrid(*[np.arange(-m, m + 1) for m in lim],
                                                indexing="ij"))
    keep = centering_allows(H, K, L, "C") & ((H != 0) | (K != 0) | (L != 0))
    H, K, L = H[keep], K[keep], L[keep]
    pts = np.stack([H, K, L], 1) @ cell.reciprocal
    kpred, part, _ = ewald_model(pts, lam, bandwidth, radius * (5 if overpredict else 1))
    ok = part >= MIN_PARTIALITY
    rays = pts[ok] + np.column_stack([np.zeros((ok.sum(), 2)), kpred[ok]])
    panel, fs, ss = locate_rays(det, rays, 0.06)
    on = panel >= 0
    brute = set(_keys(H[ok][on], K[ok][on], L[ok][on]))
    assert len(brute) > 20
    assert set(_keys(pred.h, pred.k, pred.l)) == brute


def test_detector_shift_moves_predictions_with_the_spots():
    from dataclasses import replace as dc_replace

    from crystream.geometry.detector import ValueSource as VS
    det = simple_detector(n=512, pixel=100e-6, clen=0.08, bandwidth=0.002)
    det = dc_replace(det, detector_shift_x=VS(value=0.7e-3), detector_shift_y=VS(value=-0.4e-3))
    cfg = SimulationConfig(detector=det, cell=LYSOZYME, profile_radius=0.003e9, noise=False)
    frame = simulate_frame(cfg, seed=9)
    assert frame.detector_shift_x == pytest.approx(0.7e-3)
    truth = frame.truth.crystals[0]
    pred = predict_reflections(truth.cell, det, frame.wavelength, frame.clen, 0.002,
                               truth.profile_radius, shift_x=frame.detector_shift_x,
                               shift_y=frame.detector_shift_y)
    pi, ti = _match(pred, truth.reflections)
    assert len(pi) >= 0.95 * len(pred) > 30
    dev = np.hypot(pred.fs[pi] - truth.reflections.fs[ti], pred.ss[pi] - truth.reflections.ss[ti])
    assert dev.max() < 0.3
    unshifted = predict_reflections(truth.cell, det, frame.wavelength, frame.clen, 0.002,
                                    truth.profile_radius)
    pj, tj = _match(unshifted, truth.reflections)
    assert np.median(np.abs(unshifted.fs[pj] - truth.reflections.fs[tj])) > 5  # 7 px shift
