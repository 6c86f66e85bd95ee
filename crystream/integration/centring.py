"""Box placement: CrystFEL's check_box, or with -cen its centre_and_check_box (integration.md §4.4).

Centring runs its (at most 10) rounds for all reflections at once; each round only re-cuts
the boxes that moved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crystream.integration.background import BackgroundModel, fit_background
from crystream.integration.rings import (BoxUse, Boxes, FramePixels, RingTemplate,
                                         check_boxes, cut_boxes)

MAX_ROUNDS = 10


@dataclass
class PlacedBoxes:
    """Final boxes, the pixels in use, the background model and the centring offsets."""

    boxes: Boxes
    use: BoxUse
    model: BackgroundModel
    dfs: np.ndarray  # integer offset of the box centre from the predicted pixel
    dss: np.ndarray


def _assign(dst, src, idx: np.ndarray) -> None:
    for name in dst.__dataclass_fields__:
        getattr(dst, name)[idx] = getattr(src, name)


def place_boxes(pixels: FramePixels, panel: np.ndarray, cfs: np.ndarray, css: np.ndarray,
                template: RingTemplate, centre: bool, gradient: bool) -> PlacedBoxes:
    """Cut and check every box at its predicted pixel, then (``centre``) follow the brightest
    strong pixel until the box stops moving; a box that fails a check is marked not ok."""
    boxes = cut_boxes(pixels, panel, cfs, css, template.half)
    use = check_boxes(boxes, template)
    model = fit_background(boxes.values, use.background, template.p, template.q, gradient)
    n = len(panel)
    dfs = np.zeros(n, dtype=np.int64)
    dss = np.zeros(n, dtype=np.int64)
    if not centre:
        return PlacedBoxes(boxes, use, model, dfs, dss)
    active = use.ok.copy()
    n_strong = np.zeros(n, dtype=np.int64)
    flat_p = template.p.ravel().astype(np.int64)
    flat_q = template.q.ravel().astype(np.int64)
    w2 = template.half * template.half
    for _ in range(MAX_ROUNDS):
        idx = np.flatnonzero(active)
        if len(idx) == 0:
            break
        v = boxes.values[idx]
        bg = BackgroundModel(model.a[idx], model.b[idx], model.c[idx]).at(template.p, template.q)
        strong = ~use.hard_ignore[idx] & (v > 3.0 * bg)
        n_strong[idx] += strong.sum(axis=(1, 2))
        best = np.where(strong, v, -np.inf).reshape(len(idx), -1).argmax(axis=1)
        sp, sq = flat_p[best], flat_q[best]
        weak = n_strong[idx] < 2
        still = (sp == 0) & (sq == 0)
        too_far = ~weak & (sp * sp + sq * sq > w2)
        use.ok[idx[too_far]] = False
        move = ~weak & ~still & ~too_far
        active[idx[~move]] = False
        mi = idx[move]
        if len(mi) == 0:
            break
        dfs[mi] += sp[move]
        dss[mi] += sq[move]
        nb = cut_boxes(pixels, panel[mi], cfs[mi] + dfs[mi], css[mi] + dss[mi], template.half)
        nu = check_boxes(nb, template)
        nm = fit_background(nb.values, nu.background, template.p, template.q, gradient)
        _assign(boxes, nb, mi)
        _assign(use, nu, mi)
        _assign(model, nm, mi)
        active[mi] &= nu.ok
    return PlacedBoxes(boxes, use, model, dfs, dss)
