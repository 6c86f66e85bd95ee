"""Where rays from the sample meet the detector panels (first panel in file order wins)."""

from __future__ import annotations

import numpy as np

from crystream.geometry.detector import Detector


def rays_to_panels(detector: Detector, rays: np.ndarray, clen: float, shift_x: float = 0.0,
                   shift_y: float = 0.0
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(panel, fs, ss, distance) for each ray; panel is -1 where the ray misses every panel.

    ``distance`` is from the sample to the hit point, in metres.
    Solves t*ray = corner + fs*F + ss*S in pixel units with triple products (F, S need not be
    orthogonal); fs, ss are panel-relative and corner-referenced.
    """
    n = len(rays)
    panel = np.full(n, -1, dtype=np.int32)
    out_fs = np.full(n, np.nan)
    out_ss = np.full(n, np.nan)
    dist = np.full(n, np.nan)
    for i, p in enumerate(detector.panels):
        todo = panel < 0
        if not todo.any():
            break
        pitch = p.pixel_pitch
        corner = np.array([p.corner_x + shift_x / pitch, p.corner_y + shift_y / pitch,
                           (clen + p.coffset) / pitch])
        f, s = np.asarray(p.fs, float), np.asarray(p.ss, float)
        normal = np.cross(f, s)
        d = rays[todo]
        dn = d @ normal
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (corner @ normal) / dn
        point = t[:, None] * d - corner
        sn, nf = np.cross(s, normal), np.cross(normal, f)
        fs = point @ sn / (f @ sn)
        ss = point @ nf / (s @ nf)
        hit = (t > 0) & np.isfinite(t) & (fs >= 0) & (fs < p.width) & (ss >= 0) \
            & (ss < p.height)
        idx = np.flatnonzero(todo)[hit]
        panel[idx] = i
        out_fs[idx] = fs[hit]
        out_ss[idx] = ss[hit]
        dist[idx] = (t[hit] * np.linalg.norm(d[hit], axis=1)) * pitch
    return panel, out_fs, out_ss, dist
