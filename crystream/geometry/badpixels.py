"""Per-panel bad-pixel masks in CrystFEL's order (geometry-and-cell.md §1.5).

What does not depend on the frame (no_index, edge pixels, fs/ss and x/y bad regions, external
mask files, the --highres cut) is built once per Detector object and cached; the per-frame work
is a few vectorised comparisons (non-finite pixels, flag values, masks read with the image).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Sequence

import numpy as np

from crystream.geometry.detector import Detector, MaskSpec, Panel, scattering_vectors

MaskLoader = Callable[[str, MaskSpec, Panel], np.ndarray]

_CACHE: dict[int, dict] = {}
_LOCK = threading.Lock()


def _cache(detector: Detector) -> dict:
    """This detector's cache; dropped when the detector is garbage-collected."""
    key = id(detector)
    with _LOCK:
        entry = _CACHE.get(key)
        if entry is None:
            entry = _CACHE[key] = {}
            weakref.finalize(detector, _CACHE.pop, key, None)
    return entry


def load_hdf5_mask(path: str, spec: MaskSpec, panel: Panel) -> np.ndarray:
    """A panel's rectangle of an external HDF5 mask (2-D, or with the panel's fixed dims)."""
    import h5py
    import hdf5plugin  # noqa: F401  (compressed masks)

    if "%" in spec.data:
        raise ValueError(f"{path}: mask location '{spec.data}' has a '%' placeholder, which"
                         " an external mask file cannot fill")
    try:
        with h5py.File(path, "r") as fh:
            ds = fh.get(spec.data)
            if not isinstance(ds, h5py.Dataset):
                raise ValueError(f"{path}: no mask dataset '{spec.data}' (panel {panel.name})")
            fixed = tuple(int(d) for d in panel.dims if d not in ("ss", "fs", "%"))
            if ds.ndim == 2:
                fixed = ()
            elif ds.ndim != len(fixed) + 2 or "%" in panel.dims:
                raise ValueError(f"{path}: mask '{spec.data}' has {ds.ndim} dimensions; panel"
                                 f" {panel.name} needs 2 or {len(fixed) + 2}")
            shape = ds.shape[-2:]
            if panel.max_ss >= shape[0] or panel.max_fs >= shape[1]:
                raise ValueError(f"{path}: mask '{spec.data}' of shape {ds.shape} is smaller than"
                                 f" panel {panel.name}'s pixel range")
            sel = fixed + (slice(panel.min_ss, panel.max_ss + 1),
                           slice(panel.min_fs, panel.max_fs + 1))
            return np.asarray(ds[sel])
    except OSError as exc:
        raise ValueError(f"{path}: cannot read mask file ({exc})") from None


def _unsigned(m: np.ndarray) -> np.ndarray:
    """An unsigned integer view (two's complement bits, as C's int masks) of a mask array."""
    if m.dtype.kind == "b":
        return m.view(np.uint8)
    if m.dtype.kind == "i":
        return m.view(f"u{m.dtype.itemsize}")
    if m.dtype.kind == "u":
        return m
    return m.astype(np.int64).view(np.uint64)


def _edge_mask(panel: Panel) -> np.ndarray:
    n = panel.mask_edge_pixels
    bad = np.zeros(panel.shape, dtype=bool)
    if n > 0:
        bad[:n, :] = True
        bad[-n:, :] = True
        bad[:, :n] = True
        bad[:, -n:] = True
    return bad


def _static_masks(detector: Detector) -> list[np.ndarray]:
    """no_index, mask_edge_pixels and fs/ss bad regions: fixed for a detector."""
    cache = _cache(detector)
    if "static" not in cache:
        out = []
        for panel in detector.panels:
            bad = np.full(panel.shape, True) if panel.no_index else _edge_mask(panel)
            for region in detector.bad_regions:
                if not region.is_xy and region.panel == panel.name:
                    bad[region.min_ss:region.max_ss + 1, region.min_fs:region.max_fs + 1] = True
            out.append(bad)
        cache["static"] = out
    return cache["static"]


def _xy_masks(detector: Detector, shift_x: float, shift_y: float) -> list[np.ndarray | None]:
    """x/y bad regions (strict bounds on the corner-referenced lab position); None if none hit."""
    regions = [r for r in detector.bad_regions if r.is_xy]
    if not regions:
        return [None] * len(detector.panels)
    cache = _cache(detector).setdefault("xy", {})
    key = (shift_x, shift_y)
    if key not in cache:
        out: list[np.ndarray | None] = []
        for panel in detector.panels:
            ss, fs = np.mgrid[0:panel.height, 0:panel.width].astype(np.float64)
            pitch = panel.pixel_pitch
            x = panel.corner_x + shift_x / pitch + fs * panel.fs[0] + ss * panel.ss[0]
            y = panel.corner_y + shift_y / pitch + fs * panel.fs[1] + ss * panel.ss[1]
            bad = np.zeros(panel.shape, dtype=bool)
            for r in regions:
                bad |= (x > r.min_x) & (x < r.max_x) & (y > r.min_y) & (y < r.max_y)
            out.append(bad if bad.any() else None)
        if len(cache) > 16:
            cache.clear()
        cache[key] = out
    return cache[key]


