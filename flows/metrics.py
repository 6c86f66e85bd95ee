"""Run counters: what the writer saw, plus what the ingest actors report, as one snapshot.

The writer owns one FlowMetrics; every written or failed frame updates it, and the ingest
actors' own counters (received, dropped, in flight) arrive with their track calls. A snapshot
is a plain dict (msgpack-friendly) that the writer publishes to the scheduler for the dashboard
and that the terminal progress line and the summary read.
"""

from __future__ import annotations

import time
from collections import deque

import numpy as np

CELL_PARAMETERS = ("a", "b", "c", "alpha", "beta", "gamma")
CELL_UNITS = ("Å", "Å", "Å", "°", "°", "°")


class FlowMetrics:
    """Counters and short histories of one run; updated by the writer, one thread."""

    def __init__(self, window: float = 5.0, history: int = 5000) -> None:
        self.started = time.time()
        self.window = window
        self.registered = 0
        self.processed = 0  # chunks written (CrystFEL's "images processed")
        self.failed = 0
        self.hits = 0
        self.indexed = 0
        self.crystals = 0
        self.peaks_total = 0
        self.task_seconds = 0.0  # time spent decoding and processing, summed over frames
        self.ingest: dict[int, dict] = {}  # connection -> its latest counters
        self._done_times: deque[float] = deque()
        self._latency = deque(maxlen=history)
        self._peaks = deque(maxlen=history)
        self._cells = deque(maxlen=history)
        self.history: deque[dict] = deque(maxlen=1200)  # one sample per publish

    def sample(self, in_flight: int) -> None:
        """Append the current figures to the time series the dashboard plots."""
        snap = self.snapshot(in_flight, with_history=False)
        self.history.append({k: snap[k] for k in (
            "elapsed", "rate", "hit_rate", "indexing_rate", "peaks_per_frame", "in_flight",
            "dropped", "failed", "latency_median", "latency_p95", "processed")})

    def frame_written(self, hit: bool, n_peaks: int, cells: list[tuple[float, ...]],
                      latency: float) -> None:
        self.processed += 1
        self.hits += int(hit)
        self.peaks_total += n_peaks
        if cells:
            self.indexed += 1
            self.crystals += len(cells)
            self._cells.extend(cells)
        self._peaks.append(n_peaks)
        self._latency.append(latency)
        self._tick()

    def frame_failed(self) -> None:
        self.failed += 1
        self._tick()

    def _tick(self) -> None:
        now = time.time()
        self._done_times.append(now)
        while self._done_times and self._done_times[0] < now - self.window:
            self._done_times.popleft()

    @property
    def dropped(self) -> int:
        return sum(int(s.get("dropped", 0)) for s in self.ingest.values())

    @property
    def received(self) -> int:
        return sum(int(s.get("received", 0)) for s in self.ingest.values())

    def rate(self) -> float:
        """Frames finished per second over the last ``window`` seconds."""
        now = time.time()
        recent = [t for t in self._done_times if t >= now - self.window]
        span = min(self.window, now - self.started)
        return len(recent) / span if span > 0 else 0.0

    def snapshot(self, in_flight: int = 0, finished: bool = False,
                 with_history: bool = True) -> dict:
        """Everything a display needs, as plain numbers and lists."""
        elapsed = time.time() - self.started
        lat = np.asarray(self._latency, dtype=float)
        cells = np.asarray(self._cells, dtype=float).reshape(-1, 6)
        hist = {}
        for i, name in enumerate(CELL_PARAMETERS):
            values = cells[:, i]
            if len(values):
                lo, hi = float(values.min()), float(values.max())
                if hi - lo < 1e-6:
                    lo, hi = lo - 0.5, hi + 0.5
                counts, edges = np.histogram(values, bins=40, range=(lo, hi))
                hist[name] = {"counts": counts.tolist(), "edges": edges.tolist()}
            else:
                hist[name] = {"counts": [], "edges": []}
        return {
            "time": time.time(), "elapsed": elapsed, "finished": finished,
            "registered": self.registered, "processed": self.processed,
            "failed": self.failed, "dropped": self.dropped, "received": self.received,
            "hits": self.hits, "indexed": self.indexed, "crystals": self.crystals,
            "in_flight": in_flight, "rate": self.rate(),
            "mean_rate": self.processed / elapsed if elapsed > 0 else 0.0,
            "hit_rate": self.hits / self.processed if self.processed else 0.0,
            "indexing_rate": self.indexed / self.processed if self.processed else 0.0,
            "peaks_per_frame": self.peaks_total / self.processed if self.processed else 0.0,
            "recent_peaks": list(self._peaks)[-200:],
            "task_seconds": self.task_seconds,
            "latency_median": float(np.median(lat)) if len(lat) else 0.0,
            "latency_p95": float(np.percentile(lat, 95)) if len(lat) else 0.0,
            "cell_histograms": hist,
            "history": list(self.history) if with_history else [],
        }


def cell_parameters_of(crystal) -> tuple[float, float, float, float, float, float]:
    """(a, b, c) in Å and angles in degrees of a crystal's cell, for the histograms."""
    a, b, c, al, be, ga = crystal.cell.parameters
    return (a * 1e10, b * 1e10, c * 1e10, float(np.degrees(al)), float(np.degrees(be)),
            float(np.degrees(ga)))
