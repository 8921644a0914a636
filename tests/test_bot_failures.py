"""End to end, what goes wrong: long voice notes, stickers, failed downloads, a full disk and
Telegram refusing the finished video, against the fake Bot API."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.jobs import JobStore
from pipeline.ffmpeg import ffmpeg_exe
from tests.bot_harness import (
    ALICE,
    LI,
    bot_running,
    check_video,
    fake_server,
    make_pipeline,
    media,
    new_video,
    run,
    settings_for,
)
from tests.bot_pipeline import FootagePipeline, Transcript
from tests.fake_telegram import FakeTelegram

pytestmark = pytest.mark.slow  # renders or runs models end to end

__all__ = ["media"]  # the fixture

MB = 2**20


def tone_ogg(path: Path, seconds: float) -> Path:
    """An OGG/Opus file of `seconds` of tone: a voice note of known length."""
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i",
                    f"sine=frequency=300:duration={seconds}", "-c:a", "libopus", "-b:a", "16k",
                    str(path)], check=True)  # fmt: skip
    return path


class HeardPipeline(FootagePipeline):
    """The stand-in pipeline whose transcription is a fixed sentence, recording each call."""

    def __init__(self) -> None:
        super().__init__()
        self.heard: list[str] = []

    def transcribe(self, path: str, timeout: float | None = None) -> Any:
        self.heard.append(path)
        return Transcript("en", "a funny video about my cat")


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# -- voice notes -----------------------------------------------------------------------------


def test_voice_note_over_the_cap_is_refused(tmp_path: Path) -> None:
    short_file = tone_ogg(tmp_path / "one.ogg", 1.0)
    long_file = tone_ogg(tmp_path / "ten.ogg", 10.0)
    pipeline = HeardPipeline()

    async def scenario() -> None:
        async with fake_server() as server:
            settings = settings_for(server, tmp_path / "data", max_voice_seconds=5.0)
            async with bot_running(server, settings, pipeline):
                # Telegram says 30 minutes: refused before anything is downloaded.
                await server.voice(ALICE, ALICE["id"], short_file, duration=1800)
                told = await server.wait_for("sendMessage", lambda c: "voice note" in c.text)
                assert "is 30 min long" in told.text and "up to 5 s" in told.text
                assert server.sent("getFile") == [] and pipeline.heard == []
                # The message understates it (3 s); the file itself lasts 10 s: refused too.
                mark = len(server.calls)
                await server.voice(LI, LI["id"], long_file, duration=3)
                told = await server.wait_for("sendMessage", lambda c: "语音" in c.text, since=mark)
                assert "10 秒" in told.text and "5 秒" in told.text
                assert len(server.sent("getFile")) == 1 and pipeline.heard == []
                assert [p for p in files_under(tmp_path / "data") if p.suffix == ".ogg"] == []
                # One within the cap is transcribed.
                mark = len(server.calls)
                await server.voice(ALICE, ALICE["id"], short_file, duration=1)
                await server.wait_for("sendMessage", lambda c: "I heard" in c.text, since=mark)
                assert len(pipeline.heard) == 1

    run(scenario())


def test_voice_cap_default_is_five_minutes(tmp_path: Path) -> None:
    from bot.config import load_settings

    base = {"TELEGRAM_BOT_TOKEN": "x", "REELBOT_DATA_DIR": str(tmp_path)}
    assert load_settings(base).max_voice_seconds == 300.0
    assert load_settings(base).min_free_mb == 500
    tuned = load_settings({**base, "REELBOT_MAX_VOICE_SECONDS": "90", "REELBOT_MIN_FREE_MB": "50"})
    assert tuned.max_voice_seconds == 90.0 and tuned.min_free_mb == 50


# -- stickers and failed downloads -------------------------------------------------------------


def test_stickers_get_a_reply_saying_what_to_send(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with (
            fake_server() as server,
            bot_running(server, settings_for(server, tmp_path / "data"), HeardPipeline()),
        ):
            for kind in ("static", "animated", "video"):
                mark = len(server.calls)
                await server.sticker(ALICE, ALICE["id"], kind)
                told = await server.wait_for("sendMessage", since=mark)
                assert "stickers" in told.text and "/new" in told.text, kind
            await new_video(server, LI, LI["id"], "猫")
            mark = len(server.calls)
            await server.sticker(LI, LI["id"], "video")
            told = await server.wait_for("sendMessage", since=mark)
            assert "贴纸" in told.text and "/done" in told.text

    run(scenario())


@pytest.mark.parametrize("how", ["getFile refused", "file gone"])
def test_failed_download_leaves_no_file(tmp_path: Path, media: dict[str, Path], how: str) -> None:
    async def scenario() -> None:
        async with (
            fake_server() as server,
            bot_running(server, settings_for(server, tmp_path / "data"), HeardPipeline()),
        ):
            await new_video(server, ALICE, ALICE["id"], "Flaky network")
            if how == "getFile refused":
                server.fail("getFile", 400, "Bad Request: file is temporarily unavailable")
                await server.video(ALICE, ALICE["id"], media["red"])
            else:  # getFile answers, the download itself gets a 404
                msg = await server.video(ALICE, ALICE["id"], media["red"])
                del server.files[msg["video"]["file_id"]]
            told = await server.wait_for("sendMessage", lambda c: "download" in c.text)
            assert "red.mp4" in told.text
            assert files_under(tmp_path / "data" / "jobs") == []
            await server.video(ALICE, ALICE["id"], media["blue"])
            await server.wait_for("sendMessage", lambda c: "Got it: 1 video(s)" in c.text)
            assert [p.name for p in files_under(tmp_path / "data" / "jobs")] == ["01_blue.mp4"]

    run(scenario())


# -- a full disk -------------------------------------------------------------------------------


def low_disk(monkeypatch: pytest.MonkeyPatch, data: Path) -> dict[str, bool]:
    """Make the data folder's file system report 100 MB free while `switch["low"]` is set."""
    real: Callable[[Any], Any] = shutil.disk_usage
    switch = {"low": False}

    def usage(path: Any) -> Any:
        got = real(path)
        if switch["low"] and str(Path(path).absolute()).startswith(str(data)):
            return got._replace(free=100 * MB)
        return got

    monkeypatch.setattr(shutil, "disk_usage", usage)
    return switch


