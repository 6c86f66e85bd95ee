"""Opening the readers' sources from a FlowConfig, inside the process that will pull from them.

Sources are not picklable (sockets, ASAP::O consumers), so each ingest actor opens its own
here. Every source is an iterable of readers.message.RawMessage; ``ack(msg)`` (ASAP::O) and
``close()`` are called when present.
"""

from __future__ import annotations

import os
from typing import Any, Iterable

from readers.files import FileListSource


def open_file_list(config, detector) -> Iterable:
    """The -i list as RawMessages with absolute paths (no bytes: each task reads its file),
    relative names taken from the client's working directory, as indexamajig does."""
    opts = config.input
    return FileListSource(opts.input, detector, serial_start=opts.serial_start,
                          base_dir=os.getcwd(), wait_for_file=opts.wait_for_file,
                          prefix=opts.prefix)


def messages(source, stop, timeout: float = 0.5):
    """RawMessages from ``source``, with None for each receive timeout (so the caller can
    look after its frames in flight); ends with the source or when ``stop()`` is true."""
    next_message = getattr(source, "next_message", None)
    if next_message is None:
        yield from source
        return
    while not stop():
        msg = next_message(timeout)
        if msg is None and (getattr(source, "done", False) or getattr(source, "finished", False)):
            return
        yield msg


def open_stream_source(config, connection: int) -> Any:
    """This connection's ZeroMQ or ASAP::O source."""
    opts = config.input
    if config.source == "zmq_sub":
        from readers.zmq_source import ZmqSubSource
        return ZmqSubSource(opts.zmq_input, tuple(opts.zmq_subscribe or ()),
                            serial_start=opts.serial_start)
    if config.source == "zmq_req":
        from readers.zmq_source import ZmqReqSource
        return ZmqReqSource(opts.zmq_input, opts.zmq_request, serial_start=opts.serial_start)
    if config.source == "asapo":
        from readers.asapo_source import AsapoSource
        return AsapoSource.from_options(opts)
    raise ValueError(f"no stream source for source kind '{config.source}'")
