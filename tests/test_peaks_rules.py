"""CrystFEL's peak-search rules one by one, on hand-built images whose answer is known.

peakfinder8's radial statistics are checked against a direct transcription of the spec's
five clipping iterations; the filters against brute-force definitions; the pixel-count
bounds, the global 2048 cap, edges, bad pixels, saturation, --min-res/--max-res and
--highres on constructed spots.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from crystream.constants import ev_to_wavelength
from crystream.frame import Frame, PeakList
from crystream.geometry.detector import Detector, Panel, ValueSource
from crystream.peaks import (PeakSearchOptions, find_peaks, is_hit, peak_q_magnitudes,
                             peak_resolution, peak_resolution_of)
from crystream.peaks.filters import median_filter, noise_filter
from crystream.peaks.peakfinder8 import FLT_MAX, FLT_MIN, radial_map, radial_stats
from crystream.peaks.zaef import zaef_panel
from tests.test_peaks_synthetic import photons_for_snr, render

WAVELENGTH = ev_to_wavelength(9500.0)


def make_detector(n_panels: int = 1, w: int = 128, h: int = 128, max_adu: float = math.inf,
                  gap: int = 10) -> Detector:
    """Panels side by side along x, the beam at the middle of the first panel."""
    panels = []
    for i in range(n_panels):
        panels.append(Panel(f"p{i}", i * w, (i + 1) * w - 1, 0, h - 1,
                            -w / 2 + i * (w + gap), -h / 2, np.array([1.0, 0, 0]),
                            np.array([0, 1.0, 0]), 10000.0, adu_per_photon=1.0,
                            max_adu=max_adu))
    return Detector(panels, ValueSource(WAVELENGTH), ValueSource(0.1))


def make_frame(data: list[np.ndarray], bad: list[np.ndarray] | None = None,
               peaks: PeakList | None = None) -> Frame:
    return Frame(serial=7, filename="rules.h5", data=data, bad=bad, wavelength=WAVELENGTH,
                 clen=0.1, peaks=peaks)


def flat_background(h: int, w: int) -> np.ndarray:
    """A checkerboard of 10 and 12: mean 11, sigma 1 in every radius bin (no noise)."""
    ss, fs = np.mgrid[0:h, 0:w]
    return np.where((ss + fs) % 2 == 0, 10.0, 12.0).astype(np.float32)


# ------------------------------------------------------------------ peakfinder8 statistics

def reference_radial_stats(data, bad, codes, n_bins, threshold, min_snr):
    """peak-search.md §5.3 transcribed literally: five full passes, float64."""
    lo = np.full(n_bins, -1e9)
    hi = np.full(n_bins, 1e9)
    v = np.concatenate([d.ravel() for d in data]).astype(np.float64)
    b = np.concatenate([c.ravel() for c in codes])
    ok = (b >= 0) & ~np.concatenate([x.ravel() for x in bad])
    v, b = v[ok], b[ok]
    for _ in range(5):
        sel = (v > lo[b]) & (v < hi[b])
        n = np.bincount(b[sel], minlength=n_bins).astype(float)
        s = np.bincount(b[sel], weights=v[sel], minlength=n_bins)
        s2 = np.bincount(b[sel], weights=v[sel] ** 2, minlength=n_bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n > 0, s / n, 0.0)
            var = np.where(n > 0, s2 / n - mean ** 2, 0.0)
        sigma = np.where(var >= 0, np.sqrt(np.abs(var)), var)
        hi = np.where(n > 0, np.maximum(mean + min_snr * sigma, threshold), FLT_MAX)
        lo = np.where(n > 0, mean - min_snr * sigma, FLT_MIN)
    return mean, sigma, hi


@pytest.mark.parametrize("fast_path_breaker", ["none", "constant-bins", "negative-noise"])
def test_radial_statistics_follow_the_five_clipping_iterations(fast_path_breaker):
    det = make_detector(n_panels=2)
    rng = np.random.default_rng(3)
    data = [rng.poisson(3.0, p.shape).astype(np.float32) for p in det.panels]
    data[0][60:63, 60:63] = 500.0  # bright spots inflate the first sigma
    data[1][20:23, 90:93] = 900.0
    if fast_path_breaker == "constant-bins":
        data[0][:, :] = np.float32(4.0)  # sigma 0: the lower clip removes the whole bin
    elif fast_path_breaker == "negative-noise":
        data = [rng.normal(0.0, 2.0, p.shape).astype(np.float32) for p in det.panels]
    bad = [rng.random(p.shape) < 0.02 for p in det.panels]
    rmap = radial_map(det, 0.0, 0.0, 3.0, 150.0)
    for threshold, snr in ((6.0, 4.0), (0.0, 1.5), (50.0, 5.0)):
        mean, sigma, hi = radial_stats(data, bad, rmap, threshold, snr, False, det,
                                       ("test", 3.0, 150.0))
        rm, rs, rh = reference_radial_stats(data, bad, rmap.codes, rmap.n_bins, threshold, snr)
        np.testing.assert_allclose(mean, rm, rtol=1e-7, atol=1e-9)  # summation order only
        np.testing.assert_allclose(sigma, rs, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(hi, rh, rtol=1e-7, atol=1e-6)


def test_radius_map_uses_truncated_corner_and_min_max_res():
    det = make_detector()  # corner at (-64, -64): pixel (64, 64) has its corner on the beam
    rmap = radial_map(det, 0.0, 0.0, 10.0, 40.0)
    codes = rmap.codes[0]
    assert codes[64, 64] == -1  # r = 0: bin 0, not above min_res
    assert codes[64, 64 + 20] == 20  # x = 20, y = 0
    assert codes[64 + 30, 64 + 30] == -(int(np.rint(30 * math.sqrt(2))) + 1)  # r = 42.4 > 40
    assert codes[64 + 3, 64 + 4] == -6  # r = 5 <= 10
    assert rmap.n_bins == int(math.ceil(math.hypot(64, 64))) + 1


# ------------------------------------------------------------------ peakfinder8 rules

def plateau(bg: np.ndarray, cells: list[tuple[int, int]], value: float = 100.0) -> np.ndarray:
    out = bg.copy()
    for s, f in cells:
        out[s, f] = value
    return out


PF8 = dict(peaks="peakfinder8", threshold=0.0, min_snr=5.0, local_bg_radius=3)


def test_pixel_count_bounds_are_inclusive():
    det = make_detector()
    blob = [(30, 40), (30, 41), (31, 40), (31, 41), (32, 41)]  # 5 connected pixels
    frame = make_frame([plateau(flat_background(128, 128), blob)])
    for lo, hi, found in ((5, 5, 1), (2, 5, 1), (5, 200, 1), (6, 200, 0), (2, 4, 0)):
        pk = find_peaks(frame, det, PeakSearchOptions(**PF8, min_pix_count=lo, max_pix_count=hi))
        assert len(pk) == found, (lo, hi)
    # The reported position is the raw-value-weighted centroid, corner-referenced.
    pk = find_peaks(frame, det, PeakSearchOptions(**PF8))
    assert pk.fs[0] == pytest.approx(np.mean([f for _, f in blob]) + 0.5)
    assert pk.ss[0] == pytest.approx(np.mean([s for s, _ in blob]) + 0.5)
    # Intensity: pixels minus the local background (mean 11 of the checkerboard disc).
    assert pk.intensity[0] == pytest.approx(5 * (100.0 - 11.0), abs=5 * 0.2)


def test_diagonal_neighbours_join_one_peak():
    det = make_detector()
    frame = make_frame([plateau(flat_background(128, 128), [(50, 50), (51, 51), (52, 52)])])
    pk = find_peaks(frame, det, PeakSearchOptions(**PF8, min_pix_count=3))
    assert len(pk) == 1


def test_global_cap_of_2048_peaks_over_all_panels():
    det = make_detector(n_panels=2, w=320, h=320)
    bg = flat_background(320, 320)
    # 2-pixel blobs on an 8-pixel grid (3% of the pixels); --min-snr=2 lets the first clip
    # remove them from the radial statistics even in bins that hold several.
    cells = [(s, f) for s in range(4, 316, 8) for f in range(4, 316, 8)]  # 39 x 39 per panel
    blobs = [(s + ds, f) for s, f in cells for ds in (0, 1)]
    frame = make_frame([plateau(bg, blobs), plateau(bg, blobs)])
    pk = find_peaks(frame, det, PeakSearchOptions(**{**PF8, "min_snr": 2.0}))
    assert len(cells) == 1521
    assert len(pk) == 2048
    assert np.sum(pk.panel == 0) == 1521 and np.sum(pk.panel == 1) == 2048 - 1521
    # Raster order of seeds within a panel: ss, then fs.
    order = np.lexsort((pk.fs[pk.panel == 0], pk.ss[pk.panel == 0]))
    np.testing.assert_array_equal(order, np.arange(1521))


def test_bad_pixels_and_resolution_range_in_peakfinder8():
    det = make_detector()
    blob = [(30, 40), (30, 41), (31, 40), (31, 41)]
    frame = make_frame([plateau(flat_background(128, 128), blob)],
                       bad=[np.zeros((128, 128), bool)])
    assert len(find_peaks(frame, det, PeakSearchOptions(**PF8))) == 1
    frame.bad[0][30, 40] = frame.bad[0][30, 41] = frame.bad[0][31, 40] = True
    assert len(find_peaks(frame, det, PeakSearchOptions(**PF8))) == 0  # one pixel left
    frame.bad[0][:] = False
    r = math.hypot(40 - 64, 30 - 64)  # about 41.6 pixels from the beam
    assert len(find_peaks(frame, det, PeakSearchOptions(**PF8, min_res=r + 2))) == 0
    assert len(find_peaks(frame, det, PeakSearchOptions(**PF8, max_res=r - 2))) == 0
    assert len(find_peaks(frame, det, PeakSearchOptions(**PF8, min_res=r - 5,
                                                        max_res=r + 5))) == 1


def test_no_use_saturated_drops_saturated_peaks():
    det = make_detector(max_adu=1000.0)
    bg = flat_background(128, 128)
    data = plateau(plateau(bg, [(30, 40), (30, 41)], 5000.0), [(90, 90), (90, 91)], 500.0)
    frame = make_frame([data])
    for method in ("peakfinder8", "zaef"):
        kw = PF8 if method == "peakfinder8" else dict(peaks="zaef", threshold=200,
                                                        min_squared_gradient=100, min_snr=5)
        kw = {**kw, "peaks": method}
        assert len(find_peaks(frame, det, PeakSearchOptions(**kw))) == 2
        pk = find_peaks(frame, det, PeakSearchOptions(**kw, use_saturated=False))
        assert len(pk) == 1 and pk.ss[0] == pytest.approx(91.0, abs=0.6)


# ------------------------------------------------------------------ zaef rules

ZAEF = PeakSearchOptions(peaks="zaef", threshold=40, min_squared_gradient=100, min_snr=5)


def spots_frame(fs, ss, photons=3000.0, shape=(128, 128), bg=5.0, seed=0):
    rng = np.random.default_rng(seed)
    fs = np.asarray(fs, float)
    ss = np.asarray(ss, float)
    return render(shape, fs, ss, np.full(len(fs), photons), np.full(shape, bg), rng)


def test_zaef_needs_the_outer_radius_clear_of_the_panel_edge():
    det = make_detector()
    # Spot centres at pixel centres 6.5 .. 9.5 from the left edge: summit index 6 .. 9.
    fs = [6.5, 7.5, 8.5, 40.5]
    ss = [20.5, 50.5, 80.5, 110.5]
    frame = make_frame([spots_frame(fs, ss)])
    pk = find_peaks(frame, det, ZAEF)
    found = sorted(np.round(pk.ss - 0.5).astype(int).tolist())
    assert found == [50, 80, 110]  # index 6 < out = 7 is rejected
    pk = find_peaks(frame, det, PeakSearchOptions(peaks="zaef", threshold=40,
                                                  min_squared_gradient=100, min_snr=5,
                                                  peak_radius=(3, 4, 5)))
    assert len(pk) == 4


def test_zaef_rejects_bad_pixels_in_disc_or_annulus_and_close_pairs():
    det = make_detector()
    frame = make_frame([spots_frame([30.5, 90.5], [30.5, 90.5])],
                       bad=[np.zeros((128, 128), bool)])
    assert len(find_peaks(frame, det, ZAEF)) == 2
    frame.bad[0][30 + 6, 30] = True  # in the annulus (5 <= 6 <= 7) of the first spot
    pk = find_peaks(frame, det, ZAEF)
    assert len(pk) == 1 and pk.fs[0] == pytest.approx(90.5, abs=0.2)
    frame.bad[0][:] = False
    frame.bad[0][90 + 5, 90 + 2] = True  # r = 5.39: annulus of the second spot
    frame.bad[0][30 + 4, 30 + 3] = True  # r = 5: annulus of the first spot
    assert len(find_peaks(frame, det, ZAEF)) == 0
    frame.bad[0][:] = False
    frame.bad[0][30 + 4, 30 + 2] = True  # r = 4.47: the unexamined gap between inn and mid
    assert len(find_peaks(frame, det, ZAEF)) == 2
    # Spots 6 px apart, each integrable with radii 4,4,4: the second lies within 2 inn = 8
    # of the first and is dropped; 9 px apart both stay.
    ring = PeakSearchOptions(peaks="zaef", threshold=40, min_squared_gradient=100, min_snr=5,
                             peak_radius=(4, 4, 4))
    pk = find_peaks(make_frame([spots_frame([40.5, 46.5], [40.5, 40.5])]), det, ring)
    assert len(pk) == 1 and pk.fs[0] == pytest.approx(40.5, abs=0.3)
    assert len(find_peaks(make_frame([spots_frame([40.5, 49.5], [40.5, 40.5])]), det,
                          ring)) == 2


def test_zaef_position_and_intensity():
    det = make_detector()
    fs = np.array([30.3, 64.8, 95.55])
    ss = np.array([40.7, 90.1, 30.25])
    frame = make_frame([spots_frame(fs, ss, photons=20000.0, bg=2.0)])
    pk = find_peaks(frame, det, ZAEF)
    assert len(pk) == 3
    order = np.argsort(pk.fs)
    np.testing.assert_allclose(pk.fs[order], fs, atol=0.05)
    np.testing.assert_allclose(pk.ss[order], ss[np.argsort(fs)], atol=0.05)
    # A radius-4 disc of a sigma-0.8 Gaussian holds > 99.9% of it.
    np.testing.assert_allclose(pk.intensity[order], 20000.0, rtol=0.03)


def test_zaef_stops_a_panel_at_its_cap():
    data = spots_frame(np.arange(12.5, 120, 12), np.full(9, 60.5))
    bad = np.zeros(data.shape, bool)
    full = zaef_panel(data, bad, 40.0, 100.0, 5.0, 4.0, 5.0, 7.0, math.inf, True, 1.0, 10000)
    capped = zaef_panel(data, bad, 40.0, 100.0, 5.0, 4.0, 5.0, 7.0, math.inf, True, 1.0, 4)
    assert len(full[0]) == 9 and len(capped[0]) == 4
    np.testing.assert_array_equal(full[0][:4], capped[0])


# ------------------------------------------------------------------ filters

def brute_median_subtract(a: np.ndarray, n: int) -> np.ndarray:
    out = np.empty_like(a)
    h, w = a.shape
    for s in range(h):
        for f in range(w):
            win = np.sort(a[max(s - n, 0):s + n + 1, max(f - n, 0):f + n + 1].ravel())
            out[s, f] = a[s, f] - win[len(win) // 2]
    return out


def brute_noise_filter(a: np.ndarray) -> np.ndarray:
    out = a.copy()
    h, w = a.shape
    for s in range(h):
        for f in range(w):
            sl = (slice(max(s - 1, 0), s + 2), slice(max(f - 1, 0), f + 2))
            if (a[sl] < 0).any():
                out[sl] = 0.0
    return out


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("kind", ["integer", "fractional"])
def test_median_filter_subtracts_the_upper_median_of_the_clipped_window(n, kind):
    rng = np.random.default_rng(n)
    for shape in ((13, 17), (4, 30), (30, 2), (1, 1)):
        a = rng.integers(-5, 50, shape).astype(np.float32)
        a.flat[0] = 30000.0
        if kind == "fractional":  # the per-pixel selection instead of the sliding histogram
            a += np.float32(0.25)
        np.testing.assert_array_equal(median_filter(a, n), brute_median_subtract(a, n))


def test_noise_filter_zeroes_3x3_squares_holding_a_negative_pixel():
    a = np.random.default_rng(5).integers(0, 20, (15, 16)).astype(np.float32)
    a[0, 5] = -1
    a[7, 7] = -3
    a[14, 15] = -2
    got = noise_filter(a)
    np.testing.assert_array_equal(got, brute_noise_filter(a))
    assert got[7, 9] == 0 and got[7, 10] == a[7, 10] and got[3, 3] == a[3, 3]


def test_filters_work_on_a_copy_and_change_what_is_found():
    det = make_detector()
    ss, fs = np.mgrid[0:128, 0:128]
    ramp = (fs * 3.0).astype(np.float32)  # a steep background that zaef sees as peaks
    data = ramp + spots_frame([40.5], [40.5], photons=3000.0, bg=0.0)
    frame = make_frame([data.copy()])
    opts = dict(peaks="zaef", threshold=40, min_squared_gradient=100, min_snr=5)
    pk = find_peaks(frame, det, PeakSearchOptions(**opts, median_filter=3))
    assert len(pk) == 1 and pk.fs[0] == pytest.approx(40.5, abs=0.2)
    np.testing.assert_array_equal(frame.data[0], data)  # the frame keeps its pixels


# ------------------------------------------------------------------ peaks from the data

def delivered(fs, ss, inten, panel=None) -> PeakList:
    n = len(fs)
    return PeakList(np.asarray(fs, float), np.asarray(ss, float),
                    np.zeros(n, np.int32) if panel is None else np.asarray(panel, np.int32),
                    np.asarray(inten, float))


def test_msgpack_peaks_shift_revalidate_and_snr_check():
    det = make_detector()
    true_fs = np.array([30.5, 60.5, 100.5, 3.5])
    true_ss = np.array([30.5, 90.5, 60.5, 60.5])
    photons = np.array([3000.0, 3000.0, 30.0, 3000.0])
    rng = np.random.default_rng(2)
    data = render((128, 128), true_fs, true_ss, photons, np.full((128, 128), 5.0), rng)
    # The sender gives pixel-index positions (centre of pixel i = i): true - 0.5.
    peaks = delivered(true_fs - 0.5, true_ss - 0.5, [1.0, 2.0, 3.0, 4.0])
    frame = make_frame([data], peaks=peaks)
    pk = find_peaks(frame, det, PeakSearchOptions(peaks="msgpack"))
    # The peak 3.5 px from the edge fails revalidation (annulus off the panel).
    np.testing.assert_allclose(pk.fs, true_fs[:3])
    np.testing.assert_allclose(pk.ss, true_ss[:3])
    np.testing.assert_allclose(pk.intensity[:2], 3000.0, rtol=0.1)
    assert abs(pk.intensity[2] - 30.0) < 40.0
    pk = find_peaks(frame, det, PeakSearchOptions(peaks="msgpack", check_hdf5_snr=True))
    assert len(pk) == 2  # the 30-photon peak has |I|/sigma < 5
    pk = find_peaks(frame, det, PeakSearchOptions(peaks="hdf5", revalidate=False,
                                                  half_pixel_shift=False))
    np.testing.assert_array_equal(pk.fs, true_fs - 0.5)
    np.testing.assert_array_equal(pk.intensity, [1.0, 2.0, 3.0, 4.0])
    # --no-image-data: CrystFEL's zero-filled pixels make every revalidation fail.
    blind = make_frame(None, peaks=peaks)
    assert len(find_peaks(blind, det, PeakSearchOptions(peaks="msgpack"))) == 0
    assert len(find_peaks(blind, det, PeakSearchOptions(peaks="cxi", revalidate=False))) == 4
    # No peak list delivered: the frame goes on with no peaks.
    assert len(find_peaks(make_frame([data]), det, PeakSearchOptions(peaks="msgpack"))) == 0


def test_revalidation_drops_saturated_peaks_only_without_use_saturated():
    det = make_detector(max_adu=200.0)
    data = spots_frame([40.5, 80.5], [40.5, 80.5], photons=3000.0)
    peaks = delivered([40.0, 80.0], [40.0, 80.0], [0, 0])
    frame = make_frame([data], peaks=peaks)
    assert len(find_peaks(frame, det, PeakSearchOptions(peaks="msgpack"))) == 2
    assert len(find_peaks(frame, det, PeakSearchOptions(peaks="msgpack",
                                                        use_saturated=False))) == 0


# ------------------------------------------------------------------ resolution, hits, options

def test_peak_resolution_rule():
    q = np.arange(1.0, 101.0)  # 100 peaks: ncut = 2 -> the third highest
    assert peak_resolution(q) == 98.0
    assert peak_resolution(q[:99]) == 99.0  # ncut = 1 < 2 -> reset to 0: the highest
    assert peak_resolution(q[:150][::-1]) == 98.0
    assert peak_resolution(np.zeros(0)) == 0.0


def test_peak_q_from_the_geometry():
    det = make_detector()
    frame = make_frame([np.zeros((128, 128), np.float32)])
    pk = delivered([64.0 + 30.0, 64.0], [64.0, 64.0 - 40.0], [1, 1])
    pitch = 1e-4
    q = peak_q_magnitudes(pk, det, frame)
    for k, (x, y) in enumerate([(30 * pitch, 0.0), (0.0, -40 * pitch)]):
        r = np.array([x, y, 0.1])
        qv = r / (np.linalg.norm(r) * WAVELENGTH) - np.array([0, 0, 1 / WAVELENGTH])
        assert q[k] == pytest.approx(np.linalg.norm(qv), rel=1e-12)
    assert peak_resolution_of(pk, det, frame) == pytest.approx(q.max())


def test_highres_marks_pixels_bad_for_the_peak_search_and_later_stages():
    det = make_detector()
    frame = make_frame([spots_frame([70.5, 120.5], [64.5, 64.5])],
                       bad=[np.zeros((128, 128), bool)])
    assert len(find_peaks(frame, det, ZAEF)) == 2
    # 1/d at 30 px from the beam: choose a limit between the two spots (6.5 and 56.5 px).
    pk_q = peak_q_magnitudes(delivered([94.0], [64.0], [0]), det, frame)[0]
    limit_a = 1e10 / pk_q
    pk = find_peaks(frame, det, PeakSearchOptions(peaks="zaef", threshold=40,
                                                  min_squared_gradient=100, min_snr=5,
                                                  highres=limit_a))
    assert len(pk) == 1 and pk.fs[0] == pytest.approx(70.5, abs=0.2)
    assert frame.bad[0][64, 100] and not frame.bad[0][64, 70]


def test_options_and_hit_test():
    with pytest.raises(ValueError, match="Unrecognised peak detection method"):
        PeakSearchOptions(peaks="magic")
    with pytest.raises(ValueError, match="--peak-radius"):
        PeakSearchOptions(peak_radius=(5, 4, 7))
    opts = PeakSearchOptions()
    assert (opts.peaks, opts.threshold, opts.min_squared_gradient, opts.min_snr,
            opts.min_pix_count, opts.max_pix_count, opts.local_bg_radius, opts.max_res,
            opts.min_snr_biggest_pix, opts.min_snr_peak_pix, opts.min_sig,
            opts.peak_radius) == ("zaef", 800, 100000, 5, 2, 200, 3, 0, 7, 6, 11, (4, 5, 7))
    assert opts.min_peak_over_neighbour == -math.inf
    assert is_hit(0, opts)
    assert not is_hit(9, PeakSearchOptions(min_peaks=10))
    assert is_hit(10, PeakSearchOptions(min_peaks=10))


def test_bad_input_gives_one_line_errors_naming_the_frame():
    det = make_detector()
    with pytest.raises(ValueError, match=r"rules.h5 .*needs pixel data"):
        find_peaks(make_frame(None), det, PeakSearchOptions(peaks="zaef"))
    with pytest.raises(ValueError, match=r"rules.h5 .*panel p0 data has shape \(10, 10\)"):
        find_peaks(make_frame([np.zeros((10, 10), np.float32)]), det, PeakSearchOptions())
    assert len(find_peaks(make_frame(None), det, PeakSearchOptions(peaks="none"))) == 0


# ------------------------------------------------------------------ peakfinder9 rules

PF9 = PeakSearchOptions(peaks="peakfinder9", min_snr_biggest_pix=7, min_snr_peak_pix=3,
                        min_snr=5, min_sig=2.0, local_bg_radius=3)


def test_peakfinder9_bad_pixels_neither_peak_nor_hide_a_peak():
    det = make_detector()
    data = spots_frame([40.5, 90.5], [40.5, 90.5], photons=2000.0, bg=5.0)
    data[42, 41] = 60000.0  # a hot pixel 2 px from the first spot
    data[10, 100] = 60000.0  # and one on its own
    bad = np.zeros((128, 128), bool)
    frame = make_frame([data], bad=[bad])
    pk = find_peaks(frame, det, PF9)
    assert len(pk) == 3  # unmasked, the hot pixels are peaks and hide the first spot
    bad[42, 41] = bad[10, 100] = True
    pk = find_peaks(frame, det, PF9)
    order = np.argsort(pk.fs)
    np.testing.assert_allclose(pk.fs[order], [40.5, 90.5], atol=0.15)
    np.testing.assert_allclose(pk.ss[order], [40.5, 90.5], atol=0.15)


def test_peakfinder9_equal_maxima_give_one_peak_and_window_needs_the_panel():
    det = make_detector()
    data = flat_background(128, 128)
    data[60, 60] = data[60, 61] = 200.0  # a flat-topped peak: one maximum, the first
    data[2, 64] = 200.0  # closer than the window radius to the edge
    pk = find_peaks(make_frame([data]), det, PF9)
    assert len(pk) == 1
    assert pk.fs[0] == pytest.approx(61.0) and pk.ss[0] == pytest.approx(60.5)
    # --min-peak-over-neighbour: the maximum must beat every border pixel by that much.
    pk = find_peaks(make_frame([data]), det,
                    PeakSearchOptions(peaks="peakfinder9", min_snr_biggest_pix=7,
                                      min_snr_peak_pix=3, min_snr=5, min_sig=2.0,
                                      min_peak_over_neighbour=190.0))
    assert len(pk) == 0


@pytest.mark.parametrize("method", ["zaef", "peakfinder8", "peakfinder9"])
def test_non_finite_pixels_are_never_used(method):
    det = make_detector()
    data = spots_frame([40.5, 90.5], [40.5, 90.5], photons=3000.0, bg=5.0)
    data[70:72, :] = np.nan  # e.g. a float detector's dead rows
    data[100, 20] = np.inf
    opts = {"zaef": ZAEF, "peakfinder9": PF9,
            "peakfinder8": PeakSearchOptions(peaks="peakfinder8", threshold=20, min_snr=5)}
    pk = find_peaks(make_frame([data]), det, opts[method])
    assert len(pk) == 2
    assert np.all(np.isfinite(pk.fs)) and np.all(np.isfinite(pk.intensity))
    np.testing.assert_allclose(np.sort(pk.fs), [40.5, 90.5], atol=0.3)


def test_per_detector_maps_are_built_once_and_shared_by_copies():
    import pickle

    from crystream.peaks.peakfinder8 import radial_map as rm

    det = make_detector(n_panels=2)
    first = rm(det, 0.0, 0.0, 0.0, 0.0)
    assert rm(det, 0.0, 0.0, 0.0, 0.0) is first
    copy = pickle.loads(pickle.dumps(det))  # how a Dask task argument reaches a worker
    assert rm(copy, 0.0, 0.0, 0.0, 0.0) is first
    moved = make_detector(n_panels=2, gap=20)  # another geometry gets its own map
    assert rm(moved, 0.0, 0.0, 0.0, 0.0) is not first
