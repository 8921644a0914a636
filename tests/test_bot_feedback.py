"""/feedback over the fake Bot API: pasted and forwarded comments, an export file, a bad file
and a picture with no text (named, nothing lost), the report, the chart, and 🎬 Make this
opening /new with the idea's topic, style and points; 📊 Feedback under a delivered video."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from bot import callbacks
from bot.callbacks import Board, Choice
from bot.delivery import feedback_keyboard
from tests.bot_harness import ALICE, LI, bot_running, fake_server, make_pipeline, run, settings_for
from tests.fake_telegram import FakeTelegram

pytestmark = pytest.mark.slow  # renders or runs models end to end

PASTED = (
    "声音太小了，听不清\n音量太低了\n求一期剪辑教程\n能不能出个剪辑教程\n太好看了爱了\n宝藏博主"
)
CSV = "评论内容,点赞数\n用的什么相机？,7\n相机型号是什么？,2\nthe audio is too quiet,5\n"


async def _document(server: FakeTelegram, who: dict[str, Any], name: str, data: bytes) -> None:
    ref = server.store_file(data)
    await server.message(
        who, who["id"], document={**ref, "file_name": name, "mime_type": "text/plain"}
    )


def test_feedback_flow_and_make_this(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The lexicon path: the embedded model's answers are not what this flow checks.
    monkeypatch.setenv("REELBOT_LM", "off")
    who = LI
    chat = who["id"]
    blank = tmp_path / "blank.png"
    Image.new("RGB", (300, 200), "white").save(blank)

    async def scenario() -> None:
        async with (
            fake_server() as server,
            bot_running(server, settings_for(server, tmp_path / "data"), make_pipeline()),
        ):
            await server.text(who, chat, "/feedback")
            await server.wait_for("sendMessage", lambda c: "评论" in c.text)
            mark = len(server.calls)
            await server.text(who, chat, PASTED)
            got = await server.wait_for("sendMessage", lambda c: "收到" in c.text, since=mark)
            assert "收到 6 条评论，共 6 条" in got.text
            mark = len(server.calls)
            await server.message(
                who, chat, text="背景音乐太吵了", forward_origin={"type": "hidden_user",
                "sender_user_name": "某人", "date": 1700000000},
            )  # fmt: skip
            got = await server.wait_for("sendMessage", lambda c: "收到" in c.text, since=mark)
            assert "共 7 条" in got.text
            mark = len(server.calls)
            await _document(server, who, "douyin.csv", CSV.encode())
            got = await server.wait_for("sendMessage", lambda c: "收到" in c.text, since=mark)
            assert "收到 3 条评论，共 10 条" in got.text
            # A bad file and a picture with no text: named, and the 10 comments stay.
            mark = len(server.calls)
            await _document(server, who, "junk.bin", bytes(range(256)) * 8)
            told = await server.wait_for("sendMessage", since=mark)
            assert "junk.bin" in told.text and "读不出评论" in told.text
            mark = len(server.calls)
            await server.photo(who, chat, blank)
            told = await server.wait_for("sendMessage", since=mark)
            assert "没有识别出评论" in told.text
            mark = len(server.calls)
            msg, data = server.button_message(chat, f"c|{chat}|fbgo|")
            await server.press(who, msg, data)
            report = await server.wait_for("sendMessage", lambda c: "📊" in c.text, since=mark)
            assert "分析了 10 条评论" in report.text and "声音问题" in report.text
            chart = await server.wait_for("sendPhoto", since=mark)
            img = Image.open(io.BytesIO(chart.upload("photo") or b""))
            assert img.size[0] == 1000
            ideas = await server.wait_for("sendMessage", lambda c: "💡" in c.text, since=mark)
            assert "剪辑教程" in ideas.text
            # 🎬 Make this: /new with the idea filled in, at the options step.
            mark = len(server.calls)
            msg, data = server.button_message(chat, f"c|{chat}|idea|0")
            await server.press(who, msg, data)
            picked = await server.wait_for("sendMessage", lambda c: "主题" in c.text, since=mark)
            assert "剪辑教程" in picked.text and "知识" in picked.text
            await server.wait_for("sendMessage", lambda c: "|len|" in str(c.params), since=mark)
            # Someone else cannot press it; a stale number gets "no longer active".
            mark = len(server.calls)
            await server.press(ALICE, msg, data)
            answer = await server.wait_for("answerCallbackQuery", since=mark)
            assert "someone else" in answer.params["text"]

    run(scenario())


def test_feedback_button_under_a_video_starts_collecting(tmp_path: Path) -> None:
    who = ALICE
    chat = who["id"]
    markup = feedback_keyboard("en", "20260101-120000-0123abcd").to_dict()
    data = markup["inline_keyboard"][0][0]["callback_data"]
    assert callbacks.decode(data) == Board("feedback", "20260101-120000-0123abcd")
    assert not callbacks.board_pattern(data) and callbacks.feedback_pattern(data)
    assert callbacks.decode(f"c|{chat}|idea|3") is None  # three ideas: 0-2
    assert callbacks.decode(callbacks.encode(Choice(chat, "idea", "2"))) == Choice(
        chat, "idea", "2"
    )

    async def scenario() -> None:
        async with (
            fake_server() as server,
            bot_running(server, settings_for(server, tmp_path / "data"), make_pipeline()),
        ):
            video = await server.text(who, chat, "(the delivered video)")
            mark = len(server.calls)
            await server.press(who, video, data)
            await server.wait_for(
                "sendMessage", lambda c: "Send me the comments" in c.text, since=mark
            )
            mark = len(server.calls)
            await server.text(who, chat, "/done")
            await server.wait_for("sendMessage", lambda c: "No comments yet" in c.text, since=mark)

    run(scenario())
