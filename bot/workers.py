"""The bounded worker pool: runs queued jobs on threads, each with a cancel Event, and delivers
the results back on the event loop.

Jobs are claimed from the SQLite store, so a restart resumes what was queued or running. At
shutdown running jobs are cancelled but stay marked running, which is how the next start knows
to resume them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from telegram import Bot, InlineKeyboardMarkup
from telegram.error import TelegramError

from bot import delivery
from bot.config import Settings
from bot.disk import Room, render_bytes, room_for
from bot.fit import fit_video
from bot.jobs import CANCELLED, DONE, FAILED, REVIEW, UNDELIVERED, Job, JobStore, Rendered
from bot.pipeline_api import MakeResultLike, Pipeline, StoryboardLike
from bot.texts import error_key, error_text, t
from pipeline.errors import Cancelled, ReelbotError

log = logging.getLogger(__name__)


class Runner(Protocol):
    """What the handlers need of whatever runs the jobs: `JobRunner` (threads in this process)
    or `bot.remote.RemoteRunner` (the distributed engine)."""

    async def start(self) -> None: ...
    def wake(self) -> None: ...
    async def stop(self, timeout: float = 30.0) -> None: ...
    def cancel(self, job_id: str) -> bool: ...
    async def wait_idle(self, job_id: str, timeout: float = 30.0) -> None: ...
    def running(self, job_id: str) -> bool: ...


@dataclass
class _Running:
    job: Job
    cancel: threading.Event
    task: asyncio.Task[None] | None = None
    reporter: delivery.StatusReporter | None = None
    by_user: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)


class JobRunner:
    """Claims queued jobs while fewer than `settings.workers` run, and sees each one through."""

    def __init__(self, bot: Bot, store: JobStore, pipeline: Pipeline, settings: Settings) -> None:
        self.bot = bot
        self.store = store
        self.pipeline = pipeline
        self.settings = settings
        self._executor = ThreadPoolExecutor(settings.workers, thread_name_prefix="reelbot-job")
        self._running: dict[str, _Running] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._loop_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Resume what a previous run left, tell those users, and start claiming jobs."""
        for job in self.store.recover():
            if job.resumed:
                log.info("resuming job %s (%s) after a restart", job.id, job.step)
                with contextlib.suppress(TelegramError):
                    await self.bot.send_message(job.chat_id, t(job.lang, "resumed"))
        self._loop_task = asyncio.create_task(self._claim_loop(), name="reelbot-jobs")

    def wake(self) -> None:
        """A job was queued: claim it as soon as a worker is free."""
        self._wake.set()

    async def stop(self, timeout: float = 30.0) -> None:
        """Cancel running work (it stays marked running, to resume) and wait for the threads."""
        self._stopping = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        for run in self._running.values():
            run.cancel.set()
        tasks = [r.task for r in self._running.values() if r.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        self._executor.shutdown(wait=False, cancel_futures=True)

    def cancel(self, job_id: str) -> bool:
        """Stop a running job (the pipeline sees the Event; ffmpeg is terminated)."""
        run = self._running.get(job_id)
        if run is None:
            return False
        run.by_user = True
        run.cancel.set()
        return True

    async def wait_idle(self, job_id: str, timeout: float = 30.0) -> None:
        """Wait until job `job_id` is no longer running here."""
        run = self._running.get(job_id)
        if run is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(run.done.wait(), timeout)

    def running(self, job_id: str) -> bool:
        return job_id in self._running

    async def _claim_loop(self) -> None:
        while not self._stopping:
            try:
                await self._claim()
            except Exception:
                # A locked or broken database must not end the loop: log it and try again.
                log.exception("claiming jobs failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                # Also poll now and then: another process may share the store.
                await asyncio.wait_for(self._wake.wait(), timeout=5.0)

    async def _claim(self) -> None:
        """Start queued jobs while workers are free; tell the others their new place."""
        claimed = False
        while len(self._running) < self.settings.workers:
            job = self.store.claim_next()
            if job is None:
                break
            claimed = True
            run = _Running(job, threading.Event())
            self._running[job.id] = run
            run.task = asyncio.create_task(self._run(run), name=f"job-{job.id}")
        if claimed:
            await self._show_positions()

    async def _show_positions(self) -> None:
        """The queue moved: tell each waiting user their new place in it."""
        for ahead, job in enumerate(self.store.queued(), start=len(self._running)):
            if job.status_msg is None:
                continue
            with contextlib.suppress(TelegramError):
                await self.bot.edit_message_text(
                    t(job.lang, "queued", ahead=ahead), job.chat_id, job.status_msg
                )

    def _work(self, job: Job, cancel: threading.Event, progress: Any) -> Any:
        """The blocking part of a job, on a worker thread."""
        if job.step == "prepare":
            return self.pipeline.prepare(job.brief, job.job_dir, progress, cancel)
        if job.step == "revise":
            # "Another version" asks the writer afresh; an edit hands over the user's script.
            script = None if job.another else job.script
            return self.pipeline.revise(
                job.job_dir, script, another=job.another, progress=progress, cancel=cancel
            )
        if job.step == "edit":  # a change asked for by replying to the video (bot.edits)
            from bot.editfiles import apply_confirmed

            result = apply_confirmed(self.pipeline, job.job_dir, progress, cancel)
        else:
            result = self.pipeline.render_job(job.job_dir, progress, cancel)
        video = fit_video(
            result.video,
            result.duration,
            self.settings.upload_limit,
            progress=lambda f: progress("fit", f),
            cancel=cancel,
        )
        return result, video

    async def _run(self, run: _Running) -> None:
        """One job from claim to outcome: status message, worker thread, delivery."""
        job = run.job
        loop = asyncio.get_running_loop()
        reporter = delivery.StatusReporter(self.bot, job, self.settings.status_interval)
        run.reporter = reporter
        try:
            msg_id = await reporter.start()
            if msg_id != job.status_msg:
                self.store.set_status_msg(job.id, msg_id)

            if job.step == "render":
                room = self._room_to_render(job)
                if not room.ok:
                    # Nothing is written; the storyboard waits for the user to press Render
                    # again once there is room.
                    self.store.set_status(job.id, REVIEW)
                    text = t(job.lang, "disk_low_render", free_mb=room.free_mb,
                             need_mb=room.need_mb)  # fmt: skip
                    await reporter.finish(text, delivery.storyboard_keyboard(job))
                    return

            def progress(stage: str, fraction: float) -> None:
                loop.call_soon_threadsafe(reporter.update, stage, fraction)

            try:
                out = await loop.run_in_executor(
                    self._executor, self._work, job, run.cancel, progress
                )
            except Cancelled:
                if self._stopping and not run.by_user:
                    log.info("job %s interrupted by shutdown; it resumes on the next start", job.id)
                    await reporter.stop()
                    return
                self.store.set_status(job.id, CANCELLED)
                await reporter.finish(t(job.lang, "cancelled"))
                return
            except ReelbotError as exc:
                log.warning("job %s failed: %s (%s)", job.id, exc.key, exc, exc_info=True)
                self.store.set_status(job.id, FAILED, exc.key)
                await reporter.finish(error_text(job.lang, exc.key, exc.params))
                return
            except Exception as exc:
                log.exception("job %s crashed", job.id)
                key, params = error_key(exc)  # a full disk is told as such
                try:
                    self.store.set_status(job.id, FAILED, key)
                except sqlite3.Error:
                    log.exception("job %s: recording the failure failed", job.id)
                await reporter.finish(error_text(job.lang, key, params))
                return
            await self._deliver(job, reporter, out)
        finally:
            self._running.pop(job.id, None)
            run.done.set()
            await reporter.stop()
            self.wake()

    async def _deliver(self, job: Job, reporter: delivery.StatusReporter, out: Any) -> None:
        """Hand over what a step produced: the storyboard, or the finished video."""
        if job.step in ("prepare", "revise"):
            await deliver_storyboard(self.bot, self.store, job, reporter, out)
            return
        result: MakeResultLike
        result, video = out
        rendered = delivery.rendered_of(result, video, job.lang)
        await deliver_rendered(self.bot, self.store, job, reporter, rendered)

    def _room_to_render(self, job: Job) -> Room:
        """Free space for rendering `job`, estimated from its target length and output size."""
        need = render_bytes(job.brief.seconds, job.brief.output, self.settings.upload_limit)
        return room_for(job.job_dir, need, self.settings.min_free_mb)


async def deliver_storyboard(
    bot: Bot, store: JobStore, job: Job, reporter: delivery.StatusReporter, board: StoryboardLike
) -> None:
    """The storyboard is ready: keep its script, send it, and wait for the user's choice."""
    try:
        store.set_script(job.id, board.script)
        await reporter.finish(t(job.lang, "stage_plan") + " ✅")
        await delivery.send_storyboard(bot, job, board)
        store.set_status(job.id, REVIEW)
    except Exception:
        # A Telegram refusal: the user hears of it, the job ends.
        log.exception("delivering the storyboard of job %s failed", job.id)
        store.set_status(job.id, FAILED, "delivery")
        await reporter.finish(error_text(job.lang, "internal"))


async def deliver_rendered(
    bot: Bot, store: JobStore, job: Job, reporter: delivery.StatusReporter, rendered: Rendered
) -> None:
    """The video is made: send it; kept for "Send again" when Telegram refuses it."""
    reporter.update("upload", 1.0)
    await reporter.show(reporter.text())
    outcome = await delivery.deliver_video(bot, store, job, rendered)
    if outcome == DONE:
        await reporter.finish(t(job.lang, "done"))
    elif outcome == UNDELIVERED:
        await reporter.finish(t(job.lang, "delivery_failed"), resend_markup(job))
    else:
        await reporter.finish(error_text(job.lang, "internal"))


def resend_markup(job: Job) -> InlineKeyboardMarkup:
    # Imported here: bot.keyboards imports bot.services, which imports this module.
    from bot.keyboards import resend_keyboard

    return resend_keyboard(job.lang, job.id)
