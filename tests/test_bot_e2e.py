"""End to end: a real python-telegram-bot Application against the fake Bot API over HTTP.

Each test plays users (private chat, group, voice note, album...) and checks what the bot sends,
decoding the uploaded MP4 with PyAV. Nothing here reaches a real network address.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import av
import pytest

from bot.app import build_application, running
from bot.config import Settings
from bot.pipeline_api import Pipeline
from pipeline import samples
from tests.bot_pipeline import FootagePipeline
from tests.fake_telegram import TOKEN, Call, FakeTelegram, user

# The pipeline the bot drives. Switch to the real one in this one line once pipeline.make lands:
# make_pipeline: Callable[..., Pipeline] = lambda **_: bot.pipeline_api.DefaultPipeline()
make_pipeline: Callable[..., Pipeline] = FootagePipeline

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
) -> AsyncIterator[None]:
    app = build_application(settings, pipeline)
    async with running(app, poll_timeout=1):
        yield


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 90))


@contextlib.asynccontextmanager
async def fake_server() -> AsyncIterator[FakeTelegram]:
    server = FakeTelegram()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


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
    corrupt = d / "broken.mp4"
    corrupt.write_bytes(out["red"].read_bytes()[:400] + os.urandom(3000))
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
    return await server.wait_for("sendVideo", lambda c: c.chat_id == chat, timeout=40)


def assert_edit_spacing(server: FakeTelegram, interval: float) -> None:
    """Progress edits of each status message came at most once per `interval` (the last edit,
    the job's outcome, is sent at once)."""
    by_message: dict[Any, list[float]] = {}
    for call in server.sent("editMessageText"):
        by_message.setdefault(call.params["message_id"], []).append(call.at)
    checked = 0
    for times in by_message.values():
        progress = times[:-1]
        for a, b in zip(progress, progress[1:], strict=False):
            assert b - a >= interval * 0.95, times
            checked += 1
    assert checked >= 1


def test_private_conversation_new_to_decoded_mp4(tmp_path: Path, media: dict[str, Path]) -> None:
    async def scenario() -> None:
        async with fake_server() as server:
            server.fail("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
            async with bot_running(
                server, settings_for(server, tmp_path / "data"), make_pipeline()
            ):
                await new_video(server, ALICE, ALICE["id"], "Why cats love boxes")
                mark = len(server.calls)
                await server.video(ALICE, ALICE["id"], media["red"], caption="cat in a box")
                await server.photo(ALICE, ALICE["id"], media["photo"], caption="the box")
                await server.wait_for("sendMessage", lambda c: "2 file" in c.text, since=mark)
                await server.text(ALICE, ALICE["id"], "/done")
                await server.wait_for("sendMessage", lambda c: "queue" in c.text)
                album = await server.wait_for("sendMediaGroup")
                captions = [m["caption"] for m in album.params["media"]]
                assert captions[0] == "Why cats love boxes"
                assert "cat in a box" in captions
                video = await render_from_storyboard(server, ALICE, ALICE["id"])
                w, h, seconds, frames = decode(video.upload("video") or b"")
                assert (w, h) == (180, 320)
                assert 1.8 < seconds < 2.3 and frames >= 50
                assert video.params["supports_streaming"] in (True, "true")
                assert int(video.params["width"]) == 180 and int(video.params["height"]) == 320
                assert int(video.params["duration"]) == 2
                cover, thumb = video.upload("cover"), video.upload("thumbnail")
                assert cover and thumb and cover[:2] == thumb[:2] == b"\xff\xd8"  # JPEGs
                assert video.params["caption"].startswith("Why cats love boxes")
                assert "#reelbot" in video.params["caption"]
                script = await server.wait_for("sendMessage", lambda c: "Script" in c.text)
                assert "cat in a box" in script.text and "Follow for more" in script.text
                await server.wait_for("editMessageText", lambda c: "Done" in c.text)
            # The status message was edited at most once per interval while the job ran.
            assert_edit_spacing(server, 0.5)
            # The throttled 429 was retried by the rate limiter, not lost.
            assert server.failures["sendMessage"] == []

    run(scenario())


def spoken_ogg(path: Path, text: str, voice: str = "en-us") -> Path:
    """A voice note: espeak-ng speech encoded as OGG/Opus, as Telegram delivers voice notes."""
    wav = path.with_suffix(".wav")
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(wav), text], check=True)
    from pipeline.ffmpeg import ffmpeg_exe

    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(wav), "-c:a", "libopus",
                    "-b:a", "32k", str(path)], check=True)  # fmt: skip
    return path


