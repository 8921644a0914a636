"""The creator's Telegram channels: which channels a user linked, their time zone, the posts
made there (a small state machine), and the comments read under those posts.

Kept in the bot's SQLite job store file (tables of their own, autocommit statements, the
claims in one conditional UPDATE each), so links, scheduled posts and comments survive a
restart. The handlers live in `bot.publish`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import sqlite3
import time
import weakref
import zoneinfo
from collections.abc import Collection
from dataclasses import dataclass
from typing import Final

from telegram import (
    Bot,
    ChatMemberAdministrator,
    ChatMemberOwner,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
)
from telegram.constants import ChatType
from telegram.error import TelegramError

from bot import callbacks
from bot.callbacks import Board
from bot.jobs import Job, JobStore
from bot.texts import t

log = logging.getLogger(__name__)

# Post states. scheduled -> sending -> posted | failed | refused; scheduled -> cancelled.
# A bot that stops while a post is `sending` cannot know whether Telegram took it: at the next
# start the post becomes `unknown` and is never sent again (at most once), the owner is told.
SCHEDULED, SENDING, POSTED = "scheduled", "sending", "posted"
FAILED, REFUSED, CANCELLED, UNKNOWN = "failed", "refused", "cancelled", "unknown"
# States that count as "this video is (to be) in this channel": a second post is refused.
TAKEN: Final = (SCHEDULED, SENDING, POSTED, UNKNOWN)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS channels (
    user_id INTEGER NOT NULL,
    channel_id INTEGER NOT NULL,
    title TEXT NOT NULL,
    discussion_id INTEGER,
    is_default INTEGER NOT NULL DEFAULT 0,
    linked REAL NOT NULL,
    PRIMARY KEY (user_id, channel_id)
);
CREATE TABLE IF NOT EXISTS user_tz (user_id INTEGER PRIMARY KEY, tz TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS posts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    user_id INTEGER NOT NULL,
    chat_id INTEGER NOT NULL,
    lang TEXT NOT NULL,
    channel_id INTEGER NOT NULL,
    due REAL NOT NULL,
    state TEXT NOT NULL,
    message_id INTEGER,
    error TEXT,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS posts_state ON posts (state, due);
CREATE TABLE IF NOT EXISTS forwards (
    chat_id INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    post_id INTEGER NOT NULL,
    PRIMARY KEY (chat_id, message_id)
);
CREATE TABLE IF NOT EXISTS comments (
    chat_id INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    post_id INTEGER NOT NULL,
    author TEXT NOT NULL,
    text TEXT NOT NULL,
    at REAL NOT NULL,
    likes INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (chat_id, message_id)
);
CREATE INDEX IF NOT EXISTS comments_post ON comments (post_id, at);
"""


@dataclass(frozen=True, slots=True)
class Channel:
    """A channel one user linked (checked: the bot may post, the user is an administrator)."""

    user_id: int
    channel_id: int
    title: str
    discussion_id: int | None
    is_default: bool


@dataclass(frozen=True, slots=True)
class Post:
    """One publication of a job's video in a channel."""

    id: int
    job_id: str
    user_id: int
    chat_id: int  # where the owner hears how it went (the job's chat)
    lang: str
    channel_id: int
    due: float  # epoch seconds
    state: str
    message_id: int | None
    error: str | None


@dataclass(frozen=True, slots=True)
class RecordedComment:
    """A comment made under one of the bot's channel posts, as an audience report takes it:
    the text, its reactions (likes) and when it was written; the author only as a salted hash."""

    text: str
    likes: int
    at: float
    author: str


_by_store: weakref.WeakKeyDictionary[JobStore, ChannelStore] = weakref.WeakKeyDictionary()


