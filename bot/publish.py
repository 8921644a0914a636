"""Publishing delivered videos to the creator's channel, now or at a chosen time, and reading
the comments under those posts.

- `/channel` (private chat) links a channel: the user forwards one of its posts or sends
  @name; Telegram is asked (getChatMember) that the bot may post there and that this user is an
  administrator of it. Asked again at every post.
- 📢 / 🕒 under a delivered video post it by the `file_id` Telegram returned at delivery (no
  second upload). Scheduled posts are rows in the channel tables, the truth; each pending row
  is a one-off job on PTB's JobQueue (APScheduler, in memory), put there again from the rows at
  every start (one due while the bot was down goes out at once). The comments-expiry sweep is
  a repeating job on the same queue.
- In a linked channel's discussion group (the bot an administrator there) the automatic
  forward of each of the bot's posts maps the group's thread to the post; replies in that
  thread are recorded as comments. The bot says nothing there.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageOriginChannel,
    Update,
)
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    JobQueue,
    MessageHandler,
    MessageReactionHandler,
    filters,
)

from bot import callbacks, channels
from bot.callbacks import Board, Choice
from bot.channels import ChannelStore, Post
from bot.jobs import JobStore
from bot.services import Context, services, user_lang
from bot.texts import t

log = logging.getLogger(__name__)

ASK_SECONDS = 600.0  # how long an unanswered /channel or time question waits for its answer
SWEEP_SECONDS = 3600.0  # how often comments older than the retention are deleted
# A job whose time has passed (the bot was down then, or start-up or a busy loop delayed it)
# still runs; by default APScheduler skips a job more than a second late.
_LATE_OK: Final = {"misfire_grace_time": None}
_HHMM = re.compile(r"([01]?\d|2[0-3])[:.：]([0-5]\d)")


@dataclass
class Waiting:
    """What the bot asked a user in a chat and waits for: a channel, a time zone or a time."""

    what: str  # link | tz | hhmm
    job_id: str = ""
    until: float = field(default_factory=lambda: time.monotonic() + ASK_SECONDS)


class _Asked(filters.MessageFilter):
    """Messages answering one of this module's questions (commands never do)."""

    def __init__(self, waiting: dict[tuple[int, int], Waiting]) -> None:
        super().__init__(name="publish.asked")
        self.waiting = waiting

    def filter(self, message: Message) -> bool:
        if message.from_user is None or (message.text or "").startswith("/"):
            return False
        got = self.waiting.get((message.chat.id, message.from_user.id))
        return got is not None and got.until > time.monotonic()


class _Discussion(filters.MessageFilter):
    """Messages in a linked channel's discussion group."""

    def __init__(self, chats: set[int]) -> None:
        super().__init__(name="publish.discussion")
        self.chats = chats

    def filter(self, message: Message) -> bool:
        return message.chat.id in self.chats


