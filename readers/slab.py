"""Cutting panels out of a decoded slab; shared by every payload format."""

from __future__ import annotations

import numpy as np

from crystream.geometry.detector import Panel
from readers.errors import PayloadError


def fixed_indices(panel: Panel, label: str, fmt: str) -> tuple[int, ...]:
    """The literal indices of a panel's fixed dims (before ss/fs); '%' placeholders are refused."""
    fixed: list[int] = []
    for d in panel.dims:
        if d in ("ss", "fs"):
            continue
        if d == "%":
            raise PayloadError(label, f"panel {panel.name}: placeholder dimension 'dimN = %' is not"
                                      f" supported for streamed {fmt} data")
        fixed.append(int(d))
    if panel.dims.index("ss") > panel.dims.index("fs"):
        raise PayloadError(label, f"panel {panel.name}: fs dimension must come after ss")
    return tuple(fixed)


def check_panel_fits(array, fixed: tuple[int, ...], panel: Panel, label: str, where: str) -> tuple:
    """The index tuple (fixed dims, ss slice, fs slice) of a panel in ``array`` (numpy or
    h5py dataset), after checking rank, fixed indices and bounds."""
    if array.ndim != len(fixed) + 2:
        raise PayloadError(label, f"{where}: array has {array.ndim} dimensions but panel"
                                  f" {panel.name} expects {len(fixed) + 2}")
    for axis, idx in enumerate(fixed):
        if not 0 <= idx < array.shape[axis]:
            raise PayloadError(label, f"{where}: index {idx} is outside dimension {axis} of size"
                                      f" {array.shape[axis]} (panel {panel.name})")
    n_ss, n_fs = array.shape[-2:]
    if panel.max_fs >= n_fs or panel.max_ss >= n_ss or panel.min_fs < 0 or panel.min_ss < 0:
        raise PayloadError(label, f"{where}: data for panel {panel.name} ({panel.width} x "
                                  f"{panel.height} + {panel.min_fs} + {panel.min_ss}) is outside"
                                  f" data array bounds ({n_fs} x {n_ss})")
    return fixed + (slice(panel.min_ss, panel.max_ss + 1), slice(panel.min_fs, panel.max_fs + 1))


def to_float32(pixels: np.ndarray) -> np.ndarray:
    """A C-contiguous float32 copy of a panel (the bad-pixel rules find non-finite values)."""
    return np.array(pixels, dtype=np.float32, order="C", copy=True)
