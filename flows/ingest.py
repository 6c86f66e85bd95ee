"""Ingest actors: one per source connection, each pulling frames and submitting their tasks.

An actor lives on a worker and runs a pull thread. Each frame becomes one task
(pipeline_task.inbox_task / frame_task) that decodes and processes it. Bytes received
here stay here: the task runs on this worker and takes the message from a process-local slot
(nothing goes through the scheduler or the client), and hands its result straight to this
actor through a process-local inbox; the actor sends results to the writer actor in batches
with the arrival records. A SUB actor also sends frames to other workers, as a task argument
to the least busy worker, and gathers those results through Dask.
File-list actors take paths from the writer (which holds the list) in batches, so the list
survives the loss of a worker. At most ``limit`` frames are in flight per actor: REQ,
ASAP::O and files wait; SUB drops the frame and counts it.
"""

from __future__ import annotations

import itertools
import queue
import sys
import threading
import time
from typing import Any

from flows.pipeline_task import INBOXES, LOCAL_MESSAGES, FrameResult, frame_task, inbox_task


class _Collected:
    """Stands in for a task future whose result has been taken (until the frame is written)."""

    status = "finished"

    def __init__(self, key: str, target: str) -> None:
        self.key = key
        self._crystream_target = target

    @staticmethod
    def done() -> bool:
        return True


