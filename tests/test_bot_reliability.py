"""The bot's reliability: button data that is forged or stale, conversations saved as JSON that
survive a full disk and a damaged file, the webhook's secret, and user mistakes answered by name.

The process-level tests run the real `reelbot bot` command against the fake Bot API."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pickle
import signal
import socket
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot import callbacks
from bot.callbacks import Board, Choice
from bot.services import Clip, Draft
from bot.state import JsonPersistence
from bot.texts import T, error_text
from pipeline.script.styles import STYLES
from tests.bot_harness import (
    ALICE,
    LI,
    bot_running,
    fake_server,
    make_pipeline,
    media,
    run,
    settings_for,
)
from tests.fake_telegram import TOKEN, FakeTelegram

__all__ = ["media"]  # the fixture

# -- callback data ---------------------------------------------------------------------------

ROUND_TRIP = [
    *(Choice(1001, "style", s) for s in STYLES),
    Choice(1001, "lang", "zh"),
    Choice(1001, "lang", "en"),
    *(Choice(2**52 - 1, "len", str(n)) for n in (15, 30, 60)),
    Choice(7, "next"),
    Choice(7, "done"),
    Choice(7, "pool"),
    Board("render", "20260101-120000-0123abcd"),
    Board("edit", "20260101-120000-0123abcd"),
    Board("another", "j1"),
    Board("resend", "20260101-120000-0123abcd"),
]


@pytest.mark.parametrize("button", ROUND_TRIP, ids=repr)
def test_every_button_round_trips(button: callbacks.Button) -> None:
    data = callbacks.encode(button)
    assert len(data.encode()) <= callbacks.MAX_BYTES
    assert callbacks.decode(data) == button


FORGED: list[object] = [
    None,
    b"c|1001|next|",
    42,
    "",
    "garbage",
    "c|",
    "c|1001|next",  # a field missing
    "c|1001|next||",  # one too many
    "c|1001|next|x",  # Next carries nothing
    "c|1001|explode|",  # no such action
    "c|abc|next|",
    "c|0|next|",
    "c|-5|next|",
    "c|01001|next|",  # a second spelling of the same owner
    "c|99999999999999999|next|",  # longer than any user id
    "c|1001|style|nonexistent",
    "c|1001|style|",
    "c|1001|len|999999",
    "c|1001|len|-30",
    "c|1001|len|30.0",
    "c|1001|lang|fr",
    "c|1001|lang|",
    "sb:render",
    "sb:explode:20260101-120000-0123abcd",
    "sb:render:../../etc/passwd",
    "sb:render:a:b",
    "sb:render:",
    "sb:render:" + "a" * 49,
    "c|1001|style|" + "x" * 60,  # over Telegram's 64 bytes
    "c|1001|lang|zh\x00",
    "\udcff",  # a lone surrogate: not even encodable
]


@pytest.mark.parametrize("data", FORGED, ids=repr)
def test_forged_or_garbage_data_decodes_to_none(data: object) -> None:
    assert callbacks.decode(data) is None


@pytest.mark.parametrize(
    "button", [Choice(0, "next"), Choice(1, "len", "45"), Board("render", "a/b")], ids=repr
)
def test_encode_refuses_what_decode_would(button: callbacks.Button) -> None:
    with pytest.raises(ValueError):
        callbacks.encode(button)


async def to_options(server: FakeTelegram, who: dict[str, Any], topic: str) -> None:
    """/new, a topic and a style: the options message (language, length, Next) is showing."""
    chat = who["id"]
    await server.text(who, chat, "/new")
    await server.wait_for("sendMessage", lambda c: c.chat_id == chat)
    mark = len(server.calls)
    await server.text(who, chat, topic)
    await server.wait_for("sendMessage", lambda c: "|style|" in str(c.params), since=mark)
    msg, data = server.button_message(chat, f"c|{chat}|style|vlog")
    mark = len(server.calls)
    await server.press(who, msg, data)
    await server.wait_for("sendMessage", lambda c: "|len|" in str(c.params), since=mark)


@pytest.mark.parametrize(("who", "stale"), [(ALICE, "no longer active"), (LI, "已失效")])
def test_forged_button_gets_a_polite_answer(
    tmp_path: Path, who: dict[str, Any], stale: str
) -> None:
    """Forged data in every state and outside any: answered, nothing raised (the autouse
    fixture fails the test on an ERROR log), and the conversation carries on."""
    chat = who["id"]

    async def scenario() -> None:
        async with (
            fake_server() as server,
            bot_running(server, settings_for(server, tmp_path / "data"), make_pipeline()),
        ):
            await to_options(server, who, "Forged buttons")
            msg, _ = server.button_message(chat, f"c|{chat}|len|")
            start = len(server.calls)
            for data in (
                f"c|{chat}|len|999999",
                f"c|{chat}|style|nonexistent",
                f"c|{chat}|lang|fr",
                "sb:render:../../x",
                "sb:edit:20260101-120000-0123abcd",  # well formed, but no such job
                "garbage",
            ):
                mark = len(server.calls)
                await server.press(who, msg, data)
                answer = await server.wait_for("answerCallbackQuery", since=mark)
                assert stale in answer.params["text"], data
            assert not [c for c in server.calls[start:] if c.method.startswith("edit")]
            # The real buttons still work: Next goes on to the footage.
            msg, data = server.button_message(chat, f"c|{chat}|next|")
            mark = len(server.calls)
            await server.press(who, msg, data)
            await server.wait_for("sendMessage", lambda c: "|done|" in str(c.params), since=mark)

    run(scenario())


# -- user mistakes, by name --------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("who", "label"), [(ALICE, "English"), (LI, "中文")])
def test_tapping_the_ticked_option_answers_and_edits_nothing(
    tmp_path: Path, who: dict[str, Any], label: str
) -> None:
    chat = who["id"]

    async def scenario() -> None:
        async with (
            fake_server() as server,
            bot_running(server, settings_for(server, tmp_path / "data"), make_pipeline()),
        ):
            await to_options(server, who, "Ticked twice")
            options = server.sent("sendMessage")[-1]
            rows = options.params["reply_markup"]["inline_keyboard"]
            ticked = [b for row in rows for b in row if b["text"].startswith("✓")]
            assert {b["text"] for b in ticked} == {f"✓ {label}", "✓ 30 s"}
            msg = server.messages[(chat, options.result["message_id"])]
            for b in ticked:
                mark = len(server.calls)
                await server.press(who, msg, b["callback_data"])
                await server.wait_for("answerCallbackQuery", since=mark)
                await asyncio.sleep(0.3)
                assert not [c for c in server.calls[mark:] if c.method.startswith("edit")]
                assert not [c for c in server.calls[mark:] if c.method == "sendMessage"]
            # A real change still edits the message in place.
            mark = len(server.calls)
            await server.press(who, msg, f"c|{chat}|len|60")
            edit = await server.wait_for("editMessageText", since=mark)
            assert "✓ 60 s" in str(edit.params["reply_markup"])

    run(scenario())


@pytest.mark.parametrize(
    ("who", "problem", "asked"),
    [(ALICE, "no words remain", "Pick a style"), (LI, "没有剩下文字", "选择一个风格")],
)
def test_unusable_topic_is_named_when_typed(
    tmp_path: Path, who: dict[str, Any], problem: str, asked: str
) -> None:
    chat = who["id"]

    async def scenario() -> None:
        async with (
            fake_server() as server,
            bot_running(server, settings_for(server, tmp_path / "data"), make_pipeline()),
        ):
            await server.text(who, chat, "/new")
            await server.wait_for("sendMessage", lambda c: c.chat_id == chat)
            mark = len(server.calls)
            await server.text(who, chat, "🐱🐱 !!! 🎉")
            told = await server.wait_for("sendMessage", since=mark)
            assert problem in told.text and "went wrong" not in told.text
            # Still asked for the topic: a usable one goes on to the style.
            mark = len(server.calls)
            await server.text(who, chat, "My cat")
            await server.wait_for("sendMessage", lambda c: asked in c.text, since=mark)

    run(scenario())


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_script_request_errors_have_their_own_words(lang: str) -> None:
    generic = T["error_generic"][lang]
    for field in ("topic", "seconds", "style", "language", "length_factor"):
        text = error_text(lang, "script_request_invalid", {"field": field, "problem": "x"})
        assert text and text != generic
    assert error_text(lang, "storage_full") != generic


# -- saved conversations -----------------------------------------------------------------------


def _draft(chat: int = 1001, topic: str = "Saved topic") -> Draft:
    return Draft(
        job_id="j1",
        job_dir="/data/jobs/j1",
        chat_id=chat,
        owner_id=1001,
        owner_name="Alice",
        topic=topic,
        style="vlog",
        footage=[Clip("/data/jobs/j1/uploads/01_red.mp4", "red", "", 1.0), Clip("/p.jpg")],
    )


def test_draft_is_plain_json_and_comes_back_equal() -> None:
    draft = _draft()
    text = json.dumps(draft.to_dict())
    assert "bot.services" not in text
    again = Draft.from_dict(json.loads(text))
    assert again == draft and again.footage[1].photo and not again.footage[0].photo


def test_state_round_trip_through_the_files(tmp_path: Path) -> None:
    async def scenario() -> None:
        first = JsonPersistence(tmp_path)
        assert await first.get_user_data() == {}
        await first.update_user_data(1001, {"lang": "zh", "drafts": {-100777: _draft(-100777)}})
        await first.update_conversation("new-video", (-100777, 1001), 3)
        await first.flush()
        second = JsonPersistence(tmp_path)
        users = await second.get_user_data()
        assert users[1001]["lang"] == "zh" and users[1001]["drafts"][-100777] == _draft(-100777)
        assert await second.get_conversations("new-video") == {(-100777, 1001): 3}

    asyncio.run(scenario())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["conversations.json", "users.json"]


@pytest.mark.logs_errors
@pytest.mark.parametrize(
    "content",
    [
        b"",
        b'{"format": 1, "users": {"1001": {"lang"',
        b"\x80\x03garbage",
        b'["a list"]',
        b'{"format": 99}',
        b'{"format": 1, "users": {"x": {}}}',
    ],
    ids=["empty", "truncated", "garbage", "list", "newer-format", "bad-id"],
)
def test_a_damaged_file_is_kept_aside_and_only_it_starts_empty(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        good = JsonPersistence(tmp_path)
        await good.get_user_data()
        await good.update_conversation("new-video", (1001, 1001), 1)
        await good.flush()
        (tmp_path / "users.json").write_bytes(content)
        again = JsonPersistence(tmp_path)
        assert await again.get_user_data() == {}
        assert await again.get_conversations("new-video") == {(1001, 1001): 1}  # untouched

    asyncio.run(scenario())
    (kept,) = tmp_path.glob("users.json.*.damaged")
    assert kept.read_bytes() == content
    assert any("damaged" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)


def test_pickled_conversations_of_older_versions_are_moved_to_json(tmp_path: Path) -> None:
    legacy = {
        "user_data": {1001: {"lang": "en", "drafts": {1001: _draft()}}},
        "chat_data": {},
        "bot_data": {},
        "callback_data": None,
        "conversations": {"new-video": {(1001, 1001): 2}},
    }
    (tmp_path / "conversations.pickle").write_bytes(pickle.dumps(legacy))

    async def scenario() -> None:
        users = await JsonPersistence(tmp_path).get_user_data()
        assert users[1001]["drafts"][1001] == _draft()
        assert await JsonPersistence(tmp_path).get_conversations("new-video") == {(1001, 1001): 2}

    asyncio.run(scenario())
    assert (tmp_path / "conversations.pickle.migrated").is_file()


@pytest.mark.logs_errors
def test_a_pickle_that_would_run_code_is_refused(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.system, ("touch " + str(tmp_path / "pwned"),))

    (tmp_path / "conversations.pickle").write_bytes(pickle.dumps({"user_data": Evil()}))
    assert asyncio.run(JsonPersistence(tmp_path).get_user_data()) == {}
    assert not (tmp_path / "pwned").exists()
    assert list(tmp_path.glob("conversations.pickle.*.damaged"))


# -- the real `reelbot bot` process ------------------------------------------------------------


@contextlib.asynccontextmanager
async def reelbot_process(
    server: FakeTelegram, data: Path, log: Path, **env: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    """`reelbot bot` as its own process against the fake server; stopped by SIGINT (as ^C)."""
    full_env = {
        **os.environ,
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TELEGRAM_API_BASE_URL": server.base_url,
        "TELEGRAM_API_BASE_FILE_URL": server.base_file_url,
        "REELBOT_DATA_DIR": str(data),
        "REELBOT_TTS_OFFLINE": "1",  # no edge-tts (a network service) in a test
        **env,
    }
    with log.open("ab") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "pipeline.cli", "-v", "bot", "--env-file", "",
            cwd=log.parent, env=full_env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(proc.wait(), 40)
            except TimeoutError:
                proc.kill()
                await proc.wait()


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root): {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(folder: Path) -> Path:
    """Write a file in `folder` until the file system is full."""
    filler = folder / "filler"
    block = b"\0" * 65536
    with contextlib.suppress(OSError), filler.open("wb") as f:
        while True:
            f.write(block)
            f.flush()
    with contextlib.suppress(OSError), filler.open("ab") as f:
        while True:  # the last few bytes too
            f.write(b"\0" * 512)
            f.flush()
    return filler


async def wait_file(path: Path, text: str, timeout: float = 20) -> None:
    for _ in range(int(timeout / 0.2)):
        if path.is_file() and text in path.read_text(errors="replace"):
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{text!r} never reached {path}")


@pytest.mark.slow
@pytest.mark.logs_errors
def test_full_disk_keeps_state_and_the_bot_answers(tmp_path: Path, media: dict[str, Path]) -> None:
    chat = ALICE["id"]
    log = tmp_path / "bot.log"

    async def scenario() -> None:
        async with fake_server() as server:
            with small_tmpfs(tmp_path / "disk", "4m") as disk:
                data = disk / "data"
                users = data / "users.json"
                # No free-space margin: the disk fills under the bot instead of being refused
                # up front (test_bot_failures covers the margin), so the state writes meet ENOSPC.
                async with reelbot_process(server, data, log, REELBOT_MIN_FREE_MB="0"):
                    await server.wait_for("deleteWebhook", timeout=60)
                    await to_options(server, ALICE, "Full disk topic")
                    msg, button = server.button_message(chat, f"c|{chat}|next|")
                    await server.press(ALICE, msg, button)
                    await server.wait_for("sendMessage", lambda c: "|done|" in str(c.params))
                    await server.video(ALICE, chat, media["red"])
                    await server.wait_for("sendMessage", lambda c: "Got it" in c.text)
                    await wait_file(users, "01_red.mp4")
                    await wait_file(data / "conversations.json", "new-video")
                    saved = users.read_bytes()
                    fill(disk)
                    # The job database cannot take the job: the user hears why, in words.
                    mark = len(server.calls)
                    await server.text(ALICE, chat, "/done")
                    told = await server.wait_for("sendMessage", since=mark, timeout=30)
                    assert "disk is full" in told.text and "Error" not in told.text
                    # A change that cannot be saved (the language), then ^C: both saves fail.
                    await server.text(ALICE, chat, "/lang")
                    await server.wait_for("sendMessage", lambda c: "中文" in c.text, since=mark)
                    await asyncio.sleep(6)  # one persistence interval, its write refused
                    # Still up, not in a crash loop: it answers.
                    mark = len(server.calls)
                    await server.text(ALICE, chat, "/help")
                    await server.wait_for("sendMessage", lambda c: "/new" in c.text, since=mark)
                assert users.read_bytes() == saved  # the last good save, whole
                assert not list(data.glob(".*.tmp"))
                text = log.read_text()
                assert "users.json failed ([Errno 28] No space left on device)" in text
                # Restart on the still-full disk: it starts, and the draft is there.
                mark = len(server.calls)
                async with reelbot_process(server, data, log, REELBOT_MIN_FREE_MB="0"):
                    await server.wait_for("deleteWebhook", since=mark, timeout=60)
                    (disk / "filler").unlink()  # the operator frees space
                    await server.text(ALICE, chat, "/done")
                    await server.wait_for("sendMessage", lambda c: "queue" in c.text, since=mark)
                    await server.text(ALICE, chat, "/cancel")
                    # Still queued: a new message says so; already started: the status is edited.
                    cancelled = ("sendMessage", "editMessageText")
                    await server.wait_for(cancelled, lambda c: "Cancelled" in c.text, since=mark)
                # The job was made from the draft saved before the disk filled.
                with contextlib.closing(sqlite3.connect(data / "jobs.sqlite3")) as db:
                    (brief,) = db.execute("SELECT brief FROM jobs").fetchone()
                assert json.loads(brief)["topic"] == "Full disk topic"

    run(scenario())


@pytest.mark.slow
@pytest.mark.logs_errors
def test_damaged_state_file_bot_starts_and_keeps_a_copy(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "users.json").write_bytes(b"")  # what a full disk at shutdown used to leave
    (data / "conversations.json").write_bytes(b"\x00\x01 not json")
    log = tmp_path / "bot.log"

    async def scenario() -> None:
        async with fake_server() as server, reelbot_process(server, data, log):
            await server.wait_for("deleteWebhook", timeout=60)
            await server.text(ALICE, ALICE["id"], "/help")
            await server.wait_for("sendMessage", lambda c: "/new" in c.text, timeout=30)

    run(scenario())
    assert len(list(data.glob("users.json.*.damaged"))) == 1
    assert len(list(data.glob("conversations.json.*.damaged"))) == 1
    assert log.read_text().count("is damaged") == 2


# -- webhook -----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.slow
@pytest.mark.parametrize("given", [None, "my-own_Secret1"])
def test_webhook_never_serves_an_update_without_the_secret(
    tmp_path: Path, given: str | None
) -> None:
    """No REELBOT_WEBHOOK_SECRET: the bot makes one and registers it; a forged POST (no or a
    wrong secret header) claiming to be an allowed user is refused, the real one served."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/hook/{uuid.uuid4().hex[:6]}"
    update = {"message": {
        "message_id": 5, "date": 0, "chat": {"id": ALICE["id"], "type": "private"},
        "from": ALICE, "text": "/help", "entities": [{"type": "bot_command", "offset": 0,
                                                     "length": 5}]}}  # fmt: skip
    env = {"REELBOT_WEBHOOK_URL": url, "REELBOT_WEBHOOK_LISTEN": "127.0.0.1",
           "REELBOT_WEBHOOK_PORT": str(port), "REELBOT_ALLOWED_IDS": str(ALICE["id"])}  # fmt: skip
    if given:
        env["REELBOT_WEBHOOK_SECRET"] = given

    async def post(http: aiohttp.ClientSession, n: int, secret: str | None) -> int:
        headers = {"Content-Type": "application/json"}
        if secret is not None:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        body = json.dumps({"update_id": n, **update})
        async with http.post(url, data=body, headers=headers) as resp:
            return resp.status

    async def scenario() -> None:
        async with (
            fake_server() as server,
            reelbot_process(server, tmp_path / "data", tmp_path / "bot.log", **env),
            aiohttp.ClientSession() as http,
        ):
            hook = await server.wait_for("setWebhook", timeout=60)
            secret = hook.params.get("secret_token")
            assert secret and len(secret) >= 32 if given is None else secret == given
            for _ in range(100):  # the listener comes up right after setWebhook
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    await post(http, 1, "wrong")
                    break
                await asyncio.sleep(0.1)
            assert await post(http, 2, None) == 403
            assert await post(http, 3, "wrong") == 403
            await asyncio.sleep(0.5)
            assert not server.sent("sendMessage")  # neither was served
            assert await post(http, 4, secret) == 200
            await server.wait_for("sendMessage", lambda c: "/new" in c.text, timeout=30)

    run(scenario())
