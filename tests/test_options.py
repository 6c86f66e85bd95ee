"""`crystream index` takes indexamajig's command lines: names, defaults, rules, clear refusals."""

import math

import pytest

from flows.options import OptionError, parse_index_args

# The command lines CrystFEL 0.12.0 ran on the shared samples (samples/README.md).
PF8 = ("-i files.lst -g sample.geom -p sample.cell -o sample.stream -j 1 --peaks=peakfinder8 "
       "--threshold=6 --min-snr=4 --min-pix-count=2 --max-pix-count=50 --local-bg-radius=3 "
       "--min-peaks=10 --indexing=asdf --int-radius=3,4,5")
ZAEF = ("-i files.lst -g sample.geom -o sample-zaef-peaks.stream -j 1 --peaks=zaef "
        "--threshold=6 --min-squared-gradient=30 --min-snr=4 --min-peaks=10 --indexing=none")

# Every option of shared/spec/options.md that takes a value, with a valid value; the rest are flags.
WITH_VALUE = {"-i": "x.lst", "-o": "o.stream", "-g": "g.geom", "-j": "2",
              "--data-format": "msgpack", "--wait-for-file": "1", "--temp-dir": "/tmp",
              "--serial-start": "5", "--peaks": "zaef", "--peak-radius": "3,4,5",
              "--min-peaks": "3", "--median-filter": "2", "-t": "10",
              "--min-squared-gradient": "5", "--min-snr": "3", "--min-pix-count": "1",
              "--max-pix-count": "9", "--local-bg-radius": "2", "--min-res": "10",
              "--max-res": "900", "--min-snr-biggest-pix": "5", "--min-snr-peak-pix": "4",
              "--min-sig": "3", "--min-peak-over-neighbour": "2", "--highres": "2.5",
              "--indexing": "none", "-p": "c.cell", "--tolerance": "3,3,3,1",
              "--max-indexer-threads": "2", "--wavelength-estimate": "1e-10",
              "--camera-length-estimate": "0.1", "--integration": "rings",
              "--int-radius": "2,3,4", "--push-res": "0.5", "--fix-profile-radius": "1e7",
              "--fix-divergence": "0.001", "--copy-header": "/LCLS/x"}
ACCEPTED_FLAGS = ["--no-image-data", "--no-mask-data", "--filter-noise",
                  "--peakfinder8-fast", "--no-use-saturated", "--no-revalidate",
                  "--no-half-pixel-shift", "--check-hdf5-snr", "--no-check-cell", "--multi",
                  "--no-retry", "--no-refine", "--no-check-peaks", "--overpredict",
                  "--cell-parameters-only", "--no-non-hits-in-stream", "--no-peaks-in-stream",
                  "--no-refls-in-stream"]
REJECTED = ["--cpu-pin", "--profile", "--asapo-output-stream", "--hdf5-peaks=/x", "--fix-bandwidth=0.01",
            "--asdf-fast", "--taketwo-member-threshold=20", "--xgandalf-sampling-pitch=6",
            "--xgandalf-grad-desc-iterations=4", "--xgandalf-tolerance=0.02",
            "--xgandalf-min-lattice-vector-length=30", "--xgandalf-max-lattice-vector-length=250",
            "--xgandalf-max-peaks=250", "--fromfile-input-file=x", "--mille", "--fd-stream=3",
            "--taketwo-len-tolerance=0.001", "--taketwo-angle-tolerance=0.6",
            "--taketwo-trace-tolerance=3", "--int-diag=all"]

BASE = ["-i", "x.lst", "-g", "g.geom", "-o", "o.stream"]


def test_samples_command_lines_keep_their_meaning():
    ns = parse_index_args(PF8.split())
    assert (ns.input, ns.geometry, ns.pdb, ns.output, ns.j) == (
        "files.lst", "sample.geom", "sample.cell", "sample.stream", 1)
    assert ns.peaks == "peakfinder8" and ns.threshold == 6 and ns.min_snr == 4
    assert (ns.min_pix_count, ns.max_pix_count, ns.local_bg_radius, ns.min_peaks) == (2, 50, 3, 10)
    assert ns.indexing == "asdf"
    assert ns.int_radius == (3, 4, 5) and ns.peak_radius == (3, 4, 5)  # peak radius follows
    ns = parse_index_args(ZAEF.split())
    assert ns.peaks == "zaef" and ns.min_squared_gradient == 30 and ns.indexing == "none"


def test_defaults_are_crystfels():
    ns = parse_index_args(BASE)
    assert ns.peaks == "zaef" and ns.threshold == 800 and ns.min_squared_gradient == 100000
    assert ns.min_snr == 5 and ns.min_pix_count == 2 and ns.max_pix_count == 200
    assert ns.local_bg_radius == 3 and ns.min_res == 0 and ns.max_res == 0
    assert (ns.min_snr_biggest_pix, ns.min_snr_peak_pix, ns.min_sig) == (7, 6, 11)
    assert ns.min_peak_over_neighbour == -math.inf and ns.min_peaks == 0
    assert ns.int_radius == (4, 5, 7) and ns.peak_radius == (4, 5, 7)
    assert ns.integration == "rings-nocen-nosat-nograd" and ns.push_res == math.inf
    assert ns.tolerance == (5, 5, 5, 1.5, 1.5, 1.5) and ns.indexing is None
    assert ns.check_cell and ns.retry and ns.refine and ns.check_peaks and not ns.multi
    assert ns.use_saturated and ns.revalidate and ns.half_pixel_shift and not ns.check_hdf5_snr
    assert ns.asapo_consumer_timeout == 500 and ns.no_data_timeout == 60
    assert ns.serial_start == 1 and ns.j == 1 and ns.highres == math.inf
    assert ns.dashboard_address.startswith("127.0.0.1:")


