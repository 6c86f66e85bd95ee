"""Per-worker cache of per-detector precomputation (pixel maps, index tables).

Looked up by the Detector object's identity first (no cost per frame); a Detector seen for the
first time is matched by its panel geometry, so an unpickled copy of the same geometry (as a
Dask task argument arrives on a worker) reuses the maps instead of rebuilding them. Built once
per worker, thread-safe; entries of collected Detector objects are dropped, and at most
MAX_GEOMETRIES geometries are kept.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from typing import Any, Callable, Hashable

MAX_GEOMETRIES = 8

_lock = threading.RLock()  # a build may itself ask for another map
_by_id: dict[int, dict] = {}  # id(detector) -> that geometry's entries
_by_geometry: OrderedDict[tuple, dict] = OrderedDict()


def _fingerprint(detector: Any) -> tuple:
    return tuple((p.name, p.min_fs, p.max_fs, p.min_ss, p.max_ss, float(p.corner_x),
                  float(p.corner_y), tuple(map(float, p.fs)), tuple(map(float, p.ss)),
                  float(p.res), float(p.coffset)) for p in detector.panels)


def _forget(det_id: int) -> None:
    with _lock:
        _by_id.pop(det_id, None)


def _entries(detector: Any) -> dict:
    entries = _by_id.get(id(detector))
    if entries is not None:
        return entries
    with _lock:
        entries = _by_id.get(id(detector))
        if entries is None:
            fp = _fingerprint(detector)
            entries = _by_geometry.get(fp)
            if entries is None:
                entries = {}
                _by_geometry[fp] = entries
                while len(_by_geometry) > MAX_GEOMETRIES:
                    _by_geometry.popitem(last=False)
            _by_geometry.move_to_end(fp)
            _by_id[id(detector)] = entries
            weakref.finalize(detector, _forget, id(detector))
    return entries


def cached(detector: Any, key: Hashable, build: Callable[[], Any]) -> Any:
    """The value for (detector geometry, key), built with ``build()`` the first time."""
    entries = _entries(detector)
    value = entries.get(key)
    if value is not None:
        return value
    with _lock:
        value = entries.get(key)
        if value is None:
            value = build()
            entries[key] = value
    return value