class Publisher:
    """Sends posts (each at most once) and keeps one JobQueue job per scheduled post."""

    def __init__(
        self, bot: Bot, jobs: JobStore, store: ChannelStore, keep_days: float, queue: JobQueue[Any]
    ) -> None:
        self.bot, self.jobs, self.store, self.keep_days = bot, jobs, store, keep_days
        self.queue = queue

    async def start(self) -> None:
        """Put every scheduled post on the JobQueue again; tell owners about posts a stop
        interrupted; sweep old comments now and hourly."""
        for post in self.store.interrupted():
            await self.tell(post, "chan_post_unknown")
        for post in self.store.pending():
            self.arm(post)
        self.expire()
        # Not first=0: an interval trigger whose start is already past fires one interval on.
        self.queue.run_repeating(self._sweep, interval=SWEEP_SECONDS, name="comments-expiry")

    def expire(self) -> None:
        gone = self.store.expire(self.keep_days)
        if gone:
            log.info("forgot %d comments older than %s days", gone, self.keep_days)

    async def _sweep(self, context: Context) -> None:
        self.expire()

    def arm(self, post: Post) -> None:
        """(Re)place the post's job on the JobQueue at its due time; one already past runs as
        soon as the queue runs (no misfire grace)."""
        self.disarm(post.id)
        at = dt.datetime.fromtimestamp(post.due, dt.UTC)
        self.queue.run_once(self._due, at, data=post.id, name=_job_name(post.id),
                            job_kwargs=_LATE_OK)  # fmt: skip

    def disarm(self, post_id: int) -> None:
        for job in self.queue.get_jobs_by_name(_job_name(post_id)):
            job.schedule_removal()

    async def _due(self, context: Context) -> None:
        """A post's job fired: send it if its row still says so (the row is the truth)."""
        assert context.job is not None and isinstance(context.job.data, int)
        fresh = self.store.post(context.job.data)
        if fresh is None or fresh.state != channels.SCHEDULED:
            return  # cancelled, or already sent by a press
        if fresh.due > time.time() + 1:
            return  # moved later meanwhile: arm() placed a job for the new time
        await self.send(fresh)

    def cancel(self, job_id: str) -> int:
        """Cancel the job's scheduled posts; how many."""
        n = 0
        for post in self.store.pending_for_job(job_id):
            if self.store.move(post.id, channels.SCHEDULED, channels.CANCELLED):
                n += 1
            self.disarm(post.id)
        return n

    async def send(self, post: Post) -> bool:
        """Post it now: rights checked, claimed (scheduled -> sending), sent by file_id, then
        posted. Claimed before sending, so never twice: a stop waits for a send under way (PTB
        waits for running jobs), and a kill after the claim leaves it `sending`, which the next
        start turns `unknown` and tells the owner about instead of sending it again."""
        sent = self.jobs.sent_video(post.job_id)
        if sent is None:
            self.store.move(post.id, channels.SCHEDULED, channels.FAILED, error="no video")
            await self.tell(post, "chan_no_video")
            return False
        wrong = await channels.check_rights(self.bot, post.channel_id, post.user_id)
        if wrong is not None:
            if self.store.move(post.id, channels.SCHEDULED, channels.REFUSED, error=wrong):
                await self.tell(post, wrong)
            return False
        if not self.store.move(post.id, channels.SCHEDULED, channels.SENDING):
            return False  # cancelled, or another job/press has it
        try:
            cover = Path(sent.cover).read_bytes() if Path(sent.cover).is_file() else None
            message = await self.bot.send_video(
                post.channel_id,
                sent.file_id,
                caption=sent.caption,
                duration=sent.duration,
                width=sent.width,
                height=sent.height,
                cover=cover,
                supports_streaming=True,
                read_timeout=60,
                write_timeout=60,
            )
        except TelegramError as exc:
            log.warning("posting job %s to %s failed: %s", post.job_id, post.channel_id, exc)
            self.store.move(post.id, channels.SENDING, channels.FAILED, error=str(exc)[:200])
            await self.tell(post, "chan_post_failed")
            return False
        self.store.move(post.id, channels.SENDING, channels.POSTED, message_id=message.message_id)
        log.info("job %s posted to channel %s as %s", post.job_id, post.channel_id,
                 message.message_id)  # fmt: skip
        await self.tell(post, "chan_posted")
        return True

    async def tell(self, post: Post, key: str) -> None:
        """The owner hears how a post went, in the job's chat."""
        title = next(
            (c.title for c in self.store.channels(post.user_id) if c.channel_id == post.channel_id),
            str(post.channel_id),
        )
        with contextlib.suppress(TelegramError):
            await self.bot.send_message(post.chat_id, t(post.lang, key, channel=title))


def _job_name(post_id: int) -> str:
    return f"post-{post_id}"


def publisher(context: Context) -> Publisher:
    pub: Publisher = context.bot_data["publisher"]
    return pub


def _waiting(context: Context) -> dict[tuple[int, int], Waiting]:
    got: dict[tuple[int, int], Waiting] = context.bot_data["publish_waiting"]
    return got


