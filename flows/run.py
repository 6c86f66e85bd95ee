"""Starting a flow: cluster, writer, per-worker state, ingest actors; and the CLI's run.

``start_flow(config)`` returns a FlowHandle at once (notebooks); ``run_flow(config)`` runs to
the end with the progress line, SIGINT/SIGTERM handling and indexamajig's summary, and returns
the exit status.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import uuid

from flows.config import FlowConfig
from flows.handle import FlowHandle


def _check_inputs(config: FlowConfig) -> None:
    """Fail early, in the client, with the parsers' file:line messages."""
    from flows.pipeline_task import load_detector, load_target
    load_detector(config.geometry)
    load_target(config.cell)


async def _start_writer_worker(address: str, name: str):
    from distributed import Worker
    return await Worker(address, nthreads=1, name=name, dashboard=False,
                        resources={"crystream-writer": 1})


def start_flow(config: FlowConfig, cluster=None) -> FlowHandle:
    """Start processing ``config``'s input on a new (or the given) cluster; returns at once.

    The writer actor runs in this process (on a one-thread worker of its own), so ``-o -`` and
    relative paths mean what they mean here, and losing a worker never loses the stream.
    """
    from flows import dashboard
    from flows.ingest import Ingest
    from flows.pipeline_task import FlowPlugin
    from flows.writer import Writer

    if config.output not in ("-", None):
        config = config.with_(output=os.path.abspath(config.output))
    config = config.with_(geometry=os.path.abspath(config.geometry),
                          cell=os.path.abspath(config.cell) if config.cell else None)
    _check_inputs(config)
    dashboard.register_page()
    if cluster is None:
        from cluster import get_cluster
        cluster = get_cluster(config.workers, config.scheduler, config.jobqueue,
                              config.dashboard_address, local_directory=config.temp_dir)
    client = cluster.client
    flow_id = "crystream-" + uuid.uuid4().hex[:8]
    try:
        client.register_plugin(FlowPlugin(flow_id, config))
        workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
        writer_worker = client.sync(_start_writer_worker, client.scheduler.address,
                                    f"crystream-writer-{flow_id}")
        n_conn = config.n_connections(len(workers))
        writer = client.submit(Writer, flow_id, config, n_conn, actor=True,
                               workers=[writer_worker.address],
                               allow_other_workers=False).result()
        per_conn = max(1, config.in_flight_limit // n_conn)

        def start_ingest(conn: int, address: str):
            fut = client.submit(Ingest, flow_id, config, conn, writer, per_conn, actor=True,
                                workers=[address], allow_other_workers=False,
                                key=f"{flow_id}-ingest-{conn}")
            actor = fut.result()
            actor.start().result()
            return actor, fut, address

        ingests = {conn: start_ingest(conn, workers[conn % len(workers)])
                   for conn in range(n_conn)}
    except BaseException:
        cluster.close()
        raise
    return FlowHandle(flow_id, config, cluster, writer_worker, writer, ingests, start_ingest)


def run_flow(config: FlowConfig) -> int:
    """Run to the end of the input (or SIGINT/SIGTERM); print the summary; exit status.

    0: the input ended or the run was stopped cleanly; 1: the run could not start (a one-line
    message names the file and line, or the option); 5: no frame processed (as indexamajig).
    """
    from flows.summary import final_summary
    try:
        handle = start_flow(config)
    except (ValueError, OSError) as exc:  # geometry, cell, YAML, address
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"crystream: {text}", file=sys.stderr, flush=True)
        return 1
    if handle.dashboard_link:
        print(f"crystream: dashboard at {handle.dashboard_link}", file=sys.stderr, flush=True)
    interrupted = threading.Event()

    def on_signal(signum, frame):
        if interrupted.is_set():  # second signal: give up on frames in flight
            os._exit(130)
        interrupted.set()
        print(f"\ncrystream: {signal.Signals(signum).name}: stopping; finishing the frames "
              "in flight (again to quit at once)", file=sys.stderr, flush=True)
        threading.Thread(target=handle.stop, daemon=True).start()

    old = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            old[sig] = signal.signal(sig, on_signal)
    try:
        while not handle.finished:
            handle._finished.wait(0.2)
        summary = handle.counters
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)
        handle.close()
    print(final_summary(summary), file=sys.stderr, flush=True)
    return 0 if summary.get("processed", 0) > 0 else 5
