"""Flow throughput and overhead: frames/s for 1 and 2 workers, and the flow's cost per frame
against calling decode + process_frame directly in one process.

    python benchmarks/bench_flow.py [--repeat 20] [--pipeline full|peaks]

Input: the 12 sample frames (tests/data/samples) listed ``--repeat`` times, as a file list
(each task reads its HDF5 file) or over ZeroMQ REQ (--source zmq_req: msgpack payloads).
The flow's rate is measured between the first and the last written chunk (cluster start-up
and numba compilation excluded).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

from distributed import get_task_stream

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def pipeline(kind: str):
    from crystream.indexing import IndexingOptions
    from crystream.integration import IntegrationOptions
    from crystream.peaks.options import PeakSearchOptions
    from crystream.pipeline import PipelineConfig
    peaks = PeakSearchOptions(peaks="peakfinder8", threshold=6, min_snr=4, min_pix_count=2,
                              max_pix_count=50, local_bg_radius=3, min_peaks=10,
                              peak_radius=(3, 4, 5))
    if kind == "peaks":
        return PipelineConfig(peaks=peaks, indexing=IndexingOptions(indexing="none"))
    return PipelineConfig(peaks=peaks, indexing=IndexingOptions(),
                          integration=IntegrationOptions(int_radius=(3, 4, 5)))


def direct(files, geom, cell, pipe, n) -> float:
    """Seconds per frame for decode + process_frame in this process (after a warm-up)."""
    from crystream.cellfile import load_cell
    from crystream.geometry.parser import load_geometry
    from crystream.pipeline import process_frame
    from readers.decode import decode_message
    from readers.message import RawMessage
    from readers.options import InputOptions
    det, target, opts = load_geometry(geom), load_cell(cell), InputOptions()
    msgs = [RawMessage(serial=i + 1, filename=f, path=f) for i, f in enumerate(files)]
    for m in msgs:  # warm-up: compile kernels, fill caches
        process_frame(decode_message(m, det, opts), det, target, pipe)
    t, c = time.perf_counter(), time.process_time()
    for i in range(n):
        m = msgs[i % len(msgs)]
        process_frame(decode_message(m, det, opts), det, target, pipe)
    return (time.perf_counter() - t) / n, (time.process_time() - c) / n


def _cpu() -> float:
    """CPU seconds (user + system) this process has used."""
    t = os.times()
    return t.user + t.system


def flow_rate(files, geom, cell, pipe, workers, repeat, tmp) -> tuple[float, dict]:
    """Frames per second through the flow (first to last written chunk)."""
    from flows.config import FlowConfig
    from flows.run import start_flow
    from readers.options import InputOptions
    lst = os.path.join(tmp, "files.lst")
    with open(lst, "w") as fh:
        fh.write("".join(f"{f}\n" for f in files * repeat))
    cfg = FlowConfig(source="files", geometry=geom, cell=cell, input=InputOptions(input=lst),
                     output=os.path.join(tmp, f"bench{workers}.stream"), pipeline=pipe,
                     workers=workers, dashboard_address=None, progress=False)
    with start_flow(cfg) as flow:
        # warm every worker (numba cache load, geometry) before timing
        workers_ = flow.processing_workers()
        flow.client.run(_warm, geom, cell, pipe, files[0], workers=workers_)
        cpu0 = sum(flow.client.run(_cpu, workers=workers_).values())
        client0 = _cpu()
        done0 = flow.counters.get("processed", 0)
        first = None
        with get_task_stream(flow.client) as stream:
            while not flow.finished:
                c = flow.counters
                if first is None and c.get("processed", 0) >= 1:
                    first = (time.perf_counter(), c["processed"])
                time.sleep(0.01)
        end = time.perf_counter()
        final = flow.counters
        frames = final["processed"] - done0
        final["worker_cpu"] = (sum(flow.client.run(_cpu, workers=workers_).values())
                               - cpu0) / frames
        final["client_cpu"] = (_cpu() - client0) / frames
        final["gaps"] = _gaps(stream.data)
    n = final["processed"] - first[1]
    final["wall"] = end - first[0]
    return n / (end - first[0]), final


def _gaps(records) -> list[float]:
    """Idle time of each worker between one frame task and the next (seconds); a file-list
    task holds up to Ingest.TASK_FRAMES frames, so this is per task, not per frame."""
    by_worker: dict[str, list[tuple[float, float]]] = {}
    for r in records:
        for ss in r["startstops"]:
            if ss["action"] == "compute" and "-f" in str(r["key"]):
                by_worker.setdefault(r["worker"], []).append((ss["start"], ss["stop"]))
    gaps = []
    for spans in by_worker.values():
        spans.sort()
        gaps += [max(0.0, b[0] - a[1]) for a, b in zip(spans[5:], spans[6:])]
    return gaps


def _warm(geom, cell, pipe, path):
    from crystream.cellfile import load_cell
    from crystream.geometry.parser import load_geometry
    from crystream.pipeline import process_frame
    from readers.decode import decode_message
    from readers.message import RawMessage
    from readers.options import InputOptions
    det = load_geometry(geom)
    process_frame(decode_message(RawMessage(serial=1, filename=path, path=path), det,
                                 InputOptions()), det, load_cell(cell), pipe)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--pipeline", choices=("full", "peaks"), default="full")
    args = ap.parse_args()
    data = os.path.join(ROOT, "tests", "data", "samples")
    files = [os.path.join(data, f"sample_{i:02d}.h5") for i in range(12)]
    geom, cell = os.path.join(data, "sample.geom"), os.path.join(data, "sample.cell")
    pipe = pipeline(args.pipeline)
    t_direct, cpu_direct = direct(files, geom, cell, pipe, 12 * 5)
    print(f"direct decode+process_frame: {t_direct * 1e3:.2f} ms/frame wall, "
          f"{cpu_direct * 1e3:.2f} ms CPU ({1 / t_direct:.1f} frames/s, one core)")
    with tempfile.TemporaryDirectory() as tmp:
        rates = {}
        for w in (1, 2):
            rate, final = flow_rate(files, geom, cell, pipe, w, args.repeat, tmp)
            rates[w] = rate
            gaps = final["gaps"]
            idle = sum(gaps) / final["processed"]
            print(f"  worker idle between frame tasks: median {statistics.median(gaps) * 1e3:.2f}"
                  f" ms, mean {statistics.mean(gaps) * 1e3:.2f} ms per task, "
                  f"{idle * 1e3:.2f} ms per frame")
            print(f"  CPU per frame: workers {final['worker_cpu'] * 1e3:.2f} ms, client "
                  f"(scheduler, writer) {final['client_cpu'] * 1e3:.2f} ms; flow CPU "
                  f"overhead {(final['worker_cpu'] + final['client_cpu'] - cpu_direct) * 1e3:.2f}"
                  f" ms/frame; mean task wall "
                  f"{final['task_seconds'] / final['processed'] * 1e3:.1f} ms")
            print(f"flow, {w} worker(s): {rate:.1f} frames/s "
                  f"({final['processed']} frames, {final['failed']} failed, latency median "
                  f"{final['latency_median'] * 1e3:.0f} ms)")
    overhead = 1 / rates[1] - t_direct
    print(f"flow overhead per frame (1 worker): {overhead * 1e3:.2f} ms")
    print(f"scaling 1 -> 2 workers: {rates[2] / rates[1]:.2f}x "
          f"({rates[2] / (2 * rates[1]) * 100:.0f}% of ideal)")


if __name__ == "__main__":
    main()
