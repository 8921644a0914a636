"""Each recogniser's model, loaded once per process and shared by every thread.

`pipeline/loadonce.py` (the project-wide home for this) is not on main yet; until it lands this is
a lock-guarded cache of the same shape, to be replaced by it when the branches meet. A load that
raises is not cached, so a later call tries again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar, cast

T = TypeVar("T")

_lock = threading.Lock()
_cache: dict[str, Any] = {}
# One lock per key: two different models load in parallel, the same one only once.
_key_locks: dict[str, threading.Lock] = {}


def load_once(key: str, factory: Callable[[], T]) -> T:
    """The object cached under `key`, built by `factory` on first use (once, even under threads)."""
    if key in _cache:
        return cast(T, _cache[key])
    with _lock:
        key_lock = _key_locks.setdefault(key, threading.Lock())
    with key_lock:
        if key not in _cache:
            _cache[key] = factory()
    return cast(T, _cache[key])


def loaded(key: str) -> bool:
    """Whether `key` is already in memory (for tests and timing)."""
    return key in _cache