# -- linking ---------------------------------------------------------------------------------


async def channel_cmd(update: Update, context: Context) -> None:
    """/channel: link a channel (forward a post or send @name), pick the default, set the
    time zone. Private chat only: it is about the user's own channels."""
    msg, user = update.effective_message, update.effective_user
    if msg is None or user is None:
        return
    lang = user_lang(update, context)
    if msg.chat.type != ChatType.PRIVATE:
        await msg.reply_text(t(lang, "chan_private_only"))
        return
    pub = publisher(context)
    if context.args:
        await link(update, context, " ".join(context.args))
        return
    linked = pub.store.channels(user.id)
    lines = [t(lang, "chan_howto")]
    if linked:
        names = "\n".join(f"{'⭐' if c.is_default else '•'} {c.title}" for c in linked)
        lines.append(t(lang, "chan_list", channels=names))
    tz = pub.store.tz(user.id)
    lines.append(t(lang, "chan_tz_now", tz=tz) if tz else t(lang, "chan_tz_ask"))
    rows = [
        [InlineKeyboardButton(f"⭐ {c.title}"[:60],
                              callback_data=callbacks.encode(Choice(user.id, "chan",
                                                                    str(c.channel_id))))]
        for c in linked if not c.is_default
    ]  # fmt: skip
    _waiting(context)[(msg.chat.id, user.id)] = Waiting("link")
    await msg.reply_text(
        "\n\n".join(lines), reply_markup=InlineKeyboardMarkup(rows) if rows else None
    )


async def link(update: Update, context: Context, ref: str | int) -> None:
    """Link the channel `ref` (@name or id) for this user after checking both rights."""
    msg, user = update.effective_message, update.effective_user
    assert msg is not None and user is not None
    lang = user_lang(update, context)
    pub = publisher(context)
    try:
        chat = await context.bot.get_chat(ref)
    except TelegramError:
        await msg.reply_text(t(lang, "chan_not_found"))
        return
    wrong = await channels.check_rights(context.bot, chat.id, user.id)
    if wrong is not None:
        await msg.reply_text(t(lang, wrong, channel=chat.title or str(chat.id)))
        return
    discussion = chat.linked_chat_id
    pub.store.link(user.id, chat.id, chat.title or str(chat.id), discussion)
    listening: set[int] = context.bot_data["publish_discussions"]
    listening.update(pub.store.discussions())
    key = "chan_linked"
    if discussion is None:
        key = "chan_linked_no_comments"
    elif not await channels.bot_is_admin(context.bot, discussion):
        key = "chan_linked_not_in_group"
    text = t(lang, key, channel=chat.title or str(chat.id))
    waiting = _waiting(context)
    if pub.store.tz(user.id) is None:
        text += "\n\n" + t(lang, "chan_tz_ask")
        waiting[(msg.chat.id, user.id)] = Waiting("tz")
    else:
        waiting.pop((msg.chat.id, user.id), None)
    await msg.reply_text(text)


async def answered(update: Update, context: Context) -> None:
    """The answer to a question of this module: a channel, a time zone or a time of day."""
    msg, user = update.effective_message, update.effective_user
    if msg is None or user is None:
        return
    lang = user_lang(update, context)
    pub = publisher(context)
    key = (msg.chat.id, user.id)
    asked = _waiting(context).get(key)
    if asked is None:
        return
    text = (msg.text or "").strip()
    origin = msg.forward_origin
    if asked.what == "link" and isinstance(origin, MessageOriginChannel):
        await link(update, context, origin.chat.id)
        return
    if asked.what == "link" and re.fullmatch(r"@\w{4,}|-100\d+", text):
        await link(update, context, int(text) if text.startswith("-") else text)
        return
    if asked.what in ("link", "tz"):
        tz = channels.parse_tz(text)
        if tz is None:
            await msg.reply_text(t(lang, "chan_tz_bad" if asked.what == "tz" else "chan_howto"))
            return
        pub.store.set_tz(user.id, tz)
        _waiting(context).pop(key, None)
        await msg.reply_text(t(lang, "chan_tz_set", tz=tz))
        return
    m = _HHMM.fullmatch(text)
    if m is None:
        await msg.reply_text(t(lang, "chan_hhmm_bad"))
        return
    _waiting(context).pop(key, None)
    zone = channels.tzinfo(pub.store.tz(user.id))
    await schedule(update, context, asked.job_id, channels.next_at(int(m[1]), int(m[2]), zone))


