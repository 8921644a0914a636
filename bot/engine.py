"""The distributed engine: job steps run as Celery tasks on `reelbot worker` processes, through
Redis (REELBOT_BROKER_URL), when one machine is not enough.

The bot stays the only owner of the job records and of Telegram: it sends one task per step
(`Engine.submit`), follows the task's state (`Engine.poll`: queued, started, progress, result)
and delivers. A worker runs the step through the same `Pipeline` the bot's threads call and
returns the outcome as plain JSON data, never an exception.

What makes a lost worker lose nothing:
- a task is acknowledged only when it has finished (`task_acks_late`, prefetch 1), so a worker
  that dies mid-job leaves its task unacknowledged; Redis hands it to another worker when the
  visibility timeout has passed (REELBOT_VISIBILITY_TIMEOUT), at once when only the pool process
  died (`task_reject_on_worker_lost`). The job folder's stage cache makes the retry cheap.
- a task runs once per id: the worker holds a lease key while it runs (renewed every half
  second, gone a few seconds after its holder died) and leaves the outcome under a done key. A
  second delivery of the same task (the visibility timeout passed while the first still runs, or
  the bot sent it again after a restart) waits for the lease, then returns the stored outcome.

`/cancel` sets a flag key per task; the worker's watcher thread sets the step's cancel Event
within half a second, and the pipeline ends its ffmpeg.

This module imports neither `telegram` nor the bot's handlers, so a worker needs neither.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import redis
from celery import Celery
from celery.backends.redis import RedisBackend

from bot.config import EngineSettings
from bot.fit import fit_video
from bot.jobs import Job, Rendered, brief_from_json, brief_to_json, script_to_json
from bot.pipeline_api import DefaultPipeline, ModelWarming, Pipeline
from bot.texts import error_key
from pipeline.errors import Cancelled, ReelbotError
from pipeline.script.model import Script

log = logging.getLogger(__name__)

TASK = "reelbot.step"
QUEUE = "reelbot"
# Test-only: "module:callable" returning the Pipeline a worker runs steps with (the tests' stand-in
# that renders at playback speed). Unset in production: the real pipeline.
PIPELINE_FACTORY_ENV = "REELBOT_WORKER_PIPELINE"

LEASE_SECONDS = 5.0  # a dead worker's lease is gone this long after its last renewal
WATCH_EVERY = 0.5  # seconds between the watcher's rounds: lease, cancel flag, progress
KEEP_SECONDS = 2 * 86400  # how long outcomes and flags stay in Redis

# Task states as Celery stores them; PROGRESS: started, with a stage and fraction reported.
PENDING, STARTED, PROGRESS, SUCCESS = "PENDING", "STARTED", "PROGRESS", "SUCCESS"


def _key(kind: str, task_id: str) -> str:
    return f"reelbot:{kind}:{task_id}"


def redis_client(engine: EngineSettings) -> redis.Redis:
    """A client on the broker's Redis whose every call gives up after `engine.timeout`."""
    client: redis.Redis = redis.Redis.from_url(
        engine.broker_url,
        socket_timeout=engine.timeout,
        socket_connect_timeout=engine.timeout,
        health_check_interval=30,
    )
    return client


class PolledRedisBackend(RedisBackend):  # type: ignore[misc]
    """Celery's Redis result store without the subscription it opens for each task sent.

    The bot polls task states (`Engine.poll`) and never waits on a result; that subscription
    would retry for 20 s when Redis is away, then refuse to work until the process restarts."""

    def on_task_call(self, producer: Any, task_id: str) -> None:
        return None


