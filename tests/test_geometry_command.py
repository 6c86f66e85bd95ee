"""`crystream geometry FILE`: summary of a valid file, file:line and exit 1 for an invalid one."""

from __future__ import annotations

from pathlib import Path

from flows.cli import main

DATA = Path(__file__).parent / "data" / "geometry"
SAMPLES = Path(__file__).parent / "data" / "samples"


def test_summary_of_example_b(capsys):
    assert main(["geometry", str(DATA / "example_B.geom")]) == 0
    out, err = capsys.readouterr()
    assert "valid, 4 panel(s), 262144 pixels" in out
    assert "wavelength 1.00000 A" in out and "clen: 100.000 mm" in out
    q3 = next(l for l in out.splitlines() if l.startswith("q3 "))
    for words in ("256x256", "256-511", "5.00,5.00", "100.000", "0.500", "edge 1"):
        assert words in q3, words
    assert "bad region bad_col: panel q1, fs 44-45" in out
    assert "group all: bottom, top" in out
    assert "warning: " in err and "max_adu" in err and err.count("max_adu") == 1


def test_sample_max_resolution(capsys):
    assert main(["geometry", str(SAMPLES / "sample.geom")]) == 0
    out = capsys.readouterr().out
    # sample README: 4.0 A in the corners, lambda 1.3051 A
    assert "max resolution: 4.01 A" in out and "1.30510 A = 9500.00 eV" in out


def test_invalid_file_exit_status(tmp_path, capsys):
    bad = tmp_path / "bad.geom"
    bad.write_text((SAMPLES / "sample.geom").read_text() + "p0/fs = 1e-3x\n")
    assert main(["geometry", str(bad)]) == 1
    err = capsys.readouterr().err
    n = len((SAMPLES / "sample.geom").read_text().splitlines()) + 1
    assert f"{bad}:{n}: Invalid fs direction" in err


def test_write_option_round_trips(tmp_path, capsys):
    from crystream.geometry.parser import parse_geometry

    assert main(["geometry", "--write", str(DATA / "example_C.geom")]) == 0
    det = parse_geometry(capsys.readouterr().out, "written")
    assert [p.dims for p in det.panels] == [("%", "0", "ss", "fs"), ("%", "1", "ss", "fs")]
