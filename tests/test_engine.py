"""The distributed engine with the real thing: a redis-server on a free loopback port, two
`reelbot worker` processes (Celery, prefork) and the bot on the fake Bot API.

The workers run steps with the stand-in pipeline paced at playback speed
(REELBOT_WORKER_PIPELINE=tests.bot_pipeline:realtime_counted), which notes every render in the
job folder, so each test can count renders across processes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.bench_queue import LocalRedis, start_worker, stop_worker, wait_for_workers
from bot.config import EngineSettings, Settings
from bot.engine import Engine
from bot.jobs import CANCELLED, DONE, JobStore
from tests.bot_harness import (
    ALICE,
    BOB,
    bot_running,
    check_video,
    fake_server,
    make_pipeline,
    media,
    new_video,
    run,
    settings_for,
)
from tests.bot_pipeline import RENDERS_LOG
from tests.fake_telegram import FakeTelegram
from tests.test_bot_jobs import ffmpeg_running_in

pytestmark = pytest.mark.slow  # renders or runs models end to end

__all__ = ["media"]  # the fixture

ROOT = Path(__file__).resolve().parent.parent
# Short, so a killed worker's job moves on within seconds; the stand-in's renders (3 s) end well
# before it, so a live worker's job is not handed out twice.
VISIBILITY = 8.0


class Cluster:
    """Redis and two workers, kept at two between tests."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.redis = LocalRedis(folder / "redis")
        self.workers: dict[str, subprocess.Popen[bytes]] = {}
        self.env = {
            "PYTHONPATH": str(ROOT),
            "REELBOT_VISIBILITY_TIMEOUT": str(VISIBILITY),
            "REELBOT_REDIS_TIMEOUT": "1",
        }

    @property
    def url(self) -> str:
        return self.redis.url

    def node(self, name: str) -> str:
        return f"{name}@{socket.gethostname()}"

    def ensure_workers(self) -> None:
        started = []
        for name in ("w1", "w2"):
            proc = self.workers.get(name)
            if proc is None or proc.poll() is not None:
                self.workers[name] = start_worker(
                    self.url, self.node(name), 1, "tests.bot_pipeline:realtime_counted",
                    env=self.env, log_file=self.folder / f"{name}.log",
                )  # fmt: skip
                started.append(self.node(name))
        if started:
            wait_for_workers(self.url, started)

    def worker_of(self, pid: int) -> str:
        """The worker (its name) whose process group holds process `pid`."""
        group = os.getpgid(pid)
        for name, proc in self.workers.items():
            if proc.pid == group:
                return name
        raise AssertionError(f"process {pid} belongs to no worker")

    def stop(self) -> None:
        for proc in self.workers.values():
            stop_worker(proc)
        self.redis.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("engine"))
    try:
        c.redis.start()
    except RuntimeError as exc:  # not installed, or it would not start: never a silent skip
        pytest.fail(f"the engine tests need redis-server: {exc}")
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def engine(cluster: Cluster) -> Cluster:
    if not cluster.redis.ping():
        cluster.redis.start()
    cluster.ensure_workers()
    return cluster


def engine_settings(server: FakeTelegram, data: Path, cluster: Cluster) -> Settings:
    config = EngineSettings(cluster.url, visibility_timeout=VISIBILITY, timeout=1.0)
    return settings_for(server, data, engine=config)


def renders(jobs: Path) -> list[tuple[str, int, float]]:
    """Every ("start"|"end", pid, time) line the workers noted, all jobs."""
    out = []
    for log in jobs.glob(f"*/{RENDERS_LOG}"):
        for line in log.read_text().splitlines():
            what, pid, when = line.split()
            out.append((what, int(pid), float(when)))
    return out


def job_folder(jobs: Path) -> Path:
    (folder,) = [d for d in jobs.iterdir() if d.is_dir()]
    return folder


async def to_render(server: FakeTelegram, who: dict[str, Any], media: dict[str, Path]) -> None:
    """Three shots, the storyboard, then Render pressed: a three-second render follows."""
    await to_storyboard(server, who, media)
    await press_render(server, who)


async def to_storyboard(server: FakeTelegram, who: dict[str, Any], media: dict[str, Path]) -> None:
    chat = who["id"]
    await new_video(server, who, chat, f"Engine test {who['first_name']}")
    for path in (media["red"], media["photo"], media["photo2"]):
        if path.suffix == ".mp4":
            await server.video(who, chat, path)
        else:
            await server.photo(who, chat, path)
    await server.wait_for("sendMessage", lambda c: c.chat_id == chat and "and 2 photo(s)" in c.text)
    await server.text(who, chat, "/done")
    await server.wait_for(
        "sendMessage",
        lambda c: c.chat_id == chat and "sb:render" in str(c.params.get("reply_markup")),
        timeout=60,
    )


async def press_render(server: FakeTelegram, who: dict[str, Any]) -> None:
    msg, data = server.button_message(who["id"], "sb:render:")
    await server.press(who, msg, data)


