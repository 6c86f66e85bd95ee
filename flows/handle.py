"""FlowHandle: a running flow seen from Python (notebooks, the CLI): counters, wait, stop.

A supervisor thread reads the writer's counters, keeps the progress line, notices ingest
actors whose worker was lost (their unfinished files are handed out again, their stream
frames counted as failed) and ends the run when every connection is done and written.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from flows.progress import ProgressDisplay


class FlowHandle:
    """A started flow. ``counters`` is the latest metrics snapshot (a dict)."""

    def __init__(self, flow_id: str, config, cluster, writer_worker, writer,
                 ingests: dict[int, tuple[Any, Any, str]], start_ingest) -> None:
        self.flow_id = flow_id
        self.config = config
        self.cluster = cluster
        self.client = cluster.client
        self._writer_worker = writer_worker
        self.writer = writer
        self._ingests = ingests  # conn -> (actor, actor future, worker address)
        self._start_ingest = start_ingest
        self._next_conn = max(ingests) + 1 if ingests else 0
        self._snapshot: dict = {}
        self._summary: dict | None = None
        self._stop_requested = threading.Event()
        self._finished = threading.Event()
        self._lock = threading.Lock()
        self.progress = ProgressDisplay() if config.progress else None
        self._thread = threading.Thread(target=self._supervise, daemon=True,
                                        name="crystream-supervisor")
        self._thread.start()

    # ---------------------------------------------------------------- public
    @property
    def counters(self) -> dict:
        """The latest counters (frames, hits, indexed, failed, dropped, rates, latency...)."""
        return dict(self._summary or self._snapshot)

    @property
    def dashboard_link(self) -> str | None:
        link = self.cluster.dashboard_link
        if link is None:
            return None
        return link.rsplit("/", 1)[0] + "/crystream" if link.endswith("/status") else link

    def processing_workers(self) -> list[str]:
        """Addresses of the workers that process frames (not the writer's own worker)."""
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        return sorted(a for a in info if a != self._writer_worker.address)

    @property
    def finished(self) -> bool:
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> dict:
        """Block until the input ends (or stop() finishes); the final counters."""
        if not self._finished.wait(timeout):
            raise TimeoutError(f"flow {self.flow_id} still running after {timeout} s")
        return self.counters

    def stop(self, timeout: float | None = 60.0) -> dict:
        """Stop pulling input, finish the frames in flight, close the stream; final counters."""
        self._stop_requested.set()
        self._finished.wait(timeout)
        return self.counters

    def close(self) -> None:
        """Stop if needed and shut the cluster down (if the flow started it)."""
        if not self._finished.is_set():
            self.stop()
        self._teardown()

    def __enter__(self) -> "FlowHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------- supervisor
    def _supervise(self) -> None:
        last_check = 0.0
        stopping_since = None
        try:
            while True:
                time.sleep(0.5)
                try:
                    self._snapshot = self.writer.snapshot(False).result(timeout=10)
                except Exception:  # noqa: BLE001 - the writer is busy; try again
                    continue
                if self.progress is not None:
                    self.progress.update(self._snapshot)
                now = time.time()
                if now - last_check > 1.0:
                    last_check = now
                    self._check_ingests()
                if self._stop_requested.is_set() and stopping_since is None:
                    stopping_since = now
                    self._stop_ingests()
                if self._no_data_timeout():
                    self._stop_requested.set()
                if self.writer.all_done().result(timeout=10):
                    break
                if stopping_since is not None and now - stopping_since > 120:
                    print("crystream: frames still in flight after 120 s; closing anyway",
                          file=sys.stderr, flush=True)
                    break
        finally:
            try:
                self._summary = self.writer.close().result(timeout=60)
            except Exception as exc:  # noqa: BLE001
                print(f"crystream: closing the stream failed: {exc}", file=sys.stderr)
                self._summary = self._snapshot
            if self.progress is not None:
                self.progress.update(self._summary)
                self.progress.end()
            self._finished.set()

    def _stop_ingests(self) -> None:
        try:
            self.writer.request_stop().result(timeout=10)
        except Exception:  # noqa: BLE001
            pass
        for actor, _, _ in list(self._ingests.values()):
            try:
                actor.stop().result(timeout=5)
            except Exception:  # noqa: BLE001 - its worker is gone
                pass

    def _no_data_timeout(self) -> bool:
        """Streams end after --no-data-timeout seconds without a frame on any connection."""
        if self.config.source == "files" or self.config.input is None:
            return False
        limit = getattr(self.config.input, "no_data_timeout", None)
        if not limit or limit <= 0:
            return False
        stats = self._snapshot.get("ingest_stats") or []
        idle = [s.get("idle", 0.0) for s in stats]
        return bool(idle) and min(idle) > limit and not self._snapshot.get("in_flight")

    def _check_ingests(self) -> None:
        """Ingest actors whose worker left the cluster: recover their frames."""
        try:
            alive = set(self.client.scheduler_info(n_workers=-1)["workers"])
        except Exception:  # noqa: BLE001
            return
        for conn, (actor, fut, address) in list(self._ingests.items()):
            if address in alive:
                continue
            del self._ingests[conn]
            try:
                self.client.cancel(fut)
            except Exception:  # noqa: BLE001
                pass
            again = self.writer.requeue(conn).result(timeout=30)
            print(f"crystream: worker {address} was lost; input connection {conn} closed"
                  + (f", {again} files handed out again" if again else ""),
                  file=sys.stderr, flush=True)
            if self.config.source == "files" and not self._stop_requested.is_set():
                workers = [a for a in alive if a != self._writer_worker.address]
                if workers:
                    self._add_ingest(workers[self._next_conn % len(workers)])
        self._cover_new_workers(alive)

    def _add_ingest(self, address: str) -> None:
        new = self._next_conn
        self._next_conn += 1
        self.writer.add_connection().result(timeout=10)
        self._ingests[new] = self._start_ingest(new, address)

    def _cover_new_workers(self, alive: set[str]) -> None:
        """Workers that joined (adaptive jobqueue, a restarted nanny) get a connection of
        their own, as at the start (not for SUB, whose single actor already uses them)."""
        if (self.config.source == "zmq_sub" or self.config.connections
                or self._stop_requested.is_set()):
            return
        covered = {address for _, _, address in self._ingests.values()}
        for address in sorted(alive - covered - {self._writer_worker.address}):
            try:
                self._add_ingest(address)
            except Exception as exc:  # noqa: BLE001 - the worker left again
                print(f"crystream: no input connection on new worker {address}: {exc}",
                      file=sys.stderr, flush=True)

    def _teardown(self) -> None:
        with self._lock:
            if getattr(self, "_torn_down", False):
                return
            self._torn_down = True
        for actor, fut, _ in self._ingests.values():
            try:
                self.client.cancel(fut)
            except Exception:  # noqa: BLE001
                pass
        try:
            self.client.unregister_worker_plugin(f"crystream-{self.flow_id}")
        except Exception:  # noqa: BLE001
            pass
        try:
            self.client.sync(self._writer_worker.close)
        except Exception:  # noqa: BLE001
            pass
        self.cluster.close()
