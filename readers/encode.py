"""Encoders for the sender: a Frame -> the payload frames a decoder must read (wire layouts of
shared/spec/streaming-input.md §5-8). ``encode_frame`` returns a list of ZeroMQ frames: one
for msgpack and hdf5; two for seedee (buffer, then the seedee meta JSON).
"""

from __future__ import annotations

import itertools
import json
import time

import h5py
import msgpack
import numpy as np
import seedee

from crystream.frame import Frame, PeakList
from crystream.geometry.detector import Detector, Panel

FORMATS = ("msgpack", "hdf5", "seedee")
_image_names = itertools.count()


def _slab_layout(panels: list[Panel], where: str) -> tuple[tuple[int, ...], list[tuple]]:
    """Array shape holding these panels and each panel's index tuple in it (dims order)."""
    pattern = [("ss" if d == "ss" else "fs" if d == "fs" else "n") for d in panels[0].dims]
    shape = [0] * len(pattern)
    index = []
    for p in panels:
        if "%" in p.dims:
            raise ValueError(f"{where}: panel {p.name} has a placeholder dim ('%'), which a"
                             " streamed frame (event '//') cannot carry")
        kinds = [("ss" if d == "ss" else "fs" if d == "fs" else "n") for d in p.dims]
        if kinds != pattern:
            raise ValueError(f"{where}: panels sharing data '{p.data}' have different dims")
        idx = []
        for j, d in enumerate(p.dims):
            if d == "ss":
                shape[j] = max(shape[j], p.max_ss + 1)
                idx.append(slice(p.min_ss, p.max_ss + 1))
            elif d == "fs":
                shape[j] = max(shape[j], p.max_fs + 1)
                idx.append(slice(p.min_fs, p.max_fs + 1))
            else:
                shape[j] = max(shape[j], int(d) + 1)
                idx.append(int(d))
        index.append(tuple(idx))
    return tuple(shape), index


def assemble_slabs(frame: Frame, detector: Detector, dtype: str | np.dtype,
                   single: bool = False) -> dict[str, np.ndarray]:
    """The arrays a detector would write: panels placed at their min_fs/min_ss (and fixed
    dims), grouped by data location; ``single`` puts every panel in one 2-D slab (seedee)."""
    if frame.data is None:
        raise ValueError(f"frame {frame.serial}: no pixel data to encode")
    if len(frame.data) != len(detector.panels):
        raise ValueError(f"frame {frame.serial}: {len(frame.data)} panel arrays for a geometry"
                         f" with {len(detector.panels)} panels")
    groups: dict[str, list[int]] = {}
    for i, p in enumerate(detector.panels):
        groups.setdefault("" if single else p.data, []).append(i)
    out = {}
    for key, members in groups.items():
        panels = [detector.panels[i] for i in members]
        where = f"frame {frame.serial}"
        if single:
            shape = (max(p.max_ss for p in panels) + 1, max(p.max_fs for p in panels) + 1)
            index = [(slice(p.min_ss, p.max_ss + 1), slice(p.min_fs, p.max_fs + 1))
                     for p in panels]
        else:
            shape, index = _slab_layout(panels, where)
        slab = np.zeros(shape, dtype=dtype)
        for i, idx in zip(members, index):
            slab[idx] = frame.data[i]
        out[key] = slab
    return out


