"""Peaks delivered with the data: slab coordinates -> (panel, panel-relative fs/ss)."""

from __future__ import annotations

import numpy as np

from crystream.frame import PeakList
from crystream.geometry.detector import Detector
from readers.errors import PayloadError


def _panel_bounds(detector: Detector) -> np.ndarray:
    """(n_panels, 4) array of min_fs, max_fs+1, min_ss, max_ss+1, cached on the detector."""
    key = "_readers_panel_bounds"
    cached = detector.__dict__.get(key)
    if cached is None or len(cached) != len(detector.panels):
        cached = np.array([[p.min_fs, p.max_fs + 1, p.min_ss, p.max_ss + 1]
                           for p in detector.panels], dtype=np.float64)
        detector.__dict__[key] = cached
    return cached


def slab_to_panels(detector: Detector, fs: np.ndarray, ss: np.ndarray, intensity: np.ndarray,
                   half_pixel_shift: bool = True) -> PeakList:
    """Map slab peaks to panels by [min, max+1) and make them panel-relative.

    The panel is chosen at the position the peak will have after the half-pixel shift (as
    CrystFEL does), but the stored coordinates are *unshifted*: the peak stage adds 0.5.
    Peaks on no panel or on several panels are dropped, as in CrystFEL.
    """
    fs = np.asarray(fs, dtype=np.float64)
    ss = np.asarray(ss, dtype=np.float64)
    intensity = np.asarray(intensity, dtype=np.float64)
    shift = 0.5 if half_pixel_shift else 0.0
    b = _panel_bounds(detector)
    pf, ps = fs[:, None] + shift, ss[:, None] + shift
    inside = (pf >= b[:, 0]) & (pf < b[:, 1]) & (ps >= b[:, 2]) & (ps < b[:, 3])
    keep = inside.sum(axis=1) == 1
    panel = np.argmax(inside, axis=1)[keep].astype(np.int32)
    return PeakList(fs[keep] - b[panel, 0], ss[keep] - b[panel, 2], panel, intensity[keep])


def read_payload_peaks(payload, detector: Detector, method: str, half_pixel_shift: bool,
                       label: str) -> PeakList:
    """The peak list under the geometry's ``peak_list`` location, for --peaks=msgpack|hdf5|cxi."""
    if not detector.peak_list:
        raise PayloadError(label, f"--peaks={method} needs 'peak_list' in the geometry file")
    wanted = "msgpack" if method == "msgpack" else "hdf5"
    if payload.format != wanted:
        raise PayloadError(label, f"--peaks={method} needs a {wanted} payload, got {payload.format}")
    list_type = method if method == "cxi" else detector.peak_list_type
    fs, ss, intensity = payload.peaks(detector.peak_list, list_type)
    return slab_to_panels(detector, fs, ss, intensity, half_pixel_shift)
