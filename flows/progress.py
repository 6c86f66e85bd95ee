"""The live one-line progress display on the terminal (stderr), the dashboard's figures."""

from __future__ import annotations

import sys
from typing import TextIO


def progress_line(snap: dict) -> str:
    """frames/s, hit and indexing rate, peaks/frame, in flight, dropped, failed, latency, cell."""
    cells = snap.get("cell_histograms", {})
    cell = ""
    a = cells.get("a", {})
    if a.get("counts"):
        # the mode of each length histogram, as a glance at the cell
        parts = []
        for name in ("a", "b", "c"):
            h = cells[name]
            i = max(range(len(h["counts"])), key=h["counts"].__getitem__)
            parts.append(f"{(h['edges'][i] + h['edges'][i + 1]) / 2:.1f}")
        cell = " cell " + "/".join(parts) + " Å"
    return (f"{snap['processed']} frames {snap['rate']:.1f}/s | hits {snap['hit_rate']:.0%} "
            f"| indexed {snap['indexing_rate']:.0%} | {snap['peaks_per_frame']:.1f} peaks/frame"
            f" | in flight {snap['in_flight']} | dropped {snap['dropped']} "
            f"| failed {snap['failed']} | latency {snap['latency_median'] * 1e3:.0f} ms{cell}")


class ProgressDisplay:
    """Rewrites one terminal line; on a non-terminal prints a line every ``every`` calls."""

    def __init__(self, stream: TextIO | None = None, every: int = 20) -> None:
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.every = every
        self._calls = 0
        self._width = 0

    def update(self, snap: dict) -> None:
        line = progress_line(snap)
        if self.tty:
            pad = max(0, self._width - len(line))
            self.stream.write("\r" + line + " " * pad)
            self._width = len(line)
        elif self._calls % self.every == 0:
            self.stream.write(line + "\n")
        self._calls += 1
        self.stream.flush()

    def end(self) -> None:
        if self.tty and self._width:
            self.stream.write("\n")
            self.stream.flush()
