"""ZeroMQ sources: SUB (prefix-filtered broadcast) and REQ (ask for each frame, lazy pirate).

Both connect, never bind. Messages may be multipart: [topic, payload] (OnDA), [payload, seedee
meta] or [topic, payload, seedee meta]; a single part may start with a subscribed topic.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Sequence

import zmq

from readers.message import RawMessage, Source

log = logging.getLogger(__name__)


def _as_bytes(prefix: str | bytes) -> bytes:
    return prefix if isinstance(prefix, bytes) else prefix.encode("utf-8")


def _seedee_meta(part: bytes) -> dict | None:
    """Metadata carried by a last part: the bare seedee meta JSON, or the ASAP::O
    user-metadata form {"_data_format": "<seedee meta>", headers...}; None otherwise."""
    if not part.startswith(b"{") or len(part) > 1 << 20:
        return None
    try:
        meta = json.loads(part)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(meta, dict):
        return None
    if meta.get("protocol") == "seedee":
        return {"_data_format": part.decode("utf-8")}
    if isinstance(meta.get("_data_format"), str):
        return meta
    return None


def split_parts(parts: list[bytes], prefixes: Sequence[bytes] = ()) -> tuple[bytes, bytes, dict]:
    """(topic, payload, metadata) of one received message, multipart or single-part."""
    metadata: dict = {}
    if len(parts) >= 2:
        meta = _seedee_meta(parts[-1])
        if meta is not None:
            metadata.update(meta)
            parts = parts[:-1]
    if len(parts) >= 2:
        topic, payload = parts[0], parts[1]
        if len(parts) > 2:
            metadata["extra_parts"] = len(parts) - 2
    else:
        topic, payload = b"", parts[0]
        match = max((p for p in prefixes if p and payload.startswith(p)), key=len, default=b"")
        if match:
            topic, payload = match, payload[len(match):]
    if topic:
        metadata["topic"] = topic.decode("utf-8", "replace")
    return topic, payload, metadata


class _ZmqSource(Source):
    """Shared parts: lazy socket creation (picklable until first use), serial numbering."""

    kind = zmq.SUB

    def __init__(self, address: str, *, serial_start: int = 1, serial_step: int = 1,
                 no_data_timeout: float | None = None) -> None:
        self.address = address
        self.serial = serial_start
        self.serial_step = serial_step
        self.no_data_timeout = no_data_timeout
        self._context: zmq.Context | None = None
        self._socket: zmq.Socket | None = None
        self._end_since = time.monotonic()  # nothing received yet
        self.received = 0

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_context"] = state["_socket"] = None
        return state

    def _connect(self) -> zmq.Socket:
        if self._context is None:
            self._context = zmq.Context()
        sock = self._context.socket(self.kind)
        sock.setsockopt(zmq.LINGER, 0)
        self._configure(sock)
        try:
            sock.connect(self.address)
        except zmq.ZMQError as exc:
            sock.close()
            raise ConnectionError(f"ZMQ connection to '{self.address}' failed: {exc}") from None
        return sock

    def _configure(self, sock: zmq.Socket) -> None:
        pass

    def _message(self, parts: list[bytes], prefixes: Sequence[bytes] = ()) -> RawMessage:
        topic, payload, metadata = split_parts(parts, prefixes)
        serial = self.serial
        self.serial += self.serial_step
        self.received += 1
        self._mark(False)
        return RawMessage(serial=serial, filename="ZMQdata", event=f"//{serial}", payload=payload,
                          metadata=metadata)

    def _idle(self) -> None:
        if self._end_since is None:
            self._end_since = time.monotonic()

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close(linger=0)
            self._socket = None
        if self._context is not None:
            self._context.term()
            self._context = None


class ZmqSubSource(_ZmqSource):
    """SUB socket with one subscription per prefix; no prefixes means everything."""

    kind = zmq.SUB

    def __init__(self, address: str, prefixes: Sequence[str | bytes] = (), **kwargs) -> None:
        super().__init__(address, **kwargs)
        if len(prefixes) > 256:
            raise ValueError("Too many ZMQ subscriptions (at most 256).")
        self.prefixes = tuple(_as_bytes(p) for p in prefixes)

    def _configure(self, sock: zmq.Socket) -> None:
        for prefix in self.prefixes or (b"",):
            sock.setsockopt(zmq.SUBSCRIBE, prefix)

    def next_message(self, timeout: float | None = 3.0) -> RawMessage | None:
        """The next published message, or None after ``timeout`` seconds without one."""
        if self._socket is None:
            self._socket = self._connect()
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            ms = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            if not self._socket.poll(ms, zmq.POLLIN):
                self._idle()
                return None
            parts = self._socket.recv_multipart()
            if len(parts) == 1 and parts[0] in self.prefixes:
                continue  # a bare topic frame sent as its own message: nothing to decode
            return self._message(parts, self.prefixes)

    def __repr__(self) -> str:
        return f"ZmqSubSource({self.address!r}, prefixes={self.prefixes!r})"


class ZmqReqSource(_ZmqSource):
    """REQ socket sending ``request`` for every frame.

    Lazy-pirate retry without losing frames: when no reply comes within ``request_timeout``
    seconds the request is sent again on the same *relaxed* REQ socket (ZMQ_REQ_RELAXED). A
    restarted sender gets the new request through ZeroMQ's automatic reconnect, so the run
    does not hang (CrystFEL waits forever on a lost request); a sender that is merely quiet
    (OM answers only when a hit comes) still answers the earlier request on the same
    connection, and that reply is accepted, so no frame goes to a closed socket.
    A reply slower than ``request_timeout`` can be lost when the request is sent again, so the
    default (10 s) is far above any live sender's answer time.
    """

    kind = zmq.REQ

    def __init__(self, address: str, request: str | bytes, *, request_timeout: float = 10.0,
                 **kwargs) -> None:
        super().__init__(address, **kwargs)
        self.request = _as_bytes(request)
        self.request_timeout = request_timeout
        self._sent_at: float | None = None
        self.retries = 0

    def _configure(self, sock: zmq.Socket) -> None:
        sock.setsockopt(zmq.REQ_RELAXED, 1)  # may send again while a reply is outstanding

    def _send(self) -> None:
        if self._socket is None:
            self._socket = self._connect()
        try:
            self._socket.send(self.request, zmq.NOBLOCK)
        except zmq.Again:  # no pipe ready yet: try again at the next timeout
            pass
        self._sent_at = time.monotonic()

    def next_message(self, timeout: float | None = 3.0) -> RawMessage | None:
        """Ask for a frame (once per outstanding request) and wait at most ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._sent_at is None:
                self._send()
            now = time.monotonic()
            wait = self._sent_at + self.request_timeout - now
            if deadline is not None:
                wait = min(wait, deadline - now)
            if self._socket.poll(max(0, int(wait * 1000)), zmq.POLLIN):
                parts = self._socket.recv_multipart()
                self._sent_at = None
                return self._message(parts)
            now = time.monotonic()
            if now - self._sent_at >= self.request_timeout:
                self.retries += 1
                log.info("no reply from %s within %.1f s; asking again", self.address,
                         self.request_timeout)
                self._send()
            if deadline is not None and now >= deadline:
                self._idle()
                return None

    def __repr__(self) -> str:
        return f"ZmqReqSource({self.address!r}, request={self.request!r})"
