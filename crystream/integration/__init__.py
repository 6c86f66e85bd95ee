"""Prediction and integration of indexed crystals: the stage after indexing.

``integrate_crystals`` sets each crystal's profile radius and resolution limit, predicts its
reflections, builds the background mask shared by all crystals of the frame and integrates
with rings (integration.md; indexing.md §7).
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np

from crystream.chunk import Crystal, Reflections
from crystream.frame import Frame, PeakList
from crystream.geometry.detector import Detector
from crystream.integration.background import background_mask
from crystream.integration.centring import place_boxes
from crystream.integration.options import (IntegrationMethod, IntegrationOptions,
                                           parse_integration_method)
from crystream.integration.prof2d import integrate_prof2d
from crystream.integration.profile_radius import estimate_profile_radius
from crystream.integration.resolution import (diffraction_resolution_limit,
                                              format_resolution_limit, highres_masks)
from crystream.integration.rings import (FramePixels, RingTemplate, integrate_rings,
                                         saturated)
from crystream.prediction import Predicted, predict_reflections

log = logging.getLogger(__name__)

__all__ = ["IntegrationOptions", "IntegrationMethod", "parse_integration_method",
           "integrate_crystals", "integrate_predicted", "prepare_crystals", "frame_pixels",
           "diffraction_resolution_limit", "estimate_profile_radius", "format_resolution_limit"]


def _frame_id(frame: Frame) -> str:
    return f"{frame.filename} {frame.event} (serial {frame.serial})"


def prepare_crystals(frame: Frame, peaks: PeakList, crystals: list[Crystal],
                     detector: Detector, options: IntegrationOptions) -> list[Crystal]:
    """Copies of the crystals with profile radius (fixed or estimated) and resolution limit set."""
    out = []
    for cr in crystals:
        if options.fix_profile_radius is not None:
            radius = float(options.fix_profile_radius)
        else:
            radius = estimate_profile_radius(cr.cell, peaks, detector, frame.wavelength,
                                             frame.clen, detector.bandwidth,
                                             frame.detector_shift_x, frame.detector_shift_y)
        limit = diffraction_resolution_limit(cr.cell, peaks, detector, frame.clen,
                                             frame.wavelength, frame.detector_shift_x,
                                             frame.detector_shift_y)
        out.append(replace(cr, profile_radius=radius, resolution_limit=limit, reflections=None,
                           num_saturated=0, num_implausible=0, notes=list(cr.notes)))
    return out


def frame_pixels(frame: Frame, detector: Detector, counts: list[np.ndarray],
                 highres: float) -> FramePixels:
    """The frame's pixels with bad masks (plus --highres) and saturation levels per panel."""
    if not frame.has_image:
        raise ValueError(f"frame {_frame_id(frame)}: integration needs pixel data, "
                         "but the frame has none")
    if len(frame.data) != len(detector.panels):
        raise ValueError(f"frame {_frame_id(frame)}: {len(frame.data)} panel arrays for "
                         f"{len(detector.panels)} panels in the geometry")
    cut = highres_masks(detector, frame.clen, frame.wavelength, highres,
                        frame.detector_shift_x, frame.detector_shift_y)
    bad, sat = [], []
    for i, p in enumerate(detector.panels):
        if frame.data[i].shape != p.shape:
            raise ValueError(f"frame {_frame_id(frame)}: panel {p.name} data has shape "
                             f"{frame.data[i].shape}, geometry says {p.shape}")
        b = frame.bad[i] if frame.bad is not None else np.zeros(p.shape, dtype=bool)
        bad.append(b | cut[i] if cut is not None else b)
        level: np.ndarray | float = float(p.max_adu)
        if frame.saturation is not None and frame.saturation[i] is not None:
            level = np.minimum(np.asarray(frame.saturation[i], dtype=np.float64), p.max_adu)
        sat.append(level)
    return FramePixels(list(frame.data), bad, counts, sat)


