"""The job runner when the engine does the work (REELBOT_BROKER_URL set): the bot hands each
queued step to Celery, follows its task, and delivers what comes back.

The bot stays the owner of the job records and of Telegram. A job is `queued` until its task
is sent (so while Redis is unreachable new jobs simply wait, shown as queued, and are sent when
it is back), then `running` with its task id on the record: a restarted bot follows the same
task again instead of starting the step anew, and delivers it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field

from telegram import Bot
from telegram.error import TelegramError

from bot import delivery
from bot.config import Settings
from bot.disk import render_bytes, room_for
from bot.engine import PROGRESS, STARTED, Engine, EngineDown, Outcome, step_payload
from bot.jobs import CANCELLED, FAILED, QUEUED, REVIEW, RUNNING, Job, JobStore
from bot.texts import error_text, t
from bot.workers import deliver_rendered, deliver_storyboard

log = logging.getLogger(__name__)

POLL_EVERY = 0.05  # seconds between looks at the tasks in flight (one Redis round trip)
SEND_EVERY = 1.0  # seconds between tries to send waiting jobs when nothing wakes the runner
CANCEL_WAIT = 10.0  # seconds a started task has to confirm a cancel before the bot ends it


@dataclass
class _Remote:
    job: Job
    task_id: str
    reporter: delivery.StatusReporter
    started: bool = False
    cancelled: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)


class RemoteRunner:
    """Sends queued jobs to the engine, follows their tasks, delivers their outcomes.

    The same face as `bot.workers.JobRunner`: start, wake, stop, cancel, wait_idle, running.
    """

    def __init__(self, bot: Bot, store: JobStore, settings: Settings, engine: Engine) -> None:
        self.bot = bot
        self.store = store
        self.settings = settings
        self.engine = engine
        self._followed: dict[str, _Remote] = {}  # job id -> task in flight
        self._finishing: dict[str, asyncio.Task[None]] = {}  # job id -> delivery under way
        self._unflagged: set[str] = set()  # cancelled task ids whose flag Redis did not take yet
        self._shown_ahead: dict[str, int] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._down_since: float | None = None
        self._loop_task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Follow the tasks a previous run left in flight; then send and follow."""
        for job in self.store.in_flight():
            if job.task_id is None:
                # Left running by the embedded queue before the engine was configured: send it.
                self.store.set_status(job.id, QUEUED)
                continue
            log.info("following job %s (%s) in task %s again", job.id, job.step, job.task_id)
            self._follow(job)
        self._loop_task = asyncio.create_task(self._loop(), name="reelbot-engine")

    def wake(self) -> None:
        self._wake.set()

    async def stop(self, timeout: float = 30.0) -> None:
        """Stop following; the tasks go on on the workers and the next start follows them."""
        self._stopping = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self._finishing:
            await asyncio.wait(list(self._finishing.values()), timeout=timeout)
        for remote in self._followed.values():
            await remote.reporter.stop()
        await asyncio.to_thread(self.engine.close)

    def running(self, job_id: str) -> bool:
        return job_id in self._followed or job_id in self._finishing

    def cancel(self, job_id: str) -> bool:
        """Stop a job in the engine: its worker ends the step (and ffmpeg) within a second."""
        remote = self._followed.get(job_id)
        if remote is None or remote.cancelled:
            return remote is not None
        remote.cancelled = True
        asyncio.create_task(self._cancel(remote), name=f"cancel-{job_id}")  # noqa: RUF006
        return True

    async def wait_idle(self, job_id: str, timeout: float = 30.0) -> None:
        remote = self._followed.get(job_id)
        finishing = self._finishing.get(job_id)
        with contextlib.suppress(TimeoutError):
            if finishing is not None:
                await asyncio.wait_for(asyncio.shield(finishing), timeout)
            elif remote is not None:
                await asyncio.wait_for(remote.done.wait(), timeout)

    # --- the loop ------------------------------------------------------------------------

    async def _loop(self) -> None:
        last_send = 0.0
        while not self._stopping:
            try:
                if self._wake.is_set() or time.monotonic() - last_send >= SEND_EVERY:
                    self._wake.clear()
                    last_send = time.monotonic()
                    await self._send_waiting()
                    await self._raise_flags()
                await self._poll()
            except Exception:
                # A locked database or an odd reply must not end the loop.
                log.exception("following the engine's jobs failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_EVERY)

    def _engine_down(self, exc: Exception) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning("the engine (Redis) is unreachable: %s; new jobs wait as queued", exc)

    def _engine_up(self) -> None:
        if self._down_since is not None:
            log.info("the engine is back after %.0f s", time.monotonic() - self._down_since)
            self._down_since = None

    async def _send_waiting(self) -> None:
        """Hand each queued job to the engine, oldest first; stop at the first failure."""
        moved = False
        for job in self.store.queued():
            if job.step == "render" and not await self._room_to_render(job):
                continue
            task_id = job.task_id or uuid.uuid4().hex
            if job.task_id is None:
                self.store.set_task(job.id, task_id)
            payload = step_payload(job, self.settings.upload_limit)
            try:
                await asyncio.to_thread(self.engine.submit, task_id, payload)
            except EngineDown as exc:
                self._engine_down(exc)
                break
            self._engine_up()
            self.store.handed_over(job.id)
            sent = self.store.get(job.id)
            if sent is not None and sent.status == RUNNING:
                log.info("job %s (%s) sent as task %s", job.id, job.step, task_id)
                self._follow(sent)
                moved = True
        if moved:
            await self._show_positions()

    async def _room_to_render(self, job: Job) -> bool:
        """Whether the shared disk has room to render `job`; if not the storyboard waits for
        the user to press Render again, and nothing is sent."""
        need = render_bytes(job.brief.seconds, job.brief.output, self.settings.upload_limit)
        room = room_for(job.job_dir, need, self.settings.min_free_mb)
        if room.ok:
            return True
        self.store.set_status(job.id, REVIEW)
        reporter = delivery.StatusReporter(self.bot, job, self.settings.status_interval)
        text = t(job.lang, "disk_low_render", free_mb=room.free_mb, need_mb=room.need_mb)
        await reporter.finish(text, delivery.storyboard_keyboard(job))
        return False

    def _follow(self, job: Job) -> None:
        assert job.task_id is not None
        reporter = delivery.StatusReporter(self.bot, job, self.settings.status_interval)
        self._followed[job.id] = _Remote(job, job.task_id, reporter)

    async def _poll(self) -> None:
        if not self._followed:
            return
        remotes = list(self._followed.values())
        try:
            states = await asyncio.to_thread(self.engine.poll, [r.task_id for r in remotes])
        except EngineDown as exc:
            self._engine_down(exc)
            return
        self._engine_up()
        moved = False
        for remote in remotes:
            state = states.get(remote.task_id)
            if state is None or self._followed.get(remote.job.id) is not remote:
                continue
            if state.state in (STARTED, PROGRESS) and not remote.started:
                remote.started = moved = True
                msg_id = await remote.reporter.start()
                if msg_id != remote.job.status_msg:
                    self.store.set_status_msg(remote.job.id, msg_id)
            if state.state == PROGRESS:
                remote.reporter.update(state.stage, state.fraction)
            if state.outcome is not None:
                moved = True
                self._followed.pop(remote.job.id, None)
                self._finishing[remote.job.id] = asyncio.create_task(
                    self._finish(remote, state.outcome), name=f"deliver-{remote.job.id}"
                )
        if moved:
            await self._show_positions()

    async def _finish(self, remote: _Remote, outcome: Outcome) -> None:
        """Deliver a finished step, once: only while the record still waits for this task."""
        job = self.store.get(remote.job.id)
        reporter = remote.reporter
        try:
            if job is None or job.status != RUNNING or job.task_id != remote.task_id:
                log.info("job %s: task %s ended after the job moved on", remote.job.id,
                         remote.task_id)  # fmt: skip
                return
            log.info("job %s: %s finished on %s", job.id, job.step, outcome.worker or "?")
            if outcome.cancelled:
                self.store.set_status(job.id, CANCELLED)
                await reporter.finish(t(job.lang, "cancelled"))
            elif outcome.error is not None:
                self.store.set_status(job.id, FAILED, outcome.error)
                text = error_text(job.lang, outcome.error, dict(outcome.params or {}))
                await reporter.finish(text)
            elif outcome.storyboard is not None:
                await deliver_storyboard(self.bot, self.store, job, reporter, outcome.storyboard)
            elif outcome.rendered is not None:
                await deliver_rendered(self.bot, self.store, job, reporter, outcome.rendered)
        except Exception:
            log.exception("finishing job %s failed", remote.job.id)
        finally:
            await reporter.stop()
            remote.done.set()
            self._finishing.pop(remote.job.id, None)
            self._shown_ahead.pop(remote.job.id, None)
            self.wake()

    async def _cancel(self, remote: _Remote) -> None:
        try:
            await asyncio.to_thread(self.engine.cancel, remote.task_id)
            flagged = True
        except EngineDown as exc:
            self._engine_down(exc)
            self._unflagged.add(remote.task_id)
            flagged = False
        if flagged and remote.started:
            # The worker answers with a cancelled outcome, which _finish reports.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(remote.done.wait(), CANCEL_WAIT)
            if remote.done.is_set():
                return
        # Not started (a worker that gets it later returns at once), no answer, or Redis away:
        # the job ends here; the flag stops the step wherever it runs.
        if self._followed.get(remote.job.id) is remote:
            self._followed.pop(remote.job.id)
            self.store.set_status(remote.job.id, CANCELLED)
            await remote.reporter.finish(t(remote.job.lang, "cancelled"))
            remote.done.set()
            self.wake()

    async def _raise_flags(self) -> None:
        """Cancel flags that could not be raised while Redis was away."""
        for task_id in list(self._unflagged):
            try:
                await asyncio.to_thread(self.engine.cancel, task_id)
            except EngineDown:
                return
            self._unflagged.discard(task_id)

    async def _show_positions(self) -> None:
        """Tell each user whose job has not started its place in the line."""
        started = sum(1 for r in self._followed.values() if r.started) + len(self._finishing)
        waiting = [r.job for r in self._followed.values() if not r.started]
        waiting += [j for j in self.store.queued() if j.id not in self._followed]
        for ahead, job in enumerate(waiting, start=started):
            if job.status_msg is None or self._shown_ahead.get(job.id) == ahead:
                continue
            self._shown_ahead[job.id] = ahead
            with contextlib.suppress(TelegramError):
                await self.bot.edit_message_text(
                    t(job.lang, "queued", ahead=ahead), job.chat_id, job.status_msg
                )
