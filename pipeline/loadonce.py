"""Heavy things (models, voices, native libraries) loaded once per process and key, thread-safely.

Every site that keeps a model for the life of the process holds a `Loader`: the script writer's
language model, whisper, the offline voices, the face detector, the matching models and the
narrators. `loader.get(key)` returns the value loaded for `key`, loading it on the first call.

- One load per key: threads that ask while a load is running wait for that load and share its
  result; different keys load independently (one slow model never blocks another).
- Failures are not cached: every thread waiting on a failed load gets that load's exception
  (the same typed error, so callers' `except` clauses work), and the next call tries again. A
  model that failed for a passing reason (memory, a file still being written) loads on the
  next job without a restart; one that always fails costs one failed attempt per call, and
  the callers here fall back (offline writer, no scorer, espeak) and log it.
- A load that asks its own loader for the same key raises instead of deadlocking.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Attempt(Generic[V]):
    """One load in progress: the waiters block on `done` and then read its outcome."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.thread = threading.get_ident()
        self.value: V | None = None
        self.error: BaseException | None = None


class Loader(Generic[K, V]):
    """Values made by `load(key)`, once per key, shared by every thread of the process."""

    def __init__(self, what: str, load: Callable[[K], V]) -> None:
        self.what = what
        self._load = load
        self._guard = threading.Lock()  # held only to read or change the two dicts
        self._values: dict[K, V] = {}
        self._pending: dict[K, _Attempt[V]] = {}

    def get(self, key: K) -> V:
        """The value for `key`, loading it now if no load for it has succeeded yet."""
        with self._guard:
            if key in self._values:
                return self._values[key]
            attempt = self._pending.get(key)
            owner = attempt is None
            if attempt is None:
                attempt = self._pending[key] = _Attempt()
        if not owner:
            if attempt.thread == threading.get_ident():
                raise RuntimeError(f"{self.what}: loading {key!r} asked for itself")
            attempt.done.wait()
            if attempt.error is not None:
                raise attempt.error
            return attempt.value  # type: ignore[return-value]  # set before done when no error
        started = time.monotonic()
        try:
            value = self._load(key)
        except BaseException as exc:
            attempt.error = exc
            with self._guard:
                del self._pending[key]
            attempt.done.set()
            log.debug("%s %r failed to load: %s", self.what, key, exc)
            raise
        attempt.value = value
        with self._guard:
            self._values[key] = value
            del self._pending[key]
        attempt.done.set()
        log.debug("%s %r loaded in %.2f s", self.what, key, time.monotonic() - started)
        return value

    def loaded(self, key: K) -> bool:
        """Whether a value for `key` is held (no load is started)."""
        with self._guard:
            return key in self._values

    def clear(self) -> None:
        """Forget every loaded value (tests; freeing memory). Loads in progress still finish."""
        with self._guard:
            self._values.clear()
