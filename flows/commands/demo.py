"""`crystream demo`: a simulated ZeroMQ stream processed end to end on the local cluster.

A REP sender (readers.sender.FrameServer, the one behind `crystream serve`) runs in a thread
of this process and serves simulated lysozyme frames; the real pipeline (peakfinder8,
indexing with the target cell, integration) processes them on an embedded LocalCluster and
writes a CrystFEL stream. Simulating a frame costs more than processing it, so the sender
cycles through a pool of ``--patterns`` simulated patterns.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "demo", help="process a simulated ZeroMQ stream end to end (dashboard, summary)",
        description="Start a simulated ZeroMQ sender in this process and process its frames "
                    "with the real pipeline on a local Dask cluster, writing a CrystFEL "
                    "stream. Open the printed dashboard address to watch.")
    p.add_argument("--frames", type=int, default=200, help="frames to send (default 200)")
    p.add_argument("--patterns", type=int, default=24,
                   help="distinct simulated patterns the sender cycles through (default 24)")
    p.add_argument("-j", dest="j", type=int, default=2,
                   help="Dask worker processes (default 2)")
    p.add_argument("-o", "--output", default="demo.stream",
                   help="output stream (default demo.stream; '-' for standard output)")
    p.add_argument("--cell", default="lysozyme",
                   choices=("lysozyme", "thermolysin", "monoclinic_c", "triclinic"),
                   help="simulated crystal (default lysozyme)")
    p.add_argument("--hit-rate", type=float, default=0.8, help="fraction of hits (0.8)")
    p.add_argument("--rate", type=float, default=None,
                   help="sender frames per second (default: as fast as asked)")
    p.add_argument("--seed", type=int, default=1, help="random seed of the simulation")
    p.add_argument("--dashboard-address", default="127.0.0.1:8787",
                   help="Dask dashboard address (default 127.0.0.1:8787)")
    p.add_argument("--no-progress", dest="progress", action="store_false",
                   help="no live progress line")
    p.set_defaults(run=run)
    return p


def demo_config(args, endpoint: str, workdir: str):
    """The FlowConfig of the demo: REQ input from ``endpoint``, the real pipeline."""
    from crystream.indexing import IndexingOptions
    from crystream.integration import IntegrationOptions
    from crystream.peaks.options import PeakSearchOptions
    from crystream.pipeline import PipelineConfig
    from flows.config import FlowConfig
    from readers.options import InputOptions
    peaks = PeakSearchOptions(peaks="peakfinder8", threshold=20, min_snr=5, min_pix_count=2,
                              max_pix_count=50, min_peaks=10)
    pipeline = PipelineConfig(peaks=peaks, indexing=IndexingOptions(),
                              integration=IntegrationOptions())
    inputs = InputOptions(zmq_input=endpoint, zmq_request="next", data_format="msgpack",
                          no_data_timeout=30)
    argv = ["crystream", "demo"] + list(getattr(args, "argv", None) or sys.argv[2:])
    return FlowConfig(source="zmq_req", geometry=os.path.join(workdir, "demo.geom"),
                      cell=os.path.join(workdir, "demo.cell"), output=args.output,
                      input=inputs, pipeline=pipeline, workers=args.j,
                      dashboard_address=args.dashboard_address, progress=args.progress,
                      frames_limit=args.frames, command_line=tuple(argv))


def run(args) -> int:
    from crystream.cellfile import format_cell
    from crystream.simulate import NAMED_CELLS, SimulationConfig, simple_detector, \
        simulate_frames
    from flows.run import run_flow
    from readers.sender import FrameServer
    if args.frames < 1 or args.patterns < 1 or args.j < 1:
        print("crystream demo: --frames, --patterns and -j must be at least 1", file=sys.stderr)
        return 2
    detector = simple_detector()
    cell = NAMED_CELLS[args.cell]
    t0 = time.time()
    print(f"crystream demo: simulating {args.patterns} {args.cell} patterns...",
          file=sys.stderr, flush=True)
    pool = list(simulate_frames(SimulationConfig(detector, cell, hit_rate=args.hit_rate),
                                args.patterns, seed=args.seed))
    print(f"crystream demo: simulated in {time.time() - t0:.1f} s; sending {args.frames} "
          "frames over ZeroMQ (REP)", file=sys.stderr, flush=True)
    frames = itertools.islice(itertools.cycle(pool), args.frames)
    with tempfile.TemporaryDirectory(prefix="crystream-demo-") as workdir:
        with open(os.path.join(workdir, "demo.geom"), "w") as fh:
            fh.write(detector.source_text)
        with open(os.path.join(workdir, "demo.cell"), "w") as fh:
            fh.write(format_cell(cell))
        server = FrameServer(frames, detector, bind="tcp://127.0.0.1:*", mode="rep",
                             data_format="msgpack", rate=args.rate, count=args.frames)
        server.start()
        try:
            status = run_flow(demo_config(args, server.endpoint, workdir))
        finally:
            server.stop()
    if args.output != "-":
        print(f"crystream demo: stream written to {args.output}", file=sys.stderr)
    return status