class ChannelStore:
    """Channel links, time zones, posts and comments in the job store's SQLite file."""

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    @classmethod
    def of(cls, store: JobStore) -> ChannelStore:
        """The channel tables next to `store`'s jobs (one connection per job store)."""
        found = _by_store.get(store)
        if found is None:
            found = _by_store[store] = cls(store.path)
        return found

    def close(self) -> None:
        self._db.close()

    # -- links -------------------------------------------------------------------------------

    def link(self, user_id: int, channel_id: int, title: str, discussion_id: int | None) -> None:
        """Remember (or refresh) a link; the newest link becomes the default, in one transaction."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute("UPDATE channels SET is_default=0 WHERE user_id=?", (user_id,))
            self._db.execute(
                "INSERT INTO channels (user_id, channel_id, title, discussion_id, is_default,"
                " linked) VALUES (?,?,?,?,1,?) ON CONFLICT (user_id, channel_id) DO UPDATE SET"
                " title=excluded.title, discussion_id=excluded.discussion_id, is_default=1",
                (user_id, channel_id, title, discussion_id, time.time()),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def set_default(self, user_id: int, channel_id: int) -> bool:
        """Make a linked channel the default; False when the user has no such link."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            hit = self._db.execute(
                "SELECT 1 FROM channels WHERE user_id=? AND channel_id=?", (user_id, channel_id)
            ).fetchone()
            if hit:
                self._db.execute(
                    "UPDATE channels SET is_default=(channel_id=?) WHERE user_id=?",
                    (channel_id, user_id),
                )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return hit is not None

    def channels(self, user_id: int) -> list[Channel]:
        rows = self._db.execute(
            "SELECT * FROM channels WHERE user_id=? ORDER BY linked", (user_id,)
        ).fetchall()
        return [_channel(r) for r in rows]

    def default(self, user_id: int) -> Channel | None:
        row = self._db.execute(
            "SELECT * FROM channels WHERE user_id=? ORDER BY is_default DESC, linked DESC LIMIT 1",
            (user_id,),
        ).fetchone()
        return _channel(row) if row else None

    def discussions(self, users: Collection[int] | None = None) -> set[int]:
        """The discussion groups of the channels linked (by `users`, or by anyone): the chats
        whose comments are read."""
        rows = self._db.execute(
            "SELECT discussion_id, user_id FROM channels WHERE discussion_id IS NOT NULL"
        ).fetchall()
        return {int(r[0]) for r in rows if users is None or r[1] in users}

    def set_tz(self, user_id: int, tz: str) -> None:
        self._db.execute(
            "INSERT INTO user_tz (user_id, tz) VALUES (?,?) ON CONFLICT (user_id) DO UPDATE"
            " SET tz=excluded.tz",
            (user_id, tz),
        )

    def tz(self, user_id: int) -> str | None:
        row = self._db.execute("SELECT tz FROM user_tz WHERE user_id=?", (user_id,)).fetchone()
        return str(row[0]) if row else None

    # -- posts -------------------------------------------------------------------------------

    def plan(self, job: Job, channel_id: int, due: float) -> tuple[Post, bool]:
        """A post of `job` in `channel_id` at `due`: a new scheduled one, or the pending one
        moved to `due` (True), or the one already made or under way (False: never twice)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            marks = ",".join("?" * len(TAKEN))
            row = self._db.execute(
                f"SELECT * FROM posts WHERE job_id=? AND channel_id=? AND state IN ({marks})",
                (job.id, channel_id, *TAKEN),
            ).fetchone()
            if row is None:
                cur = self._db.execute(
                    "INSERT INTO posts (job_id, user_id, chat_id, lang, channel_id, due, state,"
                    " updated) VALUES (?,?,?,?,?,?,?,?)",
                    (job.id, job.user_id, job.chat_id, job.lang, channel_id, due, SCHEDULED,
                     time.time()),
                )  # fmt: skip
                post_id, ok = int(cur.lastrowid or 0), True
            elif row["state"] == SCHEDULED:
                self._db.execute("UPDATE posts SET due=? WHERE id=?", (due, row["id"]))
                post_id, ok = int(row["id"]), True
            else:
                post_id, ok = int(row["id"]), False
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        post = self.post(post_id)
        assert post is not None
        return post, ok

    def post(self, post_id: int) -> Post | None:
        row = self._db.execute("SELECT * FROM posts WHERE id=?", (post_id,)).fetchone()
        return _post(row) if row else None

    def move(self, post_id: int, frm: str, to: str, **fields: object) -> bool:
        """Move a post from state `frm` to `to` (with `fields`: message_id, error) if it is in
        `frm`: one conditional UPDATE, so of two contenders exactly one wins."""
        sets = "".join(f", {k}=?" for k in fields)
        cur = self._db.execute(
            f"UPDATE posts SET state=?, updated=?{sets} WHERE id=? AND state=?",
            (to, time.time(), *fields.values(), post_id, frm),
        )
        return cur.rowcount == 1

    def pending(self, user_id: int | None = None) -> list[Post]:
        """Scheduled posts (of one user, or all), soonest first."""
        sql = "SELECT * FROM posts WHERE state=?"
        args: list[object] = [SCHEDULED]
        if user_id is not None:
            sql, args = sql + " AND user_id=?", [*args, user_id]
        rows = self._db.execute(sql + " ORDER BY due", args).fetchall()
        return [_post(r) for r in rows]

    def pending_for_job(self, job_id: str) -> list[Post]:
        rows = self._db.execute(
            "SELECT * FROM posts WHERE job_id=? AND state=?", (job_id, SCHEDULED)
        ).fetchall()
        return [_post(r) for r in rows]

    def interrupted(self) -> list[Post]:
        """At start: posts a stopped bot left `sending`, now `unknown` (never sent again)."""
        rows = self._db.execute("SELECT id FROM posts WHERE state=?", (SENDING,)).fetchall()
        out = []
        for r in rows:
            if self.move(int(r[0]), SENDING, UNKNOWN, error="interrupted"):
                post = self.post(int(r[0]))
                if post is not None:
                    out.append(post)
        return out

    def posted_for_message(self, channel_id: int, message_id: int) -> Post | None:
        row = self._db.execute(
            "SELECT * FROM posts WHERE channel_id=? AND message_id=? AND state=?",
            (channel_id, message_id, POSTED),
        ).fetchone()
        return _post(row) if row else None

    # -- comments ----------------------------------------------------------------------------

    def add_forward(self, chat_id: int, message_id: int, post_id: int) -> None:
        """The discussion group's automatic copy of our post: comments reply to it."""
        self._db.execute(
            "INSERT OR IGNORE INTO forwards (chat_id, message_id, post_id) VALUES (?,?,?)",
            (chat_id, message_id, post_id),
        )

    def post_of_thread(self, chat_id: int, message_id: int) -> int | None:
        row = self._db.execute(
            "SELECT post_id FROM forwards WHERE chat_id=? AND message_id=?", (chat_id, message_id)
        ).fetchone()
        return int(row[0]) if row else None

    def add_comment(
        self, chat_id: int, message_id: int, post_id: int, author: str, text: str, at: float
    ) -> None:
        """Record a comment (an edit of it replaces its text)."""
        self._db.execute(
            "INSERT INTO comments (chat_id, message_id, post_id, author, text, at)"
            " VALUES (?,?,?,?,?,?) ON CONFLICT (chat_id, message_id) DO UPDATE SET"
            " text=excluded.text",
            (chat_id, message_id, post_id, author, text, at),
        )

    def set_likes(self, chat_id: int, message_id: int, likes: int) -> bool:
        cur = self._db.execute(
            "UPDATE comments SET likes=? WHERE chat_id=? AND message_id=?",
            (likes, chat_id, message_id),
        )
        return cur.rowcount == 1

    def comments(self, job_id: str) -> list[RecordedComment]:
        rows = self._db.execute(
            "SELECT c.* FROM comments c JOIN posts p ON p.id=c.post_id WHERE p.job_id=?"
            " ORDER BY c.at, c.message_id",
            (job_id,),
        ).fetchall()
        return [RecordedComment(r["text"], int(r["likes"]), float(r["at"]), r["author"])
                for r in rows]  # fmt: skip

    def comment_counts(self, user_id: int) -> list[tuple[Post, int]]:
        """The user's posted videos with how many comments each has, newest first."""
        rows = self._db.execute(
            "SELECT p.*, (SELECT COUNT(*) FROM comments c WHERE c.post_id=p.id) AS n"
            " FROM posts p WHERE p.user_id=? AND p.state=? ORDER BY p.due DESC",
            (user_id, POSTED),
        ).fetchall()
        return [(_post(r), int(r["n"])) for r in rows]

    def expire(self, keep_days: float) -> int:
        """Forget comments older than the job folders' retention; how many went."""
        cutoff = time.time() - keep_days * 86400
        cur = self._db.execute("DELETE FROM comments WHERE at<?", (cutoff,))
        self._db.execute(
            "DELETE FROM forwards WHERE post_id IN (SELECT id FROM posts WHERE updated<?)",
            (cutoff,),
        )
        return cur.rowcount