async def default_button(update: Update, context: Context) -> None:
    """⭐ <channel> under /channel: make it the default."""
    query = update.callback_query
    if query is None:
        return
    lang = user_lang(update, context)
    pressed = callbacks.decode(query.data)
    if not isinstance(pressed, Choice) or pressed.owner != query.from_user.id:
        await query.answer(t(lang, "not_yours"))
        return
    ok = publisher(context).store.set_default(query.from_user.id, int(pressed.value))
    await query.answer(t(lang, "chan_default_set" if ok else "stale"))


# -- posting and scheduling ------------------------------------------------------------------


async def publish_button(update: Update, context: Context) -> None:
    """📢 post now, 🕒 schedule (and its choices), ❌ cancel a scheduled post."""
    query = update.callback_query
    if query is None:
        return
    lang = user_lang(update, context)
    pressed = callbacks.decode(query.data)
    svc, pub = services(context), publisher(context)
    job = svc.store.get(pressed.job_id) if isinstance(pressed, Board) else None
    if job is None or not isinstance(pressed, Board):
        await query.answer(t(lang, "stale"))
        return
    if query.from_user.id != job.user_id:
        await query.answer(t(lang, "not_yours"))
        return
    if pressed.action == "unsched":
        n = pub.cancel(job.id)
        await query.answer(t(lang, "chan_cancelled" if n else "chan_nothing_pending"))
        if n and query.message is not None:
            with contextlib.suppress(TelegramError):
                await context.bot.send_message(query.message.chat.id, t(lang, "chan_cancelled"))
        return
    channel = pub.store.default(job.user_id)
    if channel is None:
        await query.answer()
        await context.bot.send_message(job.chat_id, t(lang, "chan_none"))
        return
    if pressed.action == "athm":
        await query.answer()
        _waiting(context)[(job.chat_id, job.user_id)] = Waiting("hhmm", job.id)
        await context.bot.send_message(job.chat_id, t(lang, "chan_hhmm_ask"))
        return
    tz = channels.tzinfo(pub.store.tz(job.user_id))
    if pressed.action == "sched":
        await query.answer()

        def b(key: str, action: callbacks.BoardAction) -> InlineKeyboardButton:
            return InlineKeyboardButton(
                t(lang, key), callback_data=callbacks.encode(Board(action, job.id))
            )

        rows = [[b("btn_in1h", "in1h"), b("btn_at20", "at20")],
                [b("btn_at08", "at08"), b("btn_athm", "athm")]]  # fmt: skip
        await context.bot.send_message(
            job.chat_id,
            t(lang, "chan_when", channel=channel.title, tz=pub.store.tz(job.user_id) or "UTC"),
            reply_markup=InlineKeyboardMarkup(rows),
        )
        return
    await query.answer()
    due = {
        "post": time.time(),
        "in1h": time.time() + 3600,
        "at20": channels.next_at(20, 0, tz),
        "at08": channels.tomorrow_at(8, tz),
    }.get(pressed.action)
    if due is None:
        return
    await schedule(update, context, job.id, due, now=pressed.action == "post")


