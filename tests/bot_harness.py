"""Shared parts of the bot's end-to-end tests: the fake server and a bot running against it,
tiny media with known content, and the steps of a conversation."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import itertools
import json
import os
import socket
import subprocess
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import av
import pytest
from telegram import Bot

from bot.app import BotApp, build_application, running
from bot.config import Settings
from bot.pipeline_api import (
    DefaultPipeline,
    MakeResultLike,
    Pipeline,
    ProgressFn,
    StoryboardLike,
)
from pipeline.bench import samples
from pipeline.brief import Brief
from pipeline.plan import OutputSpec
from pipeline.settings import Settings as PipelineSettings
from tests.bot_pipeline import FootagePipeline
from tests.fake_telegram import TOKEN, Call, FakeTelegram, user


class SmallRealPipeline(DefaultPipeline):
    """The real pipeline (`make.orchestrate`), making tiny, short videos so the bot tests stay fast:
    180x320, an 8 s target, x264 ultrafast, the offline voice (no edge-tts here): espeak-ng,
    timed by its own word events, the quickest voice to load; test_make covers piper."""

    def __init__(self) -> None:
        # The voice settings travel with the pipeline, never through the process's environment.
        base = PipelineSettings.from_env(os.environ)
        super().__init__(dataclasses.replace(base, tts_offline=True, offline_voice="espeak-ng"))
        self.renders = 0  # render_job calls, so a test can tell the storyboard steps render none

    def prepare(
        self,
        brief: Brief,
        job_dir: str,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> StoryboardLike:
        small = dataclasses.replace(
            brief,
            seconds=min(brief.seconds, 8),
            output=OutputSpec(width=180, height=320, preset="ultrafast"),
        )
        return super().prepare(small, job_dir, progress, cancel)

    def render_job(
        self,
        job_dir: str,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> MakeResultLike:
        self.renders += 1
        return super().render_job(job_dir, progress, cancel)


def make_pipeline(*, realtime: bool = False, stand_in: bool = False) -> Pipeline:
    """The pipeline the bot drives: the real one, except where a test must act while a render
    runs (cancel, restart, queue): the real render of a tiny video is over before the test can
    press anything, so those use the stand-in, whose render is paced at playback speed."""
    if realtime or stand_in:
        return FootagePipeline(realtime=realtime)
    return SmallRealPipeline()


# What SmallRealPipeline makes: an 8 s target (the offline script and espeak-ng land within
# about a second and a half of it: 7.7-9.7 s measured), 180x320.
REAL_SECONDS = (6.0, 11.5)
REAL_SIZE = (180, 320)


def used_footage(jobs: Path) -> list[str]:
    """File names of the uploads the real pipeline's edit cut from (its plan.json), one job."""
    (plan_file,) = jobs.glob("*/plan.json")
    plan = json.loads(plan_file.read_text())
    used = {plan["sources"][seg["source"]]["path"] for seg in plan["segments"]}
    return sorted(Path(p).name for p in used)


ALICE = user(1001, "Alice", "en", username="alice")
BOB = user(1002, "Bob", "en", username="bob")
LI = user(1003, "李雷", "zh-hans")


def settings_for(server: FakeTelegram, data: Path, **over: Any) -> Settings:
    base: dict[str, Any] = {
        "token": TOKEN,
        "data_dir": str(data),
        "base_url": server.base_url,
        "base_file_url": server.base_file_url,
        "album_wait": 0.3,
        "status_interval": 0.5,
        "group_rate": 600,  # the real 20/min would make the group test wait
    }
    return Settings(**{**base, **over})


@contextlib.asynccontextmanager
async def bot_running(
    server: FakeTelegram, settings: Settings, pipeline: Pipeline
) -> AsyncIterator[BotApp]:
    app = build_application(settings, pipeline)
    async with running(app, poll_timeout=1):
        yield app


_LOOPBACK = ("127.0.0.1", "::1", "localhost")


@contextlib.contextmanager
def loopback_only() -> Iterator[None]:
    """Fail any attempt to connect anywhere but 127.0.0.1 (the fake server)."""
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def check(address: Any) -> None:
        if isinstance(address, tuple) and address[0] not in _LOOPBACK:
            raise AssertionError(f"a test tried to reach {address!r}")

    def connect(self: socket.socket, address: Any) -> None:
        check(address)
        real_connect(self, address)

    def connect_ex(self: socket.socket, address: Any) -> int:
        check(address)
        return real_connect_ex(self, address)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    try:
        yield
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
        socket.socket.connect_ex = real_connect_ex  # type: ignore[method-assign]


def run(coro: Any) -> Any:
    """Run a scenario with an overall time limit, so a lost message fails instead of hanging,
    and with every connection outside 127.0.0.1 refused."""
    with loopback_only():
        return asyncio.run(asyncio.wait_for(coro, 180))


