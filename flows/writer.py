"""The ordered writer actor: one per run, the only place that touches the output stream.

Frames are tracked by the ingest actors when they arrive and delivered by their tasks when
done. Chunks go out in serial order: the writer keeps the tracked-but-unwritten frames in a
heap and writes the head as soon as it is delivered, each chunk whole and flushed before the
next. Rules (docs/differences.md, "flow"):
* gaps: serials nobody tracked are never waited for (ZeroMQ drops, ASAP::O id gaps);
* a frame whose processing failed is logged with its name, counted, and leaves no chunk;
* a frame delivered twice (a task recomputed after a worker died) is written once;
* the buffer is bounded because the ingest actors hold at most ``in_flight_limit`` frames.
For file lists the writer also hands out the list entries (``take``), so a dead ingest
actor's unfinished files can be handed out again (``requeue``).
"""

from __future__ import annotations

import heapq
import itertools
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

from flows.metrics import FlowMetrics, cell_parameters_of


@dataclass
class _Entry:
    conn: int
    lid: int
    serial: int
    filename: str
    event: str
    arrival: float
    msg: Any = None  # file-list message (for requeue)
    result: Any = None
    dropped: bool = False


def open_stream_writer(fh, config, detector, target):
    """crystream.stream.writer.StreamWriter over ``fh`` with the run's header fields."""
    from crystream.stream.writer import StreamWriter
    argv = config.command_line
    argv = argv.split() if isinstance(argv, str) else list(argv)
    return StreamWriter(fh, detector, target, argv, config.indexing_methods)


