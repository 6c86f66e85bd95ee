"""CBF payloads (plain or gzipped): the binary section of an imgCIF file, byte-offset or none.

``decode_cbf(buf, where)`` is shared with file input (readers/cbf_file.py).
"""

from __future__ import annotations

import gzip
import re
import zlib

import numba
import numpy as np

from readers.errors import PayloadError

_BINARY_START = b"\x0c\x1a\x04\xd5"
_SECTION = b"--CIF-BINARY-FORMAT-SECTION--"
_ELEMENT_TYPES = {
    "signed 8-bit integer": np.int8, "unsigned 8-bit integer": np.uint8,
    "signed 16-bit integer": np.int16, "unsigned 16-bit integer": np.uint16,
    "signed 32-bit integer": np.int32, "unsigned 32-bit integer": np.uint32,
    "signed 64-bit integer": np.int64, "unsigned 64-bit integer": np.uint64,
    "signed 32-bit real IEEE": np.float32, "signed 64-bit real IEEE": np.float64,
}


@numba.njit(cache=True, nogil=True)
def _byte_offset(src: np.ndarray, out: np.ndarray) -> int:
    """Undo CBF byte-offset compression; returns the number of bytes consumed, -1 if truncated."""
    n = out.shape[0]
    pos = 0
    value = np.int64(0)
    size = src.shape[0]
    for i in range(n):
        if pos >= size:
            return -1
        d = np.int64(np.int8(src[pos]))
        pos += 1
        if d == -128:
            if pos + 2 > size:
                return -1
            d = np.int64(np.int16(np.uint16(src[pos]) | (np.uint16(src[pos + 1]) << 8)))
            pos += 2
            if d == -32768:
                if pos + 4 > size:
                    return -1
                u = np.uint32(0)
                for k in range(4):
                    u |= np.uint32(src[pos + k]) << np.uint32(8 * k)
                d = np.int64(np.int32(u))
                pos += 4
                if d == -2147483648:
                    if pos + 8 > size:
                        return -1
                    w = np.uint64(0)
                    for k in range(8):
                        w |= np.uint64(src[pos + k]) << np.uint64(8 * k)
                    d = np.int64(w)
                    pos += 8
        value += d
        out[i] = value
    return pos


def _mime_headers(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for m in re.finditer(r"^([A-Za-z][\w-]*):(.*(?:\n[ \t]+.*)*)", text, re.M):
        out[m.group(1).lower()] = " ".join(m.group(2).split())
    return out


def decode_cbf(buf: bytes, where: str) -> np.ndarray:
    """The 2-D (ss, fs) image of a CBF (gzipped or not); ``where`` names it in errors."""
    if buf[:2] == b"\x1f\x8b":
        try:
            buf = gzip.decompress(buf)
        except (OSError, EOFError, zlib.error) as exc:
            raise PayloadError(where, f"corrupt gzipped CBF ({exc})") from None
    sec = buf.find(_SECTION)
    start = buf.find(_BINARY_START, sec if sec >= 0 else 0)
    if sec < 0 or start < 0:
        raise PayloadError(where, "not a CBF: no binary section (--CIF-BINARY-FORMAT-SECTION--)")
    head = _mime_headers(buf[sec + len(_SECTION):start].decode("ascii", "replace"))
    try:
        n_fs = int(head["x-binary-size-fastest-dimension"])
        n_ss = int(head.get("x-binary-size-second-dimension", "1"))
        n_el = int(head.get("x-binary-number-of-elements", n_fs * n_ss))
        size = int(head["x-binary-size"])
    except (KeyError, ValueError) as exc:
        raise PayloadError(where, f"CBF binary header lacks or garbles {exc}") from None
    if n_el != n_fs * n_ss or n_fs <= 0 or n_ss <= 0:
        raise PayloadError(where, f"CBF has {n_el} elements but dimensions {n_fs} x {n_ss}")
    conversion = head.get("content-type", "")
    etype = head.get("x-binary-element-type", '"signed 32-bit integer"').strip('"')
    if etype not in _ELEMENT_TYPES:
        raise PayloadError(where, f"unsupported CBF element type '{etype}'")
    order = head.get("x-binary-element-byte-order", "LITTLE_ENDIAN").upper()
    raw = np.frombuffer(buf, dtype=np.uint8, count=min(size, len(buf) - start - 4),
                        offset=start + 4)
    if len(raw) < size:
        raise PayloadError(where, f"CBF binary section truncated ({len(raw)} of {size} bytes)")
    if "byte_offset" in conversion.lower():
        if n_el > size:  # every element takes at least one byte
            raise PayloadError(where, f"CBF claims {n_el} elements in {size} bytes")
        out = np.empty(n_el, dtype=np.int64)
        if _byte_offset(raw, out) < 0:
            raise PayloadError(where, "CBF byte-offset data ends before all"
                                      f" {n_el} elements are decoded")
        dtype = np.dtype(_ELEMENT_TYPES[etype])
        return out.astype(dtype if dtype.kind != "f" else np.float64).reshape(n_ss, n_fs)
    if "none" in conversion.lower() or "conversions" not in conversion.lower():
        dtype = np.dtype(_ELEMENT_TYPES[etype]).newbyteorder("<" if "LITTLE" in order else ">")
        if size < n_el * dtype.itemsize:
            raise PayloadError(where, f"CBF binary section has {size} bytes, needs"
                                      f" {n_el * dtype.itemsize}")
        return np.frombuffer(raw[:n_el * dtype.itemsize].tobytes(), dtype=dtype).reshape(n_ss, n_fs)
    raise PayloadError(where, f"unsupported CBF compression ({conversion})")


class CbfPayload:
    """One CBF image as a single slab; CBF carries no header values CrystFEL reads."""

    format = "cbf"

    def __init__(self, buf: bytes, label: str) -> None:
        self.label = label
        self._array = decode_cbf(buf, label)

    def array(self, name: str) -> np.ndarray:
        """The image; the panel data path is ignored (a CBF holds one array)."""
        return self._array

    def header(self, name: str) -> int | float | str:
        raise PayloadError(self.label, f"Couldn't find header value '{name}': CBF payloads have"
                                       " no header values (use a literal in the geometry)")

    def peaks(self, location: str, list_type: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise PayloadError(self.label, "CBF payloads carry no peak list")
