"""Reading CrystFEL streams (format 2.x) back into Chunk objects, header first, chunk by chunk.

Accepts CrystFEL's own output in any header order and older 2.x chunks (no ``Event:`` line,
``hdf5/...`` header values). Unlike CrystFEL, a bad or truncated chunk is reported in
``problems`` and skipped instead of silently ending the stream. Positions come back
panel-relative (slab minus min_fs/min_ss); cells are rebuilt from astar/bstar/cstar only.
"""

from __future__ import annotations

import gzip
import io
import logging
import math
import os
import re
from dataclasses import dataclass, field
from typing import Iterator, TextIO

import numpy as np

from crystream.cell import UnitCell
from crystream.cellfile import CellError, lattice_only_cell, parse_cell
from crystream.chunk import Chunk, Crystal, Reflections
from crystream.frame import PeakList
from crystream.geometry.detector import Detector
from crystream.geometry.parser import parse_geometry
from crystream.stream.format import (CELL_END, CELL_START, CHUNK_END, CHUNK_START,
                                     CRYSTAL_END, CRYSTAL_START, GEOM_END, GEOM_START,
                                     INDEXING_PREFIX, NO_REFLECTIONS, PEAK_END, PEAK_START,
                                     REFL_END, REFL_START, PanelTable)

log = logging.getLogger(__name__)

FORMAT_PREFIX = "CrystFEL stream format 2."
_DET_SHIFT = re.compile(r"predict_refine/det_shift x = (\S+) y = (\S+) mm")


class StreamError(ValueError):
    """A stream that cannot be opened; the message is "<file>:<line>: <what>"."""


class _ChunkProblem(Exception):
    """A chunk that must be skipped; carries the line number and what is wrong."""

    def __init__(self, line: int, what: str) -> None:
        super().__init__(what)
        self.line = line
        self.what = what


@dataclass
class StreamHeader:
    """Everything before the first chunk."""

    version: str  # "2.3"
    generated_by: str
    command_line: str
    audit: list[str]  # lines before the geometry block, except the cell block and methods
    geometry_text: str
    detector: Detector
    target_cell: UnitCell | None
    indexing_methods: str | None  # None when the stream says "(null)" or has no such line