async def rendering(server: FakeTelegram, chat: int, since: int = 0) -> None:
    await server.wait_for(
        "editMessageText", lambda c: c.chat_id == chat and "Rendering" in c.text, since=since,
        timeout=60,
    )  # fmt: skip


def test_two_users_render_at_once_on_different_workers(
    tmp_path: Path, media: dict[str, Path], engine: Cluster
) -> None:
    data = tmp_path / "data"

    async def scenario() -> None:
        async with (
            fake_server() as server,
            bot_running(server, engine_settings(server, data, engine), make_pipeline()),
        ):
            # One after the other up to the storyboard (the harness's steps are per chat only
            # there), then both press Render at once.
            await to_storyboard(server, ALICE, media)
            await to_storyboard(server, BOB, media)
            await asyncio.gather(press_render(server, ALICE), press_render(server, BOB))
            videos = [
                await server.wait_for("sendVideo", lambda c, u=u: c.chat_id == u["id"], timeout=60)
                for u in (ALICE, BOB)
            ]
            for video in videos:
                assert 2.8 < check_video(video) < 3.3
        starts = {pid: when for what, pid, when in renders(data / "jobs") if what == "start"}
        ends = {pid: when for what, pid, when in renders(data / "jobs") if what == "end"}
        assert len(starts) == 2 and len(ends) == 2  # one render each, nothing twice
        (a, b) = starts
        assert engine.worker_of(a) != engine.worker_of(b)
        assert max(starts.values()) < min(ends.values())  # the two renders overlapped
        assert len(server.sent("sendVideo")) == 2

    run(scenario())


def test_worker_killed_mid_render_job_finishes_on_the_other(
    tmp_path: Path, media: dict[str, Path], engine: Cluster
) -> None:
    data = tmp_path / "data"

    async def scenario() -> None:
        async with (
            fake_server() as server,
            bot_running(server, engine_settings(server, data, engine), make_pipeline()),
        ):
            await to_render(server, ALICE, media)
            await rendering(server, ALICE["id"])
            folder = job_folder(data / "jobs")
            ((_, first, _),) = renders(data / "jobs")
            victim = engine.worker_of(first)
            # The machine is gone: the worker, its pool and its ffmpeg, with no chance to clean up.
            os.killpg(engine.workers[victim].pid, signal.SIGKILL)
            engine.workers[victim].wait(10)
            for pid in ffmpeg_running_in(folder):
                os.kill(pid, signal.SIGKILL)
            video = await server.wait_for("sendVideo", timeout=90)
            assert 2.8 < check_video(video) < 3.3
            await server.wait_for("editMessageText", lambda c: "Done" in c.text)
            await asyncio.sleep(1.5)  # a second delivery would come now
            assert len(server.sent("sendVideo")) == 1
            starts = [pid for what, pid, _ in renders(data / "jobs") if what == "start"]
            assert len(starts) == 2 and starts[0] == first
            assert engine.worker_of(starts[1]) != victim
            store = JobStore(str(data / "jobs.sqlite3"))
            (job,) = [store.get(folder.name)]
            assert job is not None and job.status == DONE
            store.close()

    run(scenario())


def test_bot_restarted_while_job_runs_delivers_once(
    tmp_path: Path, media: dict[str, Path], engine: Cluster
) -> None:
    data = tmp_path / "data"

    async def scenario() -> None:
        async with fake_server() as server:
            settings = engine_settings(server, data, engine)
            async with bot_running(server, settings, make_pipeline()):
                await to_render(server, ALICE, media)
                await rendering(server, ALICE["id"])
                status = server.sent("editMessageText")[-1].params["message_id"]
            # The bot is gone; the render goes on on its worker.
            assert server.sent("sendVideo") == []
            mark = len(server.calls)
            async with bot_running(server, settings, make_pipeline()):
                video = await server.wait_for("sendVideo", since=mark, timeout=60)
                assert 2.8 < check_video(video) < 3.3
                await server.wait_for("editMessageText", lambda c: "Done" in c.text, since=mark)
                done = [c for c in server.calls[mark:] if "Done" in c.text][-1]
                assert done.params["message_id"] == status  # the same status message goes on
                await asyncio.sleep(1.5)
            assert len(server.sent("sendVideo")) == 1
            assert not [c for c in server.calls[mark:] if "restarted" in c.text]
            # Followed, not started again: one render.
            assert [w for w, _, _ in renders(data / "jobs")] == ["start", "end"]

    run(scenario())


