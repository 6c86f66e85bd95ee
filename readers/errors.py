"""The one exception a malformed payload raises, so a source can log it and carry on."""

from __future__ import annotations


class PayloadError(ValueError):
    """A payload that cannot be turned into a Frame; the message is one line naming the frame."""

    def __init__(self, frame: str, what: str) -> None:
        self.frame = frame
        self.what = what
        super().__init__(f"{frame}: {what}".replace("\n", " "))


class SourceOptionError(ValueError):
    """Conflicting or missing input options (e.g. --zmq-input together with -i)."""