def make_app(engine: EngineSettings, worker: bool = False) -> Celery:
    """The Celery application both sides use: the bot to send and follow, workers to run."""
    backend = f"{__name__}:PolledRedisBackend+{engine.broker_url}"
    app = Celery("reelbot", broker=engine.broker_url, backend=backend)
    timeout = engine.timeout
    # Celery retries a lost result store 20 times a second apart. A worker storing an outcome
    # should ride out a short Redis restart that way; the bot must not wait: its job stays
    # queued, or followed, and the next round tries again.
    retries = 20 if worker else 0
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_default_queue=QUEUE,
        # Acknowledged when finished, one at a time: a lost worker's job goes back to the queue.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_track_started=True,  # STARTED tells the bot the job left the queue
        result_expires=KEEP_SECONDS,
        result_extended=False,
        broker_connection_timeout=timeout,
        broker_connection_retry_on_startup=True,  # a worker waits for Redis to come up
        broker_transport_options={
            "visibility_timeout": engine.visibility_timeout,
            # Look for tasks of vanished workers every few seconds (kombu's default: ~100 s).
            "unacked_restore_interval": max(1, min(10, int(engine.visibility_timeout / 4))),
            "unacked_restore_throttle": 1,
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
        },
        redis_socket_timeout=timeout,
        redis_socket_connect_timeout=timeout,
        redis_retry_on_timeout=False,
        result_backend_transport_options={
            "retry_policy": {
                "max_retries": retries,
                "interval_start": 0,
                "interval_step": 1,
                "interval_max": 1,
            }
        },
        # Sending a task when Redis is down fails at once; the job waits in the bot's records.
        task_publish_retry=False,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
    )
    app.task(bind=True, name=TASK, acks_late=True, reject_on_worker_lost=True)(_run_task)
    return app


# --- what travels --------------------------------------------------------------------------


def step_payload(job: Job, upload_limit: int) -> dict[str, Any]:
    """A job's step as the task's JSON argument."""
    return {
        "job_id": job.id,
        "step": job.step,
        "lang": job.lang,
        "job_dir": job.job_dir,
        "brief": brief_to_json(job.brief),
        "script": script_to_json(job.script) if job.script is not None else None,
        "another": job.another,
        "upload_limit": upload_limit,
    }


@dataclass(frozen=True, slots=True)
class Storyboard:
    """A storyboard as it comes back from a worker (a `StoryboardLike`)."""

    job_dir: str
    script: Script
    frames: tuple[tuple[str, str], ...]
    warnings: tuple[str, ...]  # already in the chat's language
    sounds: tuple[tuple[int, str], ...] = ()  # (line, decision code) for the storyboard
    shown: tuple[dict[str, str], ...] = ()  # per frame, what its shot shows in zh and en

    def warnings_in(self, language: str) -> tuple[str, ...]:
        return self.warnings

    def shown_in(self, language: str) -> tuple[str, ...]:
        return tuple(s.get(language, "") for s in self.shown)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a step came to: a storyboard, a rendered video, an error key, or cancelled."""

    storyboard: Storyboard | None = None
    rendered: Rendered | None = None
    error: str | None = None
    params: Mapping[str, Any] | None = None
    cancelled: bool = False
    started: float = 0.0  # epoch seconds on the worker
    finished: float = 0.0
    worker: str = ""


def outcome_of(data: Any) -> Outcome:
    """A task's returned JSON as an Outcome; anything unreadable is an internal error."""
    if not isinstance(data, dict):
        return Outcome(error="internal")
    base = Outcome(
        started=float(data.get("started") or 0.0),
        finished=float(data.get("finished") or 0.0),
        worker=str(data.get("worker", "")),
    )
    try:
        if data.get("cancelled"):
            return dataclasses.replace(base, cancelled=True)
        if data.get("error"):
            params = data.get("params") if isinstance(data.get("params"), dict) else {}
            return dataclasses.replace(base, error=str(data["error"]), params=params)
        if "rendered" in data:
            return dataclasses.replace(base, rendered=Rendered.from_json(data["rendered"]))
        board = data["storyboard"]
        storyboard = Storyboard(
            job_dir=board["job_dir"],
            script=Script.from_json(board["script"]),
            frames=tuple((str(text), str(path)) for text, path in board["frames"]),
            warnings=tuple(board["warnings"]),
            sounds=tuple((int(line), str(code)) for line, code in board.get("sounds", ())),
            shown=tuple(
                {str(k): str(v) for k, v in dict(s).items()} for s in board.get("shown", ())
            ),
        )
        return dataclasses.replace(base, storyboard=storyboard)
    except (KeyError, TypeError, ValueError, ReelbotError):
        log.exception("a worker's outcome cannot be read")
        return Outcome(error="internal")


