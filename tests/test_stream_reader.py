"""Reading CrystFEL 0.12.0's own streams (sample data) and older or damaged streams."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest

from crystream.stream.reader import (StreamError, crystal_detector_shift, iter_chunks,
                                     read_stream)

DATA = Path(__file__).parent / "data" / "samples"
SAMPLE = DATA / "sample.stream"
ZAEF = DATA / "sample-zaef-peaks.stream"

# CrystFEL 0.12.0's results on the 12 sample frames (samples README table).
PF8_PEAKS = [19, 31, 22, 38, 23, 21, 0, 29, 0, 30, 50, 11]
REFLECTIONS = [15, 66, 75, 59, 54, 38, None, 79, None, 53, 94, 52]
ZAEF_PEAKS = [17, 32, 22, 33, 24, 21, 0, 29, 0, 24, 37, 10]


@pytest.fixture(scope="module")
def sample():
    return read_stream(SAMPLE)


def test_sample_stream_header(sample):
    h = sample.header
    assert h.version == "2.3" and h.generated_by == "CrystFEL 0.12.0"
    assert h.command_line.startswith("indexamajig -i files.lst -g sample.geom -p sample.cell")
    assert h.geometry_text == (DATA / "sample.geom").read_text()
    assert [p.name for p in sample.detector.panels] == ["p0"]
    assert sample.indexing_methods == "asdf"
    cell = sample.target_cell
    assert (cell.lattice_type, cell.centering, cell.unique_axis) == ("monoclinic", "C", "b")
    a, b, c, al, be, ga = cell.parameters
    np.testing.assert_allclose([a, b, c], [61.2e-10, 91.4e-10, 66.5e-10], rtol=1e-12)
    assert math.degrees(be) == pytest.approx(115.0)
    assert sample.problems == []


def test_sample_stream_counts_match_crystfel(sample):
    chunks = sample.chunks
    assert [c.filename for c in chunks] == [f"sample_{i:02d}.h5" for i in range(12)]
    assert [c.serial for c in chunks] == list(range(1, 13))
    assert all(c.event == "//" for c in chunks)
    assert [len(c.peaks) for c in chunks] == PF8_PEAKS
    assert [c.num_peaks for c in chunks] == PF8_PEAKS
    assert [c.hit for c in chunks] == [n >= 10 for n in PF8_PEAKS]
    got = [len(c.crystals[0].reflections) if c.crystals else None for c in chunks]
    assert got == REFLECTIONS
    indexed = [c.indexed_by for c in chunks]
    assert indexed == ["none" if n is None else "asdf-nolatt-cell" for n in REFLECTIONS]
    assert all(c.n_indexing_tries == 1 for c in chunks if c.crystals)
    assert all(len(c.crystals) == (n is not None) for c, n in zip(chunks, REFLECTIONS))


def test_sample_stream_values_and_units(sample):
    c = sample.chunks[0]
    assert c.photon_energy_ev == 9500.0 and c.beam_divergence == 0.0
    assert c.beam_bandwidth == 3e-3 and c.average_camera_length == 0.080
    # 2.180327 nm^-1 or 4.586468 A: both printed values are honoured.
    assert c.peak_resolution == pytest.approx(2.180327e9, abs=0.5e3)
    assert 1e10 / c.peak_resolution == pytest.approx(4.586468, abs=0.5e-6)
    # First peak row: " 439.05    1.97       2.18     4107.83   p0" (single panel at 0,0).
    assert (c.peaks.fs[0], c.peaks.ss[0], c.peaks.intensity[0]) == (439.05, 1.97, 4107.83)
    assert c.peak_resolutions[0] == pytest.approx(2.18e9)
    x = c.crystals[0]
    np.testing.assert_allclose(x.cell.reciprocal[0], [-0.0463085e9, 0.1146124e9, -0.1341695e9])
    assert x.profile_radius == pytest.approx(0.00156e9)
    # 1.68 nm^-1 or 5.96 A: the value must print as both.
    assert f"{x.resolution_limit / 1e9:.2f}" == "1.68"
    assert f"{1e10 / x.resolution_limit:.2f}" == "5.96"
    assert x.notes[0].startswith("predict_refine/initial_residual = 0.804968")
    assert crystal_detector_shift(x) == (0.0, 0.0)
    r = x.reflections
    assert (r.h[0], r.k[0], r.l[0], r.intensity[0], r.sigma[0]) == (-2, 0, -9, 134.42, 12.87)
    assert (r.peak[0], r.background[0], r.fs[0], r.ss[0], r.panel[0]) == (44.0, 0.92, 373.9,
                                                                          49.3, 0)
    assert x.num_saturated == 0 and x.num_implausible == 0


def test_sample_crystals_match_truth_orientations(sample):
    """The reread a*, b*, c* (m^-1, lab frame) equal the simulation's truth, up to the 2-fold."""
    truth = json.loads((DATA / "truth.json").read_text())
    twofold = np.diag([-1.0, 1.0, -1.0])
    for chunk, t in zip(sample.chunks, truth):
        assert chunk.filename == t["file"]
        assert chunk.hit == t["is_hit"]
        if not t["is_hit"]:
            continue
        ref = np.array([t["astar_nm^-1"], t["bstar_nm^-1"], t["cstar_nm^-1"]]) * 1e9
        got = chunk.crystals[0].cell.reciprocal
        err = min(np.max(np.linalg.norm(got - m @ ref, axis=1) / np.linalg.norm(ref, axis=1))
                  for m in (np.eye(3), twofold))
        assert err < 0.02, chunk.filename
        a, b, c, al, be, ga = chunk.crystals[0].cell.parameters
        np.testing.assert_allclose([a, b, c], [61.2e-10, 91.4e-10, 66.5e-10], rtol=0.016)