def highres_masks(detector: Detector, highres: float, clen: float, wavelength: float,
                  shift_x: float = 0.0, shift_y: float = 0.0) -> list[np.ndarray]:
    """--highres: bad where |q| >= 1/highres (``highres`` in metres) at each pixel's corner."""
    cache = _cache(detector).setdefault("highres", {})
    key = (highres, clen, wavelength, shift_x, shift_y)
    if key not in cache:
        out = []
        for panel in detector.panels:
            ss, fs = np.mgrid[0:panel.height, 0:panel.width].astype(np.float64)
            q = scattering_vectors(panel, fs, ss, clen, wavelength, shift_x, shift_y)
            out.append(np.linalg.norm(q, axis=-1) >= 1.0 / highres)
        if len(cache) > 16:
            cache.clear()
        cache[key] = out
    return cache[key]


def _external_mask(detector: Detector, spec: MaskSpec, panel: Panel,
                   loader: MaskLoader) -> np.ndarray:
    """An external mask file's panel rectangle, cached until the file changes."""
    cache = _cache(detector).setdefault("files", {})
    try:
        stamp = os.stat(spec.file).st_mtime_ns
    except OSError as exc:
        raise ValueError(f"{spec.file}: cannot read mask file ({exc.strerror})") from None
    key = (spec.file, spec.data, panel.name)
    hit = cache.get(key)
    if hit is None or hit[0] != stamp:
        hit = cache[key] = (stamp, np.asarray(loader(spec.file, spec, panel)))
    return hit[1]


def _default_shift(detector: Detector) -> tuple[float, float]:
    if detector.detector_shift_x is None:
        return 0.0, 0.0
    if detector.detector_shift_x.from_header or (detector.detector_shift_y is not None
                                                 and detector.detector_shift_y.from_header):
        raise ValueError("the detector shift comes from headers: pass shift_x/shift_y")
    return detector.resolve_beam({})[2:]


def bad_pixel_masks(detector: Detector, data: Sequence[np.ndarray] | None = None,
                    mask_arrays: Sequence[Sequence[np.ndarray | None]] | None = None, *,
                    no_mask_data: bool = False, shift_x: float | None = None,
                    shift_y: float | None = None, highres: float | None = None,
                    clen: float | None = None, wavelength: float | None = None,
                    mask_loader: MaskLoader | None = None) -> list[np.ndarray]:
    """Boolean (ss, fs) masks, True = bad, one per panel, following §1.5:

    1. non-finite pixels of ``data`` (float32 panels; skipped when ``data`` is None),
    2. ``no_index`` (the whole panel; nothing else is checked for it),
    3. ``flag_lessthan/morethan/equal`` on ``data``,
    4. ``mask_edge_pixels``,
    5. masks: ``mask_arrays[i][k]`` is panel i's array for ``panel.masks[k]`` (cut to the
       panel); None there means "load ``MaskSpec.file``" with ``mask_loader`` (default: HDF5,
       cached per detector until the file changes). Skipped entirely with ``no_mask_data``.
    6. fs/ss and x/y bad regions (x/y use the detector shift in metres; by default the
       geometry's literal shift),
    7. ``highres`` (metres; needs ``clen`` and ``wavelength``): |q| >= 1/highres is bad.
    """
    panels = detector.panels
    if shift_x is None or shift_y is None:
        shift_x, shift_y = _default_shift(detector)
    static = _static_masks(detector)
    xy = _xy_masks(detector, shift_x, shift_y)
    hres = None
    if highres is not None and np.isfinite(highres):
        if clen is None or wavelength is None:
            raise ValueError("--highres needs the frame's clen and wavelength")
        hres = highres_masks(detector, highres, clen, wavelength, shift_x, shift_y)
    loader = mask_loader or load_hdf5_mask
    out = []
    for i, panel in enumerate(panels):
        bad = static[i].copy()
        if panel.no_index:
            out.append(bad)
            continue
        if data is not None:
            pixels = data[i]
            if pixels.shape != panel.shape:
                raise ValueError(f"panel {panel.name}: data shape {pixels.shape} is not"
                                 f" {panel.shape}")
            tmp = np.isfinite(pixels)
            np.logical_not(tmp, out=tmp)
            bad |= tmp
            for flag in panel.flags:  # strict comparisons with CrystFEL's int value
                if flag.kind == "lessthan":
                    np.less(pixels, flag.value, out=tmp)
                elif flag.kind == "morethan":
                    np.greater(pixels, flag.value, out=tmp)
                else:
                    np.equal(np.rint(pixels), flag.value, out=tmp)
                bad |= tmp
        if not no_mask_data:
            given = mask_arrays[i] if mask_arrays is not None and i < len(mask_arrays) else ()
            for k, spec in enumerate(panel.masks):
                m = given[k] if k < len(given) else None
                if m is None:
                    if spec.file is None:
                        raise ValueError(f"panel {panel.name}: mask '{spec.data}' is read from"
                                         " the image, but no array was given")
                    m = _external_mask(detector, spec, panel, loader)
                m = np.asarray(m)
                if m.shape != panel.shape:
                    raise ValueError(f"panel {panel.name}: mask '{spec.data}' has shape"
                                     f" {m.shape}, expected {panel.shape}")
                m = _unsigned(m)
                width = (1 << (8 * m.dtype.itemsize)) - 1  # bits above the stored width are 0
                good = m.dtype.type(spec.goodbits & width)
                badbits = m.dtype.type(spec.badbits & width)
                if good:
                    bad |= (m & good) != good
                if badbits:
                    bad |= (m & badbits) != 0
        if xy[i] is not None:
            bad |= xy[i]
        if hres is not None:
            bad |= hres[i]
        out.append(bad)
    return out