@dataclass(frozen=True, slots=True)
class TaskState:
    """One poll of a task: its state, the stage and fraction when running, the outcome when
    finished."""

    state: str
    stage: str = ""
    fraction: float = 0.0
    outcome: Outcome | None = None


# --- the bot's side ------------------------------------------------------------------------


class Engine:
    """The bot's handle on the engine. Every call is blocking and bounded by the Redis timeout
    (the bot runs them on a thread); each raises `EngineDown` when Redis cannot be reached."""

    def __init__(self, settings: EngineSettings) -> None:
        self.settings = settings
        self.app = make_app(settings)
        self.redis = redis_client(settings)

    def submit(self, task_id: str, payload: dict[str, Any]) -> None:
        """Send one step as task `task_id` (sending an id again runs it only once)."""
        with _down_as_engine_down():
            self.app.send_task(TASK, args=(payload,), task_id=task_id, queue=QUEUE)

    def poll(self, task_ids: list[str]) -> dict[str, TaskState]:
        """The state of each task, in one round trip."""
        if not task_ids:
            return {}
        backend: Any = self.app.backend
        keys = [backend.get_key_for_task(t) for t in task_ids]
        keys += [_key("progress", t) for t in task_ids]
        with _down_as_engine_down():
            raw = self.redis.mget(keys)
        states = {}
        for task_id, value, progress in zip(
            task_ids, raw[: len(task_ids)], raw[len(task_ids) :], strict=True
        ):
            meta = backend.decode_result(value) if value is not None else {}
            status, result = meta.get("status", PENDING), meta.get("result")
            if status == SUCCESS:
                states[task_id] = TaskState(SUCCESS, outcome=outcome_of(result))
            elif progress is not None and status in (PENDING, STARTED):
                text = progress.decode() if isinstance(progress, bytes) else str(progress)
                stage, _, fraction = text.partition(" ")
                states[task_id] = TaskState(PROGRESS, stage, float(fraction or 0))
            elif status in (PENDING, STARTED, "RECEIVED", "RETRY"):
                states[task_id] = TaskState(status)
            else:  # FAILURE, REVOKED: the task itself broke
                log.error("task %s ended %s: %r", task_id, status, result)
                states[task_id] = TaskState(status, outcome=Outcome(error="internal"))
        return states

    def cancel(self, task_id: str) -> None:
        """Raise the task's cancel flag: its worker stops it within a second; a worker that
        receives it later returns at once."""
        with _down_as_engine_down():
            self.redis.set(_key("cancel", task_id), "1", ex=KEEP_SECONDS)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.redis.close()
        with contextlib.suppress(Exception):
            self.app.close()


class EngineDown(Exception):
    """Redis cannot be reached (refused, timed out, reset)."""


@contextlib.contextmanager
def _down_as_engine_down() -> Iterator[None]:
    from kombu.exceptions import OperationalError

    try:
        yield
    except (redis.RedisError, OperationalError, OSError) as exc:
        raise EngineDown(f"{type(exc).__name__}: {exc}") from exc


# --- the worker's side ---------------------------------------------------------------------


_pipeline_lock = threading.Lock()
_pipeline: Pipeline | None = None
_redis: redis.Redis | None = None
_settings: EngineSettings | None = None


def configure_worker(settings: EngineSettings) -> None:
    """What this worker process's tasks use: the engine settings (and so its Redis). Each pool
    process makes its pipeline and Redis connection as it starts, not in its first job."""
    from celery.signals import worker_process_init

    global _settings
    _settings = settings
    worker_process_init.connect(_warm_up, weak=False)