@contextlib.asynccontextmanager
async def fake_server() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def fake_bot() -> AsyncIterator[tuple[FakeTelegram, Bot]]:
    """A fake Bot API server and a real `telegram.Bot` talking to it (for delivery tests)."""
    async with fake_server() as server:
        bot = Bot(TOKEN, base_url=server.base_url, base_file_url=server.base_file_url)
        async with bot:
            yield server, bot


def check_video(call: Call) -> float:
    """The sent MP4 decodes, matches the width, height and duration sendVideo declared, and has
    a JPEG cover and thumbnail; returns its decoded length in seconds."""
    w, h, seconds, frames = decode(call.upload("video") or b"")
    assert (w, h) == (int(call.params["width"]), int(call.params["height"]))
    assert abs(seconds - int(call.params["duration"])) <= 0.6 and frames >= 10
    assert call.params["supports_streaming"] in (True, "true")
    cover, thumb = call.upload("cover"), call.upload("thumbnail")
    assert cover and thumb and cover[:2] == thumb[:2] == b"\xff\xd8"
    return seconds


def decode(data: bytes) -> tuple[int, int, float, int]:
    """(width, height, seconds, frames decoded) of an MP4 given as bytes."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        seconds = float(container.duration or 0) / av.time_base
        return stream.codec_context.width, stream.codec_context.height, seconds, frames


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media")
    out = {
        "red": Path(samples.colour_clip(str(d / "red.mp4"), "red", 1.0)),
        "blue": Path(samples.colour_clip(str(d / "blue.mp4"), "blue", 1.0, audio=True)),
        "photo": Path(samples.photo(str(d / "green.jpg"), (0, 160, 0), (320, 240))),
        "photo2": Path(samples.photo(str(d / "yellow.jpg"), (200, 200, 0), (320, 240))),
    }
    # A video whose container is intact but whose picture data is gone (zeroed): it opens, yet
    # no frame decodes - what a transfer cut short inside the media data looks like.
    good = bytearray(out["red"].read_bytes())
    start = good.index(b"mdat") + 4
    end = good.index(b"moov") if good.index(b"moov") > start else len(good)
    good[start:end] = bytes(end - start)
    corrupt = d / "broken.mp4"
    corrupt.write_bytes(bytes(good))
    out["corrupt"] = corrupt
    return out


async def new_video(
    server: FakeTelegram,
    who: dict[str, Any],
    chat: int,
    topic: str,
    style: str = "funny",
    command: str = "/new",
) -> None:
    """Walk the conversation from /new to the footage prompt with default options."""
    mark = len(server.calls)
    await server.text(who, chat, command)
    await server.wait_for("sendMessage", lambda c: c.chat_id == chat, since=mark)
    mark = len(server.calls)
    await server.text(who, chat, topic)
    await server.wait_for("sendMessage", lambda c: "reply_markup" in c.params, since=mark)
    msg, data = server.button_message(chat, f"c|{who['id']}|style|{style}")
    mark = len(server.calls)
    await server.press(who, msg, data)
    await server.wait_for(
        "sendMessage", lambda c: "c|" in str(c.params.get("reply_markup")), since=mark
    )
    msg, data = server.button_message(chat, f"c|{who['id']}|next|")
    mark = len(server.calls)
    await server.press(who, msg, data)
    await server.wait_for(
        "sendMessage", lambda c: "done" in str(c.params.get("reply_markup")), since=mark
    )


async def render_from_storyboard(server: FakeTelegram, who: dict[str, Any], chat: int) -> Call:
    """Wait for the storyboard, press Render, and return the sendVideo call."""
    await server.wait_for("sendMessage", lambda c: "sb:render" in str(c.params.get("reply_markup")))
    msg, data = server.button_message(chat, "sb:render:")
    await server.press(who, msg, data)
    return await server.wait_for("sendVideo", lambda c: c.chat_id == chat, timeout=90)


def assert_edit_spacing(server: FakeTelegram, interval: float) -> None:
    """Progress edits of each status message came at most once per `interval` (the last edit,
    the job's outcome, is sent at once)."""
    by_message: dict[Any, list[float]] = {}
    for call in server.sent("editMessageText"):
        by_message.setdefault(call.params["message_id"], []).append(call.at)
    checked = 0
    for times in by_message.values():
        progress = times[:-1]
        for a, b in itertools.pairwise(progress):
            assert b - a >= interval * 0.95, times
            checked += 1
    assert checked >= 1


def spoken_ogg(path: Path, text: str, voice: str = "en-us") -> Path:
    """A voice note: espeak-ng speech encoded as OGG/Opus, as Telegram delivers voice notes."""
    wav = path.with_suffix(".wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(wav), text], check=True)
    from pipeline.ffmpeg import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(wav), "-c:a", "libopus",
                    "-b:a", "32k", str(path)], check=True)  # fmt: skip
    return path
