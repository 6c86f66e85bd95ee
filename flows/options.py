"""indexamajig's command line, parsed once into a namespace that the flow's configuration is built from.

Every option CrystFEL 0.12.0's indexamajig documents is listed here with its name and default
(shared/spec/options.md). Each is either implemented or, when given, rejected with a message
that says why; none is silently ignored. The groups follow indexamajig's manual.
"""

from __future__ import annotations

import argparse
import math

# --------------------------------------------------------------------------- helpers


class OptionError(ValueError):
    """A command line that cannot run: the message names the option."""


def _triple(text: str) -> tuple[float, float, float]:
    parts = text.split(",")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"expected three comma-separated values, got '{text}'")
    try:
        return tuple(float(p) for p in parts)  # type: ignore[return-value]
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number in '{text}'") from None


def _tolerance(text: str) -> tuple[float, ...]:
    """a,b,c,al,be,ga (percent, degrees) or the old a,b,c,angle form."""
    try:
        vals = [float(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number in '{text}'") from None
    if len(vals) == 4:
        vals = vals[:3] + [vals[3]] * 3
    if len(vals) != 6:
        raise argparse.ArgumentTypeError(
            "--tolerance takes a,b,c,alpha,beta,gamma (or a,b,c,angle)")
    return tuple(vals)


def _float_or_inf(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number '{text}'") from None


# Options we recognise but do not run, with the reason given to the user.
UNSUPPORTED = {
    "--cpu-pin": "worker placement is Dask's job; use your scheduler's or jobqueue's CPU binding",
    "--int-diag": "integration diagnostics are not implemented",
    "--harvest-file": "parameter harvesting is not implemented",
    "--mille": "Millepede geometry refinement output is not implemented",
    "--mille-dir": "Millepede geometry refinement output is not implemented",
    "--max-mille-level": "Millepede geometry refinement output is not implemented",
    "--mille-file": "Millepede geometry refinement output is not implemented",
    "--spectrum-file": "spectrum files are not implemented",
    "--no-cell-combinations": "crystream's cell matching has no combination step to switch off",
    "--asapo-output-stream": "a hits-only ASAP::O output stream needs an ASAP::O producer, "
                             "which crystream does not include",
    "--fromfile-input-file": "the 'file' indexing engine is not implemented",
    "--profile": "per-stage timing is on the Dask dashboard's Profile and Task Stream pages",
    "--basename": "file names are written as given; --basename is not implemented",
    "--no-check-prefix": "crystream does not guess prefixes, so there is nothing to switch off",
}
# Options of CrystFEL engines that crystream does not have (see --indexing).
ENGINE_OPTIONS = (
    "--asdf-fast", "--taketwo-member-threshold", "--taketwo-len-tolerance",
    "--taketwo-angle-tolerance", "--taketwo-trace-tolerance", "--xgandalf-sampling-pitch",
    "--xgandalf-sps", "--xgandalf-grad-desc-iterations", "--xgandalf-gdis",
    "--xgandalf-tolerance", "--xgandalf-tol", "--xgandalf-min-lattice-vector-length",
    "--xgandalf-min-lvl", "--xgandalf-max-lattice-vector-length", "--xgandalf-max-lvl",
    "--xgandalf-max-peaks", "--xgandalf-no-deviation-from-provided-cell",
    "--xgandalf-fast-execution", "--felix-domega", "--felix-fraction-max-visits",
    "--felix-max-internal-angle", "--felix-max-uniqueness", "--felix-min-completeness",
    "--felix-min-visits", "--felix-num-voxels", "--felix-sigma", "--felix-tthrange-max",
    "--felix-tthrange-min", "--pinkIndexer-considered-peaks-count",
    "--pinkIndexer-angle-resolution", "--pinkIndexer-refinement-type",
    "--pinkIndexer-tolerance", "--pinkIndexer-reflection-radius",
    "--pinkIndexer-max-resolution-for-indexing", "--pinkIndexer-max-refinement-disbalance",
    "--pinkIndexer-override-photon-energy", "--pinkIndexer-override-bandwidth",
    "--pinkIndexer-override-visible-energy-range", "--ffbidx-max-peaks",
    "--ffbidx-min-peaks", "--ffbidx-max-output-cells", "--ffbidx-num-candidate-vectors",
    "--ffbidx-redundant-computations", "--ffbidx-max-distance", "--ffbidx-min-spots",
    "--ffbidx-num-halfsphere-points", "--ffbidx-num-arc-points", "--help-asdf",
    "--help-taketwo", "--help-xgandalf", "--help-felix", "--help-pinkindexer",
    "--help-ffbidx")
# Options that indexamajig itself only answers with "no longer used".
REMOVED = {"--hdf5-peaks": "no longer used", "--fix-bandwidth":
           "no longer used: set 'bandwidth' in the geometry file instead"}
# Internal worker options of indexamajig, never meant for users.
INTERNAL = ("--fd-stream", "--shm-name", "--fd-mille", "--worker-id", "--worker-tmpdir",
            "--queue-semaphore")


class _Reject(argparse.Action):
    """An indexamajig option that crystream recognises but does not run: fail, saying why."""

    def __init__(self, option_strings, dest, reason: str = "", **kw):
        kw.setdefault("nargs", "?")
        super().__init__(option_strings, argparse.SUPPRESS, help=argparse.SUPPRESS, **kw)
        self.reason = reason

    def __call__(self, parser, namespace, values, option_string=None):
        raise OptionError(f"{option_string}: {self.reason}")


def _add_rejected(parser: argparse.ArgumentParser) -> None:
    for name, why in UNSUPPORTED.items():
        parser.add_argument(name, action=_Reject, reason=f"not supported by crystream: {why}")
    for name, why in REMOVED.items():
        parser.add_argument(name, action=_Reject, reason=why)
    for name in INTERNAL:
        parser.add_argument(name, action=_Reject,
                            reason="an internal indexamajig worker option; crystream's workers "
                                   "are Dask workers")
    for name in ENGINE_OPTIONS:
        engine = name[2:].split("-")[1 if name.startswith("--help-") else 0]
        parser.add_argument(name, action=_Reject,
                            reason=f"configures CrystFEL's {engine} engine, which crystream "
                                   "does not have; see --indexing for crystream's engines")


def _add(group, *names, **kw):
    group.add_argument(*names, **kw)


def add_index_options(parser: argparse.ArgumentParser) -> None:
    """Add indexamajig's options (and crystream's few new ones) to ``parser``."""
    g = parser.add_argument_group("Basic options")
    _add(g, "-i", "--input", dest="input", metavar="FILE",
         help="list of input files, one 'filename [event]' per line; '-' for stdin")
    _add(g, "-o", "--output", dest="output", metavar="FILE",
         help="output stream file ('-' for standard output)")
    _add(g, "-g", "--geometry", dest="geometry", metavar="FILE", help="detector geometry file")
    _add(g, "-j", dest="j", type=int, default=1, metavar="N",
         help="number of Dask worker processes (default 1)")
    _add(g, "-x", "--prefix", dest="prefix", default="", metavar="PREFIX",
         help="prefix added to the file names in the input list")
    _add(g, "--temp-dir", dest="temp_dir", default=None, metavar="PATH",
         help="where the local Dask workers keep their scratch space (default: Dask's)")
    _add(g, "--wait-for-file", dest="wait_for_file", type=float, default=0, metavar="S",
         help="wait up to S seconds for each input file to appear (-1: forever)")
    _add(g, "--no-image-data", dest="no_image_data", action="store_true",
         help="do not load pixel data (peaks from the payload are kept)")
    _add(g, "--no-mask-data", dest="no_mask_data", action="store_true",
         help="do not load mask files")
    _add(g, "--data-format", dest="data_format", choices=["hdf5", "msgpack", "seedee", "cbf"],
         default=None, help="format of streamed payloads (detected when omitted)")
    _add(g, "--copy-header", "--copy-hdf5-field", dest="copy_header", action="append",
         default=[], metavar="LOC", help="write this header value in every chunk (repeatable)")
    _add(g, "--serial-start", dest="serial_start", type=int, default=1, metavar="N",
         help="first serial number (default 1)")

    g = parser.add_argument_group("ZeroMQ input")
    _add(g, "--zmq-input", dest="zmq_input", metavar="ADDRESS",
         help="connect to this ZeroMQ endpoint, e.g. tcp://127.0.0.1:5002")
    _add(g, "--zmq-subscribe", dest="zmq_subscribe", action="append", default=None,
         metavar="PREFIX", help="SUB socket with this topic prefix (repeatable)")
    _add(g, "--zmq-request", dest="zmq_request", metavar="STRING",
         help="REQ socket sending this request string")

    g = parser.add_argument_group("ASAP::O input")
    _add(g, "--asapo-endpoint", dest="asapo_endpoint", metavar="HOST:PORT",
         help="ASAP::O endpoint; switches ASAP::O input on")
    _add(g, "--asapo-token", dest="asapo_token", metavar="TOKEN",
         help="beamtime token (never written to logs or the stream)")
    _add(g, "--asapo-token-file", dest="asapo_token_file", metavar="FILE",
         help="read the token from this file instead (crystream only)")
    _add(g, "--asapo-beamtime", dest="asapo_beamtime", metavar="ID",
         help="beamtime ID")
    _add(g, "--asapo-source", dest="asapo_source", metavar="NAME",
         help="data source")
    _add(g, "--asapo-group", dest="asapo_group", metavar="ID",
         help="consumer group (consumers in one group share the messages)")
    _add(g, "--asapo-stream", dest="asapo_stream", metavar="NAME",
         help="stream name")
    _add(g, "--asapo-wait-for-stream", dest="asapo_wait_for_stream", action="store_true",
         help="wait for an empty or missing stream instead of ending")
    _add(g, "--asapo-follow-next-stream", dest="asapo_follow_next_stream",
         action="store_true", help="go on with the next stream when one finishes (crystream only)")
    _add(g, "--asapo-consumer-timeout", dest="asapo_consumer_timeout", type=int, default=500,
         metavar="MS",
         help="timeout of each get_next in ms (default 500)")
    _add(g, "--asapo-acks", dest="asapo_acks", action="store_true",
         help="accepted for compatibility: crystream always acknowledges a message once its "
              "chunk is in the stream")
    _add(g, "--no-data-timeout", dest="no_data_timeout", type=float, default=60, metavar="S",
         help="stop after S seconds without data (default 60)")

    g = parser.add_argument_group("Peak search options")
    _add(g, "--peaks", dest="peaks", default="zaef",
         choices=["zaef", "peakfinder8", "peakfinder9", "hdf5", "cxi", "msgpack", "none"],
         help="peak search method (default zaef)")
    _add(g, "--peak-radius", dest="peak_radius", type=_triple, default=None, metavar="INN,MID,OUT",
         help="zaef and revalidation radii (default: --int-radius)")
    _add(g, "--min-peaks", dest="min_peaks", type=int, default=0, metavar="N",
         help="a hit needs at least N peaks (default 0: every frame)")
    _add(g, "--median-filter", dest="median_filter", type=int, default=0, metavar="N",
         help="subtract the (2N+1)^2 median first (default 0: off)")
    _add(g, "--filter-noise", "--noise-filter", dest="filter_noise", action="store_true",
         help="noise filter before the peak search")
    _add(g, "-t", "--threshold", dest="threshold", type=float, default=800.0,
         help="zaef/peakfinder8 threshold in ADU (default 800)")
    _add(g, "--min-squared-gradient", "--min-gradient", "--min-sq-gradient",
         dest="min_squared_gradient", type=float, default=100000.0,
         help="zaef minimum squared gradient (default 100000)")
    _add(g, "--min-snr", dest="min_snr", type=float, default=5.0,
         help="minimum signal/noise of a peak (default 5)")
    _add(g, "--min-pix-count", dest="min_pix_count", type=int, default=2,
         help="peakfinder8: fewest pixels in a peak (default 2)")
    _add(g, "--max-pix-count", dest="max_pix_count", type=int, default=200,
         help="peakfinder8: most pixels in a peak (default 200)")
    _add(g, "--local-bg-radius", dest="local_bg_radius", type=int, default=3,
         help="peakfinder8/9 background radius (default 3)")
    _add(g, "--min-res", dest="min_res", type=float, default=0.0,
         help="peakfinder8: inner radius from the beam, pixels (default 0)")
    _add(g, "--max-res", dest="max_res", type=float, default=0.0,
         help="peakfinder8: outer radius from the beam, pixels (default 0: none)")
    _add(g, "--min-snr-biggest-pix", dest="min_snr_biggest_pix", type=float, default=7.0,
         help="peakfinder9 (default 7)")
    _add(g, "--min-snr-peak-pix", dest="min_snr_peak_pix", type=float, default=6.0,
         help="peakfinder9 (default 6)")
    _add(g, "--min-sig", dest="min_sig", type=float, default=11.0,
         help="peakfinder9: minimum background sigma (default 11)")
    _add(g, "--min-peak-over-neighbour", dest="min_peak_over_neighbour", type=_float_or_inf,
         default=-math.inf,
         help="peakfinder9 pre-filter (default -inf)")
    _add(g, "--peakfinder8-fast", dest="peakfinder8_fast", action="store_true",
         help="peakfinder8 statistics from a sample of pixels per radius")
    _add(g, "--no-use-saturated", dest="use_saturated", action="store_false",
         help="reject saturated peaks")
    _add(g, "--no-revalidate", dest="revalidate", action="store_false",
         help="keep hdf5/cxi/msgpack peaks as given")
    _add(g, "--no-half-pixel-shift", dest="half_pixel_shift", action="store_false",
         help="do not add 0.5 to hdf5/cxi/msgpack peak coordinates")
    _add(g, "--check-hdf5-snr", dest="check_hdf5_snr", action="store_true",
         help="drop hdf5/cxi/msgpack peaks below --min-snr")

    g = parser.add_argument_group("Indexing options")
    _add(g, "--indexing", dest="indexing", default=None, metavar="METHODS",
         help="comma-separated engines: toro (needs -p), fft1d; with -latt/-nolatt/-cell/-nocell (default: automatic)")
    _add(g, "-p", "--pdb", dest="pdb", metavar="FILE", help="target unit cell (CrystFEL or PDB)")
    _add(g, "--tolerance", dest="tolerance", type=_tolerance, default=(5, 5, 5, 1.5, 1.5, 1.5),
         help="cell match tolerances a,b,c (%%),alpha,beta,gamma (deg) (default 5,5,5,1.5,1.5,1.5)")
    _add(g, "--no-check-cell", dest="check_cell", action="store_false",
         help="do not check the cell against -p")
    _add(g, "--check-cell", dest="check_cell", action="store_true")
    _add(g, "--multi", dest="multi", action="store_true",
         help="look for several crystals per frame")
    _add(g, "--no-multi", dest="multi", action="store_false")
    _add(g, "--no-retry", dest="retry", action="store_false",
         help="no retries without the weakest peaks")
    _add(g, "--retry", dest="retry", action="store_true")
    _add(g, "--no-refine", dest="refine", action="store_false",
         help="no prediction refinement")
    _add(g, "--refine", dest="refine", action="store_true")
    _add(g, "--no-check-peaks", dest="check_peaks", action="store_false",
         help="no peak-alignment check")
    _add(g, "--check-peaks", dest="check_peaks", action="store_true")
    _add(g, "--max-indexer-threads", dest="max_indexer_threads", type=int, default=1,
         help="accepted for compatibility; used only by pinkIndexer, which crystream lacks")
    _add(g, "--wavelength-estimate", dest="wavelength_estimate", type=float, default=None,
         help="metres (our engines do not need it)")
    _add(g, "--camera-length-estimate", dest="camera_length_estimate", type=float, default=None,
         help="metres (our engines do not need it)")
    parser.set_defaults(check_cell=True, multi=False, retry=True, refine=True, check_peaks=True)

    g = parser.add_argument_group("Integration options")
    _add(g, "--integration", dest="integration", default="rings-nocen-nosat-nograd",
         help="rings or prof2d with -cen/-sat/-grad, or none (default rings-nocen-nosat-nograd)")
    _add(g, "--int-radius", dest="int_radius", type=_triple, default=(4.0, 5.0, 7.0),
         metavar="INN,MID,OUT",
         help="integration radii in pixels (default 4,5,7)")
    _add(g, "--push-res", dest="push_res", type=_float_or_inf, default=math.inf, metavar="NM-1",
         help="integrate this far (nm^-1) beyond the resolution estimate (default inf)")
    _add(g, "--highres", dest="highres", type=_float_or_inf, default=math.inf, metavar="A",
         help="ignore pixels beyond this resolution in Angstrom (default inf)")
    _add(g, "--fix-profile-radius", dest="fix_profile_radius", type=float, default=None,
         help="profile radius in m^-1 (default: estimated)")
    _add(g, "--fix-divergence", dest="fix_divergence", type=float, default=0.0, metavar="RAD",
         help="beam divergence written to the stream (default 0)")
    _add(g, "--overpredict", dest="overpredict", action="store_true",
         help="predict with 5x the profile radius")
    _add(g, "--cell-parameters-only", dest="cell_parameters_only", action="store_true",
         help="no prediction and integration")

    g = parser.add_argument_group("Output options")
    _add(g, "--no-non-hits-in-stream", dest="non_hits_in_stream", action="store_false",
         help="leave non-hits out of the stream")
    _add(g, "--no-peaks-in-stream", dest="peaks_in_stream", action="store_false",
         help="leave peak tables out of the stream")
    _add(g, "--no-refls-in-stream", dest="refls_in_stream", action="store_false",
         help="leave reflection tables out of the stream")

    g = parser.add_argument_group("Dask options (crystream only)")
    _add(g, "--scheduler", dest="scheduler", metavar="ADDRESS",
         help="run on an existing Dask scheduler instead of the embedded local cluster")
    _add(g, "--jobqueue", dest="jobqueue", metavar="YAML",
         help="start workers through dask-jobqueue as this YAML file configures")
    _add(g, "--dashboard-address", dest="dashboard_address", default="127.0.0.1:8787",
         metavar="HOST:PORT", help="where the Dask dashboard listens (default 127.0.0.1:8787)")
    _add(g, "--max-in-flight", dest="max_in_flight", type=int, default=None, metavar="N",
         help="frames submitted but not yet written, at most (default 16 per worker)")
    _add(g, "--no-progress", dest="progress", action="store_false",
         help="no live progress line in the terminal")
    _add_rejected(parser)


def validate(ns: argparse.Namespace) -> None:
    """The cross-option rules of indexamajig (and a few of our own), as OptionError."""
    sources = [name for name, val in (("-i/--input", ns.input), ("--zmq-input", ns.zmq_input),
                                      ("--asapo-endpoint", ns.asapo_endpoint)) if val]
    if len(sources) > 1:
        raise OptionError(f"{' and '.join(sources)} cannot be used together")
    if not sources:
        raise OptionError("no input: give -i LIST, --zmq-input ADDRESS or --asapo-endpoint")
    if ns.zmq_subscribe and len(ns.zmq_subscribe) > 256:
        raise OptionError("too many --zmq-subscribe prefixes (at most 256, as CrystFEL)")
    if ns.zmq_request is not None and ns.zmq_subscribe:
        raise OptionError("--zmq-request and --zmq-subscribe cannot be used together")
    if (ns.zmq_request is not None or ns.zmq_subscribe) and not ns.zmq_input:
        raise OptionError("--zmq-request/--zmq-subscribe need --zmq-input")
    if ns.asapo_endpoint:
        missing = [opt for opt, val in (("--asapo-beamtime", ns.asapo_beamtime),
                                        ("--asapo-source", ns.asapo_source),
                                        ("--asapo-group", ns.asapo_group),
                                        ("--asapo-stream", ns.asapo_stream)) if not val]
        if missing:
            raise OptionError(f"ASAP::O input needs {', '.join(missing)}")
        if ns.asapo_token and ns.asapo_token_file:
            raise OptionError("give --asapo-token or --asapo-token-file, not both")
    if not ns.output:
        raise OptionError("an output stream is required: -o FILE (or -o - for standard output)")
    if not ns.geometry:
        raise OptionError("a geometry file is required: -g FILE")
    if ns.j < 1:
        raise OptionError("-j must be at least 1")
    if sum(bool(x) for x in (ns.scheduler, ns.jobqueue)) > 1:
        raise OptionError("--scheduler and --jobqueue cannot be used together")
    if ns.peak_radius is None:
        ns.peak_radius = ns.int_radius


def parse_index_args(argv: list[str]) -> argparse.Namespace:
    """Parse a `crystream index` command line; OptionError for anything that cannot run."""
    parser = argparse.ArgumentParser(prog="crystream index")
    add_index_options(parser)
    ns = parser.parse_args(argv)
    validate(ns)
    return ns