async def schedule(
    update: Update, context: Context, job_id: str, due: float, now: bool = False
) -> None:
    """Plan the job's post in the default channel at `due` (checked first); send it at once
    when `now`, else put it on the JobQueue and say when."""
    svc, pub = services(context), publisher(context)
    job = svc.store.get(job_id)
    chat = update.effective_chat
    if job is None or chat is None:
        return
    lang = user_lang(update, context)
    channel = pub.store.default(job.user_id)
    if channel is None:
        await context.bot.send_message(chat.id, t(lang, "chan_none"))
        return
    wrong = await channels.check_rights(context.bot, channel.channel_id, job.user_id)
    if wrong is not None:
        await context.bot.send_message(chat.id, t(lang, wrong, channel=channel.title))
        return
    if svc.store.sent_video(job.id) is None:
        await context.bot.send_message(chat.id, t(lang, "chan_no_video"))
        return
    post, ok = pub.store.plan(job, channel.channel_id, due)
    if not ok:
        await context.bot.send_message(chat.id, t(lang, "chan_already", channel=channel.title))
        return
    if now:
        pub.disarm(post.id)  # it may have been scheduled: its job has nothing left to do
        await pub.send(post)
        return
    pub.arm(post)
    when = channels.local_time(due, channels.tzinfo(pub.store.tz(job.user_id)))
    cancel = InlineKeyboardButton(
        t(lang, "btn_unsched"), callback_data=callbacks.encode(Board("unsched", job.id))
    )
    await context.bot.send_message(
        chat.id,
        t(lang, "chan_scheduled", channel=channel.title, when=when),
        reply_markup=InlineKeyboardMarkup([[cancel]]),
    )


async def scheduled_cmd(update: Update, context: Context) -> None:
    """/scheduled: the user's pending posts, each with a cancel button."""
    msg, user = update.effective_message, update.effective_user
    if msg is None or user is None:
        return
    lang = user_lang(update, context)
    pub = publisher(context)
    posts = pub.store.pending(user.id)
    if not posts:
        await msg.reply_text(t(lang, "chan_nothing_pending"))
        return
    tz = channels.tzinfo(pub.store.tz(user.id))
    titles = {c.channel_id: c.title for c in pub.store.channels(user.id)}
    lines, rows = [], []
    for p in posts:
        when = channels.local_time(p.due, tz)
        lines.append(f"🕒 {when} → {titles.get(p.channel_id, p.channel_id)} ({p.job_id})")
        rows.append([InlineKeyboardButton(f"❌ {when}", callback_data=callbacks.encode(
            Board("unsched", p.job_id)))])  # fmt: skip
    await msg.reply_text(
        t(lang, "chan_pending", items="\n".join(lines)), reply_markup=InlineKeyboardMarkup(rows)
    )


# -- comments --------------------------------------------------------------------------------


def recorded_comments(store: ChannelStore, job_id: str) -> list[channels.RecordedComment]:
    """The comments recorded under the job's channel posts, oldest first: the input an audience
    report (/feedback) takes."""
    return store.comments(job_id)


async def comments_cmd(update: Update, context: Context) -> None:
    """/comments: how many comments each of the user's channel posts has."""
    msg, user = update.effective_message, update.effective_user
    if msg is None or user is None:
        return
    lang = user_lang(update, context)
    counts = publisher(context).store.comment_counts(user.id)
    if not counts:
        await msg.reply_text(t(lang, "chan_no_posts"))
        return
    lines = [f"💬 {n} — {p.job_id}" for p, n in counts]
    await msg.reply_text(t(lang, "chan_comment_counts", items="\n".join(lines)))


async def discussion_message(update: Update, context: Context) -> None:
    """A message in a linked discussion group: our post's automatic forward (remember which
    thread is ours) or a comment in such a thread (record it). Nothing is said there."""
    msg = update.effective_message
    if msg is None:
        return
    store = publisher(context).store
    origin = msg.forward_origin
    if msg.is_automatic_forward and isinstance(origin, MessageOriginChannel):
        post = store.posted_for_message(origin.chat.id, origin.message_id)
        if post is not None:  # another admin's post in the same channel is not ours
            store.add_forward(msg.chat.id, msg.message_id, post.id)
        return
    thread = msg.message_thread_id or (msg.reply_to_message.message_id
                                       if msg.reply_to_message else None)  # fmt: skip
    if thread is None:
        return
    post_id = store.post_of_thread(msg.chat.id, thread)
    text = msg.text or msg.caption or ""
    if post_id is None or not text or msg.from_user is None:
        return
    salt: str = context.bot_data["publish_salt"]
    store.add_comment(msg.chat.id, msg.message_id, post_id,
                      channels.author_hash(salt, msg.from_user.id), text,
                      msg.date.timestamp())  # fmt: skip