def _channel(r: sqlite3.Row) -> Channel:
    return Channel(r["user_id"], r["channel_id"], r["title"], r["discussion_id"],
                   bool(r["is_default"]))  # fmt: skip


def _post(r: sqlite3.Row) -> Post:
    return Post(r["id"], r["job_id"], r["user_id"], r["chat_id"], r["lang"], r["channel_id"],
                r["due"], r["state"], r["message_id"], r["error"])  # fmt: skip


def author_hash(salt: str, user_id: int) -> str:
    """A commenter as a salted sha256: the same person is recognisable across comments, their
    name and id are not stored."""
    return hashlib.sha256(f"{salt}:{user_id}".encode()).hexdigest()[:16]


# -- rights ----------------------------------------------------------------------------------


async def check_rights(bot: Bot, channel_id: int, user_id: int) -> str | None:
    """None when the bot may post in the channel and `user_id` administers it; else the text key
    of what is wrong. Asked of Telegram each time (rights change without the bot being told)."""
    try:
        chat = await bot.get_chat(channel_id)
        if chat.type != ChatType.CHANNEL:
            return "chan_not_channel"
        me = await bot.get_chat_member(channel_id, bot.id)
        if not (isinstance(me, ChatMemberAdministrator) and me.can_post_messages):
            return "chan_bot_not_admin"
        them = await bot.get_chat_member(channel_id, user_id)
    except TelegramError as exc:
        log.info("checking channel %s failed: %s", channel_id, exc)
        return "chan_bot_not_admin"
    if not isinstance(them, ChatMemberOwner | ChatMemberAdministrator):
        return "chan_user_not_admin"
    return None


