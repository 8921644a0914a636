"""The bad-input corpus (tests/corpus.py) through the real bot, over the fake Bot API.

Each corpus file is sent the way a user would send it (a video, a photo, or a file with the
name and MIME type a client gives it), mixed with one good clip; then /done, the storyboard and
the render. Per case the test checks the exact message the user reads (naming the file, in the
chat's language), that the rest of the footage is kept and reaches the finished video, that no
message carries a traceback or an exception's name, that no temporary or empty file stays in the
job folder, and that an oversized picture is refused before it is decoded (the process's peak
memory, reset just before, is read back). Hostile topics typed as the topic each get a clean
storyboard or the topic question again.
"""

from __future__ import annotations

import re
import resource
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from bot.texts import error_text, t
from tests.bot_harness import (
    ALICE,
    LI,
    REAL_SIZE,
    bot_running,
    check_video,
    fake_server,
    make_pipeline,
    new_video,
    render_from_storyboard,
    run,
    settings_for,
    used_footage,
)
from tests.corpus import HOSTILE_TOPICS, Case, build_corpus
from tests.fake_telegram import Call, FakeTelegram, user

pytestmark = pytest.mark.slow  # renders or runs models end to end

MB = 2**20

# The MIME type a Telegram client states for a file it sends as a document, by extension.
MIME = {
    ".mp4": "video/mp4", ".webm": "video/webm", ".gif": "image/gif", ".png": "image/png",
    ".webp": "image/webp", ".jpg": "image/jpeg", ".avif": "image/avif",
    ".svg": "image/svg+xml", ".wav": "audio/x-wav",
}  # fmt: skip

# Words no message to a user may carry: they mean an exception's text reached the chat.
LEAKS = re.compile(r"Traceback|Error|Exception|File \"|\bline \d+, in\b")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Case]:
    return {c.name: c for c in build_corpus(tmp_path_factory.mktemp("corpus"))}


async def send(server: FakeTelegram, who: dict[str, Any], case: Case, how: str) -> int:
    """Send `case` as a `how` (video | photo | document); returns the index of the calls after
    which the bot's answer comes."""
    mark = len(server.calls)
    chat = who["id"]
    if how == "video":
        await server.video(who, chat, case.path, width=160, height=90)
    elif how == "photo":
        await server.photo(who, chat, case.path)
    else:
        await server.document(who, chat, case.path, MIME[case.path.suffix])
    return mark


async def refused(
    server: FakeTelegram, who: dict[str, Any], case: Case, how: str, lang: str
) -> str:
    """Send a file the bot must refuse at once; the exact reply, naming the file."""
    mark = await send(server, who, case, how)
    told = await server.wait_for("sendMessage", lambda c: case.name in c.text, since=mark)
    expected = error_text(lang, f"media_{case.reason}", {"name": case.name})
    assert told.text == expected + "\n" + t(lang, "skipped"), (case.name, told.text)
    return told.text


async def kept(server: FakeTelegram, who: dict[str, Any], case: Case, how: str, lang: str) -> None:
    mark = await send(server, who, case, how)
    word = "Got it" if lang == "en" else "收到"
    got = await server.wait_for("sendMessage", lambda c: c.text.startswith(word), since=mark)
    assert case.name not in got.text or how == "document", got.text


def bot_texts(server: FakeTelegram) -> Iterable[str]:
    """Every text the bot sent: messages, edits, captions, button labels, popups."""
    for call in server.calls:
        yield call.text
        yield str(call.params.get("reply_markup") or "")
        if call.method == "answerCallbackQuery":
            yield str(call.params.get("text") or "")


def assert_clean(server: FakeTelegram) -> None:
    for text in bot_texts(server):
        assert not LEAKS.search(text), text


def leftovers(jobs: Path) -> list[str]:
    """Temporary, partial or empty files left in the job folders."""
    return sorted(
        str(p.relative_to(jobs))
        for p in jobs.rglob("*")
        if p.is_file()
        and (
            p.suffix in (".part", ".tmp")
            or ".tmp" in p.name
            or ".part" in p.name
            or p.stat().st_size == 0
        )
    )


def peak_mb() -> float:
    """This process's peak resident memory since the last `reset_peak` (Linux's VmHWM)."""
    status = Path("/proc/self/status").read_text()
    m = re.search(r"VmHWM:\s+(\d+) kB", status)
    assert m is not None
    return int(m.group(1)) / 1024


