"""The per-frame Dask task (decode -> peaks -> index -> integrate) and per-worker state.

Per-worker state (parsed geometry, target cell, stage options) is built once per worker by a
WorkerPlugin and looked up by flow id; tasks carry only the flow id and the raw message (or,
for bytes received on the same worker, the key of a process-local slot), so nothing big
travels through the scheduler.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from crystream.chunk import Chunk
from crystream.cellfile import load_cell
from crystream.geometry.parser import load_geometry
from crystream.pipeline import PipelineConfig, process_frame
from readers.decode import decode_message

# Messages received by an ingest actor in this process, waiting for their task (key -> msg).
LOCAL_MESSAGES: dict[str, Any] = {}
# Ingest actors' inboxes in this process (name -> queue of (task key, FrameResult)): a task
# running next to its ingest actor hands the result over directly, so the actor needs no
# scheduler notification or wait() per frame and no result sits in the worker's memory.
INBOXES: dict[str, "queue.SimpleQueue"] = {}
_STATES: dict[str, "WorkerState"] = {}
_CONFIGS: dict[str, Any] = {}
_LOCK = threading.Lock()


def load_detector(path: str):
    """Parse the geometry file (GeometryError names file:line)."""
    return load_geometry(path)


def load_target(path: str | None):
    """The target cell from -p, or None."""
    return load_cell(path) if path else None


@dataclass
class WorkerState:
    """What every frame on this worker needs, built once."""

    config: Any  # FlowConfig
    detector: Any
    target: Any
    pipeline: PipelineConfig
    decode: Any  # readers.decode.decode_message


def _build_state(config) -> WorkerState:
    detector = load_detector(config.geometry)
    target = load_target(config.cell)
    return WorkerState(config, detector, target, config.pipeline or PipelineConfig(),
                       decode_message)


def worker_state(flow_id: str) -> WorkerState:
    """This process's state for ``flow_id`` (built on first use)."""
    state = _STATES.get(flow_id)
    if state is None:
        with _LOCK:
            state = _STATES.get(flow_id)
            if state is None:
                if flow_id not in _CONFIGS:
                    raise RuntimeError(f"flow {flow_id} is not registered on this worker")
                state = _STATES[flow_id] = _build_state(_CONFIGS[flow_id])
    return state


def register_flow(flow_id: str, config) -> None:
    """Make ``config`` known in this process (the plugin does it on every worker)."""
    _CONFIGS[flow_id] = config


def forget_flow(flow_id: str) -> None:
    _CONFIGS.pop(flow_id, None)
    _STATES.pop(flow_id, None)
    for key in [k for k in LOCAL_MESSAGES if k.startswith(flow_id)]:
        LOCAL_MESSAGES.pop(key, None)


class FlowPlugin(WorkerPlugin):
    """Registers a flow's configuration on each worker (also on workers that join later)."""

    def __init__(self, flow_id: str, config) -> None:
        self.flow_id = flow_id
        self.config = config
        self.name = f"crystream-{flow_id}"

    def setup(self, worker) -> None:
        register_flow(self.flow_id, self.config)
        try:  # build state now so the first frame does not pay for it
            worker_state(self.flow_id)
        except Exception:  # noqa: BLE001 - reported per frame with the frame's name
            _STATES.pop(self.flow_id, None)

    def teardown(self, worker) -> None:
        forget_flow(self.flow_id)


@dataclass
class FrameResult:
    """What one frame's task gives the writer: its chunk, or why there is none."""

    chunk: Chunk | None
    error: str | None
    label: str
    started: float
    finished: float
    worker: str = ""


def _label(msg) -> str:
    label = getattr(msg, "label", None)
    return label if isinstance(label, str) else repr(msg)


def process_message(state: WorkerState, msg) -> Chunk:
    """Decode one raw message and process it into a chunk (no Dask involved)."""
    frame = state.decode(msg, state.detector, state.config.input)
    frame.filename, frame.event = msg.filename, msg.event
    frame.serial = msg.serial
    return process_frame(frame, state.detector, state.target, state.pipeline)


def run_frame(flow_id: str, msg) -> FrameResult:
    """The Dask task for one frame; errors become a FrameResult that names the frame."""
    started = time.time()
    worker = ""
    try:
        from distributed import get_worker
        worker = get_worker().address
    except ValueError:
        pass
    try:
        chunk = process_message(worker_state(flow_id), msg)
        return FrameResult(chunk, None, _label(msg), started, time.time(), worker)
    except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the run
        text = str(exc).splitlines()[0] if str(exc) else ""
        return FrameResult(None, f"{type(exc).__name__}: {text}", _label(msg), started,
                           time.time(), worker)


def run_local_frame(flow_id: str, key: str) -> FrameResult:
    """The task for a frame whose bytes an ingest actor in this process holds under ``key``."""
    msg = LOCAL_MESSAGES.pop(key, None)
    if msg is None:
        return FrameResult(None, "frame bytes are not on this worker (worker restarted?)",
                           key, time.time(), time.time())
    return run_frame(flow_id, msg)


def frame_task(flow_id: str, msg) -> FrameResult:
    """Process a frame whose message travels with the task (file paths, SUB fan-out)."""
    return run_frame(flow_id, msg)


def local_frame_task(flow_id: str, key: str) -> FrameResult:
    """Process a frame whose bytes an ingest actor in this same process holds under ``key``."""
    return run_local_frame(flow_id, key)


def inbox_task(flow_id: str, inbox: str, keys: list[str], msgs: list) -> list | None:
    """Process frames for the ingest actor in this same process, one after the other, and
    put each result in its inbox as soon as it is ready (returns None then). A message None
    means its bytes wait under its key in LOCAL_MESSAGES. Without the inbox (its actor is
    gone) the results are returned as usual."""
    results = []
    for key, msg in zip(keys, msgs):
        result = run_local_frame(flow_id, key) if msg is None else run_frame(flow_id, msg)
        box = INBOXES.get(inbox)
        if box is None:
            results.append(result)
        else:
            box.put((key, result))
    return results or None
