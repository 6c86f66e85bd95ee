"""File input (``-i LIST``): the list file, a source of RawMessages, and Frame loading.

``FileListSource`` expands list entries without an event to every event of the file (3-D
stacks, panel stacks, ``%`` path placeholders) and numbers frames from ``--serial-start``.
A file that cannot be opened is logged as one line naming it and skipped; the source goes on.
``load_frame`` reads one (filename, event): pixels (float32), headers, beam, masks, bad pixels.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator

import numpy as np

from crystream.frame import Frame
from crystream.geometry.badpixels import bad_pixel_masks, load_hdf5_mask
from crystream.geometry.detector import Detector, MaskSpec, Panel
from readers.errors import PayloadError
from readers.message import RawMessage

log = logging.getLogger(__name__)

CBF_SUFFIXES = (".cbf", ".cbf.gz")


def _list_entry(line: str) -> tuple[str, str | None] | None:
    line = line.strip()
    if not line:
        return None
    head, sep, last = line.rpartition(" ")
    if sep and "//" in last and head.strip():
        return head.strip(), last
    return line, None


def iter_file_list(path: str) -> Iterator[tuple[str, str | None]]:
    """(filename, event or None) per non-blank line, read lazily (``-`` = standard input,
    so names piped in while a run goes on are processed as they arrive).

    The event is the last space-separated token, and only if it contains ``//``.
    """
    if path == "-":
        for line in sys.stdin:
            entry = _list_entry(line)
            if entry is not None:
                yield entry
        return
    try:
        fh = open(path, encoding="utf-8", errors="replace")
    except OSError as exc:
        raise OSError(f"{path}: cannot read input list ({exc.strerror})") from None
    with fh:
        for line in fh:
            entry = _list_entry(line)
            if entry is not None:
                yield entry


def read_file_list(path: str) -> list[tuple[str, str | None]]:
    """The whole list at once: (filename, event or None) per non-blank line."""
    return list(iter_file_list(path))


def wait_for_file(path: str, timeout: float, poll: float = 0.2) -> bool:
    """--wait-for-file: wait until ``path`` exists; ``timeout`` s (0: no wait, < 0: forever)."""
    if timeout == 0 or os.path.exists(path):
        return os.path.exists(path)
    deadline = None if timeout < 0 else time.monotonic() + timeout
    while not os.path.exists(path):
        if deadline is not None and time.monotonic() >= deadline:
            return False
        time.sleep(poll)
    return True


def is_cbf(filename: str) -> bool:
    return filename.lower().endswith(CBF_SUFFIXES)


def open_image(path: str, label: str):
    """The file reader for ``path``: CBF by extension, HDF5 otherwise."""
    if is_cbf(path):
        from readers.cbf_file import CbfFileImage
        return CbfFileImage(path, label)
    from readers.hdf5_file import Hdf5FileImage
    return Hdf5FileImage(path, label)


def list_events(path: str, detector: Detector) -> list[str]:
    """Every event in one file (``//`` for a single frame; a CBF is never opened for this)."""
    if is_cbf(path):
        return ["//"]
    with open_image(path, path) as image:
        return image.events(detector)


class FileListSource:
    """Iterates RawMessages (payload None, ``path`` set) for every frame of a file list.

    ``errors`` collects the one-line messages of files that could not be expanded.
    ``wait_for_file`` (s; 0 no wait, < 0 forever) waits for each file to appear first.
    ``prefix`` (-x/--prefix) is put in front of every name in the list, as indexamajig does.
    """

    def __init__(self, list_path: str, detector: Detector, serial_start: int = 1,
                 base_dir: str | None = None, wait_for_file: float = 0.0,
                 prefix: str = "") -> None:
        self.list_path = list_path
        self.prefix = prefix
        self.detector = detector
        self.serial_start = serial_start
        self.base_dir = base_dir
        self.wait_for_file = wait_for_file
        self.errors: list[str] = []

    def _path(self, filename: str) -> str:
        if self.base_dir and not os.path.isabs(filename):
            return os.path.join(self.base_dir, filename)
        return filename

    def __iter__(self) -> Iterator[RawMessage]:
        serial = self.serial_start
        for filename, event in iter_file_list(self.list_path):
            filename = self.prefix + filename
            path = self._path(filename)
            if self.wait_for_file and not wait_for_file(path, self.wait_for_file):
                msg = f"{filename}: file did not appear within {self.wait_for_file:g} s"
                self.errors.append(msg)
                log.error("%s", msg)
                continue
            if event is not None:
                events = [event]
            else:
                try:
                    events = list_events(path, self.detector)
                except (PayloadError, OSError, ValueError) as exc:
                    msg = str(exc) if isinstance(exc, PayloadError) else f"{filename}: {exc}"
                    self.errors.append(msg)
                    log.error("%s", msg)
                    continue
            for ev in events:
                yield RawMessage(serial=serial, filename=filename, event=ev, payload=None,
                                 path=path)
                serial += 1


def _mask_loader(path: str, spec: MaskSpec, panel: Panel) -> np.ndarray:
    if is_cbf(path):
        from readers.cbf_file import load_cbf_mask
        return load_cbf_mask(path, panel)
    return load_hdf5_mask(path, spec, panel)


def load_frame(filename: str, event: str | None, detector: Detector, serial: int = 1, *,
               path: str | None = None, no_image_data: bool = False,
               no_mask_data: bool = False, copy_header: tuple[str, ...] = (),
               highres: float | None = None) -> Frame:
    """One frame of a file: float32 panels, headers, beam, bad-pixel and saturation maps.

    ``highres`` is in metres. Raises PayloadError("<file> <event>: <what>") for a broken file.
    """
    event = event or "//"
    label = f"{filename} {event}"
    with open_image(path or filename, label) as image:
        if no_image_data:
            data = [np.zeros(p.shape, dtype=np.float32) for p in detector.panels]
        else:
            data, _ = image.panels(detector, event)
        headers: dict[str, object] = {}
        for name in list(detector.header_locations()) + list(copy_header):
            if name not in headers:
                headers[name] = image.header(name, event)
        try:
            wavelength, clen, sx, sy = detector.resolve_beam(headers)
        except (KeyError, ValueError) as exc:
            raise PayloadError(label, f"failed to read beam/geometry values:"
                               f" {exc.args[0] if exc.args else exc}") from None
        masks: list[list[np.ndarray | None]] = []
        if not no_mask_data:
            for p in detector.panels:
                masks.append([None if m.file is not None else
                              image.panel_array(p, m.data, event, f"mask '{m.data}'")
                              for m in p.masks])
        try:
            bad = bad_pixel_masks(detector, None if no_image_data else data, masks,
                                  no_mask_data=no_mask_data, shift_x=sx, shift_y=sy,
                                  highres=highres, clen=clen, wavelength=wavelength,
                                  mask_loader=_mask_loader)
        except (OSError, ValueError) as exc:
            raise PayloadError(label, f"bad-pixel masks: {exc}") from None
        saturation = _saturation_maps(image, detector, event)
    return Frame(serial=serial, filename=filename, event=event,
                 data=None if no_image_data else data, bad=bad, wavelength=wavelength,
                 clen=clen, detector_shift_x=sx, detector_shift_y=sy, headers=headers,
                 saturation=saturation)


def _saturation_maps(image, detector: Detector, event: str) -> list[np.ndarray] | None:
    if not any(p.saturation_map for p in detector.panels):
        return None
    out = []
    for p in detector.panels:
        if not p.saturation_map:
            out.append(np.full(p.shape, np.inf, dtype=np.float32))
        elif p.saturation_map_file:
            from readers.hdf5_file import Hdf5FileImage
            with Hdf5FileImage(p.saturation_map_file, image.label) as other:
                out.append(other.panel_array(p, p.saturation_map, event, "saturation map",
                                             np.float32))
        else:
            out.append(image.panel_array(p, p.saturation_map, event, "saturation map",
                                         np.float32))
    return out


def decode_file(message: RawMessage, detector: Detector, options) -> Frame:
    """decode_message's file branch: ``options`` is a readers.options.InputOptions."""
    frame = load_frame(message.filename, message.event, detector, message.serial,
                       path=message.path, no_image_data=options.no_image_data,
                       no_mask_data=options.no_mask_data,
                       copy_header=tuple(options.copy_header))
    if getattr(options, "payload_peaks", False) and options.peaks in ("hdf5", "cxi"):
        from readers.payload_peaks import slab_to_panels
        if not detector.peak_list:
            raise PayloadError(message.label, f"--peaks={options.peaks} needs 'peak_list' in"
                               " the geometry file")
        label = f"{message.filename} {message.event}"
        list_type = "cxi" if options.peaks == "cxi" else detector.peak_list_type
        with open_image(message.path or message.filename, label) as image:
            fs, ss, inten = image.peaks(detector.peak_list, list_type, message.event)
        frame.peaks = slab_to_panels(detector, fs, ss, inten,
                                     not options.no_half_pixel_shift)
    frame.source_id = message.ack_id
    return frame
