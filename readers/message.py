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
