"""CrystFEL stream files (format 2.3): the writer, the reader and the line formats they share."""

from crystream.stream.format import redact_command_line
from crystream.stream.reader import Stream, StreamError, iter_chunks, read_stream
from crystream.stream.writer import StreamWriter

__all__ = ["Stream", "StreamError", "StreamWriter", "iter_chunks", "read_stream",
           "redact_command_line"]
