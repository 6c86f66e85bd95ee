"""Prediction and integration against CrystFEL 0.12.0's own output on the sample frames.

For each indexed sample frame we take CrystFEL's refined cell and peak list from its stream
(tests/data/samples/sample.stream, run with --int-radius=3,4,5), estimate the profile radius
and resolution limit, predict and integrate the frame's pixels, and compare with the values
CrystFEL wrote: same reflections, I/sigma/peak/background to print precision, positions to
0.05 px.
"""

from __future__ import annotations

import math
from pathlib import Path

import h5py
import numpy as np
import pytest

from crystream.cell import UnitCell
from crystream.chunk import Crystal
from crystream.constants import ev_to_wavelength
from crystream.frame import Frame, PeakList
from crystream.geometry.detector import Detector, Panel, ValueSource
from crystream.integration import (IntegrationOptions, diffraction_resolution_limit,
                                   estimate_profile_radius, format_resolution_limit,
                                   integrate_crystals)
from crystream.prediction import predict_reflections

DATA = Path(__file__).parent / "data"
STREAM = DATA / "samples" / "sample.stream"
FRAMES = ("sample_00.h5", "sample_01.h5", "sample_03.h5", "sample_10.h5")
LAMBDA = ev_to_wavelength(9500.0)
CLEN = 0.080


def _detector() -> Detector:
    """sample.geom: one 512x512 panel, 75 um pixels, beam through the centre."""
    panel = Panel("p0", 0, 511, 0, 511, -256.0, -256.0, np.array([1.0, 0, 0]),
                  np.array([0, 1.0, 0]), 13333.333, adu_per_photon=1.0)
    return Detector([panel], ValueSource(LAMBDA), ValueSource(CLEN), bandwidth=0.003)


def _read_stream(path: Path) -> dict[str, dict]:
    """The few things these tests need from each chunk with one crystal."""
    out: dict[str, dict] = {}
    chunk = None
    mode = None
    for line in path.read_text().splitlines():
        if line.startswith("----- Begin chunk"):
            chunk = {"peaks": [], "refl": []}
        elif chunk is None:
            continue
        elif line.startswith("Image filename:"):
            out[line.split(":", 1)[1].strip()] = chunk
        elif line.startswith(("astar", "bstar", "cstar")):
            chunk[line[:5]] = np.array([float(x) for x in line.split("=")[1].split()[:3]]) * 1e9
        elif line.startswith("centering"):
            chunk["centering"] = line.split("=")[1].strip()
        elif line.startswith("profile_radius"):
            chunk["profile_radius"] = line.split("=")[1].split()[0]
        elif line.startswith("diffraction_resolution_limit"):
            chunk["resolution"] = line.split("=", 1)[1].strip()
        elif line.startswith("num_saturated_reflections"):
            chunk["nsat"] = int(line.split("=")[1])
        elif line.startswith("num_implausible_reflections"):
            chunk["nimp"] = int(line.split("=")[1])
        elif line.startswith("Peaks from peak search"):
            mode = "peaks"
        elif line.startswith("Reflections measured after indexing"):
            mode = "refl"
        elif line.startswith(("End of peak list", "End of reflections")):
            mode = None
        elif mode and not line.split()[0].startswith(("fs/", "h")):
            chunk["peaks" if mode == "peaks" else "refl"].append(
                [float(x) for x in line.split()[:(4 if mode == "peaks" else 9)]])
    return out


@pytest.fixture(scope="module")
def stream() -> dict[str, dict]:
    return _read_stream(STREAM)


def _inputs(chunk: dict):
    cell = UnitCell.from_reciprocal(chunk["astar"], chunk["bstar"], chunk["cstar"],
                                    lattice_type="monoclinic", centering=chunk["centering"],
                                    unique_axis="b")
    pk = np.array(chunk["peaks"])
    peaks = PeakList(pk[:, 0], pk[:, 1], np.zeros(len(pk), dtype=np.int32), pk[:, 3])
    return cell, peaks


def test_stream_has_the_frames(stream):
    for name in FRAMES:
        assert name in stream and len(stream[name]["refl"]) > 10


@pytest.mark.parametrize("name", FRAMES)
def test_profile_radius_and_resolution_limit_as_crystfel(stream, name):
    chunk = stream[name]
    cell, peaks = _inputs(chunk)
    det = _detector()
    radius = estimate_profile_radius(cell, peaks, det, LAMBDA, CLEN, det.bandwidth)
    assert f"{radius / 1e9:.5f}" == chunk["profile_radius"]
    limit = diffraction_resolution_limit(cell, peaks, det, CLEN, LAMBDA)
    assert format_resolution_limit(limit) == chunk["resolution"]


@pytest.mark.parametrize("name", FRAMES)
def test_integrated_reflections_as_crystfel(stream, name):
    chunk = stream[name]
    cell, peaks = _inputs(chunk)
    det = _detector()
    data = h5py.File(DATA / "samples" / name, "r")["/data/data"][:].astype(np.float32)
    frame = Frame(1, name, data=[data], bad=[np.zeros(data.shape, dtype=bool)],
                  wavelength=LAMBDA, clen=CLEN)
    opts = IntegrationOptions(int_radius=(3.0, 4.0, 5.0))
    crystal = integrate_crystals(frame, peaks, [Crystal(cell)], det, opts)[0]
    refl = crystal.reflections
    theirs = np.array(chunk["refl"])
    assert len(refl) == len(theirs)
    assert np.array_equal(np.stack([refl.h, refl.k, refl.l], 1), theirs[:, :3].astype(int))
    assert np.allclose(refl.intensity, theirs[:, 3], atol=0.006)
    assert np.allclose(refl.sigma, theirs[:, 4], atol=0.006)
    assert np.allclose(refl.peak, theirs[:, 5], atol=0.006)
    assert np.allclose(refl.background, theirs[:, 6], atol=0.006)
    assert np.allclose(refl.fs, theirs[:, 7], atol=0.051)
    assert np.allclose(refl.ss, theirs[:, 8], atol=0.051)
    assert crystal.num_saturated == chunk["nsat"]
    assert crystal.num_implausible == chunk["nimp"]


def test_extra_predictions_fail_the_box_checks(stream):
    """Reflections predicted but not written by CrystFEL have boxes that leave the panel."""
    chunk = stream["sample_10.h5"]
    cell, peaks = _inputs(chunk)
    det = _detector()
    radius = estimate_profile_radius(cell, peaks, det, LAMBDA, CLEN, det.bandwidth)
    pred = predict_reflections(cell, det, LAMBDA, CLEN, det.bandwidth, radius, math.inf)
    written = {tuple(int(x) for x in r[:3]) for r in chunk["refl"]}
    keys = list(zip(pred.h.tolist(), pred.k.tolist(), pred.l.tolist()))
    extra = np.array([k not in written for k in keys])
    assert written <= set(keys) and extra.sum() > 0
    cfs, css = pred.fs.astype(int)[extra], pred.ss.astype(int)[extra]
    assert np.all((cfs < 5) | (cfs > 506) | (css < 5) | (css > 506))