def test_an_edit_by_reply_runs_on_a_worker(
    tmp_path: Path, media: dict[str, Path], engine: Cluster
) -> None:
    from tests.test_bot_waitless import reply_target

    data = tmp_path / "data"
    chat = ALICE["id"]

    async def scenario() -> None:
        async with (
            fake_server() as server,
            bot_running(server, engine_settings(server, data, engine), make_pipeline()),
        ):
            await to_render(server, ALICE, media)
            first = await server.wait_for("sendVideo", lambda c: c.chat_id == chat, timeout=60)
            old = first.result
            mark = len(server.calls)
            await server.text(ALICE, chat, "title: Edited on a worker", reply_to=old)
            await server.wait_for("sendMessage", lambda c: "ed:ok" in str(c.params), since=mark)
            msg, data_ok = server.button_message(chat, "ed:ok:")
            mark = len(server.calls)
            await server.press(ALICE, msg, data_ok)
            second = await server.wait_for("sendVideo", since=mark, timeout=60)
            assert 2.8 < check_video(second) < 3.3
            assert second.params["caption"].startswith("Edited on a worker")
            assert reply_target(second) == old["message_id"]
            assert not [c for c in server.calls[mark:] if "went wrong" in c.text]
        job = job_folder(data / "jobs")
        assert (job / "out.mp4").is_file() and (job / "v2" / "out.mp4").is_file()
        # The edit's render ran in a worker's process (the stand-in notes its pid there).
        (start, pid, _when) = (job / "v2" / RENDERS_LOG).read_text().split("\n")[0].split()
        assert start == "start" and engine.worker_of(int(pid)) in ("w1", "w2")
        store = JobStore(str(data / "jobs.sqlite3"))
        done = store.get(job.name)
        store.close()
        assert done is not None and done.status == DONE

    run(scenario())


def test_cancel_stops_the_remote_render(
    tmp_path: Path, media: dict[str, Path], engine: Cluster
) -> None:
    data = tmp_path / "data"

    async def scenario() -> None:
        async with (
            fake_server() as server,
            bot_running(server, engine_settings(server, data, engine), make_pipeline()),
        ):
            await to_render(server, ALICE, media)
            await rendering(server, ALICE["id"])
            folder = job_folder(data / "jobs")
            assert ffmpeg_running_in(folder), "the render should be running on a worker"
            asked = time.monotonic()
            await server.text(ALICE, ALICE["id"], "/cancel")
            while ffmpeg_running_in(folder):
                assert time.monotonic() - asked < 2.0, "ffmpeg still runs 2 s after /cancel"
                await asyncio.sleep(0.05)
            await server.wait_for("editMessageText", lambda c: "Cancelled" in c.text)
            await asyncio.sleep(1.0)
            assert server.sent("sendVideo") == []
            assert [w for w, _, _ in renders(data / "jobs")] == ["start"]  # it never ended
            store = JobStore(str(data / "jobs.sqlite3"))
            job = store.get(folder.name)
            assert job is not None and job.status == CANCELLED
            store.close()
            mark = len(server.calls)
            await server.text(ALICE, ALICE["id"], "/new")
            await server.wait_for("sendMessage", lambda c: "What is the video" in c.text,
                                  since=mark)  # fmt: skip

    run(scenario())


def test_redis_down_jobs_wait_queued_then_run(
    tmp_path: Path, media: dict[str, Path], engine: Cluster
) -> None:
    data = tmp_path / "data"
    chat = ALICE["id"]

    async def scenario() -> None:
        async with (
            fake_server() as server,
            bot_running(server, engine_settings(server, data, engine), make_pipeline()),
        ):
            engine.redis.stop()
            try:
                await new_video(server, ALICE, chat, "While Redis is away")
                await server.photo(ALICE, chat, media["photo"])
                await server.wait_for("sendMessage", lambda c: "1 photo(s)" in c.text)
                mark = len(server.calls)
                await server.text(ALICE, chat, "/done")
                queued = await server.wait_for("sendMessage", lambda c: "In the queue" in c.text,
                                               since=mark)  # fmt: skip
                await asyncio.sleep(3.0)  # several tries to send it, each refused
                said = [c.text for c in server.calls[mark:] if c.text]
                assert all("queue" in text or "Got it" in text for text in said), said
                store = JobStore(str(data / "jobs.sqlite3"))
                (job,) = store.queued()
                assert job.task_id is not None  # named, and waiting to be sent
                store.close()
            finally:
                engine.redis.start()
            board = await server.wait_for(
                "sendMessage", lambda c: "sb:render" in str(c.params.get("reply_markup")),
                since=mark, timeout=90,
            )  # fmt: skip
            assert board.chat_id == chat
            status = queued.result["message_id"]
            edits = [c.text for c in server.sent("editMessageText")
                     if int(c.params["message_id"]) == status]  # fmt: skip
            # The queued message turned into the job's progress, then its outcome.
            assert "⏳ Starting…" in edits and edits[-1].endswith("✅"), edits

    run(scenario())


def test_engine_calls_fail_fast_when_redis_is_unreachable() -> None:
    # A port nobody listens on: every call gives up within the timeout, as EngineDown.
    from bot.bench_queue import free_port
    from bot.engine import EngineDown

    engine = Engine(EngineSettings(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5))
    try:
        for call in (
            lambda: engine.submit("t1", {"job_id": "j"}),
            lambda: engine.poll(["t1"]),
            lambda: engine.cancel("t1"),
        ):
            began = time.monotonic()
            with pytest.raises(EngineDown):
                call()
            assert time.monotonic() - began < 3.0
    finally:
        engine.close()
