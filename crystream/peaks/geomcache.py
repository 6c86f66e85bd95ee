"""Per-worker cache of per-detector precomputation (pixel maps, index tables).

Keyed on the Detector object's identity plus the parameters the map depends on, built once
per worker (thread-safe) and dropped when the Detector is garbage-collected. Never per frame.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Callable, Hashable

_lock = threading.Lock()
_cache: dict[tuple, Any] = {}
_watched: set[int] = set()


def _forget(det_id: int) -> None:
    with _lock:
        for key in [k for k in _cache if k[0] == det_id]:
            del _cache[key]
        _watched.discard(det_id)


def cached(detector: object, key: Hashable, build: Callable[[], Any]) -> Any:
    """The value for (detector, key), built with ``build()`` the first time it is asked for."""
    full = (id(detector), key)
    value = _cache.get(full)
    if value is not None:
        return value
    with _lock:
        value = _cache.get(full)
        if value is None:
            value = build()
            _cache[full] = value
            if id(detector) not in _watched:
                _watched.add(id(detector))
                weakref.finalize(detector, _forget, id(detector))
    return value