def test_voice_note_request_fills_topic_style_length(
    tmp_path: Path, media: dict[str, Path]
) -> None:
    ogg = spoken_ogg(tmp_path / "ask.ogg", "Make a thirty second funny video about my cat.")

    async def scenario() -> None:
        async with (
            fake_server() as server,
            bot_running(server, settings_for(server, tmp_path / "data"), make_pipeline()),
        ):
            await server.voice(ALICE, ALICE["id"], ogg)
            heard = await server.wait_for("sendMessage", lambda c: "I heard" in c.text, timeout=60)
            assert "cat" in heard.text.lower()
            summary = await server.wait_for("sendMessage", lambda c: "Topic:" in c.text)
            assert "my cat" in summary.text.lower()
            assert "Funny" in summary.text and "30 s" in summary.text
            # Style and length were heard, so the bot asks straight for footage.
            await server.wait_for("sendMessage", lambda c: "footage" in c.text)
            assert not [c for c in server.sent("sendMessage") if "Pick a style" in c.text]
            await server.video(ALICE, ALICE["id"], media["blue"])
            await server.wait_for("sendMessage", lambda c: "1 file" in c.text)
            await server.text(ALICE, ALICE["id"], "/done")
            video = await render_from_storyboard(server, ALICE, ALICE["id"])
            assert decode(video.upload("video") or b"")[:2] == (180, 320)
            assert "#funny" in video.params["caption"]

    run(scenario())


def test_album_is_one_batch_and_all_used(tmp_path: Path, media: dict[str, Path]) -> None:
    async def scenario() -> None:
        async with (
            fake_server() as server,
            bot_running(server, settings_for(server, tmp_path / "data"), make_pipeline()),
        ):
            await new_video(server, ALICE, ALICE["id"], "Three colours")
            mark = len(server.calls)
            for path in (media["photo"], media["photo2"], media["red"]):
                if path.suffix == ".mp4":
                    await server.video(ALICE, ALICE["id"], path, media_group_id="alb1")
                else:
                    await server.photo(ALICE, ALICE["id"], path, media_group_id="alb1")
            ack = await server.wait_for("sendMessage", lambda c: "file" in c.text, since=mark)
            assert "3 file" in ack.text
            await asyncio.sleep(0.6)
            acks = [c for c in server.calls[mark:] if "Got it" in c.text]
            assert len(acks) == 1, [c.text for c in acks]
            await server.text(ALICE, ALICE["id"], "/done")
            video = await render_from_storyboard(server, ALICE, ALICE["id"])
            _, _, seconds, _ = decode(video.upload("video") or b"")
            assert 2.8 < seconds < 3.3  # one second per shot, all three used

    run(scenario())


def test_group_privacy_mode_two_members(tmp_path: Path, media: dict[str, Path]) -> None:
    group = -100777

    async def scenario() -> None:
        async with (
            fake_server() as server,
            bot_running(server, settings_for(server, tmp_path / "data"), make_pipeline()),
        ):
            server.chat(group, "supergroup", "Creators")
            first = await server.text(ALICE, group, "/new@reelbot_test_bot")
            ask = await server.wait_for("sendMessage", lambda c: "What is the video" in c.text)
            # A selective ForceReply, replying to Alice, so her answer reaches a privacy-mode bot.
            assert ask.params["reply_markup"]["force_reply"] is True
            assert ask.params["reply_markup"]["selective"] is True
            assert ask.params["reply_parameters"]["message_id"] == first["message_id"]
            prompt = server.messages[(group, ask.result["message_id"])]
            await server.text(ALICE, group, "Team trip", reply_to=prompt)
            await server.wait_for("sendMessage", lambda c: "Pick a style" in c.text)
            # Bob starts his own conversation in the same group: separate state.
            await server.text(BOB, group, "/new@reelbot_test_bot")
            await server.wait_for(
                "sendMessage",
                lambda c: (
                    c.params.get("reply_parameters", {}).get("message_id") != first["message_id"]
                    and "What is" in c.text
                ),
            )
            # Bob taps Alice's style button: a short notice, and Alice's choice is untouched.
            msg, data = server.button_message(group, f"c|{ALICE['id']}|style|vlog")
            mark = len(server.calls)
            await server.press(BOB, msg, data)
            notice = await server.wait_for("answerCallbackQuery", since=mark)
            assert "someone else" in notice.params["text"]
            await server.press(ALICE, msg, data)
            await server.wait_for("sendMessage", lambda c: "Language" in c.text, since=mark)
            msg, data = server.button_message(group, f"c|{ALICE['id']}|next|")
            await server.press(ALICE, msg, data)
            footage_prompt = await server.wait_for(
                "sendMessage", lambda c: "send your footage" in c.text
            )
            assert footage_prompt.params["reply_markup"]["force_reply"] is True
            prompt = server.messages[(group, footage_prompt.result["message_id"])]
            await server.wait_for("sendMessage", lambda c: "|pool|" in str(c.params))
            msg, data = server.button_message(group, f"c|{ALICE['id']}|pool|")
            await server.press(ALICE, msg, data)
            await server.wait_for("sendMessage", lambda c: "replying to this" in c.text)
            await server.video(ALICE, group, media["red"], reply_to=prompt)
            await server.wait_for("sendMessage", lambda c: "1 file" in c.text)
            await server.photo(BOB, group, media["photo"], caption="from Bob", reply_to=prompt)
            await server.wait_for("sendMessage", lambda c: "Thanks Bob" in c.text)
            await server.text(ALICE, group, "/done@reelbot_test_bot")
            video = await render_from_storyboard(server, ALICE, group)
            assert "@bob" in video.params["caption"]  # pooled footage credited
            assert decode(video.upload("video") or b"")[2] > 1.8  # both files used

    run(scenario())
