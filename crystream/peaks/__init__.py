"""Peak search: CrystFEL 0.12.0's methods behind one stage function (peak-search.md).

``find_peaks(frame, detector, options) -> PeakList`` runs, per frame: filters on a copy of the
pixels (median, then noise), the --highres cut, the chosen method, and for peaks delivered with
the data the half-pixel shift and revalidation. Positions are panel-relative and
corner-referenced.
"""

from __future__ import annotations

import logging

import numpy as np

from crystream.frame import Frame, PeakList
from crystream.geometry.detector import Detector
from crystream.peaks.filters import median_filter, noise_filter
from crystream.peaks.geomcache import cached
from crystream.peaks.options import FROM_DATA, METHODS, PeakSearchOptions, is_hit
from crystream.peaks.peakfinder8 import peakfinder8_peaks
from crystream.peaks.peakfinder9 import MAX_PEAKS_PER_PANEL as PF9_MAX
from crystream.peaks.peakfinder9 import pf9_panel
from crystream.peaks.resolution import (highres_masks, peak_q_magnitudes, peak_resolution,
                                        peak_resolution_of)
from crystream.peaks.revalidate import revalidate, shift_half_pixel
from crystream.peaks.zaef import MAX_PEAKS_PER_PANEL as ZAEF_MAX
from crystream.peaks.zaef import zaef_panel

__all__ = ["METHODS", "PeakSearchOptions", "find_peaks", "is_hit", "peak_q_magnitudes",
           "peak_resolution", "peak_resolution_of"]

log = logging.getLogger(__name__)


def _frame_id(frame: Frame) -> str:
    return f"{frame.filename} (event {frame.event}, serial {frame.serial})"


def _no_bad(detector: Detector) -> list[np.ndarray]:
    def build() -> list[np.ndarray]:
        out = []
        for p in detector.panels:
            m = np.zeros(p.shape, dtype=bool)
            m.flags.writeable = False
            out.append(m)
        return out
    return cached(detector, ("no-bad",), build)


def _bad_masks(frame: Frame, detector: Detector, options: PeakSearchOptions) -> list[np.ndarray]:
    """The frame's bad-pixel masks, with the --highres cut merged into frame.bad in place
    (as in CrystFEL, where those pixels stay bad for indexing and integration too)."""
    n = len(detector.panels)
    if frame.bad is not None and len(frame.bad) != n:
        raise ValueError(f"frame {_frame_id(frame)}: {len(frame.bad)} bad-pixel masks for "
                         f"{n} panels")
    bad = list(frame.bad) if frame.bad is not None else _no_bad(detector)
    for i, (b, p) in enumerate(zip(bad, detector.panels)):
        if b.shape != p.shape:
            raise ValueError(f"frame {_frame_id(frame)}: bad-pixel mask of panel {p.name} has "
                             f"shape {b.shape}, geometry says {p.shape}")
    hr = highres_masks(detector, frame, options.highres)
    if hr is not None:
        bad = [np.asarray(b, dtype=bool) | h for b, h in zip(bad, hr)]
        frame.bad = bad
    return [np.ascontiguousarray(b, dtype=bool) for b in bad]


def _pixels(frame: Frame, detector: Detector, options: PeakSearchOptions) -> list[np.ndarray]:
    """float32 pixels per panel, filtered on a copy when --median-filter/--filter-noise ask."""
    if len(frame.data) != len(detector.panels):
        raise ValueError(f"frame {_frame_id(frame)}: {len(frame.data)} panel arrays for "
                         f"{len(detector.panels)} panels in the geometry")
    out = []
    for d, p in zip(frame.data, detector.panels):
        if d.shape != p.shape:
            raise ValueError(f"frame {_frame_id(frame)}: panel {p.name} data has shape "
                             f"{d.shape}, geometry says {p.shape}")
        d = np.ascontiguousarray(d, dtype=np.float32)
        if options.median_filter > 0:
            d = median_filter(d, options.median_filter)
        if options.filter_noise:
            d = noise_filter(d)
        out.append(d)
    return out


def _stack(parts: list[tuple]) -> PeakList:
    if not parts:
        return PeakList.empty()
    fs, ss, panel, inten = (np.concatenate(x) for x in zip(*parts))
    return PeakList(fs.astype(np.float64), ss.astype(np.float64), panel.astype(np.int32),
                    inten.astype(np.float64))


def find_peaks(frame: Frame, detector: Detector, options: PeakSearchOptions) -> PeakList:
    """The frame's peaks by ``options.peaks``, panel-relative and corner-referenced.

    Raises ValueError naming the frame when the pixels do not match the geometry or a pixel
    method is asked for without pixel data.
    """
    method = options.peaks
    if method == "none":
        return PeakList.empty()
    energy = frame.photon_energy_ev if frame.wavelength > 0 else 0.0
    if method in FROM_DATA:
        if frame.peaks is None:
            log.warning("Peak search failed for image %s (event %s).", frame.filename,
                        frame.event)
            return PeakList.empty()
        bad = _bad_masks(frame, detector, options)
        peaks = shift_half_pixel(frame.peaks, options)
        data = _pixels(frame, detector, options) if frame.has_image else None
        return revalidate(peaks, data, bad, detector, options, energy)
    if not frame.has_image:
        raise ValueError(f"frame {_frame_id(frame)}: --peaks={method} needs pixel data, "
                         "but the frame has none (--no-image-data?)")
    bad = _bad_masks(frame, detector, options)
    data = _pixels(frame, detector, options)
    parts = []
    if method == "peakfinder8":
        fs, ss, panel, inten = peakfinder8_peaks(data, bad, detector, options,
                                           frame.detector_shift_x, frame.detector_shift_y)
        return _stack([(fs, ss, panel, inten)])
    inn, mid, out = options.peak_radius
    for i, (d, b, p) in enumerate(zip(data, bad, detector.panels)):
        if method == "zaef":
            fs, ss, inten = zaef_panel(d, b, float(options.threshold),
                                       float(options.min_squared_gradient),
                                       float(options.min_snr), inn, mid, out,
                                       float(p.max_adu), bool(options.use_saturated),
                                       float(p.gain(energy)), ZAEF_MAX)
        else:  # peakfinder9
            fs, ss, inten, _snr = pf9_panel(d, b, int(options.local_bg_radius),
                                            float(options.min_snr_biggest_pix),
                                            float(options.min_snr_peak_pix),
                                            float(options.min_snr), float(options.min_sig),
                                            float(options.min_peak_over_neighbour),
                                            float(p.max_adu), bool(options.use_saturated),
                                            PF9_MAX)
        parts.append((fs, ss, np.full(len(fs), i, np.int32), inten))
    return _stack(parts)