def _warm_up(**_: Any) -> None:
    pipeline = worker_pipeline()
    if isinstance(pipeline, ModelWarming):
        # On a thread: Celery gives a pool process 4 s to start (worker_proc_alive_timeout),
        # the models take longer; the first job should not wait for them either.
        threading.Thread(target=_warm_models, args=(pipeline,), name="warm-up", daemon=True).start()
    try:
        _worker_redis().ping()
    except redis.RedisError as exc:
        log.warning("Redis unreachable as this worker process starts: %s", exc)


def _warm_models(pipeline: ModelWarming) -> None:
    try:
        pipeline.warm_models()
    except Exception:
        log.exception("loading the models at start failed; jobs load them as they need them")


def worker_pipeline() -> Pipeline:
    """The pipeline steps run with: the real one, or the factory REELBOT_WORKER_PIPELINE names
    (tests only); made once per process."""
    global _pipeline
    with _pipeline_lock:
        if _pipeline is None:
            spec = os.environ.get(PIPELINE_FACTORY_ENV, "").strip()
            if spec:
                module, _, name = spec.partition(":")
                factory: Callable[[], Pipeline] = getattr(importlib.import_module(module), name)
                _pipeline = factory()
                log.warning("running steps with %s (%s; tests only)", spec, PIPELINE_FACTORY_ENV)
            else:
                _pipeline = DefaultPipeline()  # the process's pipeline settings snapshot
        return _pipeline


def _worker_redis() -> redis.Redis:
    global _redis
    if _redis is None:
        assert _settings is not None, "configure_worker was not called"
        _redis = redis_client(_settings)
    return _redis


def _run_task(task: Any, payload: dict[str, Any]) -> dict[str, Any]:
    """The Celery task: one step of one job, run once per task id (see the module's notes)."""
    task_id: str = task.request.id
    name = f"{task.request.hostname or socket.gethostname()}:{os.getpid()}"
    r = _worker_redis()
    done_key, lease_key = _key("done", task_id), _key("lease", task_id)
    while True:
        stored = r.get(done_key)
        if stored is not None:
            log.info("task %s (job %s) already ran; its outcome stands", task_id, payload["job_id"])
            outcome: dict[str, Any] = json.loads(stored)
            return outcome
        if r.set(lease_key, name, nx=True, px=int(LEASE_SECONDS * 1000)):
            break
        time.sleep(WATCH_EVERY)  # another worker runs it now: its outcome, or its death, comes
    started = time.time()
    watcher = _Watcher(task, task_id, lease_key, name, r)
    watcher.start()
    try:
        out = _outcome_of_step(payload, watcher.cancel, watcher.progress)
    finally:
        watcher.stop()
    out.update(started=started, finished=time.time(), worker=name)
    try:
        r.set(done_key, json.dumps(out), ex=KEEP_SECONDS)
        r.delete(lease_key)
    except redis.RedisError:
        # The outcome still goes to the result store with the task's return; only a second
        # delivery of this task would run it again.
        log.warning("task %s: keeping its outcome in Redis failed", task_id, exc_info=True)
    return out


def _outcome_of_step(
    payload: dict[str, Any], cancel: threading.Event, progress: Callable[[str, float], None]
) -> dict[str, Any]:
    """Run the step; every way it can end as JSON data."""
    job_id, step = payload["job_id"], payload["step"]
    if cancel.is_set():
        return {"cancelled": True}
    try:
        return _step(payload, cancel, progress)
    except Cancelled:
        log.info("job %s: %s cancelled", job_id, step)
        return {"cancelled": True}
    except ReelbotError as exc:
        log.warning("job %s failed: %s (%s)", job_id, exc.key, exc, exc_info=True)
        return {"error": exc.key, "params": _plain(exc.params)}
    except Exception as exc:
        log.exception("job %s crashed", job_id)
        key, params = error_key(exc)
        return {"error": key, "params": _plain(params)}