async def reaction_count(update: Update, context: Context) -> None:
    """Anonymous reaction totals on a message (sent to administrators): a comment's likes."""
    counts = update.message_reaction_count
    if counts is None:
        return
    total = sum(r.total_count for r in counts.reactions)
    publisher(context).store.set_likes(counts.chat.id, counts.message_id, total)


def listened(update: Update, context: Context, users: frozenset[int]) -> bool:
    """Whether `update` is a message (a channel post's automatic forward, a comment) or a
    reaction count in the discussion group of a channel that one of `users` linked. The access
    gate lets these through from anyone: the commenters are the channel's audience, not people
    talking to the bot, and only `discussion_message` and `reaction_count` take them (the bot
    says nothing there). Everything else from chats outside the list stays refused."""
    pub: Publisher | None = context.bot_data.get("publisher")
    if pub is None:
        return False
    message = update.message or update.edited_message
    if message is not None:
        chat_id = message.chat.id
    elif update.message_reaction_count is not None:
        chat_id = update.message_reaction_count.chat.id
    else:
        return False
    return chat_id in pub.store.discussions(users)


# -- wiring ----------------------------------------------------------------------------------


def add_handlers(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """The handlers of this module, first in group 0: the discussion group's messages and the
    answers to this module's questions go nowhere else."""
    waiting: dict[tuple[int, int], Waiting] = {}
    discussions: set[int] = set()
    app.bot_data["publish_waiting"] = waiting
    app.bot_data["publish_discussions"] = discussions
    app.add_handler(MessageHandler(_Discussion(discussions), discussion_message))
    app.add_handler(MessageHandler(filters.UpdateType.MESSAGE & _Asked(waiting), answered))
    app.add_handler(CommandHandler("channel", channel_cmd))
    app.add_handler(CommandHandler("scheduled", scheduled_cmd))
    app.add_handler(CommandHandler("comments", comments_cmd))
    app.add_handler(CallbackQueryHandler(publish_button, pattern=callbacks.publish_pattern))
    app.add_handler(CallbackQueryHandler(default_button, pattern=callbacks.choice_pattern("chan")))
    app.add_handler(
        MessageReactionHandler(
            reaction_count,
            message_reaction_types=MessageReactionHandler.MESSAGE_REACTION_COUNT_UPDATED,
        )
    )


async def start(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """After the job store opened: the publisher, its posts back on the JobQueue, the comment
    salt. Runs before Application.start starts the queue: the jobs wait for it."""
    svc = app.bot_data["services"]
    store = ChannelStore.of(svc.store)
    salt_file = Path(svc.settings.data_dir) / "comment_salt"
    if not salt_file.is_file():
        salt_file.write_text(secrets.token_hex(16))
    app.bot_data["publish_salt"] = salt_file.read_text().strip()
    app.bot_data["publish_discussions"].update(store.discussions())
    if app.job_queue is None:  # PTB installed without its job-queue extra (APScheduler)
        raise RuntimeError('scheduled posts need "python-telegram-bot[job-queue]"')
    pub = Publisher(app.bot, svc.store, store, svc.settings.keep_days, app.job_queue)
    app.bot_data["publisher"] = pub
    await pub.start()


async def stop(app: Application[Any, Any, Any, Any, Any, Any]) -> None:
    pub: Publisher | None = app.bot_data.pop("publisher", None)
    if pub is not None:  # its jobs went with the JobQueue, stopped by Application.stop
        pub.store.close()
        _forget(pub.jobs)


def _forget(jobs: JobStore) -> None:
    channels._by_store.pop(jobs, None)
