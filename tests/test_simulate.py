"""The simulator against ground truth: positions, partialities, photon budget, absences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from crystream.cell import UnitCell
from crystream.geometry.detector import lab_position, scattering_vectors
from crystream.geometry.parser import parse_geometry
from crystream.lattice import centering_allows
from crystream.simulate import (LYSOZYME, MONOCLINIC_C, THERMOLYSIN, TRICLINIC, Simulation,
                                SimulationConfig, multipanel_detector,
                                rotation_about, simple_detector, simulate_frame,
                                simulate_frames)

# Two oblique panels: one rotated by 90 degrees and set back, one tilted out of plane.
OBLIQUE_GEOM = """\
photon_energy = 9500 eV
clen = 0.08 m
res = 10000
adu_per_photon = 2.0
data = /data/data
a/min_fs = 0
a/max_fs = 199
a/min_ss = 0
a/max_ss = 299
a/corner_x = 160
a/corner_y = -150
a/fs = +0.0x +1.0y
a/ss = -1.0x +0.0y
a/coffset = 0.002
b/min_fs = 0
b/max_fs = 199
b/min_ss = 300
b/max_ss = 599
b/corner_x = -10
b/corner_y = -150
b/fs = -0.9998x +0.0y +0.02z
b/ss = +0.0x +1.0y
"""


def _quiet(det, cell, **kw):
    """A noise-free, background-free configuration for geometric checks."""
    kw.setdefault("background_photons", 0.0)
    kw.setdefault("noise", False)
    return SimulationConfig(det, cell, **kw)


def test_ready_made_detectors_parse_back_to_the_same_model():
    for det in (simple_detector(n=256, beamstop=8), multipanel_detector(max_adu=60000),
                simple_detector(n=128, header_values=True)):
        parsed = parse_geometry(det.source_text, det.source_name)
        assert len(parsed.panels) == len(det.panels)
        for a, b in zip(det.panels, parsed.panels):
            assert (a.name, a.min_fs, a.max_fs, a.min_ss, a.max_ss, a.data) == \
                (b.name, b.min_fs, b.max_fs, b.min_ss, b.max_ss, b.data)
            assert a.corner_x == b.corner_x and a.corner_y == b.corner_y
            assert np.allclose(a.fs, b.fs) and np.allclose(a.ss, b.ss)
            assert a.res == pytest.approx(b.res, rel=1e-12)
            assert a.max_adu == b.max_adu and a.adu_per_photon == b.adu_per_photon
        assert len(parsed.bad_regions) == len(det.bad_regions)
        assert det.bandwidth == parsed.bandwidth
        if det.clen.from_header:
            sim = Simulation(SimulationConfig(det, LYSOZYME, photon_energy=11000.0, clen=0.09))
            wl, clen, _, _ = parsed.resolve_beam(sim.headers)
            assert wl == pytest.approx(sim.wavelength, rel=1e-12)
            assert clen == pytest.approx(0.09, rel=1e-12)
        else:
            assert parsed.resolve_beam()[:2] == pytest.approx(det.resolve_beam()[:2], rel=1e-12)


def test_truth_positions_back_project_onto_the_lattice_points():
    """fs/ss -> lab through crystream.geometry must point along p + k_spot z, on any panel."""
    for det, cell in ((parse_geometry(OBLIQUE_GEOM, "oblique.geom"), MONOCLINIC_C),
                      (multipanel_detector(), THERMOLYSIN),
                      (simple_detector(n=512, pixel=75e-6, clen=0.08), TRICLINIC)):
        frames = list(simulate_frames(_quiet(det, cell, bandwidth=3e-3, crystal_size=0.3e-6,
                                             lattices=2), 3, seed=7))
        n = 0
        for frame in frames:
            for crystal in frame.truth.crystals:
                r = crystal.reflections
                assert np.allclose(r.q, r.hkl @ crystal.cell.reciprocal, rtol=0, atol=1.0)
                for i in np.unique(r.panel):
                    sel = r.panel == i
                    panel = det.panels[i]
                    lab = lab_position(panel, r.fs[sel], r.ss[sel], frame.clen)
                    ray = r.q[sel].copy()
                    ray[:, 2] += 1.0 / r.wavelength[sel]
                    cosang = np.einsum("ij,ij->i", lab, ray) / (
                        np.linalg.norm(lab, axis=1) * np.linalg.norm(ray, axis=1))
                    miss_px = np.arccos(np.clip(cosang, -1, 1)) \
                        * np.linalg.norm(lab, axis=1) / panel.pixel_pitch
                    assert miss_px.max() < 0.1
                    n += int(sel.sum())
        assert n > 100


def test_truth_q_lies_one_excitation_error_from_the_lattice_point():
    """Monochromatic: the measured q (Ewald projection) is |s| away from the lattice point."""
    det = simple_detector(n=512, clen=0.08)
    frame = simulate_frame(_quiet(det, LYSOZYME, bandwidth=1e-8, crystal_size=0.2e-6), seed=3)
    r = frame.truth.crystals[0].reflections
    q = scattering_vectors(det.panels[0], r.fs, r.ss, frame.clen, frame.wavelength)
    dist = np.linalg.norm(q - r.q, axis=1)
    assert np.allclose(dist, np.abs(r.excitation_error), rtol=1e-4, atol=1e-3 * 1e9 * 1e-6)
    # the excitation error is the distance of p from the Ewald sphere, independently computed
    k0 = 1.0 / frame.wavelength
    centre = np.array([0.0, 0.0, -k0])
    assert np.allclose(r.excitation_error, k0 - np.linalg.norm(r.q - centre, axis=1),
                       rtol=0, atol=1.0)


def test_rendered_spot_centroids_match_truth():
    det = simple_detector(n=512, pixel=75e-6, clen=0.08)
    cfg = _quiet(det, MONOCLINIC_C, crystal_size=1e-6, psf_sigma=0.8, spot_photons=1e6)
    checked = 0
    for frame in simulate_frames(cfg, 3, seed=11):
        img = frame.data[0]
        r = frame.truth.crystals[0].reflections
        for i in range(len(r)):
            sig = r.sigma_px[i]
            half = int(math.ceil(4 * sig))
            fs, ss = r.fs[i], r.ss[i]
            others = np.hypot(r.fs - fs, r.ss - ss)
            others[i] = np.inf
            if others.min() < 4 * half or r.intensity_partial[i] < 500:
                continue
            x0, y0 = int(fs) - half, int(ss) - half
            x1, y1 = int(fs) + half + 1, int(ss) + half + 1
            if x0 < 0 or y0 < 0 or x1 > img.shape[1] or y1 > img.shape[0]:
                continue
            box = img[y0:y1, x0:x1].astype(np.float64)
            yy, xx = np.mgrid[y0:y1, x0:x1] + 0.5
            cfs = float((box * xx).sum() / box.sum())
            css = float((box * yy).sum() / box.sum())
            assert abs(cfs - fs) < 0.1 and abs(css - ss) < 0.1, (i, cfs, fs, css, ss)
            # the whole spot is there: its photons (times gain) are in the box
            assert box.sum() == pytest.approx(r.intensity_adu[i], rel=2e-3)
            checked += 1
    assert checked >= 20


def test_partialities_lie_in_unit_interval_and_follow_excitation_error():
    det = simple_detector(n=512, clen=0.08)
    frame = simulate_frame(_quiet(det, LYSOZYME, bandwidth=2e-3, divergence=1e-3,
                                  min_partiality=0.0), seed=5)
    r = frame.truth.crystals[0].reflections
    assert len(r) > 50
    assert np.all((r.partiality >= 0) & (r.partiality <= 1))
    assert r.partiality.max() > 0.9
    # partial = full * partiality, in photons and in ADU
    assert np.allclose(r.intensity_partial, r.intensity_full * r.partiality)
    assert np.allclose(r.intensity_adu, r.intensity_partial * det.panels[0].adu_per_photon)
    # nearer the sphere -> larger partiality (same width for similar scattering angles)
    order = np.argsort(np.abs(r.excitation_error))
    assert r.partiality[order[:5]].min() > r.partiality[order[-5:]].max()


@pytest.mark.parametrize("gain,panels,lattices", [(1.0, 1, 1), (2.5, 1, 1), (1.0, 4, 2)])
def test_total_counts_match_the_photon_budget(gain, panels, lattices):
    det = (simple_detector(n=256, clen=0.05, adu_per_photon=gain) if panels == 1 else
           multipanel_detector(panel_fs=128, panel_ss=128, gap=6, pixel=75e-6, clen=0.05,
                               adu_per_photon=gain))
    spot, bg = 5e4, 1e5
    cfg = SimulationConfig(det, LYSOZYME, spot_photons=spot, background_photons=bg,
                           crystal_size=0.3e-6, hit_rate=0.5, lattices=lattices)
    hits = misses = 0
    for frame in simulate_frames(cfg, 8, seed=2):
        photons = sum(d.astype(np.float64).sum() for d in frame.data) / gain
        expected = bg + (spot if frame.truth.is_hit else 0.0)
        assert abs(photons - expected) < 5 * math.sqrt(expected)
        assert np.allclose(frame.data[0] / gain, np.round(frame.data[0] / gain), atol=1e-3)
        if frame.truth.is_hit:
            assert frame.truth.spot_photons == pytest.approx(spot, rel=1e-9)
            hits += 1
        else:
            assert frame.truth.crystals == [] and frame.truth.spot_photons == 0
            misses += 1
    assert hits and misses


def _cell_with(centering, lattice="orthorhombic", a=60e-10, b=70e-10, c=80e-10, gamma=90.0):
    return UnitCell.from_parameters(a, b, c, math.pi / 2, math.pi / 2, math.radians(gamma),
                                    lattice_type=lattice, centering=centering,
                                    unique_axis="c" if lattice == "hexagonal" else "?")


@pytest.mark.parametrize("centering", ["A", "B", "C", "I", "F", "H"])
def test_systematic_absences_of_the_centering(centering):
    lattice = "hexagonal" if centering == "H" else "orthorhombic"
    gamma = 120.0 if centering == "H" else 90.0
    det = simple_detector(n=512, clen=0.06)
    rot = rotation_about([0.3, -0.5, 0.8], 0.7)
    common = dict(orientation=rot, crystal_size=0.1e-6, bandwidth=2e-3)
    prim = simulate_frame(_quiet(det, _cell_with("P", lattice, gamma=gamma), **common), seed=1)
    cent = simulate_frame(_quiet(det, _cell_with(centering, lattice, gamma=gamma), **common),
                          seed=1)
    rp = prim.truth.crystals[0].reflections
    rc = cent.truth.crystals[0].reflections
    allowed = centering_allows(rp.h, rp.k, rp.l, centering)
    assert (~allowed).sum() > 20 and allowed.sum() > 20  # the test is not vacuous
    assert np.all(centering_allows(rc.h, rc.k, rc.l, centering))
    # the centred lattice draws exactly the allowed subset of the primitive lattice's spots
    assert {tuple(x) for x in rc.hkl} == {tuple(x) for x in rp.hkl[allowed]}
    # and nothing is drawn where the forbidden ones would be
    forbidden = rp.take(~allowed & (rp.intensity_partial > 100))
    img = cent.data[0]
    for fs, ss in zip(forbidden.fs, forbidden.ss):
        near = np.hypot(rc.fs - fs, rc.ss - ss).min()
        if near > 6:
            assert img[int(ss), int(fs)] < 1e-3


def test_given_orientation_and_second_lattice():
    det = simple_detector(n=256)
    rot = rotation_about([1, 2, 3], 1.1)
    frame = simulate_frame(_quiet(det, LYSOZYME, orientation=rot, lattices=2), seed=4)
    first, second = frame.truth.crystals
    assert np.allclose(first.cell.reciprocal, LYSOZYME.reciprocal @ rot.T)
    assert not np.allclose(second.rotation, rot)
    assert first.spot_photons == pytest.approx(second.spot_photons, rel=1e-9)
    assert first.spot_photons + second.spot_photons == pytest.approx(2e5, rel=1e-9)
    assert first.cell.centering == "P" and first.cell.lattice_type == "tetragonal"


def test_wilson_intensities_are_a_fixed_structure():
    det = simple_detector(n=512, clen=0.06)
    cfg = _quiet(det, TRICLINIC, b_factor=0.0, crystal_size=0.1e-6, bandwidth=3e-2)
    frame = simulate_frame(cfg, seed=9)
    r = frame.truth.crystals[0].reflections
    # with B = 0 the full intensities are Exp(mean) draws: mean = median / ln 2
    keys = {max(t, tuple(-x for x in t)) for t in map(tuple, r.hkl)}  # one per Friedel pair
    assert len(keys) > 0.9 * len(r)
    vals = r.intensity_full
    rel = vals / np.median(vals) * math.log(2)
    assert len(rel) > 500
    assert rel.mean() == pytest.approx(1.0, abs=0.12)
    assert (rel > 1).mean() == pytest.approx(math.exp(-1), abs=0.05)


def test_same_hkl_same_intensity_across_frames():
    det = simple_detector(n=512, clen=0.06)
    cfg = _quiet(det, TRICLINIC, crystal_size=0.1e-6, bandwidth=1e-2)
    frames = list(simulate_frames(cfg, 4, seed=21))
    ref = {}
    matched = 0
    for frame in frames:
        r = frame.truth.crystals[0].reflections
        # full intensities share one scale per frame; compare ratios between frames
        for hkl, v in zip(map(tuple, r.hkl), r.intensity_full):
            key = max(hkl, tuple(-x for x in hkl))
            ref.setdefault(key, []).append((frame.serial, v))
    per_pair = {}
    for vals in ref.values():
        for (sa, va), (sb, vb) in zip(vals, vals[1:]):
            if sa != sb:
                per_pair.setdefault((sa, sb), []).append(va / vb)
                matched += 1
    assert matched > 20
    for ratios in per_pair.values():
        assert np.allclose(ratios, ratios[0], rtol=1e-9)


def test_detector_effects_gain_saturation_dead_hot():
    det = simple_detector(n=256, clen=0.05, adu_per_photon=3.0, max_adu=5000.0)
    cfg = SimulationConfig(det, LYSOZYME, spot_photons=5e6, dead_fraction=0.01,
                           hot_fraction=0.005, hot_adu=65535.0, crystal_size=0.3e-6)
    sim = Simulation(cfg, seed=6)
    frame = sim.frame(1)
    img = frame.data[0]
    defects = frame.truth.defects[0]
    assert (defects == 1).mean() == pytest.approx(0.01, abs=0.003)
    assert np.all(img[defects == 1] == 0)
    assert np.all(img[defects == 2] == 5000.0)  # hot pixels read as saturated
    assert img.max() == 5000.0
    r = frame.truth.crystals[0].reflections
    assert r.saturated.any() and (r.peak_adu[r.saturated] > 5000).all()
    # defects belong to the detector: the same pixels on the next frame
    assert np.array_equal(sim.frame(2).truth.defects[0], defects)


def test_reproducible_and_serials():
    det = simple_detector(n=128)
    cfg = SimulationConfig(det, LYSOZYME, hit_rate=0.5)
    a = list(simulate_frames(cfg, 5, seed=3, start_serial=10))
    b = list(simulate_frames(cfg, 5, seed=3, start_serial=10))
    c = simulate_frame(cfg, seed=4)
    assert [f.serial for f in a] == list(range(10, 15))
    assert all(np.array_equal(x.data[0], y.data[0]) for x, y in zip(a, b))
    assert not np.array_equal(a[0].data[0], c.data[0])
    assert all(f.data[0].dtype == np.float32 and f.bad[0].shape == (128, 128) for f in a)


def test_hit_rate():
    det = simple_detector(n=64)
    frames = list(simulate_frames(SimulationConfig(det, LYSOZYME, hit_rate=0.3), 200, seed=8))
    rate = np.mean([f.truth.is_hit for f in frames])
    assert rate == pytest.approx(0.3, abs=0.1)


def test_bad_configuration_is_refused_clearly():
    det = simple_detector(n=64, header_values=True)
    with pytest.raises(ValueError, match="photon energy"):
        Simulation(SimulationConfig(det, LYSOZYME, clen=0.1))
    with pytest.raises(ValueError, match="hit_rate"):
        Simulation(SimulationConfig(simple_detector(n=64), LYSOZYME, hit_rate=1.5))
    with pytest.raises(ValueError, match="rotation"):
        simulate_frame(SimulationConfig(simple_detector(n=64), LYSOZYME,
                                        orientation=np.diag([1.0, 1.0, -1.0])))


def test_frames_carry_the_geometry_bad_pixels():
    """A +-4 pixel x/y beamstop: corners strictly inside -> 7 x 7 bad pixels at the centre."""
    det = simple_detector(n=64, beamstop=4)
    frame = simulate_frame(SimulationConfig(det, LYSOZYME), seed=1)
    bad = frame.bad[0]
    assert bad.sum() == 49 and bad[29:36, 29:36].all()


def test_named_cells_have_their_parameters():
    a, b, c, al, be, ga = MONOCLINIC_C.parameters
    assert (a, b, c) == pytest.approx((61.2e-10, 91.4e-10, 66.5e-10))
    assert math.degrees(be) == pytest.approx(115.0) and MONOCLINIC_C.unique_axis == "b"
    assert MONOCLINIC_C.centering == "C" and MONOCLINIC_C.lattice_type == "monoclinic"
    assert math.degrees(THERMOLYSIN.parameters[5]) == pytest.approx(120.0)
    assert THERMOLYSIN.lattice_type == "hexagonal" and THERMOLYSIN.unique_axis == "c"
    assert LYSOZYME.lattice_type == "tetragonal" and LYSOZYME.parameters[2] == \
        pytest.approx(37.9e-10)
    assert TRICLINIC.lattice_type == "triclinic" and TRICLINIC.volume > 0
