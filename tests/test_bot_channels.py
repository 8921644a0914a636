"""Channels end to end over the fake Bot API: linking with both rights checked, posting a
delivered video by its file_id, scheduling across a restart, cancelling, and comments read only
under the bot's own posts."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from bot.app import BotApp
from bot.channels import ChannelStore
from bot.jobs import QUEUED, Job, JobStore, SentVideo, new_job_id
from bot.publish import recorded_comments
from pipeline.bench import samples
from pipeline.brief import Brief
from tests.bot_harness import ALICE, BOB, bot_running, fake_server, make_pipeline, run, settings_for
from tests.fake_telegram import BOT, FakeTelegram, user

pytestmark = pytest.mark.slow  # renders or runs models end to end

CHANNEL, GROUP = -1001000000500, -1001000000501
CHANNEL2, GROUP2, FOREIGN = -1001000000600, -1001000000601, -1001000000700
A = ALICE["id"]
CAROL = user(1004, "Carol", "en")


def seed_video(server: FakeTelegram, data: Path, tmp: Path, owner: int = A) -> tuple[str, str]:
    """A delivered job of `owner` as the bot records it: (job id, the video's file_id)."""
    store = JobStore(str(data / "jobs.sqlite3"))
    job_id = new_job_id()
    folder = data / "jobs" / job_id
    folder.mkdir(parents=True)
    video = samples.colour_clip(str(tmp / f"{job_id}.mp4"), "red", 1.0, size=(180, 320))
    cover = samples.photo(str(folder / "cover.jpg"), (200, 10, 10), (180, 320))
    ref = server.store_file(Path(video).read_bytes())
    job = Job(id=job_id, chat_id=owner, user_id=owner, lang="en", step="render",
              status=QUEUED, brief=Brief("cats"), job_dir=str(folder))  # fmt: skip
    store.submit(job)
    store.set_delivered(job_id, SentVideo(ref["file_id"], "Cats\n\n#cat", 1, 180, 320, cover))
    store.close()
    return job_id, ref["file_id"]


def seed_link(server: FakeTelegram, data: Path, tz: str = "+08:00") -> None:
    """ALICE administers the channel, the bot may post there and reads its discussion group."""
    server.channel(CHANNEL, "Cats TV", discussion=GROUP)
    server.set_member(CHANNEL, BOT["id"], "administrator", can_post_messages=True)
    server.set_member(CHANNEL, A, "creator")
    server.set_member(GROUP, BOT["id"], "administrator")
    store = JobStore(str(data / "jobs.sqlite3"))
    channels = ChannelStore(store.path)
    channels.link(A, CHANNEL, "Cats TV", GROUP)
    channels.set_tz(A, tz)
    channels.close()
    store.close()


def post_state(data: Path, job_id: str) -> list[str]:
    db = sqlite3.connect(data / "jobs.sqlite3")
    try:
        return [r[0] for r in db.execute("SELECT state FROM posts WHERE job_id=?", (job_id,))]
    finally:
        db.close()


def video_buttons(job_id: str) -> dict[str, str]:
    return {a: f"sb:{a}:{job_id}" for a in ("post", "sched", "in1h", "unsched")}


async def press(server: FakeTelegram, who: dict[str, Any], data: str) -> None:
    msg = server._message(who["id"], text="video")  # the message the buttons sit under
    await server.press(who, msg, data)


def test_linking_checks_both_rights_and_takes_a_forward(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fake_server() as server:
            server.channel(CHANNEL, "Private cats")  # no @name: linked by a forwarded post
            settings = settings_for(server, tmp_path / "data")
            async with bot_running(server, settings, make_pipeline(stand_in=True)):

                async def say(send: Any) -> str:
                    mark = len(server.calls)
                    await send
                    call = await server.wait_for("sendMessage", since=mark, timeout=10)
                    return call.text

                assert "forward" in await say(server.text(ALICE, A, "/channel"))
                # The bot is no administrator there.
                text = await say(server.forward_from_channel(ALICE, A, CHANNEL))
                assert "not an administrator allowed to post" in text
                # The bot may post, but Alice is only a member: nobody links someone else's.
                server.set_member(CHANNEL, BOT["id"], "administrator", can_post_messages=True)
                server.set_member(CHANNEL, A, "member")
                await say(server.text(ALICE, A, "/channel"))
                text = await say(server.forward_from_channel(ALICE, A, CHANNEL))
                assert "You are not an administrator" in text
                server.set_member(CHANNEL, A, "administrator", can_post_messages=True)
                await say(server.text(ALICE, A, "/channel"))
                text = await say(server.forward_from_channel(ALICE, A, CHANNEL))
                assert "Linked “Private cats”" in text and "time zone" in text
                assert "Time zone set: Asia/Shanghai" in await say(
                    server.text(ALICE, A, "Asia/Shanghai")
                )
        store = JobStore(str(tmp_path / "data" / "jobs.sqlite3"))
        channels = ChannelStore(store.path)
        assert [c.channel_id for c in channels.channels(A)] == [CHANNEL]
        assert channels.tz(A) == "Asia/Shanghai"

    run(scenario())


def test_post_now_sends_the_file_id_and_refuses_others(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fake_server() as server:
            data = tmp_path / "data"
            seed_link(server, data)
            job_id, file_id = seed_video(server, data, tmp_path)
            job2, _ = seed_video(server, data, tmp_path)
            settings = settings_for(server, data)
            async with bot_running(server, settings, make_pipeline(stand_in=True)):
                await press(server, ALICE, video_buttons(job_id)["post"])
                call = await server.wait_for("sendVideo", lambda c: c.chat_id == CHANNEL)
                # The same file by its id: nothing uploaded, the caption kept.
                assert call.params["video"] == file_id and "video" not in call.files
                assert call.params["caption"] == "Cats\n\n#cat"
                assert call.upload("cover") is not None
                await server.wait_for("sendMessage", lambda c: "Posted to" in c.text)
                # Pressed again: never twice.
                mark = len(server.calls)
                await press(server, ALICE, video_buttons(job_id)["post"])
                await server.wait_for("sendMessage", lambda c: "already" in c.text, since=mark)
                # Someone else presses the owner's button.
                mark = len(server.calls)
                await press(server, BOB, video_buttons(job2)["post"])
                answer = await server.wait_for("answerCallbackQuery", since=mark)
                assert "belong to someone else" in str(answer.params.get("text"))
                # The owner was demoted in the channel: refused, checked again at publishing.
                server.set_member(CHANNEL, A, "member")
                mark = len(server.calls)
                await press(server, ALICE, video_buttons(job2)["post"])
                refused = await server.wait_for("sendMessage", since=mark)
                assert "You are not an administrator" in refused.text
            assert len(server.sent("sendVideo", CHANNEL)) == 1
            assert post_state(data, job_id) == ["posted"] and post_state(data, job2) == []

    run(scenario())


def post_ids(data: Path, job_id: str) -> list[int]:
    db = sqlite3.connect(data / "jobs.sqlite3")
    try:
        return [r[0] for r in db.execute("SELECT id FROM posts WHERE job_id=?", (job_id,))]
    finally:
        db.close()


def queued_posts(app: BotApp) -> list[str]:
    """The scheduled posts' jobs on PTB's JobQueue, by name (post-<row id>)."""
    assert app.job_queue is not None
    return sorted(j.name or "" for j in app.job_queue.jobs() if (j.name or "").startswith("post-"))


def plan_post(data: Path, job_id: str, due: float, state: str = "scheduled") -> int:
    """A post row as the bot leaves it, written while the bot is down."""
    store = JobStore(str(data / "jobs.sqlite3"))
    channels = ChannelStore(store.path)
    job = store.get(job_id)
    assert job is not None
    post, ok = channels.plan(job, CHANNEL, due)
    assert ok
    if state != "scheduled":
        assert channels.move(post.id, "scheduled", state)
    channels.close()
    store.close()
    return post.id


def test_scheduled_post_survives_a_restart_and_goes_out_once(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fake_server() as server:
            data = tmp_path / "data"
            seed_link(server, data)
            job_id, file_id = seed_video(server, data, tmp_path)
            late, _ = seed_video(server, data, tmp_path)
            settings = settings_for(server, data)
            async with bot_running(server, settings, make_pipeline(stand_in=True)) as app:
                for job in (job_id, late):
                    mark = len(server.calls)
                    await press(server, ALICE, video_buttons(job)["in1h"])
                    await server.wait_for("sendMessage", lambda c: "Scheduled" in c.text,
                                          since=mark)  # fmt: skip
                # Each is a one-off job on PTB's JobQueue, named after its row.
                rows = [post_ids(data, job_id)[0], post_ids(data, late)[0]]
                assert queued_posts(app) == sorted(f"post-{i}" for i in rows)
            # While the bot is down: one post falls due in 4 s, the other was due already.
            due = time.time() + 4
            db = sqlite3.connect(data / "jobs.sqlite3")
            db.execute("UPDATE posts SET due=? WHERE job_id=?", (due, job_id))
            db.execute("UPDATE posts SET due=? WHERE job_id=?", (time.time() - 60, late))
            db.commit()
            db.close()
            assert not server.sent("sendVideo", CHANNEL)
            async with bot_running(server, settings, make_pipeline(stand_in=True)) as app:
                first = await server.wait_for("sendVideo", lambda c: c.chat_id == CHANNEL)
                assert time.time() < due - 1  # the overdue one went out at once
                # The other is back on the JobQueue, from its row, waiting for its time.
                assert queued_posts(app) == [f"post-{rows[0]}"]
                on_time = await server.wait_for(
                    "sendVideo", lambda c: c.params["video"] == file_id, timeout=10
                )
                assert due - 0.1 <= time.time() <= due + 2 and on_time.at >= first.at
                await asyncio.sleep(1.5)
                assert queued_posts(app) == []
            assert len(server.sent("sendVideo", CHANNEL)) == 2
            assert post_state(data, job_id) == ["posted"] == post_state(data, late)
            # A third start finds nothing to send.
            async with bot_running(server, settings, make_pipeline(stand_in=True)) as app:
                assert queued_posts(app) == []
                await asyncio.sleep(1)
            assert len(server.sent("sendVideo", CHANNEL)) == 2

    run(scenario())


def test_a_restart_while_a_post_is_sending_posts_it_once(tmp_path: Path) -> None:
    """Stopping the bot while its post's sendVideo is in flight: the stop waits for the answer
    (the row ends `posted`) and the next start sends nothing."""

    async def scenario() -> None:
        async with fake_server() as server:
            data = tmp_path / "data"
            seed_link(server, data)
            job_id, _ = seed_video(server, data, tmp_path)
            plan_post(data, job_id, time.time() + 1)
            server.slow["sendVideo"] = 2.0
            settings = settings_for(server, data)
            async with bot_running(server, settings, make_pipeline(stand_in=True)):
                deadline = time.monotonic() + 10
                while post_state(data, job_id) != ["sending"] and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                assert post_state(data, job_id) == ["sending"]
                assert not server.sent("sendVideo", CHANNEL)  # the request is in flight
            assert post_state(data, job_id) == ["posted"]
            assert len(server.sent("sendVideo", CHANNEL)) == 1
            async with bot_running(server, settings, make_pipeline(stand_in=True)):
                await asyncio.sleep(1.5)
            assert len(server.sent("sendVideo", CHANNEL)) == 1
            assert not [c for c in server.sent("sendMessage", A) if "stopped" in c.text]

    run(scenario())


def test_a_post_a_killed_bot_left_sending_is_never_sent_again(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fake_server() as server:
            data = tmp_path / "data"
            seed_link(server, data)
            job_id, _ = seed_video(server, data, tmp_path)
            plan_post(data, job_id, time.time() - 5, state="sending")  # killed mid-send
            settings = settings_for(server, data)
            async with bot_running(server, settings, make_pipeline(stand_in=True)) as app:
                told = await server.wait_for("sendMessage", lambda c: c.chat_id == A)
                assert "cannot tell whether it went out" in told.text
                assert queued_posts(app) == []
                await asyncio.sleep(1)
            assert post_state(data, job_id) == ["unknown"]
            assert not server.sent("sendVideo", CHANNEL)

    run(scenario())


def test_cancelling_a_scheduled_post(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fake_server() as server:
            data = tmp_path / "data"
            seed_link(server, data)
            job_id, _ = seed_video(server, data, tmp_path)
            settings = settings_for(server, data)
            async with bot_running(server, settings, make_pipeline(stand_in=True)) as app:
                await press(server, ALICE, video_buttons(job_id)["in1h"])
                await server.wait_for("sendMessage", lambda c: "Scheduled" in c.text)
                assert queued_posts(app) == [f"post-{post_ids(data, job_id)[0]}"]
                mark = len(server.calls)
                await server.text(ALICE, A, "/scheduled")
                listed = await server.wait_for("sendMessage", since=mark)
                assert job_id in listed.text
                _, data_cancel = server.button_message(A, "sb:unsched:")
                await press(server, ALICE, data_cancel)
                await server.wait_for("sendMessage", lambda c: "cancelled" in c.text)
                assert queued_posts(app) == []  # its JobQueue job went with it
                mark = len(server.calls)
                await server.text(ALICE, A, "/scheduled")
                empty = await server.wait_for("sendMessage", since=mark)
                assert "No scheduled posts" in empty.text
            assert post_state(data, job_id) == ["cancelled"]
            assert not server.sent("sendVideo", CHANNEL)

    run(scenario())


def test_comments_are_recorded_only_under_the_bots_posts(tmp_path: Path) -> None:
    async def scenario() -> None:
        async with fake_server() as server:
            data = tmp_path / "data"
            seed_link(server, data)
            job_id, _ = seed_video(server, data, tmp_path)
            settings = settings_for(server, data)
            async with bot_running(server, settings, make_pipeline(stand_in=True)):
                await press(server, ALICE, video_buttons(job_id)["post"])
                call = await server.wait_for("sendVideo", lambda c: c.chat_id == CHANNEL)
                ours = server.messages[(CHANNEL, call.result["message_id"])]
                theirs = server._message(CHANNEL, text="an admin's own post")
                fwd_ours = await server.automatic_forward(GROUP, ours)
                fwd_theirs = await server.automatic_forward(GROUP, theirs)
                mark = len(server.calls)
                await server.comment(BOB, GROUP, fwd_theirs, "not about our video")
                c1 = await server.comment(BOB, GROUP, fwd_ours, "love the cat")
                await server.text(BOB, GROUP, "just chatting in the group")
                await server.comment(ALICE, GROUP, fwd_ours, "thanks!")
                await server.reaction_count(GROUP, c1["message_id"], 4)
                store = ChannelStore(str(data / "jobs.sqlite3"))
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline:
                    got = recorded_comments(store, job_id)
                    if len(got) == 2 and got[0].likes == 4:
                        break
                    await asyncio.sleep(0.1)
                assert [c.text for c in got] == ["love the cat", "thanks!"]
                assert got[0].likes == 4 and got[1].likes == 0
                assert got[0].author != got[1].author and "1002" not in got[0].author
                mark2 = len(server.calls)
                await server.text(ALICE, A, "/comments")
                counts = await server.wait_for("sendMessage", since=mark2)
                assert f"💬 2 — {job_id}" in counts.text
                # The bot said nothing in the discussion group.
                assert not [c for c in server.calls[mark:] if c.chat_id == GROUP]
                store.close()

    run(scenario())


def test_comments_pass_the_allowed_ids_gate_and_nothing_else_does(tmp_path: Path) -> None:
    """With REELBOT_ALLOWED_IDS set to Alice: the comments under her channel's posts are still
    recorded (the commenters are not on the list), while a stranger's chats stay refused: a
    foreign group, a private chat, and the discussion group of a channel linked by someone who
    is not on the list."""

    async def scenario() -> None:
        async with fake_server() as server:
            data = tmp_path / "data"
            seed_link(server, data)
            job_id, _ = seed_video(server, data, tmp_path)
            # Carol (not allowed) linked her own channel and has a post there.
            carol_job, _ = seed_video(server, data, tmp_path, owner=CAROL["id"])
            server.channel(CHANNEL2, "Dogs TV", discussion=GROUP2)
            hers = server._message(CHANNEL2, text="dogs")
            store = JobStore(str(data / "jobs.sqlite3"))
            channels = ChannelStore(store.path)
            channels.link(CAROL["id"], CHANNEL2, "Dogs TV", GROUP2)
            carol = store.get(carol_job)
            assert carol is not None
            post, _ = channels.plan(carol, CHANNEL2, time.time())
            channels.move(post.id, "scheduled", "posted", message_id=hers["message_id"])
            channels.close()
            store.close()
            server.chat(FOREIGN, "supergroup", "Strangers")
            settings = settings_for(server, data, allowed_ids=frozenset({A}))
            async with bot_running(server, settings, make_pipeline(stand_in=True)):
                await press(server, ALICE, video_buttons(job_id)["post"])
                call = await server.wait_for("sendVideo", lambda c: c.chat_id == CHANNEL)
                ours = server.messages[(CHANNEL, call.result["message_id"])]
                await server.wait_for("sendMessage", lambda c: "Posted to" in c.text)
                mark = len(server.calls)
                reader = ChannelStore(str(data / "jobs.sqlite3"))

                async def until(done: Any) -> None:
                    deadline = time.monotonic() + 10
                    while not done() and time.monotonic() < deadline:
                        await asyncio.sleep(0.05)

                # Telegram's forwards (sender 777000), then Bob's comments.
                fwd_hers = await server.automatic_forward(GROUP2, hers)
                fwd_ours = await server.automatic_forward(GROUP, ours)
                await until(lambda: reader.post_of_thread(GROUP, fwd_ours["message_id"]))
                await server.comment(BOB, GROUP2, fwd_hers, "woof")
                c1 = await server.comment(BOB, GROUP, fwd_ours, "love the cat")
                await server.text(BOB, FOREIGN, "/help")
                await server.text(BOB, GROUP, "/help")
                await until(lambda: recorded_comments(reader, job_id))
                await server.reaction_count(GROUP, c1["message_id"], 3)
                await until(lambda: [c.likes for c in recorded_comments(reader, job_id)] == [3])
                got = recorded_comments(reader, job_id)
                assert [(c.text, c.likes) for c in got] == [("love the cat", 3)]
                # Bob in private: refused as before (his updates run in order, so the group
                # messages above were handled by the time this answer comes).
                await server.text(BOB, BOB["id"], "/start")
                refused = await server.wait_for("sendMessage", lambda c: c.chat_id == BOB["id"],
                                                since=mark)  # fmt: skip
                assert "this bot is private" in refused.text
                await asyncio.sleep(0.3)
                assert recorded_comments(reader, carol_job) == []
                assert reader.post_of_thread(GROUP2, fwd_hers["message_id"]) is None
                said = {c.chat_id for c in server.calls[mark:] if c.chat_id is not None}
                assert said == {BOB["id"]}  # nothing in either group, nor the foreign one
                reader.close()

    run(scenario())


def test_old_job_folders_are_removed_by_an_hourly_job_on_the_same_queue(tmp_path: Path) -> None:
    from telegram.ext import CallbackContext

    from bot.app import HOUSEKEEPING_S, housekeeping

    async def scenario() -> None:
        async with fake_server() as server:
            data = tmp_path / "data"
            settings = settings_for(server, data)
            async with bot_running(server, settings, make_pipeline(stand_in=True)) as app:
                assert app.job_queue is not None
                (job,) = app.job_queue.get_jobs_by_name("housekeeping")
                assert job.trigger.interval.total_seconds() == HOUSEKEEPING_S
                old = data / "jobs" / "old-job"
                old.mkdir(parents=True)
                (old / "out.mp4").write_bytes(b"x")
                past = time.time() - (settings.keep_days + 1) * 86400
                for path in (old / "out.mp4", old):  # its age is its newest file's
                    os.utime(path, (past, past))
                await housekeeping(CallbackContext.from_job(job, app))
                assert not old.exists()

    run(scenario())