@dataclass
class Stream:
    """A whole stream in memory; tables give pandas-friendly dicts of numpy columns."""

    header: StreamHeader
    chunks: list[Chunk]
    problems: list[str] = field(default_factory=list)  # "<file>:<line>: <what>", skipped data

    @property
    def detector(self) -> Detector:
        return self.header.detector

    @property
    def geometry_text(self) -> str:
        return self.header.geometry_text

    @property
    def target_cell(self) -> UnitCell | None:
        return self.header.target_cell

    @property
    def command_line(self) -> str:
        return self.header.command_line

    @property
    def indexing_methods(self) -> str | None:
        return self.header.indexing_methods

    def peaks_table(self) -> dict[str, np.ndarray]:
        """One row per peak: chunk index, serial, filename, event, panel, fs/ss (panel-relative),
        intensity and one_over_d (m^-1)."""
        with_peaks = [(i, c) for i, c in enumerate(self.chunks) if c.peaks is not None]
        counts = np.array([len(c.peaks) for _, c in with_peaks], dtype=np.int64)
        out = _per_chunk_columns([self.chunks[i] for i, _ in with_peaks],
                                 [i for i, _ in with_peaks], counts)
        peaks = [c.peaks for _, c in with_peaks]
        out["panel"] = _cat([p.panel for p in peaks], np.int64)
        out["panel_name"] = _panel_names(self.detector, out["panel"])
        for name in ("fs", "ss", "intensity"):
            out[name] = _cat([getattr(p, name) for p in peaks], np.float64)
        out["one_over_d"] = _cat([c.peak_resolutions if c.peak_resolutions is not None
                                  else np.full(len(c.peaks), np.nan) for _, c in with_peaks],
                                 np.float64)
        return out

    def reflections_table(self) -> dict[str, np.ndarray]:
        """One row per reflection: chunk index, serial, filename, event, crystal (index in the
        chunk), h, k, l, intensity, sigma, peak, background, fs/ss (panel-relative), panel."""
        owners, crystal_no, tables = [], [], []
        for i, chunk in enumerate(self.chunks):
            for j, crystal in enumerate(chunk.crystals):
                if crystal.reflections is not None:
                    owners.append(i)
                    crystal_no.append(j)
                    tables.append(crystal.reflections)
        counts = np.array([len(t) for t in tables], dtype=np.int64)
        out = _per_chunk_columns([self.chunks[i] for i in owners], owners, counts)
        out["crystal"] = np.repeat(np.array(crystal_no, dtype=np.int64), counts)
        for name in ("h", "k", "l"):
            out[name] = _cat([getattr(t, name) for t in tables], np.int64)
        for name in ("intensity", "sigma", "peak", "background", "fs", "ss"):
            out[name] = _cat([getattr(t, name) for t in tables], np.float64)
        out["panel"] = _cat([t.panel for t in tables], np.int64)
        out["panel_name"] = _panel_names(self.detector, out["panel"])
        return out

    def crystals_table(self) -> dict[str, np.ndarray]:
        """One row per crystal: cell parameters (m, rad), astar/bstar/cstar (m^-1), lattice,
        profile radius and resolution limit (m^-1), number of reflections (-1: none)."""
        owners, crystals = [], []
        for i, chunk in enumerate(self.chunks):
            for crystal in chunk.crystals:
                owners.append(i)
                crystals.append(crystal)
        out = _per_chunk_columns([self.chunks[i] for i in owners], owners,
                                 np.ones(len(owners), dtype=np.int64))
        params = np.array([c.cell.parameters if c.cell.has_parameters else (np.nan,) * 6
                           for c in crystals], dtype=np.float64).reshape(-1, 6)
        for k, name in enumerate(("a", "b", "c", "alpha", "beta", "gamma")):
            out[name] = params[:, k]
        stars = np.array([c.cell.reciprocal for c in crystals],
                         dtype=np.float64).reshape(-1, 3, 3)
        for v, vec in enumerate(("astar", "bstar", "cstar")):
            for x, axis in enumerate("xyz"):
                out[f"{vec}_{axis}"] = stars[:, v, x]
        out["lattice_type"] = np.array([c.cell.lattice_type for c in crystals], dtype=object)
        out["centering"] = np.array([c.cell.centering for c in crystals], dtype=object)
        out["unique_axis"] = np.array([c.cell.unique_axis for c in crystals], dtype=object)
        out["profile_radius"] = np.array([c.profile_radius for c in crystals], dtype=np.float64)
        out["resolution_limit"] = np.array([c.resolution_limit for c in crystals],
                                           dtype=np.float64)
        out["num_reflections"] = np.array([-1 if c.reflections is None else len(c.reflections)
                                           for c in crystals], dtype=np.int64)
        return out


def _per_chunk_columns(chunks: list[Chunk], index: list[int],
                       counts: np.ndarray) -> dict[str, np.ndarray]:
    return {"chunk": np.repeat(np.array(index, dtype=np.int64), counts),
            "serial": np.repeat(np.array([c.serial for c in chunks], dtype=np.int64), counts),
            "filename": np.repeat(np.array([c.filename for c in chunks], dtype=object), counts),
            "event": np.repeat(np.array([c.event for c in chunks], dtype=object), counts)}


def _cat(arrays: list, dtype) -> np.ndarray:
    if not arrays:
        return np.zeros(0, dtype=dtype)
    return np.concatenate([np.asarray(a, dtype=dtype) for a in arrays])


def _panel_names(detector: Detector, panel: np.ndarray) -> np.ndarray:
    names = np.array([p.name for p in detector.panels] + [""], dtype=object)
    return names[np.where(panel < 0, len(names) - 1, panel)]


# ---------------------------------------------------------------- public entry points


def read_stream(source: str | os.PathLike | TextIO, detector: Detector | None = None) -> Stream:
    """Read a whole stream (a path, ``.gz`` too, or an open text or binary file).

    ``detector`` replaces the stream's own geometry if given.
    """
    with StreamReader(source, detector) as reader:
        chunks = list(reader)
        return Stream(reader.header, chunks, reader.problems)


def iter_chunks(source: str | os.PathLike | TextIO,
                detector: Detector | None = None) -> Iterator[Chunk]:
    """Chunks one at a time, for streams too big for memory (problems are logged)."""
    with StreamReader(source, detector) as reader:
        yield from reader


def crystal_detector_shift(crystal: Crystal) -> tuple[float, float] | None:
    """The predict_refine/det_shift note as (x, y) in metres, or None if absent."""
    for note in crystal.notes:
        m = _DET_SHIFT.match(note)
        if m:
            return float(m.group(1)) * 1e-3, float(m.group(2)) * 1e-3
    return None


