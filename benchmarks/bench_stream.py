"""Stream writing and reading speed: ms per chunk, and table formatting methods compared.

Run: python benchmarks/bench_stream.py [n_chunks]
Prints ms/chunk for a typical hit (50 peaks, one crystal with 300 reflections), the ratio of
the per-row Python loop, np.savetxt and np.char.mod against the single-% formatting the writer
uses, and read throughput on a stream made of the CrystFEL sample chunks.
"""

from __future__ import annotations

import io
import math
import sys
import time
from pathlib import Path

import numpy as np

from crystream.cell import UnitCell
from crystream.chunk import Chunk, Crystal, Reflections
from crystream.frame import PeakList
from crystream.stream.format import PEAK_ROW, REFL_ROW, PanelTable, format_reflection_table
from crystream.stream.reader import read_stream
from crystream.stream.writer import StreamWriter

SAMPLE = Path(__file__).resolve().parent.parent / "tests" / "data" / "streams" / "sample.stream"


def typical_chunk(rng: np.random.Generator, n_peaks: int = 50, n_refl: int = 300) -> Chunk:
    peaks = PeakList(rng.uniform(0, 511, n_peaks), rng.uniform(0, 511, n_peaks),
                     np.zeros(n_peaks, dtype=np.int32), rng.uniform(10, 1e4, n_peaks))
    cell = UnitCell.from_parameters(61.2e-10, 91.4e-10, 66.5e-10, math.pi / 2,
                                    math.radians(115), math.pi / 2, "monoclinic", "C", "b")
    hkl = rng.integers(-20, 21, size=(n_refl, 3))
    refl = Reflections(hkl[:, 0], hkl[:, 1], hkl[:, 2], rng.normal(100, 300, n_refl),
                       rng.uniform(1, 50, n_refl), rng.uniform(0, 1e4, n_refl),
                       rng.uniform(0, 5, n_refl), rng.uniform(0, 511, n_refl),
                       rng.uniform(0, 511, n_refl), np.zeros(n_refl, dtype=np.int32))
    crystal = Crystal(cell, 0.0015e9, 1.9e9, ["predict_refine/det_shift x = 0.000 y = 0.000 mm"],
                      refl)
    return Chunk("ZMQdata", "//1", 1, True, "asdf-nolatt-cell", 1, 9500.0, 0.0, 3e-3, [],
                 0.08, peaks, rng.uniform(0.2, 2.5, n_peaks) * 1e9, n_peaks, 2.1e9, [crystal])


def per_row_loop(refl: Reflections, names: list[str]) -> str:
    order = np.lexsort((refl.l, refl.k, refl.h))
    rows = []
    for i in order:
        rows.append(REFL_ROW % (refl.h[i], refl.k[i], refl.l[i], refl.intensity[i], refl.sigma[i],
                                refl.peak[i], refl.background[i], refl.fs[i], refl.ss[i],
                                names[refl.panel[i]]))
    return "".join(rows)


def with_savetxt(refl: Reflections, names: list[str]) -> str:
    order = np.lexsort((refl.l, refl.k, refl.h))
    table = np.empty((len(refl), 10), dtype=object)
    for j, name in enumerate(("h", "k", "l", "intensity", "sigma", "peak", "background", "fs",
                              "ss")):
        table[:, j] = getattr(refl, name)[order]
    table[:, 9] = np.array(names, dtype=object)[refl.panel[order]]
    buf = io.StringIO()
    np.savetxt(buf, table, fmt=REFL_ROW.rstrip("\n").split(" "), delimiter=" ")
    return buf.getvalue()


def with_char_mod(refl: Reflections, names: list[str]) -> str:
    order = np.lexsort((refl.l, refl.k, refl.h))
    parts = [np.char.mod(f, getattr(refl, n)[order]) for f, n in
             zip(REFL_ROW.split()[:9], ("h", "k", "l", "intensity", "sigma", "peak",
                                          "background", "fs", "ss"))]
    parts.append(np.array(names)[refl.panel[order]])
    rows = parts[0]
    for p in parts[1:]:
        rows = np.char.add(np.char.add(rows, " "), p)
    return "\n".join(rows.tolist()) + "\n"


def timed(fn, repeat: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat * 1e3


def main() -> None:
    n_chunks = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    detector = read_stream(SAMPLE).detector
    panels = PanelTable.from_detector(detector)
    rng = np.random.default_rng(1)
    chunk = typical_chunk(rng)
    refl = chunk.crystals[0].reflections
    names = [p.name for p in detector.panels]

    ours = timed(lambda: format_reflection_table(refl, panels), 300)
    print(f"reflection table, 300 rows: single %-format {ours:.3f} ms")
    for label, fn in (("per-row Python loop", per_row_loop), ("np.savetxt", with_savetxt),
                      ("np.char.mod", with_char_mod)):
        t = timed(lambda: fn(refl, names), 100)
        print(f"  {label:22s} {t:.3f} ms  ratio {t / ours:.1f}x slower")

    out = io.StringIO()
    writer = StreamWriter(out, detector, None, ["bench"], "asdf")
    writer.write_header()
    t0 = time.perf_counter()
    for _ in range(n_chunks):
        writer.write_chunk(chunk)
    dt = time.perf_counter() - t0
    print(f"write_chunk (50 peaks, 300 reflections): {dt / n_chunks * 1e3:.3f} ms/chunk "
          f"({len(out.getvalue()) / n_chunks / 1024:.1f} kB/chunk)")

    text = SAMPLE.read_text()
    start = text.index("----- Begin chunk -----")
    copies = max(1, n_chunks // 12)
    big = text[:start] + text[start:] * copies
    t0 = time.perf_counter()
    stream = read_stream(io.StringIO(big))
    dt = time.perf_counter() - t0
    print(f"read_stream: {len(stream.chunks)} CrystFEL sample chunks, "
          f"{dt / len(stream.chunks) * 1e3:.3f} ms/chunk, "
          f"{len(big) / dt / 1e6:.1f} MB/s")


if __name__ == "__main__":
    main()
