"""End to end: a real python-telegram-bot Application against the fake Bot API over HTTP.

Each test plays users (private chat, group, voice note, album...) and checks what the bot sends,
decoding the uploaded MP4 with PyAV. Nothing here reaches a real network address.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.bot_harness import (
    ALICE,
    BOB,
    REAL_SECONDS,
    REAL_SIZE,
    assert_edit_spacing,
    bot_running,
    check_video,
    decode,
    fake_server,
    make_pipeline,
    media,
    new_video,
    render_from_storyboard,
    run,
    settings_for,
    spoken_ogg,
    used_footage,
)
from tests.bot_pipeline import FootagePipeline

pytestmark = pytest.mark.slow  # renders or runs models end to end

__all__ = ["media"]  # the fixture


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
                await server.wait_for("sendMessage", lambda c: "1 photo(s)" in c.text, since=mark)
                await server.text(ALICE, ALICE["id"], "/done")
                await server.wait_for("sendMessage", lambda c: "queue" in c.text)
                album = await server.wait_for("sendMediaGroup")
                captions = [m["caption"] for m in album.params["media"]]
                board = await server.wait_for("sendMessage", lambda c: "sb:render" in str(c.params))
                assert len(captions) >= 2 and all(c in board.text for c in captions)
                video = await render_from_storyboard(server, ALICE, ALICE["id"])
                seconds = check_video(video)
                title = board.text.split("“", 1)[1].split("”", 1)[0]
                assert video.params["caption"].startswith(title)
                script = await server.wait_for("sendMessage", lambda c: "Script" in c.text)
                assert captions[0] in script.text  # the hook
                # What the real pipeline made of this request: its length and size, the
                # offline writer's tag for the topic, and both uploads in the edit.
                assert REAL_SECONDS[0] < seconds < REAL_SECONDS[1]
                assert decode(video.upload("video") or b"")[:2] == REAL_SIZE
                assert "#WhyCatsLoveBoxes" in video.params["caption"]
                assert used_footage(tmp_path / "data" / "jobs") == ["01_red.mp4", "02_photo.jpg"]
                await server.wait_for("editMessageText", lambda c: "Done" in c.text)
            # The status message was edited at most once per interval while the job ran.
            assert_edit_spacing(server, 0.5)
            # The throttled 429 was retried by the rate limiter, not lost.
            assert server.failures["sendMessage"] == []

    run(scenario())


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
            await server.wait_for("sendMessage", lambda c: "Got it: 1 video(s)" in c.text)
            await server.text(ALICE, ALICE["id"], "/done")
            video = await render_from_storyboard(server, ALICE, ALICE["id"])
            check_video(video)
            assert "#funny" in video.params["caption"]  # the style heard in the voice note

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
            ack = await server.wait_for("sendMessage", lambda c: "Got it" in c.text, since=mark)
            assert "1 video(s), 1 s and 2 photo(s)" in ack.text  # photos are not "0 s"
            await asyncio.sleep(0.6)
            acks = [c for c in server.calls[mark:] if "Got it" in c.text]
            assert len(acks) == 1, [c.text for c in acks]
            await server.text(ALICE, ALICE["id"], "/done")
            video = await render_from_storyboard(server, ALICE, ALICE["id"])
            seconds = check_video(video)
            uploads = list((tmp_path / "data" / "jobs").glob("*/uploads/*"))
            assert len(uploads) == 3  # one batch, every item kept for the pipeline
            assert REAL_SECONDS[0] < seconds < REAL_SECONDS[1]
            assert len(used_footage(tmp_path / "data" / "jobs")) == 3  # all three in the edit

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
            await server.wait_for("sendMessage", lambda c: "Got it: 1 video(s)" in c.text)
            await server.photo(BOB, group, media["photo"], caption="from Bob", reply_to=prompt)
            await server.wait_for("sendMessage", lambda c: "Thanks Bob" in c.text)
            await server.text(ALICE, group, "/done@reelbot_test_bot")
            video = await render_from_storyboard(server, ALICE, group)
            assert "@bob" in video.params["caption"]  # pooled footage credited
            seconds = check_video(video)
            assert len(list((tmp_path / "data" / "jobs").glob("*/uploads/*"))) == 2
            assert REAL_SECONDS[0] < seconds < REAL_SECONDS[1]
            used = used_footage(tmp_path / "data" / "jobs")
            assert len(used) == 2 and any(n.endswith(".jpg") for n in used)  # Bob's photo too
            # A command meant for another bot in the group is left alone (checked once the
            # job's last message, the status edit after the follow-ups, is out).
            await server.wait_for("editMessageText", lambda c: "Done" in c.text)
            await asyncio.sleep(0.3)
            mark = len(server.calls)
            await server.text(BOB, group, "/help@some_other_bot")
            await asyncio.sleep(0.5)
            assert not [c for c in server.calls[mark:] if c.method == "sendMessage"]

    run(scenario())


def test_conversation_survives_restart(tmp_path: Path, media: dict[str, Path]) -> None:
    data = tmp_path / "data"

    async def scenario() -> None:
        async with fake_server() as server:
            async with bot_running(server, settings_for(server, data), make_pipeline()):
                await server.text(ALICE, ALICE["id"], "/new")
                await server.wait_for("sendMessage", lambda c: "What is the video" in c.text)
                await server.text(ALICE, ALICE["id"], "Persistent topic")
                await server.wait_for("sendMessage", lambda c: "Pick a style" in c.text)
            async with bot_running(server, settings_for(server, data), make_pipeline()):
                msg, data_ = server.button_message(ALICE["id"], f"c|{ALICE['id']}|style|vlog")
                await server.press(ALICE, msg, data_)
                await server.wait_for("sendMessage", lambda c: "Language" in c.text)
                msg, data_ = server.button_message(ALICE["id"], f"c|{ALICE['id']}|next|")
                await server.press(ALICE, msg, data_)
                await server.wait_for("sendMessage", lambda c: "send your footage" in c.text)
                await server.video(ALICE, ALICE["id"], media["red"])
                await server.wait_for("sendMessage", lambda c: "Got it: 1 video(s)" in c.text)
                await server.text(ALICE, ALICE["id"], "/done")
                board = await server.wait_for("sendMessage", lambda c: "sb:render" in str(c.params))
                # The topic typed before the restart reached the script (the writer's tag).
                assert "#PersistentTopic" in board.text

    run(scenario())


class BrokenTranscriber(FootagePipeline):
    def transcribe(self, path: str, timeout: float | None = None) -> Any:
        raise RuntimeError("secret internal detail")


@pytest.mark.logs_errors
def test_unexpected_failure_gets_short_message(tmp_path: Path) -> None:
    ogg = spoken_ogg(tmp_path / "v.ogg", "hello")

    async def scenario() -> None:
        async with (
            fake_server() as server,
            bot_running(server, settings_for(server, tmp_path / "data"), BrokenTranscriber()),
        ):
            await server.voice(ALICE, ALICE["id"], ogg)
            told = await server.wait_for("sendMessage", lambda c: "went wrong" in c.text)
            assert "secret" not in told.text and "RuntimeError" not in told.text

    run(scenario())


class SlowTranscriber(FootagePipeline):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.release = threading.Event()

    def transcribe(self, path: str, timeout: float | None = None) -> Any:
        self.release.wait(20)
        return super().transcribe(path, timeout)


def test_one_users_slow_work_does_not_hold_up_another(tmp_path: Path) -> None:
    ogg = spoken_ogg(tmp_path / "v.ogg", "A funny video about my dog")
    pipeline = SlowTranscriber()

    async def scenario() -> None:
        async with (
            fake_server() as server,
            bot_running(server, settings_for(server, tmp_path / "data"), pipeline),
        ):
            await server.voice(ALICE, ALICE["id"], ogg)
            await server.wait_for("sendChatAction", lambda c: c.chat_id == ALICE["id"])
            await server.text(BOB, BOB["id"], "/help")
            await server.wait_for("sendMessage", lambda c: c.chat_id == BOB["id"])
            assert not [c for c in server.sent("sendMessage", ALICE["id"]) if "heard" in c.text]
            pipeline.release.set()
            await server.wait_for("sendMessage", lambda c: "I heard" in c.text, timeout=60)

    run(scenario())


def test_webhook_mode_with_secret(tmp_path: Path) -> None:
    import json
    import socket

    import aiohttp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    update = {"update_id": 77, "message": {
        "message_id": 5, "date": 0, "chat": {"id": ALICE["id"], "type": "private"},
        "from": ALICE, "text": "/help", "entities": [{"type": "bot_command", "offset": 0,
                                                     "length": 5}]}}  # fmt: skip

    async def scenario() -> None:
        async with fake_server() as server:
            settings = settings_for(
                server, tmp_path / "data", webhook_url=f"http://127.0.0.1:{port}/hook/abc",
                webhook_listen="127.0.0.1", webhook_port=port, webhook_secret="s3cret",
            )  # fmt: skip
            async with (
                bot_running(server, settings, make_pipeline()),
                aiohttp.ClientSession() as http,
            ):
                hook = await server.wait_for("setWebhook")
                assert hook.params["url"] == f"http://127.0.0.1:{port}/hook/abc"
                assert hook.params["secret_token"] == "s3cret"
                url = f"http://127.0.0.1:{port}/hook/abc"
                body = json.dumps(update)
                headers = {"Content-Type": "application/json"}
                async with http.post(url, data=body, headers=headers) as resp:
                    assert resp.status == 403  # no secret: refused
                headers["X-Telegram-Bot-Api-Secret-Token"] = "s3cret"
                async with http.post(url, data=body, headers=headers) as resp:
                    assert resp.status == 200
                helped = await server.wait_for("sendMessage", lambda c: "/new" in c.text)
                assert helped.chat_id == ALICE["id"]

    run(scenario())


def test_reelbot_bot_command_runs_and_never_logs_the_token(tmp_path: Path) -> None:
    import signal
    import sys

    from tests.fake_telegram import TOKEN

    async def scenario() -> None:
        async with fake_server() as server:
            env = {
                **os.environ,
                "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "TELEGRAM_API_BASE_URL": server.base_url,
                "TELEGRAM_API_BASE_FILE_URL": server.base_file_url,
                "REELBOT_DATA_DIR": str(tmp_path / "data"),
            }
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "pipeline.cli", "-v", "bot", cwd=tmp_path, env=env,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            )  # fmt: skip
            try:
                await server.wait_for("deleteWebhook", timeout=60)
                await server.text(ALICE, ALICE["id"], "/help")
                await server.wait_for("sendMessage", lambda c: "/new" in c.text, timeout=30)
            finally:
                proc.send_signal(signal.SIGINT)
                out, _ = await asyncio.wait_for(proc.communicate(), 30)
            log = out.decode()
            assert proc.returncode == 0, log[-2000:]
            assert "reelbot is up" in log and TOKEN not in log and TOKEN.split(":")[1] not in log

    run(scenario())