class _HeaderExtras:
    """The target-cell block and the indexing-methods line, wherever they are in the header."""

    def __init__(self) -> None:
        self.methods: str | None = None
        self.cell_text: list[str] | None = None
        self.cell_line = 0
        self.in_cell = False

    def take(self, line: str, number: int) -> bool:
        """True if the line belongs to the cell block or is the indexing-methods line."""
        if self.in_cell:
            if line == CELL_END:
                self.in_cell = False
            else:
                self.cell_text.append(line)
        elif line == CELL_START:
            self.in_cell, self.cell_text, self.cell_line = True, [], number
        elif line.startswith(INDEXING_PREFIX):
            self.methods = line[len(INDEXING_PREFIX):]
        else:
            return False
        return True


class StreamReader:
    """Reads the header on construction; iterating yields the chunks in file order."""

    def __init__(self, source: str | os.PathLike | TextIO,
                 detector: Detector | None = None) -> None:
        if isinstance(source, (str, os.PathLike)):
            self.name = os.fspath(source)
            opener = gzip.open if self.name.endswith(".gz") else open
            try:
                self._fh: TextIO = opener(self.name, "rt", encoding="utf-8", errors="replace")
            except OSError as exc:
                raise StreamError(f"{self.name}:0: cannot open stream: {exc.strerror}") from None
            self._own = True
        else:
            self.name = str(getattr(source, "name", "<stream>"))
            self._own = False
            if isinstance(source, (io.RawIOBase, io.BufferedIOBase)):
                source = io.TextIOWrapper(source, encoding="utf-8", errors="replace")
            self._fh = source
        self._lines = enumerate((line.rstrip("\r\n") for line in self._fh), start=1)
        self._pending_chunk: int | None = None
        self.problems: list[str] = []
        self.header = self._read_header(detector)
        self.panels = PanelTable.from_detector(self.header.detector)

    def __enter__(self) -> "StreamReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._own:
            self._fh.close()

    # ------------------------------------------------------------ header

    def _fail(self, line: int, what: str) -> StreamError:
        return StreamError(f"{self.name}:{line}: {what}")

    def _read_header(self, detector: Detector | None) -> StreamHeader:
        first = next(self._lines, None)
        if first is None:
            raise self._fail(1, "empty file, not a CrystFEL stream")
        if not first[1].startswith(FORMAT_PREFIX):
            raise self._fail(1, f"not a CrystFEL 2.x stream: first line is '{first[1][:60]}'")
        version = first[1][len("CrystFEL stream format "):].strip()
        audit: list[str] = []
        extras = _HeaderExtras()
        geometry_line = 0
        for number, line in self._lines:
            if line == GEOM_START:
                geometry_line = number
                break
            if line == CHUNK_START:
                raise self._fail(number, "chunk before the geometry block: a stream must "
                                 "carry its geometry ('----- Begin geometry file -----')")
            if not extras.take(line, number):
                audit.append(line)
        else:
            raise self._fail(1 + len(audit), "no geometry block ('----- Begin geometry "
                             "file -----') before the end of the file")
        geometry: list[str] = []
        for number, line in self._lines:
            if line == GEOM_END:
                break
            geometry.append(line)
        else:
            raise self._fail(geometry_line, "geometry block is not closed ('----- End "
                             "geometry file -----' missing)")
        geometry_text = "\n".join(geometry) + "\n"
        if detector is None:
            detector = self._parse_geometry(geometry_text, geometry_line)
        for number, line in self._lines:
            if line == CHUNK_START:
                self._pending_chunk = number
                break
            extras.take(line, number)
        target = None
        if extras.cell_text is not None:
            try:
                target = parse_cell("\n".join(extras.cell_text) + "\n",
                                    f"{self.name} (cell block at line {extras.cell_line})")
            except CellError as exc:
                self._problem(extras.cell_line, f"target cell block ignored: {exc}")
        generated = next((a[len("Generated by "):] for a in audit
                          if a.startswith("Generated by ")), "")
        command = next((a for a in audit if not a.startswith("Generated by ")), "")
        methods = None if extras.methods == "(null)" else extras.methods
        return StreamHeader(version, generated, command, audit, geometry_text, detector,
                            target, methods)

    def _parse_geometry(self, text: str, start_line: int) -> Detector:
        try:
            detector = parse_geometry(text, self.name)
        except ValueError as exc:
            line = getattr(exc, "line", None)
            what = getattr(exc, "what", str(exc))
            where = start_line + line if line else start_line
            raise self._fail(where, f"invalid geometry block: {what}") from None
        detector.source_name = self.name
        return detector

    def _problem(self, line: int, what: str) -> None:
        message = f"{self.name}:{line}: {what}"
        self.problems.append(message)
        log.warning("%s", message)

    # ------------------------------------------------------------ chunks

    def __iter__(self) -> Iterator[Chunk]:
        start = self._pending_chunk
        self._pending_chunk = None
        body: list[str] = []
        for number, line in self._lines:
            if start is None:
                if line == CHUNK_START:
                    start, body = number, []
                continue
            if line == CHUNK_END:
                chunk = self._parse_chunk(body, start + 1)
                start = None
                if chunk is not None:
                    yield chunk
            elif line == CHUNK_START:
                self._problem(start, "chunk has no '----- End chunk -----' before the next "
                              "chunk; skipped")
                start, body = number, []
            else:
                body.append(line)
        if start is not None:
            self._problem(start, "truncated chunk at the end of the file; skipped")

    def _parse_chunk(self, lines: list[str], first: int) -> Chunk | None:
        try:
            return _ChunkParser(lines, first, self.panels, self._problem).run()
        except _ChunkProblem as exc:
            self._problem(exc.line, f"{exc.what}; chunk skipped")
            return None


