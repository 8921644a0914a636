"""End to end, the job side: cancel and restart during a render, limits, bad footage, the
storyboard's edit and another-version buttons, against the fake Bot API."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.bot_harness import (
    ALICE,
    LI,
    REAL_SECONDS,
    SmallRealPipeline,
    bot_running,
    check_video,
    fake_server,
    make_pipeline,
    media,
    new_video,
    render_from_storyboard,
    run,
    settings_for,
    used_footage,
)
from tests.fake_telegram import FakeTelegram

pytestmark = pytest.mark.slow  # renders or runs models end to end

__all__ = ["media"]  # the fixture


def ffmpeg_running_in(folder: Path) -> list[int]:
    """Ids of live processes whose command line mentions `folder` (the job's ffmpeg)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = Path(f"/proc/{entry}/stat").read_text().split()[2]
        except OSError:
            continue
        if str(folder) in cmd and "ffmpeg" in cmd and state != "Z":
            pids.append(int(entry))
    return pids


async def start_render(server: FakeTelegram, chat: int, media: dict[str, Path]) -> None:
    """A three-shot video up to the moment its (real-time paced) render is under way."""
    await new_video(server, ALICE, chat, "Slow render")
    for path in (media["red"], media["photo"], media["photo2"]):
        if path.suffix == ".mp4":
            await server.video(ALICE, chat, path)
        else:
            await server.photo(ALICE, chat, path)
    await server.wait_for("sendMessage", lambda c: "and 2 photo(s)" in c.text)
    await server.text(ALICE, chat, "/done")
    await server.wait_for("sendMessage", lambda c: "sb:render" in str(c.params.get("reply_markup")))
    msg, data = server.button_message(chat, "sb:render:")
    await server.press(ALICE, msg, data)
    await server.wait_for("editMessageText", lambda c: "Rendering" in c.text)


def test_cancel_during_render_ends_ffmpeg(tmp_path: Path, media: dict[str, Path]) -> None:
    data = tmp_path / "data"

    async def scenario() -> None:
        async with (
            fake_server() as server,
            bot_running(server, settings_for(server, data), make_pipeline(realtime=True)),
        ):
            await start_render(server, ALICE["id"], media)
            assert ffmpeg_running_in(data / "jobs"), "the render should be running now"
            await server.text(ALICE, ALICE["id"], "/cancel")
            await server.wait_for("editMessageText", lambda c: "Cancelled" in c.text)
            actions = [c.params.get("action") for c in server.sent("sendChatAction")]
            assert "upload_video" in actions  # kept alive while the render ran
            assert ffmpeg_running_in(data / "jobs") == []
            assert server.sent("sendVideo") == []
            # Nothing is left active: a new video can start at once.
            await server.text(ALICE, ALICE["id"], "/new")
            await server.wait_for("sendMessage", lambda c: "What is the video" in c.text,
                                  since=len(server.calls) - 1)  # fmt: skip

    run(scenario())


def test_restart_during_render_resumes_and_delivers(tmp_path: Path, media: dict[str, Path]) -> None:
    data = tmp_path / "data"

    async def scenario() -> None:
        async with fake_server() as server:
            async with bot_running(
                server, settings_for(server, data), make_pipeline(realtime=True)
            ):
                await start_render(server, ALICE["id"], media)
                status = server.sent("editMessageText")[-1].params["message_id"]
            # The first bot is gone mid-render: its ffmpeg ended, the job is still owed.
            assert ffmpeg_running_in(data / "jobs") == []
            assert server.sent("sendVideo") == []
            mark = len(server.calls)
            # The job folder was made by the stand-in: the bot that resumes it runs the same one.
            async with bot_running(
                server, settings_for(server, data), make_pipeline(stand_in=True)
            ):
                await server.wait_for("sendMessage", lambda c: "restarted" in c.text, since=mark)
                video = await server.wait_for("sendVideo", since=mark, timeout=40)
                seconds = check_video(video)
                assert 2.8 < seconds < 3.3  # the stand-in's 1 s a shot: all three shots
                # The same status message carries on.
                await server.wait_for("editMessageText", lambda c: "Done" in c.text, since=mark)
                done = [c for c in server.calls[mark:] if "Done" in c.text][-1]
                assert done.params["message_id"] == status

    run(scenario())


def test_file_over_download_limit_refused_with_advice(
    tmp_path: Path, media: dict[str, Path]
) -> None:
    async def scenario() -> None:
        async with (
            fake_server() as server,
            bot_running(server, settings_for(server, tmp_path / "data"), make_pipeline()),
        ):
            await new_video(server, ALICE, ALICE["id"], "Big file")
            await server.video(ALICE, ALICE["id"], media["red"], as_document=True,
                               size=25 * 2**20)  # fmt: skip
            refusal = await server.wait_for("sendMessage", lambda c: "MB" in c.text)
            assert "25 MB" in refusal.text and "20 MB" in refusal.text
            assert "local Bot API server" in refusal.text and "shorter" in refusal.text
            assert server.sent("getFile") == []  # never tried to fetch it
            await server.text(ALICE, ALICE["id"], "/done")
            await server.wait_for("sendMessage", lambda c: "at least one" in c.text)

    run(scenario())


def test_corrupt_video_told_and_rest_used(tmp_path: Path, media: dict[str, Path]) -> None:
    async def scenario() -> None:
        async with (
            fake_server() as server,
            bot_running(server, settings_for(server, tmp_path / "data"), make_pipeline()),
        ):
            await new_video(server, ALICE, ALICE["id"], "Mixed bag")
            await server.video(ALICE, ALICE["id"], media["corrupt"], as_document=True)
            told = await server.wait_for("sendMessage", lambda c: "broken.mp4" in c.text)
            assert "damaged" in told.text and "rest of your footage is kept" in told.text
            assert "Traceback" not in told.text and "Error" not in told.text
            await server.video(ALICE, ALICE["id"], media["blue"])
            await server.wait_for("sendMessage", lambda c: "Got it: 1 video(s)" in c.text)
            await server.text(ALICE, ALICE["id"], "/done")
            video = await render_from_storyboard(server, ALICE, ALICE["id"])
            seconds = check_video(video)
            uploads = list((tmp_path / "data" / "jobs").glob("*/uploads/*"))
            assert [p.name for p in uploads] == ["01_blue.mp4"]  # the broken file was dropped
            assert REAL_SECONDS[0] < seconds < REAL_SECONDS[1]
            assert used_footage(tmp_path / "data" / "jobs") == ["01_blue.mp4"]

    run(scenario())


def test_long_caption_trimmed_in_chinese(tmp_path: Path, media: dict[str, Path]) -> None:
    topic = "为什么猫咪喜欢纸箱？" * 120  # 1200 characters

    async def scenario() -> None:
        async with (
            fake_server() as server,
            bot_running(server, settings_for(server, tmp_path / "data"), make_pipeline()),
        ):
            await new_video(server, LI, LI["id"], topic, style="knowledge")
            await server.video(LI, LI["id"], media["red"])
            got = await server.wait_for("sendMessage", lambda c: "收到" in c.text)
            assert "1 段视频（1 秒）" in got.text
            await server.text(LI, LI["id"], "/done")
            await server.wait_for("sendMessage", lambda c: "排队" in c.text)
            video = await render_from_storyboard(server, LI, LI["id"])
            caption = video.params["caption"]
            assert len(caption.encode("utf-16-le")) // 2 <= 1024
            assert caption.startswith("为什么猫咪喜欢纸箱")
            # The script writer caps a Chinese title at 40 characters, so the 1200-character
            # topic reaches the caption as that title and its hashtags, whole: nothing to cut.
            board = [c for c in server.sent("sendMessage") if "sb:render" in str(c.params)][-1]
            title = board.text.split("“", 1)[1].split("”", 1)[0]
            assert len(title) <= 40 and caption.split("\n\n")[0] == title
            assert "…" not in caption and "#" in caption
            script = await server.wait_for("sendMessage", lambda c: "完整文案" in c.text)
            assert script.text
            await server.wait_for("editMessageText", lambda c: "完成" in c.text)

    run(scenario())


def test_edit_script_and_another_version(tmp_path: Path, media: dict[str, Path]) -> None:
    chat = ALICE["id"]

    async def scenario() -> None:
        pipeline = SmallRealPipeline()
        async with (
            fake_server() as server,
            bot_running(server, settings_for(server, tmp_path / "data"), pipeline),
        ):
            await new_video(server, ALICE, chat, "Morning coffee")
            await server.video(ALICE, chat, media["red"], caption="pouring")
            await server.wait_for("sendMessage", lambda c: "Got it: 1 video(s)" in c.text)
            await server.text(ALICE, chat, "/done")
            await server.wait_for("sendMessage", lambda c: "sb:another" in str(c.params))
            msg, data = server.button_message(chat, "sb:another:")
            mark = len(server.calls)
            await server.press(ALICE, msg, data)
            board = await server.wait_for("sendMessage", lambda c: "sb:edit" in str(c.params),
                                          since=mark)  # fmt: skip
            first = next(c for c in server.sent("sendMessage") if "sb:another" in str(c.params))
            assert board.text != first.text  # another version is another script
            msg, data = server.button_message(chat, "sb:edit:")
            mark = len(server.calls)
            await server.press(ALICE, msg, data)
            prompt = await server.wait_for("sendMessage", lambda c: "corrected" in c.text,
                                           since=mark)  # fmt: skip
            assert prompt.params["reply_markup"]["force_reply"] is True
            await server.text(ALICE, chat, "Title: Coffee time\nWake up!\nGrind the beans\n"
                              "Pour slowly\nSubscribe!\n#coffee #morning")  # fmt: skip
            board = await server.wait_for("sendMessage", lambda c: "sb:render" in str(c.params),
                                          since=mark)  # fmt: skip
            assert "Wake up!" in board.text and "Pour slowly" in board.text
            video = await render_from_storyboard(server, ALICE, chat)
            assert video.params["caption"] == "Coffee time\n\n#coffee #morning"
            check_video(video)
            assert pipeline.renders == 1  # another version and the edit rendered nothing

    run(scenario())


def test_per_user_limits_each_with_a_message(tmp_path: Path, media: dict[str, Path]) -> None:
    async def scenario() -> None:
        async with fake_server() as server:
            settings = settings_for(server, tmp_path / "data", max_footage=2,
                                    max_footage_seconds=1.5, jobs_per_hour=1)  # fmt: skip
            async with bot_running(server, settings, make_pipeline()):
                chat = ALICE["id"]
                await new_video(server, ALICE, chat, "Limits")
                await server.video(ALICE, chat, media["red"])  # 1 s
                await server.wait_for("sendMessage", lambda c: "Got it: 1 video(s)" in c.text)
                await server.video(ALICE, chat, media["blue"])  # 1 more s: over 1.5 s
                told = await server.wait_for("sendMessage", lambda c: "limited to" in c.text)
                assert "2 s in total" in told.text and "blue.mp4" in told.text
                await server.photo(ALICE, chat, media["photo"])  # photos add no seconds
                await server.wait_for("sendMessage", lambda c: "1 s and 1 photo(s)" in c.text)
                await server.photo(ALICE, chat, media["photo2"])
                await server.wait_for("sendMessage", lambda c: "maximum of 2 files" in c.text)
                await server.text(ALICE, chat, "/done")
                await server.wait_for("sendMessage", lambda c: "sb:render" in str(c.params))
                # One job this hour is the limit: the next /new is refused, clearly.
                await server.text(ALICE, chat, "/new")
                await server.wait_for("sendMessage", lambda c: "in the last hour" in c.text)

    run(scenario())


def test_allowed_ids_and_language_switch(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fake_server() as server:
            settings = settings_for(server, tmp_path / "data", allowed_ids=frozenset({LI["id"]}))
            async with bot_running(server, settings, make_pipeline()):
                await server.text(ALICE, ALICE["id"], "/new")
                await server.wait_for("sendMessage", lambda c: "private" in c.text)
                await server.text(LI, LI["id"], "/help")
                helped = await server.wait_for("sendMessage", lambda c: c.chat_id == LI["id"])
                assert "竖屏短视频" in helped.text and "/new" in helped.text
                await server.text(LI, LI["id"], "/lang")
                await server.wait_for("sendMessage", lambda c: c.text == "Language: English")
                mark = len(server.calls)
                await server.text(LI, LI["id"], "/help")
                helped = await server.wait_for("sendMessage", since=mark)
                assert "vertical short" in helped.text
            assert not [c for c in server.sent("sendMessage", ALICE["id"]) if "/new" in c.text]

    run(scenario())


def test_result_over_upload_limit_is_reencoded_to_fit(tmp_path: Path) -> None:
    from pipeline.bench import samples

    noisy = Path(samples.pattern_clip(str(tmp_path / "noisy.mp4"), 2.0, size=(320, 180), noise=40))
    # The real pipeline makes an ~9 s video (with 128 kbit/s sound); 0.3 MB leaves the fitter a
    # workable bitrate while the rendered file is well over it (checked below).
    cap_mb = 0.3

    async def scenario() -> None:
        async with fake_server() as server:
            settings = settings_for(server, tmp_path / "data", max_upload_mb=cap_mb)
            async with bot_running(server, settings, make_pipeline()):
                await new_video(server, ALICE, ALICE["id"], "Grainy")
                await server.video(ALICE, ALICE["id"], noisy)
                await server.wait_for("sendMessage", lambda c: "Got it: 1 video(s)" in c.text)
                await server.text(ALICE, ALICE["id"], "/done")
                video = await render_from_storyboard(server, ALICE, ALICE["id"])
                data = video.upload("video") or b""
                assert 0 < len(data) <= cap_mb * 2**20
                check_video(video)
        rendered = list((tmp_path / "data" / "jobs").glob("*/out.mp4"))
        assert rendered and rendered[0].stat().st_size > cap_mb * 2**20  # it really was too big

    run(scenario())


def test_queue_position_shown_and_updated(tmp_path: Path, media: dict[str, Path]) -> None:
    from tests.bot_harness import BOB

    async def scenario() -> None:
        async with (
            fake_server() as server,
            bot_running(
                server, settings_for(server, tmp_path / "data"), make_pipeline(realtime=True)
            ),
        ):
            await start_render(server, ALICE["id"], media)
            await new_video(server, BOB, BOB["id"], "Second in line")
            await server.video(BOB, BOB["id"], media["red"])
            await server.wait_for("sendMessage", lambda c: "Got it: 1 video(s)" in c.text)
            await server.text(BOB, BOB["id"], "/done")
            queued = await server.wait_for(
                "sendMessage", lambda c: c.chat_id == BOB["id"] and "queue" in c.text
            )
            assert "1 job(s) ahead" in queued.text
            # When Alice's render ends, Bob's job starts in the same status message.
            started = await server.wait_for("editMessageText", lambda c: c.chat_id == BOB["id"]
                                                and "Starting" in c.text, timeout=30)  # fmt: skip
            assert int(started.params["message_id"]) == queued.result["message_id"]
            await server.wait_for("sendVideo", lambda c: c.chat_id == ALICE["id"])

    run(scenario())


def test_unsized_file_refused_by_telegram_still_explained(
    tmp_path: Path, media: dict[str, Path]
) -> None:
    async def scenario() -> None:
        async with (
            fake_server() as server,
            bot_running(server, settings_for(server, tmp_path / "data"), make_pipeline()),
        ):
            await new_video(server, LI, LI["id"], "大文件")
            # The message says no size: the bot learns it from getFile's refusal.
            await server.video(LI, LI["id"], media["red"], as_document=True, size=30 * 2**20,
                               size_known=False)  # fmt: skip
            told = await server.wait_for("sendMessage", lambda c: "MB" in c.text)
            assert "20 MB" in told.text and "本地 Bot API" in told.text

    run(scenario())