def test_zaef_stream_counts():
    s = read_stream(ZAEF)
    assert s.target_cell is None and s.indexing_methods == "none"
    assert [len(c.peaks) for c in s.chunks] == ZAEF_PEAKS
    assert [c.hit for c in s.chunks] == [n >= 10 for n in ZAEF_PEAKS]
    assert all(not c.crystals and c.indexed_by == "none" for c in s.chunks)
    assert s.problems == []


def test_tables_are_pandas_friendly(sample):
    peaks = sample.peaks_table()
    assert len(peaks["fs"]) == sum(PF8_PEAKS)
    assert np.bincount(peaks["chunk"], minlength=12).tolist() == PF8_PEAKS
    assert set(peaks["panel_name"]) == {"p0"}
    refl = sample.reflections_table()
    assert len(refl["h"]) == sum(n for n in REFLECTIONS if n)
    assert len({len(v) for v in refl.values()}) == 1
    crystals = sample.crystals_table()
    assert crystals["num_reflections"].tolist() == [n for n in REFLECTIONS if n]
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(refl)
    assert frame.groupby("serial").size().tolist() == [n for n in REFLECTIONS if n]


def test_iter_chunks_from_file_handle_matches_read_stream(sample):
    with open(SAMPLE) as fh:
        chunks = list(iter_chunks(fh))
    assert [len(c.peaks) for c in chunks] == PF8_PEAKS
    assert [c.peak_resolution for c in chunks] == [c.peak_resolution for c in sample.chunks]


def test_binary_handle_and_gzip(tmp_path):
    import gzip
    with open(ZAEF, "rb") as fh:
        assert [len(c.peaks) for c in read_stream(fh).chunks] == ZAEF_PEAKS
    path = tmp_path / "z.stream.gz"
    path.write_bytes(gzip.compress(ZAEF.read_bytes()))
    assert [len(c.peaks) for c in iter_chunks(path)] == ZAEF_PEAKS


def test_truncated_last_chunk_is_reported_and_skipped(tmp_path):
    text = SAMPLE.read_text()
    cut = text.rindex("End of reflections") - 30  # inside the last reflection table
    path = tmp_path / "cut.stream"
    path.write_text(text[:cut])
    s = read_stream(path)
    assert len(s.chunks) == 11
    assert len(s.problems) == 1 and "truncated chunk" in s.problems[0]
    start = text[:cut].count("\n", 0, text.rindex("----- Begin chunk -----")) + 1
    assert s.problems[0].startswith(f"{path}:{start}: ")