class Ingest:
    """Dask actor owning one source connection (see the module docstring)."""

    def __init__(self, flow_id: str, config, conn: int, writer, limit: int) -> None:
        from distributed import get_client, get_worker
        self.flow_id = flow_id
        self.config = config
        self.conn = conn
        self.writer = writer
        self.limit = max(1, limit)
        self.worker = get_worker()
        self.address = self.worker.address
        self.client = get_client()
        self.received = 0
        self.dropped = 0
        self.submitted = 0
        self.written = 0
        self.failed = 0
        self.error: str | None = None
        self.done = False
        self.last_arrival = time.time()
        self._stop = threading.Event()
        self._lid = itertools.count()
        self._futures: dict[int, Any] = {}
        self._messages: dict[int, Any] = {}  # kept until written (ASAP::O acks)
        self._pending: list[tuple] = []
        self._call = None
        self._last_call = 0.0
        self._collected: set[int] = set()  # finished tasks whose result went to the writer
        self._submitted_at: dict[int, float] = {}
        self._attempts: dict[int, int] = {}
        self._results: list[tuple[int, Any]] = []
        # tasks on this worker hand their results over through this process-local inbox
        self._inbox_name = f"{flow_id}-c{conn}"
        self._inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._key_lid: dict[str, int] = {}  # frame key -> frame id, results by the inbox
        self._local: set[int] = set()  # frames whose result comes by the inbox
        self._unreleased: dict[int, Any] = {}  # collected from the inbox, future not done
        self._writer_stop = False
        self._source = None
        self._workers: list[str] = [self.address]
        self._workers_checked = 0.0
        self._lost_checked = 0.0
        self._thread = threading.Thread(target=self._run, daemon=True,
                                         name=f"crystream-ingest-{conn}")

    # ---------------------------------------------------------------- control
    def start(self) -> str:
        INBOXES[self._inbox_name] = self._inbox
        self._thread.start()
        return self.address

    def stop(self) -> None:
        """Stop pulling; frames in flight are still finished and written."""
        self._stop.set()

    def stats(self) -> dict:
        return {"conn": self.conn, "worker": self.address, "received": self.received,
                "dropped": self.dropped, "submitted": self.submitted,
                "written": self.written, "failed": self.failed,
                "in_flight": len(self._futures), "done": self.done, "error": self.error,
                "idle": time.time() - self.last_arrival}

    # ---------------------------------------------------------------- loop
    def _run(self) -> None:
        try:
            if self.config.source == "files":
                self._run_files()
            else:
                self._run_stream()
            deadline = time.time() + 600  # frames in flight get this long to be written
            while self._futures and time.time() < deadline:
                self._service(block=True)
        except Exception as exc:  # noqa: BLE001 - reported to the run, which goes on
            self.error = f"{type(exc).__name__}: {exc}"
            print(f"crystream: input connection {self.conn} on {self.address} stopped: "
                  f"{self.error}", file=sys.stderr, flush=True)
        finally:
            self._close_source()
            for fut in self._unreleased.values():
                fut.release()
            self._unreleased.clear()
            INBOXES.pop(self._inbox_name, None)
            self.done = True
            try:
                self.writer.connection_done(self.conn, self.stats()).result()
            except Exception:  # noqa: BLE001
                pass

    def _run_files(self) -> None:
        """Take list entries from the writer in batches (one round trip and one scheduler
        message per batch, not per frame), as soon as a quarter of the room is free or the
        worker is about to run dry."""
        exhausted = False
        batch = max(1, self.limit // 4)
        while not exhausted and not self._stop.is_set() and not self._writer_stop:
            room = self.limit - len(self._futures)
            queued = len(self._futures) - len(self._collected)
            if room <= 0 or (room < batch and queued > 1):
                self._service(block=True)
                continue
            msgs, exhausted = self.writer.take(self.conn, room).result()
            if msgs:
                self.received += len(msgs)
                self.last_arrival = time.time()
                self._submit_files(msgs, self.last_arrival)
            self._service()

    def _run_stream(self) -> None:
        from flows.sources import messages, open_stream_source
        self._source = open_stream_source(self.config, self.conn)
        sub = self.config.source == "zmq_sub"
        for msg in messages(self._source, lambda: self._stop.is_set() or self._writer_stop):
            if self._stop.is_set() or self._writer_stop:
                break
            if msg is None:  # a receive timeout, if the source reports them
                self._service()
                continue
            now = time.time()
            self.received += 1
            self.last_arrival = now
            if sub:
                self._service()
                if len(self._futures) >= self.limit:
                    self.dropped += 1
                    continue
            else:
                while len(self._futures) >= self.limit and not self._stop.is_set():
                    self._service(block=True)
            # ZeroMQ frames get their serial from the writer, in arrival order
            self._submit(msg, now, serial=msg.serial if self.config.source == "asapo" else None)
            self._service()

    # ---------------------------------------------------------------- submitting
    def _target(self, avoid: str | None = None) -> str:
        """SUB spreads frames over all workers (the least busy first); others stay local."""
        if self.config.source != "zmq_sub":
            return self.address
        if time.time() - self._workers_checked > 1.0:
            self._refresh_workers()
        load: dict[str, int] = {a: 0 for a in self._workers}
        for fut in self._futures.values():
            addr = getattr(fut, "_crystream_target", None)
            if addr in load:
                load[addr] += 1
        choices = [a for a in self._workers if a != avoid] or self._workers
        return min(choices, key=lambda a: (load[a], a != self.address))

    def _refresh_workers(self) -> None:
        info = self.client.scheduler_info(n_workers=-1)["workers"]
        self._workers = [a for a, w in info.items()
                         if not str(w.get("name", "")).startswith("crystream-writer")
                         and w.get("status", "running") == "running"] or [self.address]
        self._workers_checked = time.time()

    TASK_FRAMES = 4  # file-list frames per task when several are waiting

    def _submit_files(self, msgs: list, arrival: float) -> None:
        """Submit file-list frames (paths, no bytes) to this worker with one client call,
        up to TASK_FRAMES consecutive frames per task: the scheduler and worker costs of a
        task are paid once per group, and each frame's result still comes back the moment
        it is ready (through the inbox)."""
        lids = [next(self._lid) for _ in msgs]
        keys = [f"{self.flow_id}-c{self.conn}-f{lid}" for lid in lids]
        now = time.time()
        step = self.TASK_FRAMES
        groups = [slice(i, i + step) for i in range(0, len(msgs), step)]
        task_keys = [keys[g.start] + (f"-{lids[g][-1]}" if len(lids[g]) > 1 else "")
                     for g in groups]
        n = len(groups)
        futs = self.client.map(inbox_task, [self.flow_id] * n, [self._inbox_name] * n,
                               [keys[g] for g in groups], [msgs[g] for g in groups],
                               key=task_keys, workers=[self.address],
                               allow_other_workers=False, pure=False)
        for g, fut in zip(groups, futs):
            fut._crystream_target = self.address
            for lid, key in zip(lids[g], keys[g]):
                self._key_lid[key] = lid
                self._local.add(lid)
                self._futures[lid] = fut
        for lid, msg in zip(lids, msgs):
            self._submitted_at[lid] = now
            self._messages[lid] = msg
            self._pending.append((lid, msg.serial, msg.filename, msg.event, arrival))
        self.submitted += len(msgs)

    def _submit(self, msg, arrival: float, serial: int | None = None,
                lid: int | None = None, avoid: str | None = None) -> None:
        new = lid is None
        lid = next(self._lid) if new else lid
        key = f"{self.flow_id}-c{self.conn}-f{lid}" + ("" if new else f"-r{time.time_ns()}")
        target = self._target(avoid)
        self._submitted_at[lid] = time.time()
        # strict placement: never on the writer's own worker; a SUB frame whose worker is
        # lost is submitted again elsewhere (_check_futures)
        if target == self.address:  # bytes stay here; the result comes back by the inbox
            if msg.payload is not None:
                LOCAL_MESSAGES[key] = msg
            fut = self.client.submit(inbox_task, self.flow_id, self._inbox_name, [key],
                                     [None if msg.payload is not None else msg], key=key,
                                     workers=[target], allow_other_workers=False, pure=False)
            self._key_lid[key] = lid
            self._local.add(lid)
        else:
            self._local.discard(lid)
            fut = self.client.submit(frame_task, self.flow_id, msg, key=key, workers=[target],
                                     allow_other_workers=False, pure=False)
        fut._crystream_target = target
        self._futures[lid] = fut
        self._messages[lid] = msg
        if not new:
            return
        self.submitted += 1
        self._pending.append((lid, serial, msg.filename,
                              None if serial is None else msg.event, arrival))

    # ---------------------------------------------------------------- writer traffic
    def _service(self, block: bool = False) -> None:
        """Send arrivals and finished frames' results to the writer (one call at a time, so
        order is kept) and take back which of ours were written or failed. Blocking waits for
        one of our tasks to finish, without polling."""
        if self._call is not None:
            if block and not self._call.done():
                try:
                    self._call.result(timeout=0.5)
                except Exception:  # noqa: BLE001 - a timeout; the writer's loss shows later
                    pass
            if not self._call.done():
                self._check_futures()
                return
            reply = self._call.result()
            self._call = None
            self._handle(reply)
        self._collect()
        idle_poll = False
        if block and not self._pending and not self._results:
            local = remote = False
            for lid, fut in self._futures.items():
                if lid in self._collected:
                    continue
                if lid in self._local:
                    local = True
                elif not fut.done():
                    remote = True
            if local or remote:
                try:  # a local result wakes us at once; remote ones are looked at often
                    self._take_inbox(self._inbox.get(timeout=0.02 if remote else 0.5))
                except queue.Empty:
                    pass
            else:
                # all finished, held by the writer until earlier serials (another
                # connection's) are written: ask again soon, the worker is idle meanwhile
                time.sleep(0.002)
                idle_poll = True
            self._check_futures()
            self._collect()
        now = time.time()
        if self._pending or self._results or idle_poll or now - self._last_call > 0.25:
            items, self._pending = self._pending, []
            results, self._results = self._results, []
            self._call = self.writer.track(self.conn, items, self.stats(), results)
            self._last_call = now

    def _take_inbox(self, item: tuple[str, Any]) -> None:
        """A result handed over by a task that ran in this process."""
        key, result = item
        lid = self._key_lid.pop(key, None)
        if lid is None or lid in self._collected or lid not in self._futures:
            return  # a cancelled or superseded attempt
        self._collected.add(lid)
        self._local.discard(lid)
        self._results.append((lid, result))
        fut = self._futures[lid]
        self._futures[lid] = _Collected(fut.key, fut._crystream_target)
        self._unreleased[lid] = fut  # released once Dask has seen it finish (idempotent)

    def _collect(self) -> None:
        """Results of our finished tasks, for the next writer call: from the inbox when the
        task ran here (or, for a task whose inbox was gone, this worker's memory), gathered
        from the other worker otherwise."""
        while True:
            try:
                self._take_inbox(self._inbox.get_nowait())
            except queue.Empty:
                break
        for lid, fut in list(self._unreleased.items()):
            if fut.done():
                del self._unreleased[lid]
                fut.release()
        remote = []
        for lid, fut in self._futures.items():
            if lid in self._collected or lid in self._local or not fut.done():
                continue
            if fut.status != "finished":
                continue  # errors: _check_futures
            try:
                result = self.worker.data[fut.key]
            except KeyError:
                remote.append((lid, fut))
                continue
            self._collected.add(lid)
            self._results.append((lid, result))
            self._release(lid)
        for lid, fut in remote:  # SUB frames processed on another worker
            try:
                result = fut.result(timeout=2)
            except Exception:  # noqa: BLE001 - its worker died meanwhile: _check_futures
                continue
            self._collected.add(lid)
            self._results.append((lid, result))
            self._release(lid)

    def _release(self, lid: int) -> None:
        """Let Dask forget a collected result; the frame stays in flight until written."""
        fut = self._futures[lid]
        self._futures[lid] = _Collected(fut.key, fut._crystream_target)
        fut.release()

    def _handle(self, reply: dict) -> None:
        for lid in reply["written"]:
            self._finish(lid, ok=True)
        for lid in reply["failed"]:
            self._finish(lid, ok=False)
        if reply["stop"]:
            self._writer_stop = True

    def _finish(self, lid: int, ok: bool) -> None:
        self._futures.pop(lid, None)
        self._local.discard(lid)  # its future (in _unreleased) is released once done
        self._collected.discard(lid)
        self._submitted_at.pop(lid, None)
        self._attempts.pop(lid, None)
        msg = self._messages.pop(lid, None)
        LOCAL_MESSAGES.pop(f"{self.flow_id}-c{self.conn}-f{lid}", None)
        if ok:
            self.written += 1
        else:
            self.failed += 1
        ack = getattr(self._source, "acknowledge", None) or getattr(self._source, "ack", None)
        if ack is not None and msg is not None:
            try:
                ack(msg)
            except Exception as exc:  # noqa: BLE001
                print(f"crystream: could not acknowledge {msg.label}: {exc}",
                      file=sys.stderr, flush=True)

    STALL = 20.0  # seconds a task sent to another worker may stay pending before a resend
    ATTEMPTS = 3

    def _check_futures(self) -> None:
        """SUB frames whose worker left, whose result was lost with it, or whose task stays
        pending on another worker are sent again (at most ATTEMPTS times); tasks that died
        outside process_frame (e.g. KilledWorker) are reported as failed."""
        now = time.time()
        if now - self._lost_checked < 0.5:
            return
        self._lost_checked = now
        sub = self.config.source == "zmq_sub"
        alive = set(self._workers)
        if sub:
            self._refresh_workers()
            alive = set(self._workers)
        for lid, fut in list(self._futures.items()):
            if lid in self._collected:
                continue
            status, target = fut.status, fut._crystream_target
            again = sub and self._attempts.get(lid, 1) < self.ATTEMPTS and (
                status in ("lost", "cancelled") or target not in alive
                or (status == "pending" and target != self.address
                    and now - self._submitted_at.get(lid, now) > self.STALL))
            if again:
                self._attempts[lid] = self._attempts.get(lid, 1) + 1
                self.client.cancel(fut)
                self._submit(self._messages[lid], now, lid=lid, avoid=target)
            elif status in ("error", "cancelled", "lost"):
                try:
                    reason = repr(fut.exception(timeout=1))
                except Exception as exc:  # noqa: BLE001
                    reason = f"task {status}: {exc}"
                self._collected.add(lid)
                self._results.append((lid, FrameResult(None, reason, f"frame {lid}", now, now)))

    def _close_source(self) -> None:
        close = getattr(self._source, "close", None)
        if close is not None:
            try:
                close()
            except Exception:  # noqa: BLE001
                pass
