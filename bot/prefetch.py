"""Footage analysed while it arrives: each downloaded file is warmed (analysed, transcribed) in
the background, one file at a time, so /done waits only for what is left.

Work is grouped by the draft's job folder. Cancelling the draft (/cancel, a new /new) stops its
files' work, the one running included (its cancel Event); a file the job no longer has is
dropped the same way. When the job's `prepare` starts, files not started yet are withdrawn (the
analysis stage does them itself, several at once) and the one running is waited for: its
result lands in the analysis cache, where `prepare` finds it.

The work is `Pipeline.warm(path, cancel)`, a function of the file path (the real pipeline's is
`pipeline.footage.warm.warm`), so an engine that runs jobs elsewhere can run it on any worker
that sees the same files and cache; here an embedded single-thread pool runs it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from bot.pipeline_api import (
    Editing,
    MakeResultLike,
    Pipeline,
    ProgressFn,
    StoryboardLike,
    TranscriptLike,
    Warming,
)
from pipeline.brief import Brief
from pipeline.errors import Cancelled, EditError
from pipeline.make.editrequest import EditRequest
from pipeline.script.model import Script

log = logging.getLogger(__name__)


@dataclass
class _Item:
    path: str
    cancel: threading.Event = field(default_factory=threading.Event)
    future: Future[object] | None = None


class Prefetcher:
    """One background worker warming footage files, grouped by job folder."""

    def __init__(self, warm: Callable[[str, threading.Event], object]) -> None:
        self._warm = warm
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="reelbot-prefetch")
        self._groups: dict[str, list[_Item]] = {}
        self._lock = threading.Lock()
        self.warmed = 0  # files warmed to the end (tests and logs)

    def add(self, group: str, path: str) -> None:
        """Warm `path` (a file of the draft whose job folder is `group`) in the background."""
        item = _Item(path)
        with self._lock:
            self._groups.setdefault(group, []).append(item)
            item.future = self._pool.submit(self._run, item)

    def _run(self, item: _Item) -> object:
        if item.cancel.is_set():
            return None
        try:
            result = self._warm(item.path, item.cancel)
        except Cancelled:
            log.info("warming %s stopped", item.path)
            return None
        except Exception:
            # Warming only saves time later; the job analyses the file itself and reports.
            log.warning("warming %s failed", item.path, exc_info=True)
            return None
        self.warmed += 1
        return result

    def drop(self, group: str, path: str) -> None:
        """The file left the draft: stop its work."""
        with self._lock:
            items = self._groups.get(group, [])
            for item in [i for i in items if i.path == path]:
                self._stop(item)
                items.remove(item)

    def cancel(self, group: str) -> None:
        """The draft is gone: stop all its work."""
        with self._lock:
            for item in self._groups.pop(group, []):
                self._stop(item)

    @staticmethod
    def _stop(item: _Item) -> None:
        item.cancel.set()
        if item.future is not None:
            item.future.cancel()

    def settle(self, group: str, cancel: threading.Event | None = None) -> int:
        """The job starts: withdraw files not started, wait for the one running (or until
        `cancel`). Returns how many of the group's files were warmed."""
        with self._lock:
            items = self._groups.pop(group, [])
        waiting = []
        for item in items:
            if item.future is None:
                continue
            if item.future.cancel():
                continue  # not started: the analysis stage takes it
            waiting.append(item)
        for item in waiting:
            assert item.future is not None
            while not item.future.done():
                if cancel is not None and cancel.is_set():
                    item.cancel.set()
                    break
                time.sleep(0.05)
        return sum(1 for i in waiting if i.future is not None and i.future.done())

    def pending(self, group: str) -> int:
        """Files of the group not warmed yet."""
        with self._lock:
            return sum(1 for i in self._groups.get(group, []) if i.future and not i.future.done())

    def shutdown(self) -> None:
        with self._lock:
            for items in self._groups.values():
                for item in items:
                    self._stop(item)
            self._groups.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)


class PrefetchingPipeline:
    """The bot's pipeline with `prepare` first settling the job's background work."""

    def __init__(self, inner: Pipeline, prefetch: Prefetcher) -> None:
        self.inner = inner
        self.prefetch = prefetch

    def prepare(
        self,
        brief: Brief,
        job_dir: str,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> StoryboardLike:
        began = time.monotonic()
        warmed = self.prefetch.settle(job_dir, cancel)
        log.info("job %s: %d file(s) analysed in the background; waited %.1fs", job_dir,
                 warmed, time.monotonic() - began)  # fmt: skip
        return self.inner.prepare(brief, job_dir, progress, cancel)

    def revise(
        self,
        job_dir: str,
        script: Script | None = None,
        *,
        another: bool = False,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> StoryboardLike:
        return self.inner.revise(job_dir, script, another=another, progress=progress,
                                 cancel=cancel)  # fmt: skip

    def render_job(
        self,
        job_dir: str,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> MakeResultLike:
        return self.inner.render_job(job_dir, progress, cancel)

    def transcribe(self, path: str, timeout: float | None = None) -> TranscriptLike:
        return self.inner.transcribe(path, timeout)

    def edit(
        self,
        job_dir: str,
        request: EditRequest,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> MakeResultLike:
        if not isinstance(self.inner, Editing):
            raise EditError("this pipeline cannot edit a delivered video")
        return self.inner.edit(job_dir, request, progress, cancel)


def prefetcher_for(pipeline: Pipeline) -> Prefetcher | None:
    """A prefetcher when the pipeline can warm files (the real one can; stand-ins may not)."""
    if isinstance(pipeline, Warming):
        return Prefetcher(pipeline.warm)
    return None
