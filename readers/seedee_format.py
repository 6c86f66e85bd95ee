"""Seedee payloads: a seedee buffer plus its JSON meta (ASAP::O user metadata or a ZeroMQ frame)."""

from __future__ import annotations

import json

import numpy as np
import seedee

from readers.errors import PayloadError

META_KEY = "_data_format"


def seedee_meta(metadata: dict, label: str) -> str:
    """The seedee meta JSON string carried as metadata['_data_format']."""
    if not metadata or META_KEY not in metadata:
        raise PayloadError(label, "seedee payload without metadata: need '_data_format' in the"
                                  " ASAP::O user metadata or a second ZeroMQ frame")
    meta = metadata[META_KEY]
    if isinstance(meta, dict):  # already parsed by someone upstream
        meta = json.dumps(meta)
    if not isinstance(meta, str):
        raise PayloadError(label, "_data_format isn't a string")
    return meta


class SeedeePayload:
    """One seedee array (2-D slab or 3-D stack); headers come from the message metadata."""

    format = "seedee"

    def __init__(self, buf: bytes, metadata: dict, label: str) -> None:
        self.label = label
        self.metadata = metadata or {}
        meta = seedee_meta(self.metadata, label)
        try:
            info = json.loads(meta)
            ndims = int(info["array"]["ndims"])
        except (ValueError, KeyError, TypeError):
            raise PayloadError(label, "seedee metadata is not valid seedee JSON") from None
        if ndims not in (2, 3):
            raise PayloadError(label, f"Seedee data has unexpected number of dimensions ({ndims},"
                                      " expected 2 or 3)")
        try:
            self._array = seedee.deserialize(buf, meta)
        except (ValueError, TypeError, RuntimeError) as exc:
            raise PayloadError(label, f"seedee deserialisation failed ({exc})") from None
        if self._array.dtype.kind not in "uif":
            raise PayloadError(label, f"unsupported seedee data type {self._array.dtype.str}")

    def array(self, name: str) -> np.ndarray:
        """The one array of the payload; the panel's data path is ignored (as in CrystFEL)."""
        return self._array

    def header(self, name: str) -> int | float | str:
        """A header value from the ASAP::O user metadata (CrystFEL has none for seedee)."""
        if name not in self.metadata or name == META_KEY:
            raise PayloadError(self.label, f"Couldn't find header value '{name}' in the seedee"
                                           " message metadata")
        v = self.metadata[name]
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            raise PayloadError(self.label, f"header '{name}' in the metadata is a"
                                           f" {type(v).__name__}, not a number or string")
        return v

    def peaks(self, location: str, list_type: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise PayloadError(self.label, "seedee payloads carry no peak list")