def _plain(params: Mapping[str, Any]) -> dict[str, Any]:
    """Error parameters as JSON values (paths and numbers stay; anything else as text)."""
    out: dict[str, Any] = json.loads(json.dumps(dict(params), default=str))
    return out


def _step(
    payload: dict[str, Any], cancel: threading.Event, progress: Callable[[str, float], None]
) -> dict[str, Any]:
    pipeline = worker_pipeline()
    step, job_dir, lang = payload["step"], payload["job_dir"], payload["lang"]
    if step in ("prepare", "revise"):
        if step == "prepare":
            board = pipeline.prepare(brief_from_json(payload["brief"]), job_dir, progress, cancel)
        else:
            another = bool(payload["another"])
            # "Another version" asks the writer afresh; an edit hands over the user's script.
            text = payload["script"]
            script = None if another or not text else Script.from_json(text)
            board = pipeline.revise(
                job_dir, script, another=another, progress=progress, cancel=cancel
            )
        return {
            "storyboard": {
                "job_dir": board.job_dir,
                "script": script_to_json(board.script),
                "frames": [list(f) for f in board.frames],
                "warnings": list(board.warnings_in(lang)),
                "sounds": [list(s) for s in board.sounds],
                "shown": [{lang: text} for text in board.shown_in(lang)],
            }
        }
    if step == "edit":  # a reply to a delivered video, confirmed (bot.edits): a new version
        from bot.editfiles import apply_confirmed

        result = apply_confirmed(pipeline, job_dir, progress, cancel)
    elif step == "render":
        result = pipeline.render_job(job_dir, progress, cancel)
    else:
        raise ValueError(f"unknown step {step!r}")
    video = fit_video(
        result.video,
        result.duration,
        int(payload["upload_limit"]),
        progress=lambda f: progress("fit", f),
        cancel=cancel,
    )
    # The same facts the embedded runner keeps (bot.delivery.rendered_of, which needs telegram).
    rendered = Rendered(
        video=video,
        cover=result.cover,
        script=result.script,
        duration=result.duration,
        width=result.width,
        height=result.height,
        voice_engine=result.voice_engine,
        warnings=tuple(result.warnings_in(lang)),
    )
    return {"rendered": rendered.to_json()}


class _Watcher:
    """A thread beside the running step: renews the lease, watches the cancel flag, reports
    progress into the task's state (at most once a round)."""

    def __init__(self, task: Any, task_id: str, lease_key: str, name: str, r: redis.Redis) -> None:
        self.task, self.task_id, self.lease_key = task, task_id, lease_key
        self.name, self.r = name, r
        self.cancel = threading.Event()
        self._stop = threading.Event()
        self._latest: tuple[str, float] | None = None
        self._sent: tuple[str, float] | None = None
        self._thread = threading.Thread(target=self._run, name=f"watch-{task_id}", daemon=True)
        self._failing = False

    def progress(self, stage: str, fraction: float) -> None:
        self._latest = (stage, round(fraction, 3))

    def start(self) -> None:
        self._round()  # a flag raised while the task waited in the queue counts at once
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(WATCH_EVERY):
            self._round()

    def _round(self) -> None:
        try:
            self.r.set(self.lease_key, self.name, px=int(LEASE_SECONDS * 1000))
            if self.r.exists(_key("cancel", self.task_id)):
                self.cancel.set()
            latest = self._latest
            if latest is not None and latest != self._sent:
                # A key of its own, not the task's state: one bounded write, no retries.
                text = f"{latest[0]} {latest[1]}"
                self.r.set(_key("progress", self.task_id), text, ex=KEEP_SECONDS)
                self._sent = latest
            self._failing = False
        except redis.RedisError as exc:
            # Redis is away: the step goes on; the lease may lapse, which at worst lets a second
            # delivery wait for this outcome to be stored.
            if not self._failing:
                log.warning("task %s: Redis unreachable while running (%s)", self.task_id, exc)
            self._failing = True
