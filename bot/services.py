"""What every handler reaches: settings, the job store and runner, the pipeline, and the draft
of the video a user is putting together in a chat."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from dataclasses import dataclass, field
from typing import Any

from telegram import ForceReply, InlineKeyboardMarkup, Message, ReplyParameters, Update
from telegram.constants import ChatType
from telegram.ext import ContextTypes

from bot.config import Settings
from bot.jobs import JobStore
from bot.pipeline_api import Pipeline
from bot.prefetch import Prefetcher
from bot.texts import lang_of
from bot.workers import Runner


@dataclass(frozen=True, slots=True)
class Clip:
    """One usable file of a draft: where it is, what its sender said about it, and its length."""

    path: str
    caption: str = ""
    credit: str = ""
    seconds: float = 0.0  # 0 for a photo (a video lasts at least pipeline.media.MIN_VIDEO_SECONDS)
    name: str = ""  # as the user sent it: messages name it so, not by its stored, numbered name

    @property
    def photo(self) -> bool:
        return self.seconds == 0.0


@dataclass
class Draft:
    """A video being put together: what /new collects before it becomes a queued job.

    Kept in the user's persistent data (per chat) and saved as plain JSON (`to_dict`,
    `from_dict`), never pickled: a saved draft does not depend on where this class lives.
    """

    job_id: str
    job_dir: str
    chat_id: int
    owner_id: int
    owner_name: str
    topic: str = ""
    style: str | None = None
    video_lang: str = "en"
    seconds: int = 30
    footage: list[Clip] = field(default_factory=list)  # in the order received
    pool: bool = False
    prompt_id: int | None = None
    reply_to: int | None = None
    skip_options: bool = False
    music: str | None = None  # an audio file the member sent: the video's background music
    music_name: str = ""  # its name as sent, for the messages
    collecting: bool = False  # footage is being asked for (an audio file then is music)
    notes: str = ""  # points for the script writer (an idea from /feedback)

    @property
    def uploads(self) -> str:
        return f"{self.job_dir}/uploads"

    @property
    def total_seconds(self) -> float:
        return sum(clip.seconds for clip in self.footage)

    def to_dict(self) -> dict[str, Any]:
        """The draft as JSON-able values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Draft:
        """A draft from `to_dict`'s values; fields it does not know are ignored, so a draft
        saved by a newer version loads. Raises TypeError or ValueError when it is no draft."""
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        clip_fields = {f.name for f in dataclasses.fields(Clip)}
        values["footage"] = [
            Clip(**{k: v for k, v in c.items() if k in clip_fields})
            for c in values.get("footage", [])
        ]
        draft = cls(**values)
        if not isinstance(draft.chat_id, int) or not isinstance(draft.owner_id, int):
            raise ValueError("a draft's chat and owner are ids")
        return draft

    def discard(self, prefetch: Prefetcher | None = None) -> None:
        """Remove the files collected for a draft that will not become a job (and stop their
        background analysis)."""
        if prefetch is not None:
            prefetch.cancel(self.job_dir)
        shutil.rmtree(self.job_dir, ignore_errors=True)


@dataclass
class Services:
    """The bot's long-lived parts, kept in bot_data (which is not persisted)."""

    settings: Settings
    store: JobStore
    runner: Runner  # threads here, or the distributed engine (bot.remote)
    pipeline: Pipeline
    # album acknowledgements waiting for the media group to go quiet
    albums: dict[tuple[int, int, str], asyncio.Task[None]] = field(default_factory=dict)
    # (chat id, prompt message id) -> owner id, for footage pooled by other group members
    pools: dict[tuple[int, int], int] = field(default_factory=dict)
    # footage analysed in the background as it arrives (None: the pipeline cannot)
    prefetch: Prefetcher | None = None


Context = ContextTypes.DEFAULT_TYPE


def services(context: Context) -> Services:
    svc: Services = context.bot_data["services"]
    return svc


def user_lang(update: Update, context: Context) -> str:
    """The user's bot language: their /lang choice, else Telegram's language code."""
    data: dict[str, Any] = context.user_data if context.user_data is not None else {}
    chosen = data.get("lang")
    if isinstance(chosen, str):
        return chosen
    user = update.effective_user
    return lang_of(user.language_code if user else None)


def get_draft(context: Context, chat_id: int) -> Draft | None:
    if context.user_data is None:
        return None
    draft = context.user_data.get("drafts", {}).get(chat_id)
    return draft if isinstance(draft, Draft) else None


def set_draft(context: Context, chat_id: int, draft: Draft | None) -> None:
    if context.user_data is None:
        return
    drafts = context.user_data.setdefault("drafts", {})
    if draft is None:
        drafts.pop(chat_id, None)
    else:
        drafts[chat_id] = draft


def is_group(update: Update) -> bool:
    chat = update.effective_chat
    return chat is not None and chat.type in (ChatType.GROUP, ChatType.SUPERGROUP)


async def ask(
    update: Update, text: str, markup: InlineKeyboardMarkup | None = None, force: bool = True
) -> Message | None:
    """Send a prompt; in groups a reply to the member's message with a selective ForceReply
    (unless it carries buttons), so that, with privacy mode on, their answer reaches the bot."""
    msg = update.effective_message
    chat = update.effective_chat
    if chat is None:
        return None
    bot = update.get_bot()
    if not is_group(update):
        return await bot.send_message(chat.id, text, reply_markup=markup)
    reply = None
    if msg is not None:
        reply = ReplyParameters(message_id=msg.message_id, allow_sending_without_reply=True)
    markup_or_force = markup or (ForceReply(selective=True) if force else None)
    return await bot.send_message(
        chat.id, text, reply_markup=markup_or_force, reply_parameters=reply
    )
