"""`crystream serve`: send simulated or file frames over ZeroMQ (REP or PUB), as OnDA/OM do.

The server binds; `crystream index --zmq-input ADDRESS` (or indexamajig) connects.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "serve", help="serve simulated or file frames over ZeroMQ (REP or PUB)",
        description="Serve detector frames over ZeroMQ: a REP server answering each request "
                    "with one frame, or a PUB publisher sending [topic, payload]. Frames are "
                    "simulated (default) or read from files (-i LIST -g GEOM).")
    p.add_argument("--bind", default="tcp://127.0.0.1:5002",
                   help="address to bind (default %(default)s; port '*' picks a free one)")
    p.add_argument("--mode", choices=("rep", "pub"), default="rep",
                   help="REP server or PUB publisher (default %(default)s)")
    p.add_argument("--topic", default="ondaframedata",
                   help="PUB topic frame sent before each payload (default %(default)s; "
                        "'' sends none)")
    p.add_argument("--data-format", choices=("msgpack", "hdf5", "seedee"), default="msgpack",
                   help="payload encoding (default %(default)s)")
    p.add_argument("--rate", type=float, default=None,
                   help="frames per second (default: as fast as possible)")
    p.add_argument("--count", type=int, default=None,
                   help="stop after this many frames (default: endless for simulation, "
                        "the list once for files)")
    p.add_argument("--with-peaks", action="store_true",
                   help="send a peak list under the geometry's peak_list key (the true "
                        "spots for simulated frames)")
    p.add_argument("--peak-min-photons", type=float, default=30.0,
                   help="simulated peaks: only spots with at least this many photons")
    p.add_argument("--wait-subscribers", type=int, default=0,
                   help="PUB: hold the first frame until this many subscribers connect")
    p.add_argument("--hwm", type=int, default=1000, help="ZeroMQ send high-water mark")
    p.add_argument("-i", "--input", default=None, help="list of data files to serve")
    p.add_argument("--loop", action="store_true", help="with -i: repeat the list")
    p.add_argument("-g", "--geometry", default=None,
                   help="geometry file (default: a simulated 1024x1024 detector)")
    p.add_argument("--write-geometry", default=None,
                   help="write the geometry used (e.g. the simulated detector) to this file")
    sim = p.add_argument_group("simulation")
    sim.add_argument("-p", "--pdb", default=None, help="unit-cell file of the crystal")
    sim.add_argument("--cell", default="lysozyme",
                     choices=("lysozyme", "thermolysin", "monoclinic_c", "triclinic"),
                     help="ready-made cell when -p is not given (default %(default)s)")
    sim.add_argument("--hit-rate", type=float, default=1.0, help="fraction of hits")
    sim.add_argument("--seed", type=int, default=1, help="random seed")
    sim.add_argument("--photon-energy", type=float, default=None,
                     help="photon energy in eV (default: the geometry's)")
    sim.add_argument("--clen", type=float, default=None,
                     help="camera length in m (default: the geometry's)")
    sim.add_argument("--crystal-size", type=float, default=0.5e-6,
                     help="crystal size in m; sets the profile radius 1/size")
    sim.add_argument("--spot-photons", type=float, default=2e5,
                     help="Bragg photons per hit (default %(default)g)")
    sim.add_argument("--background-photons", type=float, default=None,
                     help="background photons per frame (default 1 per pixel)")
    sim.add_argument("--lattices", type=int, choices=(1, 2), default=1,
                     help="lattices per hit")
    p.set_defaults(run=run)
    return p


def _detector(args):
    from crystream.simulate import simple_detector
    if args.geometry:
        from crystream.geometry.parser import load_geometry
        return load_geometry(args.geometry)
    peak_list = None
    if args.with_peaks:
        peak_list = "/data/peaks" if args.data_format == "hdf5" else "peak_list"
    return simple_detector(peak_list=peak_list)


def _frames(args, detector):
    if args.input:
        import os
        from readers.sender import file_frames
        if args.input != "-" and not os.path.isfile(args.input):
            raise OSError(f"{args.input}: input list not found")
        return file_frames(args.input, detector, loop=args.loop)
    from crystream.simulate import NAMED_CELLS, SimulationConfig, simulate_frames
    if args.pdb:
        from crystream.cellfile import load_cell
        cell = load_cell(args.pdb)
    else:
        cell = NAMED_CELLS[args.cell]
    config = SimulationConfig(detector, cell, photon_energy=args.photon_energy, clen=args.clen,
                              crystal_size=args.crystal_size, spot_photons=args.spot_photons,
                              background_photons=args.background_photons,
                              hit_rate=args.hit_rate, lattices=args.lattices)
    return simulate_frames(config, args.count, seed=args.seed)


def run(args) -> int:
    from readers.sender import FrameServer
    try:
        detector = _detector(args)
        if args.write_geometry:
            with open(args.write_geometry, "w") as fh:
                fh.write(detector.source_text)
        frames = _frames(args, detector)
        server = FrameServer(frames, detector, bind=args.bind, mode=args.mode,
                             data_format=args.data_format, topic=args.topic, rate=args.rate,
                             count=args.count, with_peaks=args.with_peaks,
                             peak_min_photons=args.peak_min_photons,
                             wait_subscribers=args.wait_subscribers, sndhwm=args.hwm)
        server.start()
    except (OSError, ValueError) as exc:
        print(f"crystream serve: {exc}", file=sys.stderr)
        return 1
    print(f"serving {args.data_format} frames ({args.mode.upper()}) on {server.endpoint}",
          flush=True)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
    while server.running and not stop.is_set():
        stop.wait(0.2)
    server.stop()
    elapsed = max((server.finished_at or time.monotonic()) - server.started_at, 1e-9)
    print(f"sent {server.sent} frames in {elapsed:.1f} s ({server.sent / elapsed:.1f} Hz)",
          flush=True)
    if server.error is not None:
        print(f"crystream serve: {server.error}", file=sys.stderr)
        return 1
    return 0
