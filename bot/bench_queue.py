"""`reelbot bench queue`: what the distributed engine adds to each job.

It starts a private redis-server on a free loopback port (or uses `--broker`), starts
`reelbot worker` processes whose render step makes a one-second 180x320 clip with ffmpeg, and
sends N render jobs through the engine the way the bot does (`bot.engine.Engine`: submit, then
poll every `bot.remote.POLL_EVERY`), never more at once than there are worker slots, so no job
waits for a busy worker. Per job it takes
  dispatch = the worker's start - the bot's submit  (enqueue to start)
  return   = when the bot saw the outcome - the worker's end  (result to delivery)
and prints, last line: overhead_s_p50=… overhead_s_p95=… lost=… duplicated=…
jobs_per_hour_per_core=… (completed jobs over the wall time, per worker slot).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bot.pipeline_api import DefaultPipeline, MakeResultLike, ProgressFn
from pipeline.brief import Brief
from pipeline.ffmpeg import run_ffmpeg
from pipeline.script.model import Script, ScriptLine

log = logging.getLogger(__name__)

RUNS_FILE = "runs.log"  # one line per execution of a job's render step: duplicates show


def register(sub: Any) -> None:
    """Add `reelbot bench queue` (found through the `reelbot.bench` entry-point group)."""
    p = sub.add_parser("queue", help="the distributed engine's overhead per job (Celery, Redis)")
    p.add_argument("--jobs", type=int, default=100, help="jobs to send (default 100)")
    p.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    p.add_argument("--concurrency", type=int, default=1, help="jobs per worker (default 1)")
    p.add_argument("--broker", help="a Redis URL to use instead of a private redis-server")
    p.set_defaults(handler=_queue)


def _queue(args: argparse.Namespace) -> int:
    result = bench(args.jobs, args.workers, args.concurrency, args.broker)
    print(json.dumps(result.details, indent=2), file=sys.stderr)
    print(result.line())
    return 0 if result.lost == 0 and result.duplicated == 0 else 1


# --- a private Redis -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class LocalRedis:
    """A redis-server of our own on 127.0.0.1, its data kept in `folder` across stop/start."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError(
                "redis-server is not installed: `apt-get install redis-server` (scripts/setup.sh "
                "installs it)"
            )
        self.exe = exe
        self.folder = folder
        self.port = port or free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.folder),
             "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
             "--logfile", str(self.folder / "redis.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited ({self.proc.returncode}); see its log")
            if self.ping():
                return
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port} in {timeout} s")

    def ping(self) -> bool:
        import redis

        try:
            with redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1) as r:
                return bool(r.ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # a clean shutdown writes the append-only file
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def __enter__(self) -> LocalRedis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- workers -----------------------------------------------------------------------------------


def start_worker(
    broker_url: str,
    name: str,
    concurrency: int = 1,
    pipeline_factory: str | None = None,
    env: dict[str, str] | None = None,
    log_file: Path | None = None,
) -> subprocess.Popen[bytes]:
    """A `reelbot worker` process in a session of its own (so its group can be killed whole)."""
    full = {**os.environ, **(env or {}), "REELBOT_BROKER_URL": broker_url}
    if pipeline_factory:
        full["REELBOT_WORKER_PIPELINE"] = pipeline_factory
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
    try:
        return subprocess.Popen(
            [sys.executable, "-m", "pipeline.cli", "worker", f"--concurrency={concurrency}",
             f"--hostname={name}", "--env-file="],
            env=full,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    finally:
        if log_file:
            out.close()  # type: ignore[union-attr]


def stop_worker(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Stop a worker and everything it started (its process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def wait_for_workers(broker_url: str, names: list[str], timeout: float = 90.0) -> None:
    """Until each named worker answers a ping."""
    from bot.config import EngineSettings
    from bot.engine import make_app

    app = make_app(EngineSettings(broker_url))
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            replies = app.control.ping(destination=names, timeout=1.0)
            answered = {name for reply in replies for name in reply}
            if answered >= set(names):
                return
        raise RuntimeError(f"workers {names} did not answer in {timeout} s")
    finally:
        app.close()


@contextlib.contextmanager
def workers_running(
    broker_url: str, count: int, concurrency: int, factory: str, logs: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    names = [f"bench{i}@%h" for i in range(count)]
    procs = [
        start_worker(broker_url, n, concurrency, factory, log_file=logs / f"worker{i}.log")
        for i, n in enumerate(names)
    ]
    try:
        wait_for_workers(broker_url, [n.replace("%h", socket.gethostname()) for n in names])
        yield procs
    finally:
        for proc in procs:
            stop_worker(proc)


# --- the job ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class BenchVideo:
    """A `MakeResultLike` for the bench's clip."""

    video: str
    cover: str
    script: Script
    duration: float
    width: int
    height: int
    voice_engine: str = "none"

    def warnings_in(self, language: str) -> tuple[str, ...]:
        return ()


class BenchPipeline(DefaultPipeline):
    """The real pipeline, except that a render makes a one-second test clip (a short job that
    still runs ffmpeg) and notes each run in the job folder, so the bench can count them."""

    def render_job(
        self,
        job_dir: str,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> MakeResultLike:
        folder = Path(job_dir)
        with open(folder / RUNS_FILE, "a") as runs:
            runs.write(f"{socket.gethostname()}:{os.getpid()}\n")
        video, cover = str(folder / "out.mp4"), str(folder / "cover.jpg")
        run_ffmpeg(
            ["-f", "lavfi", "-i", "testsrc2=size=180x320:rate=30:duration=1",
             "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", video],
            duration=1.0, progress=(lambda f: progress("render", f)) if progress else None,
            cancel=cancel, what="bench clip",
        )  # fmt: skip
        run_ffmpeg(["-i", video, "-frames:v", "1", cover], cancel=cancel, what="bench cover")
        return BenchVideo(video, cover, _SCRIPT, 1.0, 180, 320)


_SCRIPT = Script(
    title="bench",
    hook="bench",
    lines=(ScriptLine("one second"),),
    cta="done",
    hashtags=("#bench",),
    language="en",
    style="knowledge",
    target_seconds=1.0,
    estimated_seconds=1.0,
    writer="bench",
)


# --- the measurement ----------------------------------------------------------------------


@dataclasses.dataclass
class QueueBench:
    jobs: int
    lost: int
    duplicated: int
    overhead: list[float]  # seconds per job: dispatch + return
    dispatch: list[float]
    back: list[float]
    work: list[float]
    wall: float
    slots: int

    @property
    def jobs_per_hour_per_core(self) -> float:
        done = self.jobs - self.lost
        return done / self.wall * 3600 / self.slots if self.wall > 0 else 0.0

    @property
    def details(self) -> dict[str, Any]:
        def p(values: list[float], q: float) -> float:
            return round(percentile(values, q), 4) if values else 0.0

        return {
            "jobs": self.jobs,
            "worker_slots": self.slots,
            "wall_s": round(self.wall, 2),
            "dispatch_s_p50": p(self.dispatch, 50),
            "dispatch_s_p95": p(self.dispatch, 95),
            "return_s_p50": p(self.back, 50),
            "return_s_p95": p(self.back, 95),
            "work_s_p50": p(self.work, 50),
        }

    def line(self) -> str:
        p50 = percentile(self.overhead, 50) if self.overhead else float("nan")
        p95 = percentile(self.overhead, 95) if self.overhead else float("nan")
        return (
            f"overhead_s_p50={p50:.3f} overhead_s_p95={p95:.3f} lost={self.lost} "
            f"duplicated={self.duplicated} jobs_per_hour_per_core={self.jobs_per_hour_per_core:.0f}"
        )


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank above), as the bench reports it."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def bench(jobs: int, workers: int, concurrency: int, broker: str | None) -> QueueBench:
    with tempfile.TemporaryDirectory(prefix="reelbot-bench-queue-") as tmp:
        root = Path(tmp)
        with contextlib.ExitStack() as stack:
            if broker is None:
                broker = stack.enter_context(LocalRedis(root / "redis")).url
            factory = "bot.bench_queue:BenchPipeline"
            stack.enter_context(workers_running(broker, workers, concurrency, factory, root))
            return _measure(broker, root / "jobs", jobs, workers * concurrency)


def _measure(broker: str, jobs_root: Path, count: int, slots: int) -> QueueBench:
    import uuid

    from bot.config import EngineSettings
    from bot.engine import Engine
    from bot.jobs import RUNNING, Job
    from bot.remote import POLL_EVERY

    engine = Engine(EngineSettings(broker))
    sent_at: dict[str, float] = {}
    folders: dict[str, Path] = {}
    overhead, dispatch, back, work = [], [], [], []
    waiting: list[str] = []
    lost = 0
    next_job = 0
    started = time.monotonic()
    deadline_per_job = 120.0
    try:
        while next_job < count or waiting:
            while next_job < count and len(waiting) < slots:
                folder = jobs_root / f"job{next_job:04d}"
                folder.mkdir(parents=True)
                job = Job(
                    id=folder.name, chat_id=0, user_id=0, lang="en", step="render",
                    status=RUNNING, brief=Brief(topic="bench"), job_dir=str(folder),
                )  # fmt: skip
                task_id = uuid.uuid4().hex
                sent_at[task_id] = time.time()
                engine.submit(task_id, _payload(job))
                folders[task_id] = folder
                waiting.append(task_id)
                next_job += 1
            time.sleep(POLL_EVERY)
            states = engine.poll(waiting)
            now = time.time()
            for task_id in list(waiting):
                outcome = states[task_id].outcome
                if outcome is None:
                    if now - sent_at[task_id] > deadline_per_job:
                        log.error("job %s has no outcome after %.0f s", task_id, deadline_per_job)
                        lost += 1
                        waiting.remove(task_id)
                    continue
                waiting.remove(task_id)
                if outcome.rendered is None:
                    log.error("job %s failed: %s", task_id, outcome.error)
                    lost += 1
                    continue
                dispatch.append(outcome.started - sent_at[task_id])
                back.append(now - outcome.finished)
                overhead.append(dispatch[-1] + back[-1])
                work.append(outcome.finished - outcome.started)
        wall = time.monotonic() - started
    finally:
        engine.close()
    runs = [len((f / RUNS_FILE).read_text().splitlines()) for f in folders.values()
            if (f / RUNS_FILE).is_file()]  # fmt: skip
    duplicated = sum(1 for n in runs if n > 1)
    return QueueBench(count, lost, duplicated, overhead, dispatch, back, work, wall, slots)


def _payload(job: Any) -> dict[str, Any]:
    from bot.engine import step_payload

    return step_payload(job, upload_limit=50 * 2**20)
