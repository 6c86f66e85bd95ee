"""CBF files on disk (plain or ``.cbf.gz``): one 2-D slab per file, event ``//``.

Decoding is shared with streamed CBF payloads (readers.cbf_format.decode_cbf); this module adds
the file side and a byte-offset *encoder*, so CBF files can be written without extra packages.
"""

from __future__ import annotations

import gzip

import numba
import numpy as np

from crystream.geometry.detector import Detector, Panel
from readers.cbf_format import decode_cbf
from readers.errors import PayloadError


@numba.njit(cache=True, nogil=True)
def _byte_offset_encode(values: np.ndarray, out: np.ndarray) -> int:
    """CBF byte-offset compression of int64 ``values`` into ``out``; returns bytes written."""
    pos = 0
    prev = np.int64(0)
    for i in range(values.shape[0]):
        d = values[i] - prev
        prev = values[i]
        if -127 <= d <= 127:
            out[pos] = np.uint8(d & 0xFF)
            pos += 1
            continue
        out[pos] = 0x80
        pos += 1
        if -32767 <= d <= 32767:
            out[pos] = np.uint8(d & 0xFF)
            out[pos + 1] = np.uint8((d >> 8) & 0xFF)
            pos += 2
            continue
        out[pos] = 0x00
        out[pos + 1] = 0x80
        pos += 2
        if -2147483647 <= d <= 2147483647:
            for k in range(4):
                out[pos + k] = np.uint8((d >> (8 * k)) & 0xFF)
            pos += 4
            continue
        out[pos] = 0x00
        out[pos + 1] = 0x00
        out[pos + 2] = 0x00
        out[pos + 3] = 0x80
        pos += 4
        for k in range(8):
            out[pos + k] = np.uint8((d >> (8 * k)) & 0xFF)
        pos += 8
    return pos


def encode_cbf(image: np.ndarray, name: str = "image", gz: bool = False) -> bytes:
    """A minimal imgCIF file holding ``image`` (2-D integers) with byte-offset compression."""
    image = np.asarray(image)
    if image.ndim != 2 or image.dtype.kind not in "iu":
        raise ValueError("encode_cbf needs a 2-D integer array")
    n_ss, n_fs = image.shape
    values = image.astype(np.int64).ravel()
    buf = np.empty(values.size * 15 + 1, dtype=np.uint8)
    binary = buf[:_byte_offset_encode(values, buf)].tobytes()
    etype = "signed 32-bit integer" if image.dtype.itemsize <= 4 else "signed 64-bit integer"
    if image.dtype == np.uint32:
        etype = "unsigned 32-bit integer"
    head = (
        "###CBF: VERSION 1.5, written by crystream\r\n\r\n"
        f"data_{name}\r\n\r\n"
        "_array_data.data\r\n"
        ";\r\n"
        "--CIF-BINARY-FORMAT-SECTION--\r\n"
        "Content-Type: application/octet-stream;\r\n"
        '     conversions="x-CBF_BYTE_OFFSET"\r\n'
        "Content-Transfer-Encoding: BINARY\r\n"
        f"X-Binary-Size: {len(binary)}\r\n"
        "X-Binary-ID: 1\r\n"
        f'X-Binary-Element-Type: "{etype}"\r\n'
        "X-Binary-Element-Byte-Order: LITTLE_ENDIAN\r\n"
        f"X-Binary-Number-of-Elements: {values.size}\r\n"
        f"X-Binary-Size-Fastest-Dimension: {n_fs}\r\n"
        f"X-Binary-Size-Second-Dimension: {n_ss}\r\n"
        "X-Binary-Size-Padding: 0\r\n"
        "\r\n"
    ).encode("ascii")
    tail = b"\r\n--CIF-BINARY-FORMAT-SECTION----\r\n;\r\n\r\n"
    out = head + b"\x0c\x1a\x04\xd5" + binary + tail
    return gzip.compress(out) if gz else out


class CbfFileImage:
    """One CBF file: its whole image is the slab every panel is cut from."""

    format = "cbf"

    def __init__(self, path: str, label: str) -> None:
        self.path = path
        self.label = label
        try:
            with open(path, "rb") as fh:
                buf = fh.read()
        except OSError as exc:
            raise PayloadError(label, f"cannot read CBF file ({exc.strerror})") from None
        self.slab = decode_cbf(buf, label)

    def close(self) -> None:
        pass

    def __enter__(self) -> "CbfFileImage":
        return self

    def __exit__(self, *exc) -> None:
        pass

    def events(self, detector: Detector) -> list[str]:
        return ["//"]

    def _cut(self, arr: np.ndarray, panel: Panel, what: str) -> np.ndarray:
        n_ss, n_fs = arr.shape
        if panel.max_ss >= n_ss or panel.max_fs >= n_fs:
            raise PayloadError(self.label, f"{what} for panel {panel.name} (fs {panel.min_fs}-"
                               f"{panel.max_fs}, ss {panel.min_ss}-{panel.max_ss}) is outside"
                               f" the CBF image ({n_fs} x {n_ss})")
        return arr[panel.min_ss:panel.max_ss + 1, panel.min_fs:panel.max_fs + 1]

    def panels(self, detector: Detector, event: str | None) -> tuple[list[np.ndarray], bool]:
        out = [np.ascontiguousarray(self._cut(self.slab, p, "data"), dtype=np.float32)
               for p in detector.panels]
        return out, self.slab.dtype.kind == "f"

    def panel_array(self, panel: Panel, location: str, event: str | None, what: str,
                    dtype=None) -> np.ndarray:
        """A CBF has one array: a mask 'in the image file' would be the image itself."""
        raise PayloadError(self.label, f"{what} '{location}' cannot be read from a CBF image;"
                           " give a mask file")

    def header(self, location: str, event: str | None) -> int | float | str:
        raise PayloadError(self.label, f"Couldn't find header value '{location}': CBF files"
                           " have no header values (use a literal in the geometry)")

    def peaks(self, location: str, list_type: str, event: str | None = None):
        raise PayloadError(self.label, "CBF files carry no peak list")


def load_cbf_mask(path: str, panel: Panel) -> np.ndarray:
    """A panel's rectangle of a CBF mask file (for ``maskN_file = something.cbf``)."""
    image = CbfFileImage(path, path)
    return image._cut(image.slab, panel, "mask")