@pytest.mark.parametrize("option", sorted(WITH_VALUE))
def test_every_valued_option_is_accepted(option):
    argv = [a for a in BASE]
    if option in ("-i", "-o", "-g"):
        argv[argv.index(option) + 1] = WITH_VALUE[option]
    else:
        argv += [option, WITH_VALUE[option]]
    parse_index_args(argv)


@pytest.mark.parametrize("flag", ACCEPTED_FLAGS)
def test_every_flag_is_accepted(flag):
    parse_index_args(BASE + [flag])


@pytest.mark.parametrize("option", REJECTED)
def test_unsupported_options_are_refused_with_a_reason(option):
    with pytest.raises(OptionError) as err:
        parse_index_args(BASE + [option])
    message = str(err.value)
    assert message.startswith(option.split("=")[0])
    assert len(message.split(":", 1)[1].strip()) > 10


def test_tolerance_four_value_form():
    assert parse_index_args(BASE + ["--tolerance=3,4,5,2"]).tolerance == (3, 4, 5, 2, 2, 2)


@pytest.mark.parametrize("argv, words", [
    (["-i", "x", "--zmq-input", "tcp://127.0.0.1:1", "--zmq-request", "r", "-g", "g", "-o", "o"],
     "cannot be used together"),
    (["--zmq-input", "tcp://127.0.0.1:1", "--zmq-request", "r", "--zmq-subscribe", "t",
      "-g", "g", "-o", "o"], "--zmq-request and --zmq-subscribe"),
    (["--asapo-endpoint", "h:1", "-i", "x", "-g", "g", "-o", "o"], "cannot be used together"),
    (["--asapo-endpoint", "h:1", "-g", "g", "-o", "o"], "--asapo-beamtime"),
    (["-g", "g", "-o", "o"], "no input"),
    (["--zmq-input", "tcp://127.0.0.1:1", "-g", "g", "-o", "o"]
     + [f"--zmq-subscribe=t{i}" for i in range(257)], "at most 256"),
    (["--asapo-endpoint", "h:1", "--asapo-token", "t", "--asapo-token-file", "f",
      "--asapo-beamtime", "b", "--asapo-source", "s", "--asapo-group", "g",
      "--asapo-stream", "r", "-g", "g", "-o", "o"], "not both"),
    (["-i", "x", "-o", "o"], "geometry"),
    (["-i", "x", "-g", "g"], "output"),
])
def test_conflicting_options_fail_clearly(argv, words):
    with pytest.raises(OptionError, match=words):
        parse_index_args(argv)


def test_unknown_option_is_an_error():
    with pytest.raises(SystemExit):
        parse_index_args(BASE + ["--no-such-option"])


SAMPLES = __import__("pathlib").Path(__file__).parent / "data" / "samples"


@pytest.mark.parametrize("extra, words", [
    (["--indexing=toro"], "toro needs a target unit cell"),
    (["--indexing=xgandalf"], "engines are: toro, fft1d"),
    (["--integration=rings-foo"], "unknown modifier 'foo'"),
    (["--peak-radius=5,4,3"], "--peak-radius"),
])
def test_crystream_index_refuses_before_any_frame(tmp_path, capsys, extra, words):
    from flows.cli import main
    argv = ["index", "-i", str(SAMPLES / "files.lst"), "-g", str(SAMPLES / "sample.geom"),
            "-o", str(tmp_path / "o.stream"), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1
    assert not (tmp_path / "o.stream").exists()


def test_broken_geometry_stops_the_run_naming_the_line(tmp_path, capsys):
    from flows.cli import main
    geom = tmp_path / "bad.geom"
    geom.write_text((SAMPLES / "sample.geom").read_text() + "p0/res 13333\n")
    n = len(geom.read_text().splitlines())
    assert main(["index", "-i", str(SAMPLES / "files.lst"), "-g", str(geom),
                 "-o", str(tmp_path / "o.stream")]) == 1
    assert f"bad.geom:{n}:" in capsys.readouterr().err
    assert not (tmp_path / "o.stream").exists()


def test_broken_cell_stops_the_run_naming_the_line(tmp_path, capsys):
    from flows.cli import main
    cell = tmp_path / "bad.cell"
    cell.write_text("CrystFEL unit cell file version 1.0\n\nlattice_type = monoclinic\n"
                    "centering = C\na = 61.2 A\n")
    assert main(["index", "-i", str(SAMPLES / "files.lst"), "-g", str(SAMPLES / "sample.geom"),
                 "-p", str(cell), "-o", str(tmp_path / "o.stream")]) == 1
    assert "bad.cell:" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["index", "demo", "serve", "geometry", "asapo-reset"])
def test_every_subcommand_prints_its_help(command, capsys):
    from flows.cli import main
    with pytest.raises(SystemExit) as exc:
        main([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: crystream {command}")
    if command == "index":  # grouped as indexamajig's manual does
        for group in ("Basic options", "ZeroMQ input", "ASAP::O input", "Peak search options",
                      "Indexing options", "Integration options", "Output options"):
            assert f"\n{group}:" in out
