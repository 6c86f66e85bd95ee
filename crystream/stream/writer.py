"""Writing CrystFEL 2.3 streams: one formatted string per chunk, one write and a flush.

Each chunk reaches the file whole, so a stream that is being written (or whose writer died) is
well formed up to its last complete chunk, which is what CrystFEL's merging tools need.
"""

from __future__ import annotations

from typing import TextIO

from crystream import __version__
from crystream.cell import UnitCell
from crystream.chunk import Chunk
from crystream.geometry.detector import Detector
from crystream.stream.format import (PanelTable, format_chunk, format_header,
                                     redact_command_line)

__all__ = ["StreamWriter", "redact_command_line"]

GENERATED_BY = f"crystream {__version__} (CrystFEL 0.12.0 stream format)"


class StreamWriter:
    """Writes a stream header and chunks to an open text file handle."""

    def __init__(self, fh: TextIO, detector: Detector, target_cell: UnitCell | None,
                 command_line: list[str], indexing_methods: str | None,
                 generated_by: str = GENERATED_BY) -> None:
        self.fh = fh
        self.detector = detector
        self.target_cell = target_cell
        self.command_line = redact_command_line(list(command_line))
        self.indexing_methods = indexing_methods
        self.generated_by = generated_by
        self.panels = PanelTable.from_detector(detector)
        self.chunks_written = 0

    def header_text(self) -> str:
        """The header as text (format line, audit lines, geometry, target cell, methods)."""
        return format_header(self.detector, self.target_cell, self.command_line,
                             self.indexing_methods, self.generated_by)

    def write_header(self) -> None:
        """Write the header; call once, before the first chunk."""
        self.fh.write(self.header_text())
        self.fh.flush()

    def chunk_text(self, chunk: Chunk) -> str:
        """One chunk as text, exactly as ``write_chunk`` writes it."""
        return format_chunk(chunk, self.panels)

    def write_chunk(self, chunk: Chunk) -> bool:
        """Write one chunk whole and flush; a chunk with ``error`` set is not written (False)."""
        if chunk.error is not None:
            return False
        self.fh.write(format_chunk(chunk, self.panels))
        self.fh.flush()
        self.chunks_written += 1
        return True