def _empty_reflections() -> Reflections:
    i = np.zeros(0, dtype=np.int32)
    f = np.zeros(0)
    return Reflections(i, i.copy(), i.copy(), f, f.copy(), f.copy(), f.copy(), f.copy(),
                       f.copy(), i.copy())


def integrate_predicted(pixels: FramePixels, pred: Predicted, method: IntegrationMethod,
                        radii: tuple[int, int, int],
                        gains: np.ndarray) -> tuple[Reflections, int, int]:
    """Integrate one crystal's predicted reflections (rings, or prof2d on the same boxes).

    Returns the written reflections (ascending h, k, l), num_saturated and num_implausible.
    """
    template = RingTemplate.make(*radii)
    cfs = pred.fs.astype(np.int64)
    css = pred.ss.astype(np.int64)
    placed = place_boxes(pixels, pred.panel, cfs, css, template, method.centre,
                         method.gradient)
    ok = placed.use.ok.copy()
    sat = ok & saturated(placed.boxes, placed.use)
    if not method.saturated:
        ok &= ~sat
    m = placed.model
    res = integrate_rings(placed.boxes, placed.use, template, m.a, m.b, m.c,
                          gains[pred.panel])
    intensity, sigma = res.intensity, res.sigma
    if method.method == "prof2d":
        fitted = integrate_prof2d(placed.boxes, placed.use, ok, template, m, res)
        if fitted is None:
            log.warning("No reflections suitable for a prof2d reference profile: "
                        "crystal not integrated")
            return _empty_reflections(), 0, 0
        intensity, sigma = fitted.intensity, fitted.sigma
        ok &= res.bg_ok
    elif not method.centre:
        ok &= res.bg_ok
    implausible = ok & (intensity < -5.0 * sigma)
    ok &= ~implausible
    if len(pred) and (len(pred) - ok.sum()) > 0.25 * len(pred):
        log.warning("%d of %d reflections could not be integrated", len(pred) - ok.sum(),
                    len(pred))
    order = np.lexsort((pred.l[ok], pred.k[ok], pred.h[ok]))
    idx = np.flatnonzero(ok)[order]
    refl = Reflections(pred.h[idx], pred.k[idx], pred.l[idx], intensity[idx],
                       sigma[idx], res.peak[idx], res.background[idx],
                       pred.fs[idx] + placed.dfs[idx], pred.ss[idx] + placed.dss[idx],
                       pred.panel[idx])
    return refl, int(sat.sum()), int(implausible.sum())


def integrate_crystals(frame: Frame, peaks: PeakList, crystals: list[Crystal],
                       detector: Detector,
                       options: IntegrationOptions | None = None) -> list[Crystal]:
    """New Crystal objects with profile_radius, resolution_limit, reflections and counts.

    With --cell-parameters-only or --integration=none the crystals get no reflection list.
    """
    options = options or IntegrationOptions()
    method = options.method
    peaks = peaks if peaks is not None else PeakList.empty()
    out = prepare_crystals(frame, peaks, crystals, detector, options)
    if options.cell_parameters_only or method.method == "none" or not out:
        return out
    preds = []
    for cr in out:
        max_q = cr.resolution_limit + options.push_res_m
        preds.append(predict_reflections(cr.cell, detector, frame.wavelength, frame.clen,
                                         detector.bandwidth, cr.profile_radius, max_q,
                                         frame.detector_shift_x, frame.detector_shift_y,
                                         options.overpredict))
    inner, middle, outer = options.radii
    counts = background_mask(detector, np.concatenate([p.panel for p in preds]),
                             np.concatenate([p.fs for p in preds]),
                             np.concatenate([p.ss for p in preds]), inner)
    pixels = frame_pixels(frame, detector, counts, options.highres)
    gains = np.array([p.gain(frame.photon_energy_ev) for p in detector.panels])
    for cr, pred in zip(out, preds):
        refl, nsat, nimp = integrate_predicted(pixels, pred, method, options.radii, gains)
        cr.reflections = refl
        cr.num_saturated = nsat
        cr.num_implausible = nimp
    return out
