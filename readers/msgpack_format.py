"""MsgPack payloads (OnDA/OM layout): a map holding msgpack-numpy arrays, headers and peaks."""

from __future__ import annotations

import msgpack
import numpy as np

from readers.errors import PayloadError

# dtypes accepted for image arrays: every integer and float size, either byte order.
_KINDS = ("u", "i", "f")


def _key(k: object) -> str | None:
    if isinstance(k, str):
        return k
    if isinstance(k, (bytes, bytearray)):
        return bytes(k).decode("utf-8", "surrogateescape")
    return None


def _as_map(obj: dict) -> dict[str, object]:
    """A map with str keys (bin keys decoded); the first of duplicate keys wins, as in CrystFEL."""
    out: dict[str, object] = {}
    for k, v in obj.items():
        name = _key(k)
        if name is not None and name not in out:
            out[name] = v
    return out


def unpack_main(buf: bytes, label: str) -> dict[str, object]:
    """The main map: the first msgpack object, or the first element of a top-level array."""
    try:
        obj = msgpack.unpackb(buf, raw=False, strict_map_key=False,
                              unicode_errors="surrogateescape")
    except msgpack.ExtraData as exc:  # trailing bytes are ignored, as CrystFEL does
        obj = exc.unpacked
    except Exception as exc:  # noqa: BLE001 - any unpack failure is a bad payload
        raise PayloadError(label, f"MessagePack unpack failed ({type(exc).__name__}: {exc})") from None
    if isinstance(obj, (list, tuple)):
        if not obj:
            raise PayloadError(label, "No array elements in MessagePack object")
        obj = obj[0]
        if not isinstance(obj, dict):
            raise PayloadError(label, "first element of the MessagePack array is not a map")
    if not isinstance(obj, dict):
        raise PayloadError(label, f"MessagePack data is a {type(obj).__name__}, not a map or array")
    return _as_map(obj)


class MsgpackPayload:
    """Lookups into one unpacked MsgPack frame (exact key matching, str or bin keys)."""

    format = "msgpack"

    def __init__(self, buf: bytes, label: str) -> None:
        self.label = label
        self.main = unpack_main(buf, label)

    def _get(self, name: str) -> object:
        if name not in self.main:
            raise PayloadError(self.label, f"Couldn't find '{name}' in MessagePack object")
        return self.main[name]

    def array(self, name: str) -> np.ndarray:
        """The msgpack-numpy array under ``name`` (2-D slab or 3-D panel stack)."""
        return self._numpy(name, self._get(name), (2, 3))

    def _numpy(self, name: str, obj: object, ranks: tuple[int, ...]) -> np.ndarray:
        """Decode a msgpack-numpy map {type, shape, data}, checking data length against shape."""
        if not isinstance(obj, dict):
            raise PayloadError(self.label, f"MessagePack object '{name}' is not a map")
        m = _as_map(obj)
        for key in ("type", "shape", "data"):
            if key not in m:
                raise PayloadError(self.label, f"'{name}': data '{key}' not found")
        dtype_s = _key(m["type"])
        if dtype_s is None:
            raise PayloadError(self.label, f"'{name}': data 'type' isn't a string")
        try:
            dtype = np.dtype(dtype_s)
        except TypeError:
            raise PayloadError(self.label, f"'{name}': unrecognised data type '{dtype_s}'") from None
        if dtype.kind not in _KINDS or dtype.itemsize not in (1, 2, 4, 8):
            raise PayloadError(self.label, f"'{name}': unsupported data type '{dtype_s}'")
        shape = m["shape"]
        if not isinstance(shape, (list, tuple)):
            raise PayloadError(self.label, f"'{name}': data 'shape' isn't an array")
        if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
            raise PayloadError(self.label, f"'{name}': data 'shape' {list(shape)!r} is not a list"
                                           " of non-negative integers")
        if len(shape) not in ranks:
            raise PayloadError(self.label, f"'{name}': data 'shape' has wrong number of"
                                           f" dimensions ({len(shape)}, expected"
                                           f" {' or '.join(map(str, ranks))})")
        data = m["data"]
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise PayloadError(self.label, f"'{name}': data 'data' isn't binary")
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if len(data) != expected:
            raise PayloadError(self.label, f"'{name}': data is {len(data)} bytes but shape"
                                           f" {list(shape)} of {dtype_s} needs {expected}")
        return np.frombuffer(data, dtype=dtype).reshape(shape)

    def header(self, name: str) -> int | float | str:
        """A header value from the main map: int, float or (1-16384 byte) string."""
        v = self._get(name)
        if isinstance(v, bool) or not isinstance(v, (int, float, str)):
            raise PayloadError(self.label, f"header '{name}' has unsupported MsgPack type"
                                           f" {type(v).__name__}")
        if isinstance(v, str) and not 1 <= len(v.encode("utf-8", "surrogateescape")) <= 16384:
            raise PayloadError(self.label, f"header '{name}': string is empty or too long")
        return v

    def peaks(self, location: str, list_type: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Slab (fs, ss, intensity) from a map of equal-length arrays under ``location``."""
        obj = self.main.get(location)
        if obj is None:
            raise PayloadError(self.label, f"Peak list object not found ('{location}')")
        if not isinstance(obj, dict):
            raise PayloadError(self.label, f"peak list '{location}' has wrong structure (not a map)")
        m = _as_map(obj)
        cols = []
        for key in ("fs", "ss", "intensity"):
            col = m.get(key)
            if isinstance(col, dict):  # a msgpack-numpy array is also accepted
                col = self._numpy(f"{location}/{key}", col, (1,))
            if not isinstance(col, (list, tuple, np.ndarray)):
                raise PayloadError(self.label, f"peak list '{location}' has wrong structure"
                                               f" ('{key}' missing or not an array)")
            try:
                arr = np.asarray(col, dtype=np.float64)
            except (TypeError, ValueError):
                raise PayloadError(self.label, f"peak list '{location}': '{key}' holds"
                                               " non-numeric values") from None
            if arr.ndim != 1:
                raise PayloadError(self.label, f"peak list '{location}': '{key}' is not 1-D")
            cols.append(arr)
        if not len(cols[0]) == len(cols[1]) == len(cols[2]):
            raise PayloadError(self.label, f"peak list '{location}': arrays do not have equal"
                                           f" size (fs {len(cols[0])}, ss {len(cols[1])},"
                                           f" intensity {len(cols[2])})")
        return cols[0], cols[1], cols[2]
