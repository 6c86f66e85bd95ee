"""Peaks delivered with the data (hdf5, cxi, msgpack): half-pixel shift and revalidation.

peak-search.md §7.2-7.3: +0.5 unless --no-half-pixel-shift; unless --no-revalidate, each peak
is re-integrated at ((int)fs, (int)ss) with the --peak-radius radii truncated to int and dropped
if that fails, if saturated with --no-use-saturated, or (with --check-hdf5-snr) if |I|/sigma <
--min-snr. Survivors keep their position and take the re-integrated intensity.
"""

from __future__ import annotations

import numba
import numpy as np

from crystream.frame import PeakList
from crystream.geometry.detector import Detector
from crystream.peaks.integrate import OK, integrate_peak
from crystream.peaks.options import PeakSearchOptions


@numba.njit(cache=True, nogil=True, error_model="numpy")
def _revalidate_panel(data, bad, fs, ss, inn, mid, out, max_adu, gain, use_saturated,
                      check_snr, min_snr):
    n = len(fs)
    keep = np.zeros(n, np.bool_)
    inten = np.zeros(n)
    h, w = data.shape
    for k in range(n):
        if not (fs[k] >= 0.0 and ss[k] >= 0.0):  # also NaN
            continue
        cfs = int(fs[k])
        css = int(ss[k])
        if cfs >= w or css >= h:
            continue
        status, _cf, _cs, total, sigma, sat = integrate_peak(data, bad, cfs, css, inn, mid,
                                                             out, max_adu, gain)
        if status != OK:
            continue
        if sat and not use_saturated:
            continue
        if check_snr and sigma > 0.0 and abs(total) / sigma < min_snr:
            continue
        keep[k] = True
        inten[k] = total
    return keep, inten


def shift_half_pixel(peaks: PeakList, options: PeakSearchOptions) -> PeakList:
    """Add 0.5 to fs and ss (pixel-index convention -> corner-referenced) unless switched off."""
    if not options.half_pixel_shift:
        return PeakList(peaks.fs.astype(np.float64), peaks.ss.astype(np.float64),
                        peaks.panel.astype(np.int32), peaks.intensity.astype(np.float64))
    return PeakList(peaks.fs.astype(np.float64) + 0.5, peaks.ss.astype(np.float64) + 0.5,
                    peaks.panel.astype(np.int32), peaks.intensity.astype(np.float64))


def revalidate(peaks: PeakList, data: list[np.ndarray] | None, bad: list[np.ndarray],
               detector: Detector, options: PeakSearchOptions,
               photon_energy_ev: float) -> PeakList:
    """Re-integrate delivered peaks and drop the ones CrystFEL's ``validate_peaks`` drops.

    ``data`` None stands for --no-image-data: CrystFEL zero-fills the pixels, every disc total
    is 0, so every peak is dropped (use --no-revalidate for peaks-only operation).
    """
    if not options.revalidate or len(peaks) == 0:
        return peaks
    if data is None:
        return peaks.take(np.zeros(len(peaks), dtype=bool))
    inn, mid, out = (float(int(r)) for r in options.peak_radius)
    keep = np.zeros(len(peaks), dtype=bool)
    inten = np.array(peaks.intensity, dtype=np.float64)
    for i in np.unique(peaks.panel):
        sel = np.flatnonzero(peaks.panel == i)
        panel = detector.panels[int(i)]
        k, v = _revalidate_panel(data[int(i)], bad[int(i)], peaks.fs[sel].astype(np.float64),
                                 peaks.ss[sel].astype(np.float64), inn, mid, out,
                                 float(panel.max_adu), float(panel.gain(photon_energy_ev)),
                                 bool(options.use_saturated), bool(options.check_hdf5_snr),
                                 float(options.min_snr))
        keep[sel] = k
        inten[sel] = v
    return PeakList(peaks.fs[keep], peaks.ss[keep], peaks.panel[keep], inten[keep])
