"""What a source hands to the decoder: the bytes of one frame and where they came from."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RawMessage:
    """One frame as received, before decoding.

    ``payload`` holds in-memory bytes (ZeroMQ, ASAP::O); ``path`` a file to read instead.
    ``metadata`` carries what arrived beside the payload (ASAP::O user metadata, a ZeroMQ
    topic or seedee meta frame); ``ack_id`` is what the source needs to acknowledge it.
    """

    serial: int
    filename: str
    event: str = "//"
    payload: bytes | None = None
    path: str | None = None
    metadata: dict = field(default_factory=dict)
    ack_id: object = None

    @property
    def label(self) -> str:
        """How error messages name this frame: 'filename event (serial n)'."""
        return f"{self.filename} {self.event} (serial {self.serial})"


class Source:
    """What every source offers: ``next_message(timeout)``, ``acknowledge``, ``close``.

    ``next_message`` waits at most ``timeout`` seconds and returns None when nothing came.
    ``at_end`` says the source saw the end of its data at the last call; ``done`` that it has
    been at the end for longer than its ``no_data_timeout`` (None: never done by itself).
    """

    no_data_timeout: float | None = None
    _end_since: float | None = None

    def next_message(self, timeout: float | None = None) -> RawMessage | None:  # pragma: no cover
        raise NotImplementedError

    def acknowledge(self, message: RawMessage) -> None:
        """Confirm that a message's chunk is written (only ASAP::O does anything)."""

    def ack(self, message: RawMessage) -> None:
        """Alias of acknowledge (the flow's ingest actor calls ``ack``)."""
        self.acknowledge(message)

    def close(self) -> None:  # pragma: no cover
        raise NotImplementedError

    def _mark(self, at_end: bool) -> None:
        import time
        if not at_end:
            self._end_since = None
        elif self._end_since is None:
            self._end_since = time.monotonic()

    @property
    def at_end(self) -> bool:
        return self._end_since is not None

    @property
    def end_since(self) -> float | None:
        """time.monotonic() when the source last reached the end, None while data flows."""
        return self._end_since

    @property
    def done(self) -> bool:
        import time
        return (self.no_data_timeout is not None and self._end_since is not None
                and time.monotonic() - self._end_since >= self.no_data_timeout)

    @property
    def finished(self) -> bool:
        """Alias of ``done``: the flow stops pulling from a finished source."""
        return self.done

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