def test_bad_chunk_is_skipped_not_the_end_of_the_stream(tmp_path):
    text = SAMPLE.read_text()
    first = text.index("photon_energy_eV = 9500.000000\n")
    broken = text[:first] + text[first:].replace("photon_energy_eV = 9500.000000\n", "", 1)
    row = " 279.50   48.96       1.48     1659.19   p0\n"
    broken = broken.replace(row, " 279.50   48.96       1.48     1659.19\n", 1)
    path = tmp_path / "bad.stream"
    path.write_text(broken)
    s = read_stream(path)
    assert [c.filename for c in s.chunks] == [f"sample_{i:02d}.h5" for i in range(2, 12)]
    assert "incomplete chunk: no 'photon_energy_eV'" in s.problems[0]
    line = broken.count("\n", 0, broken.index(" 279.50   48.96")) + 1
    assert s.problems[1].startswith(f"{path}:{line}: peak row does not have 5 fields")


def test_chunk_without_end_marker_is_skipped(tmp_path):
    text = SAMPLE.read_text()
    end = text.index("----- End chunk -----\n")
    path = tmp_path / "noend.stream"
    path.write_text(text[:end] + text[end + len("----- End chunk -----\n"):])
    s = read_stream(path)
    assert [c.serial for c in s.chunks] == list(range(2, 13))
    line = text.count("\n", 0, text.index("----- Begin chunk -----")) + 1
    assert s.problems == [f"{path}:{line}: chunk has no '----- End chunk -----' before the "
                          "next chunk; skipped"]


OLD_GEOMETRY = """\
photon_energy = /LCLS/photon_energy_eV
clen = 0.0895
res = 9097.52
adu_per_eV = 0.00105
data = /data/data
q1a11/min_fs = 582
q1a11/max_fs = 775
q1a11/min_ss = 1020
q1a11/max_ss = 1204
q1a11/corner_x = 100.0
q1a11/corner_y = 200.0
q1a11/fs = +1.0x
q1a11/ss = +1.0y
"""

OLD_CHUNK = """\
----- Begin chunk -----
Image filename: r0001-old.h5
Image serial number: 7
indexed_by = mosflm-comb-nolatt-nocell
photon_energy_eV = 9511.868397
beam_divergence = 0.00e+00 rad
beam_bandwidth = 1.00e-08 (fraction)
hdf5//LCLS/photon_energy_eV = 9511.868397
average_camera_length = 0.089500 m
num_peaks = 1
num_saturated_peaks = 0
Peaks from peak search
  fs/px   ss/px (1/d)/nm^-1   Intensity  Panel
 634.80 1057.60       1.79      185.09   q1a11
End of peak list
--- Begin crystal
Cell parameters 6.13532 12.19726 16.88163 nm, 90.54524 91.23016 90.53769 deg
astar = +0.0706577 -0.1444151 +0.0270631 nm^-1
bstar = +0.0010000 +0.0100000 +0.0800000 nm^-1
cstar = +0.0500000 +0.0200000 -0.0100000 nm^-1
lattice_type = orthorhombic
centering = C
unique_axis = ?
profile_radius = 0.00258 nm^-1
predict_refine/det_shift x = 0.022 y = -0.009 mm
diffraction_resolution_limit = 1.80 nm^-1 or 5.56 A
num_reflections = 257
Reflections measured after indexing
   h    k    l          I   sigma(I)       peak background  fs/px  ss/px panel
 -28   10    5     185.09     155.78     217.00      64.71  634.8 1057.6 q1a11
End of reflections
--- End crystal
----- End chunk -----
"""


