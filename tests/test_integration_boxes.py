"""Box rules of ring integration on hand-made scenes with known spots (integration.md §3-4).

A single 128x128 panel; Gaussian spots of known integrated counts (erf-integrated over each
pixel) at known positions, on a known background; predictions are placed by hand.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from crystream.frame import Frame
from crystream.geometry.detector import Detector, Panel, ValueSource
from crystream.integration import (IntegrationOptions, frame_pixels, integrate_predicted,
                                   parse_integration_method)
from crystream.integration.background import background_mask
from crystream.prediction import Predicted

N = 128
_erf = np.vectorize(math.erf)


def _detector(max_adu: float = math.inf, gain: float = 1.0) -> Detector:
    panel = Panel("p0", 0, N - 1, 0, N - 1, -N / 2, -N / 2, np.array([1.0, 0, 0]),
                  np.array([0, 1.0, 0]), 10000.0, adu_per_photon=gain, max_adu=max_adu)
    return Detector([panel], ValueSource(1e-10), ValueSource(0.1))


def _spot(fs: float, ss: float, total: float, sigma: float = 1.0) -> np.ndarray:
    """Expected counts per pixel of a Gaussian spot; pixel i covers [i, i+1)."""
    edges = np.arange(N + 1, dtype=np.float64)
    cx = np.diff(_erf((edges - fs) / (math.sqrt(2) * sigma))) / 2
    cy = np.diff(_erf((edges - ss) / (math.sqrt(2) * sigma))) / 2
    return total * np.outer(cy, cx)


def _pred(positions) -> Predicted:
    pos = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
    n = len(pos)
    idx = np.arange(1, n + 1, dtype=np.int32)
    return Predicted(idx, np.zeros(n, np.int32), np.zeros(n, np.int32),
                     np.zeros(n, np.int32), pos[:, 0], pos[:, 1], np.ones(n), np.zeros(n),
                     np.full(n, 1e10))


def _integrate(image, positions, integration="rings", radii=(4, 5, 7), bad=None, det=None,
               saturation=None):
    det = det or _detector()
    pred = _pred(positions)
    frame = Frame(1, "scene", data=[image.astype(np.float32)],
                  bad=[bad if bad is not None else np.zeros((N, N), bool)], wavelength=1e-10,
                  clen=0.1, saturation=saturation)
    counts = background_mask(det, pred.panel, pred.fs, pred.ss, radii[0])
    pixels = frame_pixels(frame, det, counts, math.inf)
    gains = np.array([p.gain(12398.0) for p in det.panels])
    return integrate_predicted(pixels, pred, parse_integration_method(integration), radii, gains)


def _by_h(refl):
    return {int(h): i for i, h in enumerate(refl.h)}


def test_noiseless_spots_recover_counts_and_flat_background():
    image = np.full((N, N), 10.0) + _spot(40.3, 50.6, 1000) + _spot(90.5, 80.5, 250)
    refl, nsat, nimp = _integrate(image, [(40.3, 50.6), (90.5, 80.5)])
    assert len(refl) == 2 and nsat == 0 and nimp == 0
    assert np.allclose(refl.intensity, [1000, 250], rtol=2e-3)
    assert np.allclose(refl.background, 10.0, atol=1e-3)  # spot tails reach the annulus
    assert refl.peak[0] == pytest.approx(image[50, 40], rel=1e-6)
    assert np.allclose(refl.fs, [40.3, 90.5]) and np.allclose(refl.ss, [50.6, 80.5])


def test_sigma_definition_with_gain():
    gain = 3.0
    rng = np.random.default_rng(1)
    image = gain * rng.poisson(5.0 + _spot(60.5, 60.5, 800)).astype(float)
    refl, _, _ = _integrate(image, [(60.5, 60.5)], det=_detector(gain=gain))
    # by hand: PEAK r^2 <= 16 (49 px), BACKGROUND 25 <= r^2 <= 49 around pixel (60, 60)
    q, p = np.mgrid[-7:8, -7:8]
    box = image[53:68, 53:68]
    peak = p * p + q * q <= 16
    bg = (p * p + q * q >= 25) & (p * p + q * q <= 49)
    intensity = box[peak].sum() - peak.sum() * box[bg].mean()
    sigma = math.sqrt(gain * intensity + peak.sum() * box[bg].var())
    assert refl.intensity[0] == pytest.approx(intensity)
    assert refl.sigma[0] == pytest.approx(sigma)


def test_bad_pixels_off_panel_and_too_few_pixels():
    image = np.full((N, N), 10.0) + _spot(40.5, 40.5, 500) + _spot(80.5, 80.5, 500)
    bad = np.zeros((N, N), bool)
    bad[40, 41] = True  # inside the PEAK disc of reflection 1 -> rejected
    bad[80, 86] = True  # in the BACKGROUND annulus of reflection 2 -> just ignored
    refl, _, _ = _integrate(image, [(40.5, 40.5), (80.5, 80.5), (3.5, 60.5), (60.5, 124.2)],
                            bad=bad)
    assert _by_h(refl).keys() == {2}  # 3 and 4 have boxes leaving the panel
    assert refl.intensity[0] == pytest.approx(500, rel=2e-3)
    # a box whose annulus is all bad has fewer than 4 BACKGROUND pixels
    bad2 = np.zeros((N, N), bool)
    q, p = np.mgrid[0:N, 0:N]
    bad2[((p - 80) ** 2 + (q - 80) ** 2 >= 25)] = True
    refl2, _, _ = _integrate(image, [(80.5, 80.5)], bad=bad2)
    assert len(refl2) == 0


def test_neighbouring_peaks_are_kept_out_of_the_background():
    # a bright spot 8 px away: its PEAK disc (r <= 4) overlaps the weak one's annulus (5..7)
    image = np.full((N, N), 10.0) + _spot(50.5, 50.5, 100) + _spot(58.5, 50.5, 20000)
    refl, _, _ = _integrate(image, [(50.5, 50.5), (58.5, 50.5)])
    weak = _by_h(refl)[1]
    assert refl.background[weak] == pytest.approx(10.0, abs=0.5)
    assert refl.intensity[weak] == pytest.approx(100, abs=20)
    # without the neighbour's prediction, its light leaks into the background estimate
    alone, _, _ = _integrate(image, [(50.5, 50.5)])
    assert alone.background[0] > 15 and alone.intensity[0] < 0


def test_saturation_max_adu_and_map():
    image = np.full((N, N), 10.0) + _spot(40.5, 40.5, 5000) + _spot(80.5, 80.5, 300)
    det = _detector(max_adu=500.0)
    refl, nsat, _ = _integrate(image, [(40.5, 40.5), (80.5, 80.5)], det=det)
    assert nsat == 1 and _by_h(refl).keys() == {2}
    refl, nsat, _ = _integrate(image, [(40.5, 40.5), (80.5, 80.5)], "rings-sat", det=det)
    assert nsat == 1 and _by_h(refl).keys() == {1, 2}
    sat_map = np.full((N, N), np.inf)
    sat_map[75:86, 75:86] = 50.0  # only the weak spot's box is "saturated" here
    refl, nsat, _ = _integrate(image, [(40.5, 40.5), (80.5, 80.5)], saturation=[sat_map])
    assert nsat == 1 and _by_h(refl).keys() == {1}


def test_implausibly_negative_reflections_are_counted_not_written():
    rng = np.random.default_rng(3)
    image = rng.poisson(100.0, (N, N)).astype(float)
    q, p = np.mgrid[0:N, 0:N]
    image[(p - 70) ** 2 + (q - 70) ** 2 <= 16] = 0.0  # a dead disc where a reflection sits
    image += _spot(30.5, 30.5, 3000)
    refl, _, nimp = _integrate(image, [(30.5, 30.5), (70.5, 70.5)])
    assert nimp == 1 and _by_h(refl).keys() == {1}


def test_centring_follows_the_spot():
    image = np.full((N, N), 5.0) + _spot(63.5, 62.5, 3000, sigma=0.8)
    nocen, _, _ = _integrate(image, [(60.5, 60.5)])
    cen, _, _ = _integrate(image, [(60.5, 60.5)], "rings-cen")
    assert cen.fs[0] == pytest.approx(63.5) and cen.ss[0] == pytest.approx(62.5)
    assert nocen.fs[0] == pytest.approx(60.5)
    assert cen.intensity[0] == pytest.approx(3000, rel=2e-3)
    assert nocen.intensity[0] < 0.8 * 3000
    # nothing strong in the box: it stays where it was predicted
    flat = np.full((N, N), 5.0)
    still, _, _ = _integrate(flat, [(60.5, 60.5)], "rings-cen")
    assert still.fs[0] == pytest.approx(60.5) and still.ss[0] == pytest.approx(60.5)


def test_gradient_background_with_ignored_pixels():
    q, p = np.mgrid[0:N, 0:N].astype(float)
    plane = 200.0 + 8.0 * (p - 64) + 3.0 * (q - 64)
    image = plane + _spot(64.5, 64.5, 2000)
    bad = np.zeros((N, N), bool)
    bad[56:73, 69:73] = True  # right part of the annulus is unusable: the flat mean is biased
    flat, _, _ = _integrate(image, [(64.5, 64.5)], "rings", bad=bad)
    grad, _, _ = _integrate(image, [(64.5, 64.5)], "rings-grad", bad=bad)
    assert grad.intensity[0] == pytest.approx(2000, rel=2e-3)
    assert abs(flat.intensity[0] - 2000) > 500
    # a weak spot on a steep gradient fails the background test (|a| > |peak - bg|/10)
    weak, _, _ = _integrate(plane + _spot(64.5, 64.5, 50), [(64.5, 64.5)], "rings-grad")
    assert len(weak) == 0
    weak_cen, _, _ = _integrate(plane + _spot(64.5, 64.5, 50), [(64.5, 64.5)],
                                "rings-cen-grad")
    assert len(weak_cen) == 1  # with -cen the background test is not applied


def test_options_parsing_and_rejections():
    assert parse_integration_method("rings-nocen-nosat-nograd") == parse_integration_method(
        "rings")
    m = parse_integration_method("rings,cen,sat,grad")
    assert (m.method, m.centre, m.saturated, m.gradient) == ("rings", True, True, True)
    assert parse_integration_method("prof2d").centre
    assert not parse_integration_method("prof2d-nocen").centre
    for text in ("rings-rescut", "rings-norescut", "rings-foo", "boxes"):
        with pytest.raises(ValueError, match=r"--integration="):
            parse_integration_method(text)
    assert IntegrationOptions(integration="prof2d").method.centre
    opts = IntegrationOptions(int_radius=(3.9, 5.2, 7.7))
    assert opts.radii == (3, 5, 7)
    with pytest.raises(ValueError, match="--int-radius"):
        IntegrationOptions(int_radius=(5.0, 4.0, 7.0))
    assert IntegrationOptions(push_res=1.5).push_res_m == 1.5e9
    d = IntegrationOptions()
    assert (d.integration, d.int_radius, d.push_res, d.highres, d.fix_profile_radius,
            d.overpredict, d.cell_parameters_only) == ("rings-nocen-nosat-nograd",
                                                       (4.0, 5.0, 7.0), math.inf, math.inf,
                                                       None, False, False)


def _scene(rng, positions, totals, bg=4.0):
    expected = np.full((N, N), bg)
    for (fs, ss), total in zip(positions, totals):
        expected += _spot(fs, ss, total)
    return rng.poisson(expected).astype(float)


def test_prof2d_recovers_known_intensities():
    rng = np.random.default_rng(5)
    grid = [(20.5 + 20 * i + 0.3 * (j % 2), 20.5 + 20 * j) for i in range(5) for j in range(5)]
    totals = rng.uniform(50, 3000, len(grid))
    image = _scene(rng, grid, totals)
    for method in ("prof2d", "prof2d-nocen"):
        refl, nsat, nimp = _integrate(image, grid, method)
        assert len(refl) == len(grid)
        order = refl.h - 1
        measured = np.empty(len(grid))
        measured[order] = refl.intensity
        assert np.corrcoef(measured, totals)[0, 1] > 0.99
        assert np.median(measured / totals) == pytest.approx(1.0, abs=0.05)


def test_prof2d_sigma_definition():
    rng = np.random.default_rng(8)
    grid = [(30.5, 30.5), (90.5, 30.5), (30.5, 90.5), (90.5, 90.5)]
    image = _scene(rng, grid, [2000, 1500, 1000, 60])
    refl, _, _ = _integrate(image, grid, "prof2d-nocen")
    q, p = np.mgrid[-7:8, -7:8]
    peak = p * p + q * q <= 16
    bg = (p * p + q * q >= 25) & (p * p + q * q <= 49)
    boxes = [image[int(s) - 7:int(s) + 8, int(f) - 7:int(f) + 8] for f, s in grid]
    resid = [b - b[bg].mean() for b in boxes]
    ref = sum(np.where(peak, r, 0.0) for r in resid[:3])  # the 60-count spot is too weak
    assert all(b[peak].max() > 10 * b[bg].mean() for b in boxes[:3])
    assert boxes[3][peak].max() < 10 * boxes[3][bg].mean()
    prof = ref / ref.max() * 100
    r = resid[3]
    j = (r[peak] * prof[peak]).sum() / (prof[peak] ** 2).sum()
    sigma = math.sqrt(((j * prof[peak] - r[peak]) ** 2).sum()
                      + ((boxes[3][bg] - boxes[3][bg].mean()) ** 2).sum())
    assert refl.intensity[3] == pytest.approx(j * prof[peak].sum())
    assert refl.sigma[3] == pytest.approx(sigma)


def test_prof2d_without_a_reference_integrates_nothing():
    rng = np.random.default_rng(2)
    image = _scene(rng, [(40.5, 40.5)], [20.0], bg=20.0)  # peak never 10x the background
    refl, nsat, nimp = _integrate(image, [(40.5, 40.5)], "prof2d")
    assert len(refl) == 0 and nsat == 0 and nimp == 0
    rings, _, _ = _integrate(image, [(40.5, 40.5)], "rings")
    assert len(rings) == 1


def test_centring_rules_strong_pixel_count_and_far_jump():
    base = np.full((N, N), 5.0)
    corner = base.copy()
    corner[67, 67] = 500.0  # one strong pixel at box offset (+7, +7): r^2 = 98 > 7^2
    one, _, _ = _integrate(corner, [(60.5, 60.5)], "rings-cen")
    assert len(one) == 1 and one.fs[0] == pytest.approx(60.5)  # < 2 strong pixels: stays
    two = corner.copy()
    two[66, 60] = 100.0  # a second strong pixel: now the jump to the corner is attempted
    far, _, _ = _integrate(two, [(60.5, 60.5)], "rings-cen")
    assert len(far) == 0  # shift^2 = 98 > w^2 = 49: abandoned