def slab_peaks(peaks: PeakList, detector: Detector) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Slab (fs, ss, intensity) in the pixel-index convention CrystFEL's peak lists use
    (a reader adds 0.5 back): panel-relative corner-referenced fs + min_fs - 0.5."""
    panel = np.asarray(peaks.panel, dtype=np.int64)
    min_fs = np.array([p.min_fs for p in detector.panels], dtype=np.float64)
    min_ss = np.array([p.min_ss for p in detector.panels], dtype=np.float64)
    return (np.asarray(peaks.fs, np.float64) + min_fs[panel] - 0.5,
            np.asarray(peaks.ss, np.float64) + min_ss[panel] - 0.5,
            np.asarray(peaks.intensity, np.float64))


def _onda_headers(frame: Frame) -> dict[str, object]:
    """The frame's header values plus OnDA's beam_energy (eV) / detector_distance (mm)."""
    headers: dict[str, object] = {"beam_energy": float(frame.photon_energy_ev),
                                  "detector_distance": float(frame.clen * 1e3)}
    for k, v in frame.headers.items():
        headers[k] = v.item() if isinstance(v, np.generic) else v
    return headers


def encode_msgpack(frame: Frame, detector: Detector, peaks: PeakList | None = None,
                   dtype: str = "<f4", onda_list: bool = True) -> bytes:
    """OnDA's ``ondaframedata`` layout: a one-map list (or the bare map); arrays as
    msgpack-numpy maps with bin keys (nd, type, kind, shape, data); peaks under peak_list."""
    if dtype not in ("<f4", "<i4"):
        raise ValueError(f"msgpack image dtype must be '<f4' or '<i4' (CrystFEL reads only"
                         f" these), not '{dtype}'")
    main: dict[object, object] = {}
    for key, slab in assemble_slabs(frame, detector, dtype).items():
        main[key] = {b"nd": True, b"type": np.dtype(dtype).str, b"kind": b"",
                     b"shape": list(slab.shape), b"data": slab.tobytes()}
    main.update(_onda_headers(frame))
    main["event_id"] = f"{frame.filename}{frame.event}"
    main["timestamp"] = time.time()
    if peaks is not None:
        if not detector.peak_list:
            raise ValueError("peaks given but the geometry has no 'peak_list' location")
        fs, ss, inten = slab_peaks(peaks, detector)
        main[detector.peak_list] = {"num_peaks": len(fs), "fs": fs.tolist(),
                                    "ss": ss.tolist(), "intensity": inten.tolist()}
    return msgpack.packb([main] if onda_list else main, use_bin_type=True)


def encode_hdf5(frame: Frame, detector: Detector, peaks: PeakList | None = None,
                dtype: str = "<f4", compression: str | None = None) -> bytes:
    """A complete HDF5 file image: panel data at their paths, headers as scalar datasets,
    peaks as list3 (N x 3) or a CXI group at peak_list."""
    with h5py.File(f"crystream-frame-{next(_image_names)}.h5", "w", driver="core",
                   backing_store=False) as f:
        for path, slab in assemble_slabs(frame, detector, dtype).items():
            f.create_dataset(path, data=slab, compression=compression,
                             chunks=slab.shape if compression else None)
        for path, value in frame.headers.items():
            if path not in f:
                f.create_dataset(path, data=value)
        if peaks is not None:
            if not detector.peak_list:
                raise ValueError("peaks given but the geometry has no 'peak_list' location")
            fs, ss, inten = slab_peaks(peaks, detector)
            if detector.peak_list_type == "cxi":
                g = f.create_group(detector.peak_list)
                g.create_dataset("nPeaks", data=np.array([len(fs)], dtype=np.int32))
                g.create_dataset("peakXPosRaw", data=fs[None, :])
                g.create_dataset("peakYPosRaw", data=ss[None, :])
                g.create_dataset("peakTotalIntensity", data=inten[None, :])
            else:
                f.create_dataset(detector.peak_list, data=np.stack([fs, ss, inten], axis=1))
        f.flush()
        return bytes(f.id.get_file_image())


def encode_seedee(frame: Frame, detector: Detector, dtype: str = "<f8",
                  compression: int = seedee.COMPRESSION_NONE,
                  asapo_metadata: bool = False) -> list[bytes]:
    """[seedee buffer, metadata]: one 2-D slab for all panels (data paths are ignored).

    The metadata frame is the seedee meta JSON itself (what a ZeroMQ consumer takes as the
    last part), or with ``asapo_metadata`` the ASAP::O user-metadata form
    ``{"_data_format": "<seedee meta JSON>", <header values>}``. CrystFEL reads u1, <u2, <u4,
    <i4 and <f8 (not float32), hence the <f8 default.
    """
    slab = assemble_slabs(frame, detector, dtype, single=True)[""]
    buf, meta = seedee.serialize(np.ascontiguousarray(slab), compression)
    if not asapo_metadata:
        return [bytes(buf), meta.encode()]
    metadata = dict(_onda_headers(frame))
    metadata["_data_format"] = meta
    return [bytes(buf), json.dumps(metadata).encode()]


def encode_frame(frame: Frame, detector: Detector, fmt: str,
                 peaks: PeakList | None = None) -> list[bytes]:
    """The ZeroMQ frames carrying one Frame in ``fmt`` (msgpack, hdf5 or seedee)."""
    if fmt == "msgpack":
        return [encode_msgpack(frame, detector, peaks)]
    if fmt == "hdf5":
        return [encode_hdf5(frame, detector, peaks)]
    if fmt == "seedee":
        if peaks is not None:
            raise ValueError("seedee payloads cannot carry a peak list")
        return encode_seedee(frame, detector)
    raise ValueError(f"unknown data format '{fmt}' (expected one of {', '.join(FORMATS)})")