# ---------------------------------------------------------------- one chunk


class _ChunkParser:
    """Turns the lines of one chunk (without its begin/end markers) into a Chunk."""

    def __init__(self, lines: list[str], first: int, panels: PanelTable, problem) -> None:
        self.lines = lines
        self.first = first  # file line number of lines[0]
        self.panels = panels
        self.problem = problem

    def line_no(self, i: int) -> int:
        return self.first + i

    def find(self, marker: str, start: int, opened_at: int) -> int:
        try:
            return self.lines.index(marker, start)
        except ValueError:
            raise _ChunkProblem(self.line_no(opened_at), f"'{self.lines[opened_at]}' without "
                                f"'{marker}'") from None

    def run(self) -> Chunk:
        lines = self.lines
        values: dict[str, object] = {}
        headers: list[tuple[str, object]] = []
        peaks = resolutions = None
        crystals: list[Crystal] = []
        i = 0
        while i < len(lines):
            line = lines[i]
            if line.startswith("Image filename: "):
                values["filename"] = line[16:]
            elif line.startswith("Event: "):
                values["event"] = line[7:]
            elif line.startswith("Image serial number: "):
                values["serial"] = self.number(int, line[21:], i)
            elif line == PEAK_START:
                end = self.find(PEAK_END, i + 1, i)
                peaks, resolutions = self.peak_table(i + 2, end)
                i = end
            elif line == CRYSTAL_START:
                end = self.find(CRYSTAL_END, i + 1, i)
                crystals.append(self.crystal(i + 1, end))
                i = end
            else:
                key, sep, value = line.partition(" = ")
                if sep:
                    self.chunk_field(key, value, i, values, headers)
            i += 1
        if "filename" not in values or "photon_energy_ev" not in values:
            missing = "'Image filename:'" if "filename" not in values else "'photon_energy_eV'"
            raise _ChunkProblem(self.first - 1, f"incomplete chunk: no {missing} line")
        num_peaks = values.pop("num_peaks", None)
        if num_peaks is None:
            num_peaks = len(peaks) if peaks is not None else 0
        return Chunk(filename=values.pop("filename"), event=values.pop("event", "//"),
                     serial=values.pop("serial", 0), headers=headers, peaks=peaks,
                     peak_resolutions=resolutions, num_peaks=num_peaks, crystals=crystals,
                     **values)

    def number(self, kind, text: str, i: int):
        try:
            return kind(text.split()[0])
        except (ValueError, IndexError):
            raise _ChunkProblem(self.line_no(i), f"'{text}' is not a valid "
                                f"{'integer' if kind is int else 'number'} in "
                                f"'{self.lines[i]}'") from None

    def chunk_field(self, key: str, value: str, i: int, values: dict,
                    headers: list[tuple[str, object]]) -> None:
        if key.startswith("header/float/"):
            headers.append((key[13:], self.number(float, value, i)))
        elif key.startswith("header/int/"):
            headers.append((key[11:], self.number(int, value, i)))
        elif key.startswith("header/str/"):
            headers.append((key[11:], value))
        elif key.startswith("hdf5/"):
            headers.append((key[5:], self.number(float, value, i)))
        elif key == "hit":
            values["hit"] = self.number(int, value, i) != 0
        elif key == "indexed_by":
            values["indexed_by"] = value.strip()
        elif key == "n_indexing_tries":
            values["n_indexing_tries"] = self.number(int, value, i)
        elif key == "photon_energy_eV":
            values["photon_energy_ev"] = self.number(float, value, i)
        elif key == "beam_divergence":
            values["beam_divergence"] = self.number(float, value, i)
        elif key == "beam_bandwidth":
            values["beam_bandwidth"] = self.number(float, value, i)
        elif key == "average_camera_length":
            values["average_camera_length"] = self.number(float, value, i)
        elif key == "num_peaks":
            values["num_peaks"] = self.number(int, value, i)
        elif key == "peak_resolution":
            values["peak_resolution"] = self.two_way(value, i)

    def two_way(self, value: str, i: int) -> float:
        """'<x> nm^-1 or <y> A' -> m^-1, using both printed numbers (see _refine)."""
        parts = value.split()
        x = self.number(float, value, i)
        if len(parts) >= 4 and parts[1] == "nm^-1" and parts[2] == "or":
            return _refine(parts[0], parts[3]) * 1e9
        return x * 1e9

    # ------------------------------------------------------------ tables

    def split_rows(self, start: int, end: int, ncols: int, what: str) -> np.ndarray:
        """Rows start..end-1 as an (n, ncols) string array; a bad row is a _ChunkProblem."""
        rows = list(map(str.split, self.lines[start:end]))
        if any(len(r) != ncols for r in rows):
            bad = next(j for j, r in enumerate(rows) if len(r) != ncols)
            raise _ChunkProblem(self.line_no(start + bad), f"{what} row does not have "
                                f"{ncols} fields: '{self.lines[start + bad]}'")
        return np.array(rows, dtype=str).reshape(len(rows), ncols)

    def columns(self, table: np.ndarray, cols: slice, kind, start: int, what: str) -> np.ndarray:
        try:
            return table[:, cols].astype(kind)
        except ValueError:
            for j, row in enumerate(table[:, cols]):
                try:
                    row.astype(kind)
                except ValueError:
                    raise _ChunkProblem(self.line_no(start + j), f"malformed {what} row: "
                                        f"'{self.lines[start + j]}'") from None
            raise

    def panel_indices(self, names: np.ndarray, start: int, what: str) -> np.ndarray:
        unique, inverse = np.unique(names, return_inverse=True)
        lookup = np.array([self.panels.index.get(str(u), -1) for u in unique], dtype=np.int64)
        index = lookup[inverse.reshape(-1)]
        if (lookup < 0).any():
            j = int(np.flatnonzero(index < 0)[0])
            self.problem(self.line_no(start + j), f"{what} on unknown panel "
                         f"'{names[j]}' ({int((index < 0).sum())} in this chunk)")
        return index

    def peak_table(self, start: int, end: int) -> tuple[PeakList, np.ndarray]:
        start = min(start, end)  # the line after 'Peaks from peak search' is the header
        if start == end:
            return PeakList.empty(), np.zeros(0)
        table = self.split_rows(start, end, 5, "peak")
        numbers = self.columns(table, slice(0, 4), np.float64, start, "peak")
        panel = self.panel_indices(table[:, 4], start, "peak")
        keep = panel >= 0  # CrystFEL drops a peak on an unknown panel
        numbers, panel = numbers[keep], panel[keep]
        peaks = PeakList(numbers[:, 0] - self.panels.min_fs[panel],
                         numbers[:, 1] - self.panels.min_ss[panel], panel.astype(np.int32),
                         numbers[:, 3])
        return peaks, numbers[:, 2] * 1e9

    def reflections(self, start: int, end: int) -> Reflections | None:
        if start < end and len(self.lines[start].split()) == 10:
            try:  # the column header is skipped only if it does not parse as a row
                int(self.lines[start].split()[0])
            except ValueError:
                start += 1
        elif start < end:
            start += 1
        if start == end:
            z = np.zeros(0)
            zi = np.zeros(0, dtype=np.int32)
            return Reflections(zi, zi.copy(), zi.copy(), z, z.copy(), z.copy(), z.copy(),
                               z.copy(), z.copy(), np.zeros(0, dtype=np.int32))
        try:
            table = self.split_rows(start, end, 10, "reflection")
            hkl = self.columns(table, slice(0, 3), np.int32, start, "reflection")
            numbers = self.columns(table, slice(3, 9), np.float64, start, "reflection")
        except _ChunkProblem as exc:
            self.problem(exc.line, f"{exc.what}: reflections of this crystal dropped")
            return None
        panel = self.panel_indices(table[:, 9], start, "reflection")
        known = panel >= 0  # an unknown panel keeps its intensity and its slab position
        fs = numbers[:, 4] - np.where(known, self.panels.min_fs[panel], 0.0)
        ss = numbers[:, 5] - np.where(known, self.panels.min_ss[panel], 0.0)
        return Reflections(hkl[:, 0].copy(), hkl[:, 1].copy(), hkl[:, 2].copy(),
                           numbers[:, 0].copy(), numbers[:, 1].copy(), numbers[:, 2].copy(),
                           numbers[:, 3].copy(), fs, ss, panel.astype(np.int32))

    # ------------------------------------------------------------ crystal

    def crystal(self, start: int, end: int) -> Crystal:
        stars: dict[str, np.ndarray] = {}
        kind: dict[str, str] = {}
        notes: list[str] = []
        extra: dict[str, object] = {"resolution_limit": math.inf}
        refl = None
        num_reflections = None
        i = start
        while i < end:
            line = self.lines[i]
            if line == REFL_START:
                stop = self.find(REFL_END, i + 1, i)
                if stop > end:
                    raise _ChunkProblem(self.line_no(i), "reflection list runs past "
                                        "'--- End crystal'")
                refl = self.reflections(i + 1, stop)
                i = stop + 1
                continue
            key, sep, value = line.partition(" = ")
            if line == NO_REFLECTIONS or line.startswith("Cell parameters "):
                pass
            elif key in ("astar", "bstar", "cstar"):
                try:
                    stars[key] = np.array([float(v) for v in value.split()[:3]]) * 1e9
                except ValueError:
                    stars[key] = np.zeros(0)
                if len(stars[key]) != 3:
                    raise _ChunkProblem(self.line_no(i), f"malformed {key} line: '{line}'")
            elif key in ("lattice_type", "centering", "unique_axis"):
                if key in kind:
                    self.problem(self.line_no(i), f"duplicate {key} line: stream may be "
                                 "corrupted")
                kind[key] = value.strip()
            elif key == "profile_radius":
                extra["profile_radius"] = self.number(float, value, i) * 1e9
            elif key == "diffraction_resolution_limit":
                extra["resolution_limit"] = self.two_way(value, i)
            elif key == "num_reflections":
                num_reflections = self.number(int, value, i)
            elif key == "num_saturated_reflections":
                extra["num_saturated"] = self.number(int, value, i)
            elif key == "num_implausible_reflections":
                extra["num_implausible"] = self.number(int, value, i)
            else:
                notes.append(line)
            i += 1
        if refl is not None and num_reflections is not None and num_reflections != len(refl):
            self.problem(self.line_no(start), f"num_reflections = {num_reflections} but "
                         f"{len(refl)} reflection rows")
        lattice = ({"lattice_type": kind["lattice_type"], "centering": kind["centering"][:1],
                    "unique_axis": kind["unique_axis"][:1]}
                   if len(kind) == 3 else {})
        if len(stars) == 3:
            cell = UnitCell.from_reciprocal(stars["astar"], stars["bstar"], stars["cstar"],
                                            **lattice)
        else:
            self.problem(self.line_no(start - 1), "crystal without astar/bstar/cstar has "
                         "no cell")
            cell = lattice_only_cell(**lattice) if lattice else lattice_only_cell("triclinic")
        return Crystal(cell=cell, notes=notes, reflections=refl, **extra)


def _refine(x_text: str, y_text: str) -> float:
    """1/d in nm^-1 from a value printed both as nm^-1 and as Å: the middle of the range of
    values that print as both, which is closer to the true value than either number alone."""
    x = float(x_text)
    try:
        y = float(y_text)
    except ValueError:
        return x
    dx, dy = _half_ulp(x_text), _half_ulp(y_text)
    if not (math.isfinite(x) and math.isfinite(y)) or dx is None or dy is None or y <= dy:
        return x
    lo = max(x - dx, 10.0 / (y + dy))
    hi = min(x + dx, 10.0 / (y - dy))
    return 0.5 * (lo + hi) if lo < hi else x


def _half_ulp(text: str) -> float | None:
    """Half a unit in the last printed decimal place of a plain decimal number."""
    if "e" in text.lower() or "." not in text:
        return None
    return 0.5 * 10.0 ** -(len(text) - text.index(".") - 1)