async def bot_is_admin(bot: Bot, chat_id: int) -> bool:
    """Whether the bot administers `chat_id` (a discussion group: then it sees every comment)."""
    try:
        me = await bot.get_chat_member(chat_id, bot.id)
    except TelegramError:
        return False
    return isinstance(me, ChatMemberAdministrator | ChatMemberOwner)


# -- time ------------------------------------------------------------------------------------

_OFFSET = re.compile(r"(?:UTC|GMT)?\s*([+-])(\d{1,2})(?::?(\d{2}))?", re.IGNORECASE)


def parse_tz(text: str) -> str | None:
    """A time zone as the user wrote it, normalised: an IANA name (Asia/Shanghai) or a UTC
    offset (+8, UTC+08:00, -05:30) as "+HH:MM"; None when it is neither."""
    text = text.strip()
    if text.upper() in ("UTC", "GMT", "Z"):
        return "+00:00"
    m = _OFFSET.fullmatch(text)
    if m:
        hours, minutes = int(m.group(2)), int(m.group(3) or 0)
        if hours > 14 or minutes >= 60:
            return None
        return f"{m.group(1)}{hours:02d}:{minutes:02d}"
    if "/" not in text:
        return None  # only Area/City names: "EST" or "CET" are ambiguous or obsolete
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None
    return text


def tzinfo(tz: str | None) -> dt.tzinfo:
    """The tzinfo of a `parse_tz` result (UTC when none was set)."""
    if not tz:
        return dt.UTC
    m = _OFFSET.fullmatch(tz)
    if m:
        sign = -1 if m.group(1) == "-" else 1
        return dt.timezone(sign * dt.timedelta(hours=int(m.group(2)), minutes=int(m.group(3))))
    return zoneinfo.ZoneInfo(tz)


def next_at(hour: int, minute: int, tz: dt.tzinfo, now: float | None = None) -> float:
    """The next moment the clock in `tz` shows hour:minute (today if still ahead, else
    tomorrow), as epoch seconds."""
    current = dt.datetime.fromtimestamp(time.time() if now is None else now, tz)
    target = current.replace(hour=hour, minute=minute, second=0, microsecond=0)
    if target <= current:
        target = (target + dt.timedelta(days=1)).replace(hour=hour, minute=minute)
    return target.timestamp()


def tomorrow_at(hour: int, tz: dt.tzinfo, now: float | None = None) -> float:
    """Tomorrow at hour:00 in `tz`."""
    current = dt.datetime.fromtimestamp(time.time() if now is None else now, tz)
    day = (current + dt.timedelta(days=1)).date()
    return dt.datetime(day.year, day.month, day.day, hour, tzinfo=tz).timestamp()


def local_time(when: float, tz: dt.tzinfo) -> str:
    return dt.datetime.fromtimestamp(when, tz).strftime("%Y-%m-%d %H:%M")


# -- the buttons under a delivered video -----------------------------------------------------


def video_keyboard(store: ChannelStore, job: Job) -> InlineKeyboardMarkup:
    """📢 Post to <channel> and 🕒 Schedule (the owner's default channel; without one the
    button still shows and pressing it explains /channel)."""
    channel = store.default(job.user_id)
    name = channel.title if channel else t(job.lang, "chan_generic")

    def button(text: str, action: callbacks.BoardAction) -> InlineKeyboardButton:
        return InlineKeyboardButton(text, callback_data=callbacks.encode(Board(action, job.id)))

    return InlineKeyboardMarkup(
        [[button(t(job.lang, "btn_post", channel=name[:40]), "post"),
          button(t(job.lang, "btn_sched"), "sched")]]
    )  # fmt: skip
