"""Two-dimensional profile fitting (``--integration=prof2d``, integration.md §4.5).

One reference profile per crystal is summed from the background-subtracted PEAK pixels of
the strong reflections (peak > 10x the background under it, background test passed) and
scaled to a maximum of 100; each reflection's intensity is the least-squares scale of that
profile over its own PEAK pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crystream.integration.background import BackgroundModel
from crystream.integration.rings import BoxUse, Boxes, RingResult, RingTemplate


@dataclass
class Prof2dResult:
    intensity: np.ndarray
    sigma: np.ndarray
    profile: np.ndarray  # (B, B) the reference, maximum 100


def reference_profile(ok: np.ndarray, use: BoxUse, residual: np.ndarray,
                      rings: RingResult) -> np.ndarray | None:
    """The summed PEAK-pixel residuals of the suitable reflections, max 100; None if none.

    ``ok``: boxes that passed the checks (and, without -sat, are not saturated).
    """
    suitable = (ok & rings.bg_ok
                & (rings.peak_height > 10.0 * rings.bg_under_peak))
    if not suitable.any():
        return None
    ref = np.where(use.peak[suitable], residual[suitable], 0.0).sum(axis=0)
    top = ref.max()
    if not top > 0:
        return None
    return ref / top * 100.0


def integrate_prof2d(boxes: Boxes, use: BoxUse, ok: np.ndarray, template: RingTemplate,
                     model: BackgroundModel, rings: RingResult) -> Prof2dResult | None:
    """J = sum((v-bg) P)/sum(P^2) over PEAK pixels, I = J sum(P);
    sigma = sqrt(sum_PEAK (J P - (v-bg))^2 + sum_BG (v - mean_bg)^2). None: no reference."""
    residual = boxes.values - model.at(template.p, template.q)
    profile = reference_profile(ok, use, residual, rings)
    if profile is None:
        return None
    prof = np.where(use.peak, profile[None], 0.0)
    spp = (prof * prof).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        j = np.where(use.peak, residual * prof, 0.0).sum(axis=(1, 2)) / spp
    intensity = j * prof.sum(axis=(1, 2))
    fit = np.where(use.peak, j[:, None, None] * prof - residual, 0.0)
    dev = np.where(use.background, boxes.values - rings.background[:, None, None], 0.0)
    sigma = np.sqrt((fit * fit).sum(axis=(1, 2)) + (dev * dev).sum(axis=(1, 2)))
    return Prof2dResult(intensity, sigma, profile)