def test_older_stream_style(tmp_path):
    """0.9.1-era layout: indexing line before the geometry, no Event line, hdf5/ headers."""
    text = ("CrystFEL stream format 2.3\nGenerated by CrystFEL 0.9.1\n"
            "indexamajig -i files.lst -o test.stream\n"
            "Indexing methods selected: mosflm-comb-nolatt-nocell\n"
            "----- Begin unit cell -----\n" + (DATA / "sample.cell").read_text()
            + "----- End unit cell -----\n"
            "----- Begin geometry file -----\n" + OLD_GEOMETRY
            + "----- End geometry file -----\n" + OLD_CHUNK)
    s = read_stream(io.StringIO(text))
    assert s.indexing_methods == "mosflm-comb-nolatt-nocell"
    assert s.header.command_line == "indexamajig -i files.lst -o test.stream"
    assert s.target_cell.centering == "C" and s.target_cell.unique_axis == "b"
    (c,) = s.chunks
    assert (c.filename, c.event, c.serial) == ("r0001-old.h5", "//", 7)
    assert c.headers == [("/LCLS/photon_energy_eV", 9511.868397)]
    assert (c.peaks.fs[0], c.peaks.ss[0]) == pytest.approx((634.80 - 582, 1057.60 - 1020))
    x = c.crystals[0]
    assert (x.cell.lattice_type, x.cell.centering, x.cell.unique_axis) == ("orthorhombic",
                                                                           "C", "?")
    np.testing.assert_allclose(x.cell.reciprocal[0], [0.0706577e9, -0.1444151e9, 0.0270631e9])
    assert crystal_detector_shift(x) == pytest.approx((0.022e-3, -0.009e-3))
    r = x.reflections
    assert (int(r.h[0]), int(r.k[0]), int(r.l[0])) == (-28, 10, 5)
    assert (r.fs[0], r.ss[0], int(r.panel[0])) == pytest.approx((634.8 - 582, 1057.6 - 1020, 0))
    assert x.num_saturated == 0  # line absent
    assert any("num_reflections = 257 but 1 reflection rows" in p for p in s.problems)


def test_missing_lattice_line_gives_triclinic_and_unknown_panel_drops_peak():
    text = ("CrystFEL stream format 2.3\nGenerated by x\ncmd\n----- Begin geometry file -----\n"
            + OLD_GEOMETRY + "----- End geometry file -----\n"
            + OLD_CHUNK.replace("centering = C\n", "").replace("  q1a11\nEnd of peak",
                                                                "  q9\nEnd of peak"))
    s = read_stream(io.StringIO(text))
    x = s.chunks[0].crystals[0]
    assert (x.cell.lattice_type, x.cell.centering) == ("triclinic", "P")
    assert len(s.chunks[0].peaks) == 0
    assert any("peak on unknown panel 'q9'" in p for p in s.problems)


@pytest.mark.parametrize("text, line, what", [
    ("CrystFEL stream format 3.0\n", 1, "not a CrystFEL 2.x stream"),
    ("", 1, "empty file"),
    ("CrystFEL stream format 2.3\nGenerated by x\n----- Begin chunk -----\n", 3,
     "chunk before the geometry block"),
    ("CrystFEL stream format 2.3\nGenerated by x\n", 2, "no geometry block"),
    ("CrystFEL stream format 2.3\n----- Begin geometry file -----\nclen = 0.1\n", 2,
     "geometry block is not closed"),
])
def test_unreadable_streams_name_file_and_line(tmp_path, text, line, what):
    path = tmp_path / "broken.stream"
    path.write_text(text)
    with pytest.raises(StreamError) as err:
        read_stream(path)
    assert str(err.value).startswith(f"{path}:{line}: ")
    assert what in str(err.value)


def test_invalid_geometry_block_names_stream_line(tmp_path):
    geometry = OLD_GEOMETRY.replace("q1a11/fs = +1.0x", "q1a11/fs = +1.0q")
    path = tmp_path / "g.stream"
    path.write_text("CrystFEL stream format 2.3\nGenerated by x\ncmd\n"
                    "----- Begin geometry file -----\n" + geometry
                    + "----- End geometry file -----\n")
    with pytest.raises(StreamError) as err:
        read_stream(path)
    bad_line = 4 + geometry.splitlines().index("q1a11/fs = +1.0q") + 1
    assert str(err.value).startswith(f"{path}:{bad_line}: invalid geometry block")