def current_mb() -> float:
    m = re.search(r"VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text())
    assert m is not None
    return int(m.group(1)) / 1024


def reset_peak() -> None:
    """Reset VmHWM to the current RSS (Linux >= 4.0: "5" to clear_refs)."""
    Path("/proc/self/clear_refs").write_text("5")


def children_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


# --- refused files, the music, a picture refused at analysis, the good clip: rendered ----------


def test_refused_files_are_named_and_the_good_clip_is_rendered(
    tmp_path: Path, corpus: dict[str, Case]
) -> None:
    """English chat. Each refusal is one exact message naming the file; the good clip and the
    photo probe accepts but no frame of which decodes reach the storyboard, which notes the
    photo as left out; the delivered video is cut from the good clip alone."""
    data = tmp_path / "data"
    chat = ALICE["id"]
    how = {"empty.mp4": "document", "notes.mp4": "document", "truncated.mp4": "video",
           "drawing.svg": "document", "one-frame.mp4": "video", "bomb.png": "document",
           "huge.mp4": "video"}  # fmt: skip

    async def scenario() -> None:
        async with (
            fake_server() as server,
            bot_running(server, settings_for(server, data), make_pipeline()),
        ):
            await new_video(server, ALICE, chat, "Bad files")
            # Over the caps: refused from the header. Peak memory from here to both refusals.
            children = children_peak_mb()
            before = current_mb()
            reset_peak()
            for name in ("bomb.png", "huge.mp4"):
                text = await refused(server, ALICE, corpus[name], how[name], "en")
                assert "too large a picture" in text
            grown = peak_mb() - before
            # Reading the headers costs about 24 MB (measured); the analysis decoding the
            # 12000x12000 PNG to RGB would take 432 MB.
            assert grown < 60, f"peak memory grew {grown:.0f} MB while refusing the big files"
            assert children_peak_mb() == children  # and no child process decoded them
            for name in ("empty.mp4", "notes.mp4", "truncated.mp4", "drawing.svg",
                         "one-frame.mp4"):  # fmt: skip
                await refused(server, ALICE, corpus[name], how[name], "en")
            # Literal wording, so a change to the texts is seen here too.
            said = [c.text for c in server.sent("sendMessage", chat)]
            assert "“empty.mp4” is an empty file.\nI left it out; the rest of your footage is " \
                "kept. Send another file or /done." in said  # fmt: skip
            assert any(s.startswith("“truncated.mp4” is damaged") for s in said)
            assert any(s.startswith("“one-frame.mp4” has no length (0 s)") for s in said)
            assert any(s.startswith("“drawing.svg” is in a format I cannot read") for s in said)
            assert any(s.startswith("“notes.mp4” is not a video or a photo") for s in said)
            assert list((data / "jobs").glob("*/uploads/*")) == []  # nothing refused is kept

            # An audio file sent while collecting footage is the music, not footage.
            mark = await send(server, ALICE, corpus["voice.wav"], "document")
            music = await server.wait_for("sendMessage", lambda c: "voice.wav" in c.text,
                                          since=mark)  # fmt: skip
            assert music.text.startswith("🎵 “voice.wav” (1 s) will be the music")
            # Probe accepts the half JPEG (its header is whole); the analysis leaves it out.
            await kept(server, ALICE, corpus["truncated.jpg"], "document", "en")
            mark = await send(server, ALICE, corpus["good.mp4"], "video")
            await server.wait_for(
                "sendMessage", lambda c: c.text == "Got it: 1 video(s), 2 s and 1 photo(s) so far.",
                since=mark)  # fmt: skip
            mark = len(server.calls)
            await server.text(ALICE, chat, "/done")
            note = await server.wait_for("sendMessage", lambda c: c.text.startswith("⚠️"),
                                         since=mark)  # fmt: skip
            # Named as the user sent it, not by its stored name (01_truncated.jpg).
            assert note.text.startswith("⚠️ Note: truncated.jpg skipped: corrupt"), note.text
            video = await render_from_storyboard(server, ALICE, chat)
            check_video(video)
            assert (int(video.params["width"]), int(video.params["height"])) == REAL_SIZE
            assert used_footage(data / "jobs") == ["02_good.mp4"]
            await server.wait_for("editMessageText", lambda c: "Done" in c.text, timeout=30)
            assert_clean(server)
            assert leftovers(data / "jobs") == []

    run(scenario())


# --- every file the bot must keep, and a few refusals, in a Chinese chat -----------------------

KEPT_AS = {
    "good.jpg": "photo", "vfr.mp4": "video", "hevc.mp4": "video", "10bit.mp4": "video",
    "vp9.webm": "document", "anim.gif": "document", "anim.png": "document",
    "anim.webp": "document", "alpha.png": "document", "cmyk.jpg": "document",
    "photo.avif": "document", "strip.png": "document", "with space.mp4": "document",
    "quote'\"s.mp4": "document", "ünïcødé 视频.mp4": "document", "-dash.mp4": "document",
    "a:b.mp4": "document",
}  # fmt: skip


@pytest.mark.slow
def test_kept_files_reach_the_edit_in_a_chinese_chat(
    tmp_path: Path, corpus: dict[str, Case]
) -> None:
    """Chinese chat: every file the corpus keeps is taken (odd names as the client gives them),
    four refusals are worded in Chinese, and the render decodes, cut from kept files only."""
    data = tmp_path / "data"
    chat = LI["id"]
    assert set(KEPT_AS) | {"good.mp4"} == {c for c, case in corpus.items() if case.kept}

    async def scenario() -> None:
        async with (
            fake_server() as server,
            bot_running(server, settings_for(server, data), make_pipeline()),
        ):
            await new_video(server, LI, chat, "奇怪的文件")
            skipped = "\n这个文件没有加入，其余素材都保留。可以继续发送，或发送 /done。"
            for name, text in (
                ("empty.mp4", "“empty.mp4” 是空文件。"),
                ("notes.mp4", "“notes.mp4” 不是视频或照片。"),
                ("one-frame.mp4", "“one-frame.mp4” 时长为 0。"),
                ("bomb.png", "“bomb.png” 的画面太大（超过像素上限）。"),
            ):
                said = await refused(server, LI, corpus[name], "document", "zh")
                assert said == text + skipped
            await kept(server, LI, corpus["good.mp4"], "video", "zh")
            for name, how in KEPT_AS.items():
                await kept(server, LI, corpus[name], how, "zh")
            uploads = sorted(p.name for p in (data / "jobs").glob("*/uploads/*"))
            assert len(uploads) == 1 + len(KEPT_AS)
            # Stored under safe names: no space, quote, colon or leading dash reaches a command.
            assert all(re.fullmatch(r"\d\d_[\w.-]+", n) and ":" not in n for n in uploads)
            mark = len(server.calls)
            await server.text(LI, chat, "/done")
            video = await render_from_storyboard(server, LI, chat)
            check_video(video)
            assert set(used_footage(data / "jobs")) <= set(uploads)
            # No file was left out at analysis (the only note is the offline voice's).
            assert not [c for c in server.calls[mark:] if "已跳过" in c.text]
            await server.wait_for("editMessageText", lambda c: "完成" in c.text, timeout=30)
            assert_clean(server)
            assert leftovers(data / "jobs") == []

    run(scenario())


# --- hostile topics -----------------------------------------------------------------------------


@pytest.mark.slow
def test_hostile_topics_get_a_clean_storyboard_or_the_question_again(
    tmp_path: Path, corpus: dict[str, Case]
) -> None:
    """Each hostile topic typed by its own user in its own chat, in one bot: the emoji-only one
    is asked again; every other reaches a storyboard whose title and script carry no control
    character and no markup, and its storyboard can be rendered."""
    data = tmp_path / "data"
    users = {label: user(2000 + i, f"U{i}", "en") for i, label in enumerate(HOSTILE_TOPICS)}

    async def scenario() -> None:
        async with (
            fake_server() as server,
            bot_running(server, settings_for(server, data), make_pipeline()),
        ):
            for label, (topic, keeps) in HOSTILE_TOPICS.items():
                who = users[label]
                if keeps is None:  # only emoji: the topic question again, at once
                    await server.text(who, who["id"], "/new")
                    await server.wait_for("sendMessage", lambda c, w=who: c.chat_id == w["id"])
                    mark = len(server.calls)
                    await server.text(who, who["id"], topic)
                    again = await server.wait_for("sendMessage", since=mark)
                    assert again.text == t("en", "script_request_invalid_topic")
                    assert "reply_markup" not in again.params  # no style buttons
                    continue
                await new_video(server, who, who["id"], topic)
                await server.video(who, who["id"], corpus["good.mp4"].path, width=160, height=90)
                await server.wait_for(
                    "sendMessage", lambda c, w=who: c.chat_id == w["id"] and "Got it" in c.text
                )
                await server.text(who, who["id"], "/done")
            boards: dict[str, Call] = {}
            for label, (_, keeps) in HOSTILE_TOPICS.items():
                if keeps is None:
                    continue
                who = users[label]
                boards[label] = await server.wait_for(
                    "sendMessage",
                    lambda c, w=who: c.chat_id == w["id"] and "sb:render" in str(c.params),
                    timeout=120,
                )
            for label, board in boards.items():
                text = board.text
                assert text.startswith("📝 Storyboard: “"), (label, text)
                assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text), (label, text)
                assert "<script>" not in text and "<b>" not in text, (label, text)
                # What the request keeps of the topic reaches the script; nothing of the escape
                # code or of the script element's code does.
                keeps = HOSTILE_TOPICS[label][1]
                assert keeps is not None and keeps.lower() in text.lower(), (label, text)
                assert "31m" not in text and "alert" not in text, (label, text)
            # One storyboard rendered to the end: the RTL topic.
            rtl = users["rtl"]
            video = await render_from_storyboard(server, rtl, rtl["id"])
            check_video(video)
            assert_clean(server)
            assert leftovers(data / "jobs") == []

    run(scenario())
