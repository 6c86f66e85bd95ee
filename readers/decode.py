"""decode_message: one RawMessage + the geometry -> a Frame (pixels, bad masks, beam, headers, peaks)."""

from __future__ import annotations

import numpy as np

from crystream.frame import Frame
from crystream.geometry.detector import Detector
from readers.errors import PayloadError
from readers.headers import read_headers, resolve_beam
from readers.message import RawMessage
from readers.options import InputOptions
from readers.payload_peaks import read_payload_peaks
from readers.slab import check_panel_fits, fixed_indices, to_float32

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def detect_format(payload: bytes, metadata: dict | None = None) -> str | None:
    """Guess the payload format from its first bytes (and seedee from its metadata).

    HDF5 signature (at 0 or a power-of-two user-block offset), CBF magic or MIME section,
    gzip (taken to be a gzipped CBF), msgpack map/array type byte, seedee meta in metadata.
    """
    if metadata and "_data_format" in metadata:
        return "seedee"
    head = bytes(payload[:8])
    if head == HDF5_SIGNATURE:
        return "hdf5"
    offset = 512
    while offset + 8 <= min(len(payload), 1 << 20):
        if bytes(payload[offset:offset + 8]) == HDF5_SIGNATURE:
            return "hdf5"
        offset *= 2
    if head.startswith(b"###CBF") or b"--CIF-BINARY-FORMAT-SECTION--" in bytes(payload[:65536]):
        return "cbf"
    if head[:2] == b"\x1f\x8b":
        return "cbf"
    if head and (0x80 <= head[0] <= 0x9f or head[0] in (0xdc, 0xdd, 0xde, 0xdf)):
        return "msgpack"
    return None


def open_payload(fmt: str, payload: bytes, metadata: dict, label: str):
    """The format's reader object (array/header/peaks lookups) for one payload."""
    if fmt == "msgpack":
        from readers.msgpack_format import MsgpackPayload
        return MsgpackPayload(payload, label)
    if fmt == "hdf5":
        from readers.hdf5_format import Hdf5Payload
        return Hdf5Payload(payload, label)
    if fmt == "seedee":
        from readers.seedee_format import SeedeePayload
        return SeedeePayload(payload, metadata, label)
    if fmt == "cbf":
        from readers.cbf_format import CbfPayload
        return CbfPayload(payload, label)
    raise PayloadError(label, f"unknown data format '{fmt}'")


def _read(reader, array, index: tuple) -> np.ndarray:
    """array[index] for numpy arrays; through the reader (errors -> PayloadError) for HDF5."""
    if isinstance(array, np.ndarray):
        return array[index]
    return reader.read(array, index)


def _panel_pixels(reader, detector: Detector, label: str, fmt: str):
    """float32 pixels per panel; each slab (plane of a stack) is read or decoded once."""
    data = []
    arrays: dict[str, object] = {}
    planes: dict[tuple, np.ndarray] = {}
    for panel in detector.panels:
        fixed = fixed_indices(panel, label, fmt)
        where = f"panel {panel.name} data '{panel.data}'"
        if panel.data not in arrays:
            arrays[panel.data] = reader.array(panel.data)
        arr = arrays[panel.data]
        index = check_panel_fits(arr, fixed, panel, label, where)
        if isinstance(arr, np.ndarray):
            pixels = arr[index]
        else:  # HDF5: one read of the whole plane beats many small hyperslab reads
            key = (panel.data, fixed)
            if key not in planes:
                planes[key] = _read(reader, arr, fixed + (slice(None), slice(None)))
            pixels = planes[key][index[len(fixed):]]
        data.append(to_float32(pixels))
    return data


def _payload_masks(reader, detector: Detector, label: str, fmt: str) -> list[list[np.ndarray | None]]:
    """Masks stored in the payload itself (a mask without mask_file); CrystFEL crashes on these."""
    out = []
    for panel in detector.panels:
        arrays = []
        for mask in panel.masks:
            if mask.file is not None:
                arrays.append(None)  # an external file: the bad-pixel module loads it
                continue
            fixed = fixed_indices(panel, label, fmt)
            where = f"panel {panel.name} mask '{mask.data}'"
            arr = reader.array(mask.data)
            if arr.ndim == 2:  # one mask for every frame/module of a stack
                fixed = ()
            index = check_panel_fits(arr, fixed, panel, label, where)
            arrays.append(np.ascontiguousarray(_read(reader, arr, index)))
        out.append(arrays)
    return out


def _bad_masks(detector: Detector, data: list[np.ndarray] | None, masks: list,
               options: InputOptions, beam: tuple[float, float, float, float],
               label: str) -> list[np.ndarray]:
    """Bad-pixel masks by the geometry's rules (non-finite, flags, masks, regions)."""
    from crystream.geometry.badpixels import bad_pixel_masks
    from readers.files import _mask_loader  # HDF5 or CBF mask files, by name
    wavelength, clen, sx, sy = beam
    try:
        return bad_pixel_masks(detector, data, masks, no_mask_data=options.no_mask_data,
                               shift_x=sx, shift_y=sy, clen=clen, wavelength=wavelength,
                               mask_loader=_mask_loader)
    except (OSError, ValueError, KeyError) as exc:
        raise PayloadError(label, f"bad-pixel masks: {exc}") from None


def decode_message(message: RawMessage, detector: Detector, options: InputOptions) -> Frame:
    """Turn one received message into a Frame; any malformed payload raises PayloadError."""
    label = message.label
    if message.payload is None:
        if message.path is None:
            raise PayloadError(label, "message has neither a payload nor a file path")
        from readers import files  # file input is decoded by the file reader
        return files.decode_file(message, detector, options)
    payload = message.payload
    if isinstance(payload, (bytearray, memoryview)):
        payload = bytes(payload)
    fmt = options.data_format or detect_format(payload, message.metadata)
    if fmt is None:
        raise PayloadError(label, f"cannot tell the payload format from its first bytes "
                                  f"{bytes(payload[:8])!r} ({len(payload)} bytes); use --data-format")
    reader = open_payload(fmt, payload, message.metadata, label)
    try:
        data = None if options.no_image_data else _panel_pixels(reader, detector, label, fmt)
        headers = read_headers(reader, detector, options.copy_header, label)
        wavelength, clen, sx, sy = resolve_beam(detector, headers, label)
        masks = ([[] for _ in detector.panels] if options.no_mask_data
                 else _payload_masks(reader, detector, label, fmt))
        bad = _bad_masks(detector, data, masks, options, (wavelength, clen, sx, sy), label)
        peaks = None
        if options.payload_peaks:
            peaks = read_payload_peaks(reader, detector, options.peaks,
                                       options.half_pixel_shift, label)
    finally:
        close = getattr(reader, "close", None)
        if close is not None:
            close()
    return Frame(serial=message.serial, filename=message.filename, event=message.event,
                 data=data, bad=bad, wavelength=wavelength,
                 clen=clen, detector_shift_x=sx, detector_shift_y=sy, headers=headers,
                 peaks=peaks, source_id=message.ack_id)