class Writer:
    """Dask actor writing chunks in serial order (see the module docstring)."""

    GAP_WAIT = 1.0  # seconds a ready chunk waits for a missing earlier serial

    def __init__(self, flow_id: str, config, n_connections: int) -> None:
        from flows.pipeline_task import load_detector, load_target
        self.flow_id = flow_id
        self.config = config
        self.limit = config.in_flight_limit
        self.n_connections = n_connections
        self.metrics = FlowMetrics()
        self._lock = threading.RLock()
        self._entries: dict[tuple[int, int], _Entry] = {}
        self._early: dict[tuple[int, int], Any] = {}  # delivered before tracked
        self._heap: list[tuple[int, int, _Entry]] = []
        self._orphans: dict[int, _Entry] = {}  # file serial -> entry of a lost connection
        self._seq = itertools.count()
        self._written_keys: set[tuple[int, int]] = set()
        self._written_by_conn: dict[int, list[int]] = {}
        self._failed_by_conn: dict[int, list[int]] = {}
        self._done_conns: set[int] = set()
        self._next_serial = getattr(config.input, "serial_start", 1) if config.input else 1
        self._stop = False
        self._closed = False
        self._last_serial: int | None = None
        self._gap_since: float | None = None
        self.errors: list[str] = []
        self._files = None
        self._requeued: list = []
        self._taken: dict[int, dict[int, Any]] = {}
        self._untracked: set[int] = set()  # file serials handed out, not yet tracked
        detector = self._detector = load_detector(config.geometry)
        target = load_target(config.cell)
        if config.output == "-":
            self._fh = os.fdopen(os.dup(sys.stdout.fileno()), "w")
        else:
            self._fh = open(config.output, "w")
        self._stream = open_stream_writer(self._fh, config, detector, target)
        self._stream.write_header()
        self._fh.flush()
        try:
            from distributed import get_client
            self._client = get_client()
        except ValueError:
            self._client = None
        self._publisher = threading.Thread(target=self._publish_loop, daemon=True,
                                           name="crystream-writer-publish")
        self._publisher.start()

    # ---------------------------------------------------------------- files
    def take(self, conn: int, n: int) -> tuple[list, bool]:
        """Up to ``n`` file-list entries for connection ``conn``; True when the list is done."""
        with self._lock:
            if self._files is None:
                from flows.sources import open_file_list
                self._files = iter(open_file_list(self.config, self._detector))
            out = []
            while len(out) < n and not self._stop and not self._limit_reached():
                if self._requeued:
                    msg = self._requeued.pop(0)
                else:
                    msg = next(self._files, None)
                    if msg is None:
                        break
                out.append(msg)
                self._taken.setdefault(conn, {})[msg.serial] = msg
                self._untracked.add(msg.serial)
                self.metrics.registered += 1
            exhausted = self._stop or self._limit_reached() or (
                len(out) < n and not self._requeued)
            return out, exhausted

    def requeue(self, conn: int) -> int:
        """A connection was lost with its worker: hand its unwritten files out again (they
        keep their place in the order) and count its streamed frames as failed."""
        with self._lock:
            taken = self._taken.pop(conn, {})
            self._untracked.difference_update(taken)  # they become orphans, in the heap
            for key, entry in list(self._entries.items()):
                if key[0] != conn:
                    continue
                del self._entries[key]
                if entry.msg is not None:  # a file: keep its place, wait for its new task
                    entry.result = None
                    self._orphans[entry.serial] = entry
                    continue
                entry.dropped = True  # streamed bytes died with the worker
                line = (f"crystream: frame {entry.filename} {entry.event} (serial "
                        f"{entry.serial}) lost with its worker")
                self.errors.append(line)
                print(line, file=sys.stderr, flush=True)
                self.metrics.frame_failed()
            for serial, msg in taken.items():
                if serial not in self._orphans:  # taken but never tracked
                    entry = _Entry(conn, -1, serial, msg.filename, msg.event, time.time(), msg)
                    self._orphans[serial] = entry
                    heapq.heappush(self._heap, (serial, next(self._seq), entry))
            again = sorted(taken.values(), key=lambda m: m.serial)
            self.metrics.registered -= len(again)
            self._requeued = sorted(self._requeued + again, key=lambda m: m.serial)
            self._done_conns.add(conn)
            self._flush_head()
            return len(again)

    def _limit_reached(self) -> bool:
        lim = self.config.frames_limit
        return lim is not None and self.metrics.registered >= lim

    # ---------------------------------------------------------------- tracking
    def track(self, conn: int, items: list, stats: dict | None = None,
              results: list | None = None) -> dict:
        """Register arriving frames ``(lid, serial|None, filename, event, arrival)`` and take
        the FrameResults ``(lid, result)`` of finished ones.

        Returns, for this connection, the frame ids written or failed since the last call and
        whether it should stop pulling.
        """
        with self._lock:
            for lid, serial, filename, event, arrival in items:
                key = (conn, lid)
                if key in self._entries or key in self._written_keys:
                    continue
                msg = None
                if serial is None:
                    serial = self._next_serial
                    self._next_serial += 1
                    if event is None:
                        event = f"//{serial}"
                    self.metrics.registered += 1
                elif self._files is not None:
                    msg = self._taken.get(conn, {}).get(serial)
                    self._untracked.discard(serial)
                    orphan = self._orphans.pop(serial, None)
                    if orphan is not None:  # a lost connection's file, taken again
                        orphan.conn, orphan.lid, orphan.msg = conn, lid, msg
                        orphan.result = self._early.pop(key, None)
                        self._entries[key] = orphan
                        continue
                else:
                    self.metrics.registered += 1
                entry = _Entry(conn, lid, serial, filename, event, arrival, msg)
                self._entries[key] = entry
                heapq.heappush(self._heap, (serial, next(self._seq), entry))
                early = self._early.pop(key, None)
                if early is not None:
                    entry.result = early
            if stats is not None:
                self.metrics.ingest[conn] = stats
            for lid, result in results or ():
                self._take_result(conn, lid, result)
            self._flush_head()
            return self._report(conn)

    def poll(self, conn: int, stats: dict | None = None) -> dict:
        return self.track(conn, [], stats)

    def _report(self, conn: int) -> dict:
        written = self._written_by_conn.pop(conn, [])
        failed = self._failed_by_conn.pop(conn, [])
        stop = self._stop or (self._limit_reached() and self.config.source != "files")
        return {"written": written, "failed": failed, "stop": stop}

    def deliver(self, conn: int, lid: int, result) -> bool:
        """A frame's FrameResult arrives; write whatever is now in order."""
        with self._lock:
            fresh = self._take_result(conn, lid, result)
            self._flush_head()
            return fresh

    def _take_result(self, conn: int, lid: int, result) -> bool:
        key = (conn, lid)
        if key in self._written_keys:
            return False  # recomputed after a worker died: already written
        entry = self._entries.get(key)
        if entry is None:
            self._early[key] = result
            return True
        if entry.result is not None:
            return False
        entry.result = result
        return True

    def add_connection(self) -> int:
        """A replacement ingest actor joins (after a worker was lost)."""
        with self._lock:
            self.n_connections += 1
            return self.n_connections

    def connection_done(self, conn: int, stats: dict | None = None) -> None:
        with self._lock:
            self._done_conns.add(conn)
            # files it took but never tracked (it stopped on an error) are gaps now
            self._untracked.difference_update(self._taken.get(conn, {}))
            if stats is not None:
                self.metrics.ingest[conn] = stats

    # ---------------------------------------------------------------- writing
    def _flush_head(self, force: bool = False) -> None:
        while self._heap:
            entry = self._heap[0][2]
            if entry.dropped:
                heapq.heappop(self._heap)
                continue
            if entry.result is None:
                return
            if not force and self._gap_before(entry):
                return
            self._gap_since = None
            heapq.heappop(self._heap)
            self._entries.pop((entry.conn, entry.lid), None)
            self._write(entry)

    def _gap_before(self, entry: _Entry) -> bool:
        """Hold a ready chunk while an earlier serial may still arrive (another ASAP::O
        consumer's message): at most GAP_WAIT seconds, and never with the buffer full.
        A file handed out by ``take`` but not yet tracked by its connection is no gap: it
        is always waited for (its track call is on its way, or requeue makes it an orphan).
        """
        if self._untracked and min(self._untracked) < entry.serial:
            return True
        if self._last_serial is None or entry.serial <= self._last_serial + 1:
            return False
        if len(self._entries) >= self.limit:
            return False
        now = time.time()
        if self._gap_since is None:
            self._gap_since = now
        return now - self._gap_since < self.GAP_WAIT

    def _write(self, entry: _Entry) -> None:
        result = entry.result
        key = (entry.conn, entry.lid)
        self._written_keys.add(key)
        self.metrics.task_seconds += max(0.0, result.finished - result.started)
        self._last_serial = entry.serial
        if entry.msg is not None:
            self._taken.get(entry.conn, {}).pop(entry.serial, None)
        if result.chunk is None:
            line = (f"crystream: frame {entry.filename} {entry.event} (serial {entry.serial}) "
                    f"failed: {result.error}")
            self.errors.append(line)
            if self.config.log_errors:
                print(line, file=sys.stderr, flush=True)
            self.metrics.frame_failed()
            self._failed_by_conn.setdefault(entry.conn, []).append(entry.lid)
            return
        chunk = result.chunk
        chunk.serial, chunk.filename, chunk.event = entry.serial, entry.filename, entry.event
        self._stream.write_chunk(chunk)
        self._fh.flush()
        cells = [cell_parameters_of(c) for c in chunk.crystals]
        self.metrics.frame_written(chunk.hit, chunk.num_peaks, cells,
                                   time.time() - entry.arrival)
        self._written_by_conn.setdefault(entry.conn, []).append(entry.lid)

    # ---------------------------------------------------------------- state
    def in_flight(self) -> int:
        return len(self._entries) + len(self._orphans)

    def snapshot(self, history: bool = True) -> dict:
        with self._lock:
            snap = self.metrics.snapshot(self.in_flight(), self._closed, with_history=history)
            snap["errors"] = self.errors[-20:]
            snap["ingest_stats"] = list(self.metrics.ingest.values())
            snap["connections_done"] = len(self._done_conns)
            snap["connections"] = self.n_connections
            snap["flow_id"] = self.flow_id
            return snap

    def all_done(self) -> bool:
        """Every connection finished and nothing left to write."""
        with self._lock:
            if len(self._done_conns) < self.n_connections:
                return False
            self._flush_head(force=True)  # no earlier serial can arrive any more
            return not self._entries and not self._orphans and not self._requeued

    def request_stop(self) -> None:
        with self._lock:
            self._stop = True

    def close(self) -> dict:
        """Close the stream (frames still pending are dropped, and counted as failed)."""
        with self._lock:
            if not self._closed:
                self._flush_head(force=True)
                for entry in list(self._entries.values()) + list(self._orphans.values()):
                    self.errors.append(f"crystream: frame {entry.filename} {entry.event} "
                                       f"(serial {entry.serial}) not finished at the end")
                    self.metrics.frame_failed()
                self._entries.clear()
                self._orphans.clear()
                self._heap.clear()
                self._fh.flush()
                self._fh.close()
                self._closed = True
                self.metrics.sample(0)
            snap = self.snapshot()
            self._publish(snap)
            return snap

    def _publish(self, snap: dict) -> None:
        try:
            if self._client is not None:
                self._client.set_metadata(["crystream", self.flow_id], snap)
        except Exception:  # noqa: BLE001 - the dashboard is optional
            pass

    def _publish_loop(self) -> None:
        while not self._closed:
            time.sleep(0.5)
            if self._closed:
                break
            with self._lock:
                self._flush_head()  # chunks held for a gap whose wait is over
                self.metrics.sample(self.in_flight())
            self._publish(self.snapshot())