def test_low_disk_refuses_footage_and_render_keeping_what_is_there(
    tmp_path: Path, media: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    switch = low_disk(monkeypatch, data)
    chat = ALICE["id"]

    async def scenario() -> None:
        async with (
            fake_server() as server,
            bot_running(server, settings_for(server, data), make_pipeline(stand_in=True)),
        ):
            await new_video(server, ALICE, chat, "Full disk")
            await server.video(ALICE, chat, media["red"])
            await server.wait_for("sendMessage", lambda c: "Got it: 1 video(s)" in c.text)
            switch["low"] = True
            fetched = len(server.sent("getFile"))
            await server.video(ALICE, chat, media["blue"])
            told = await server.wait_for("sendMessage", lambda c: "disk space" in c.text)
            assert "blue.mp4" in told.text and "100 MB free" in told.text
            assert len(server.sent("getFile")) == fetched  # not even started
            uploads = [p.name for p in files_under(data / "jobs")]
            assert uploads == ["01_red.mp4"]
            # The draft still has the first clip: /done goes on with it.
            switch["low"] = False
            await server.text(ALICE, chat, "/done")
            await server.wait_for("sendMessage", lambda c: "sb:render" in str(c.params))
            # Rendering needs room too: refused up front, the storyboard buttons come back.
            switch["low"] = True
            msg, data_ = server.button_message(chat, "sb:render:")
            mark = len(server.calls)
            await server.press(ALICE, msg, data_)
            told = await server.wait_for("editMessageText", lambda c: "disk space" in c.text,
                                         since=mark)  # fmt: skip
            assert "sb:render" in str(told.params.get("reply_markup"))
            assert "MB needed" in told.text
            assert list((data / "jobs").glob("*/out*.mp4")) == []
            switch["low"] = False
            msg, data_ = server.button_message(chat, "sb:render:")
            await server.press(ALICE, msg, data_)
            video = await server.wait_for("sendVideo", lambda c: c.chat_id == chat, timeout=60)
            assert 0.8 < check_video(video) < 1.3  # the stand-in: one 1-s shot, the red clip

    run(scenario())


# -- Telegram refusing the finished video ------------------------------------------------------


def job_row(data: Path) -> sqlite3.Row:
    db = sqlite3.connect(data / "jobs.sqlite3")
    db.row_factory = sqlite3.Row
    try:
        row: sqlite3.Row = db.execute("SELECT status, error, result FROM jobs").fetchone()
        return row
    finally:
        db.close()


async def render_until_refused(server: FakeTelegram, media: dict[str, Path]) -> Any:
    """A one-clip video up to the status message saying Telegram refused it."""
    chat = ALICE["id"]
    await new_video(server, ALICE, chat, "Refused")
    await server.video(ALICE, chat, media["red"])
    await server.wait_for("sendMessage", lambda c: "Got it: 1 video(s)" in c.text)
    await server.text(ALICE, chat, "/done")
    await server.wait_for("sendMessage", lambda c: "sb:render" in str(c.params))
    msg, data = server.button_message(chat, "sb:render:")
    await server.press(ALICE, msg, data)
    return await server.wait_for("editMessageText", lambda c: "did not accept" in c.text)


def test_video_refused_with_400_is_kept_and_sent_again(
    tmp_path: Path, media: dict[str, Path]
) -> None:
    data = tmp_path / "data"

    async def scenario() -> None:
        async with (
            fake_server() as server,
            bot_running(server, settings_for(server, data), make_pipeline(stand_in=True)),
        ):
            server.fail("sendVideo", 400, "Bad Request: wrong file identifier/HTTP URL specified")
            told = await render_until_refused(server, media)
            assert "Bad Request" not in told.text and "Send again" in told.text
            row = job_row(data)
            assert (row["status"], row["error"]) == ("undelivered", "delivery:BadRequest")
            assert list((data / "jobs").glob("*/out.mp4"))  # the video is kept
            msg, button = server.button_message(ALICE["id"], "sb:resend:")
            await server.press(ALICE, msg, button)
            video = await server.wait_for("sendVideo", lambda c: c.result is not None)
            check_video(video)
            await server.wait_for("editMessageText", lambda c: "Done" in c.text)
            assert job_row(data)["status"] == "done"
            # Pressed again (an old copy of the button): nothing is sent twice.
            mark = len(server.calls)
            await server.press(ALICE, msg, button)
            stale = await server.wait_for("answerCallbackQuery", since=mark)
            assert "no longer active" in stale.params.get("text", "")
            assert len([c for c in server.sent("sendVideo") if c.result is not None]) == 1

    run(scenario())


def test_video_refused_by_429s_is_sent_again_after_a_restart(
    tmp_path: Path, media: dict[str, Path]
) -> None:
    data = tmp_path / "data"

    async def scenario() -> None:
        async with fake_server() as server:
            settings = settings_for(server, data)
            async with bot_running(server, settings, make_pipeline(stand_in=True)):
                # Six 429s: more than the rate limiter's three retries.
                server.fail("sendVideo", 429, "Too Many Requests: retry after 1", retry_after=1,
                            times=6)  # fmt: skip
                await render_until_refused(server, media)
                assert job_row(data)["error"] == "delivery:RetryAfter"
            msg, button = server.button_message(ALICE["id"], "sb:resend:")
            async with bot_running(server, settings, make_pipeline(stand_in=True)):
                mark = len(server.calls)
                await server.press(ALICE, msg, button)
                video = await server.wait_for("sendVideo", lambda c: c.result is not None,
                                              since=mark, timeout=30)  # fmt: skip
                check_video(video)
                await server.wait_for("editMessageText", lambda c: "Done" in c.text, since=mark)
            assert job_row(data)["status"] == "done"
            assert server.failures["sendVideo"] == []

    run(scenario())


def test_store_from_before_kept_videos_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, chat_id INTEGER NOT NULL, user_id INTEGER"
               " NOT NULL, lang TEXT NOT NULL, step TEXT NOT NULL, status TEXT NOT NULL, brief"
               " TEXT NOT NULL, script TEXT, another INTEGER NOT NULL DEFAULT 0, job_dir TEXT NOT"
               " NULL, status_msg INTEGER, reply_to INTEGER, error TEXT, resumed INTEGER NOT NULL"
               " DEFAULT 0, created REAL NOT NULL, queued_at REAL NOT NULL, updated REAL NOT"
               " NULL)")  # fmt: skip
    db.commit()
    db.close()
    store = JobStore(str(path))
    columns = {r["name"] for r in store._db.execute("PRAGMA table_info(jobs)")}
    store.close()
    assert "result" in columns
