"""Edits after delivery: a reply to a delivered video (text, a voice note, or an audio file for
the music) is understood as one change, confirmed in one line with ✅ / ✖, and applied as a new
version of the job; the new video is sent as a reply to the old one.

The request is kept in the job folder (`edits/<n>.json`) and the buttons carry the job id and
`n`, so they work after a restart. A confirmed edit queues the job again with the step `edit`;
the worker (a thread of the bot, or an engine worker) calls `bot.editfiles.apply_confirmed`,
which hands the request to the pipeline
(`pipeline.make.edits.apply_edit`: a `v2/` folder, the old one kept, only changed segments
re-encoded).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import TelegramError
from telegram.ext import filters

from bot import callbacks
from bot.callbacks import EditChoice
from bot.editfiles import CONFIRMED, EDITS_DIR
from bot.jobs import DONE, UNDELIVERED, Job
from bot.pipeline_api import Pipeline, Understanding
from bot.services import Context, ask, services, user_lang
from bot.texts import t
from bot.uploads import download
from pipeline.errors import ReelbotError
from pipeline.jsonfiles import load_json, save_json, to_dict
from pipeline.make.editrequest import EditRequest, parse_edit
from pipeline.script.model import Script

log = logging.getLogger(__name__)


class _ReplyToVideo(filters.MessageFilter):
    """A message answering a video the bot sent."""

    def filter(self, message: Message) -> bool:
        answered = message.reply_to_message
        return (
            answered is not None
            and answered.video is not None
            and answered.from_user is not None
            and answered.from_user.is_bot
        )


REPLY_TO_VIDEO = _ReplyToVideo(name="reply_to_video")
EDIT_INPUT = filters.TEXT | filters.VOICE | filters.AUDIO | filters.Document.AUDIO


def _folder(job: Job) -> Path:
    return Path(job.job_dir) / EDITS_DIR


def _script_of(job: Job, version: str) -> Script | None:
    path = Path(job.job_dir) / version / "script.json" if version else Path(job.job_dir)
    if not version:
        path = path / "script.json"
    try:
        return Script.from_json(path.read_text(encoding="utf-8"))
    except (OSError, ReelbotError):
        return None


async def reply_to_video(update: Update, context: Context) -> None:
    """A reply to a delivered video: understand it, keep it, and ask for a one-tap OK."""
    svc = services(context)
    msg, user = update.effective_message, update.effective_user
    if msg is None or user is None or msg.reply_to_message is None:
        return
    lang = user_lang(update, context)
    found = svc.store.video(msg.chat_id, msg.reply_to_message.message_id)
    if found is None:
        await ask(update, t(lang, "edit_gone"), force=False)
        return
    job, version = found
    if user.id != job.user_id:
        return  # someone else's video: not theirs to change
    script = _script_of(job, version)
    if script is None or job.status not in (DONE, UNDELIVERED):
        await ask(update, t(lang, "edit_gone"), force=False)
        return
    if svc.store.active_for(user.id) is not None:
        await ask(update, t(lang, "edit_busy"), force=False)
        return
    folder = _folder(job)
    folder.mkdir(parents=True, exist_ok=True)
    number = 1 + max((int(p.stem) for p in folder.glob("[0-9]*.json")), default=0)
    text, music = msg.text or msg.caption or "", ""
    try:
        if msg.voice is not None:
            path = await download(update.get_bot(), msg.voice.file_id, str(folder),
                                  f"voice-{number}.ogg")  # fmt: skip
            heard = await _transcribe(svc.pipeline, path)
            text = heard or ""
        audio = msg.audio or (msg.document if msg.document is not None else None)
        if audio is not None:
            name = getattr(audio, "file_name", None) or "music.mp3"
            music = await download(update.get_bot(), audio.file_id, str(folder),
                                   f"music-{number}{Path(name).suffix or '.mp3'}")  # fmt: skip
    except (TelegramError, ReelbotError) as exc:
        log.warning("edit request of job %s not fetched: %s", job.id, exc)
        await ask(update, t(lang, "download_failed", name="…"), force=False)
        return
    request = parse_edit(text, len(script.spoken()), job.brief.seconds, music, base=version)
    if request is None and text.strip():
        request = await _understand(svc.pipeline, text, script, job.brief.seconds, version)
    if request is None:
        await ask(update, t(lang, "edit_unknown"), force=False)
        return
    save_json(
        folder / f"{number}.json",
        {**to_dict(request), "video_msg": msg.reply_to_message.message_id},
    )
    await msg.reply_text(
        confirm_text(lang, request), reply_markup=confirm_keyboard(job.id, number, lang)
    )


def confirm_text(lang: str, request: EditRequest) -> str:
    """The one line that says what will change."""
    if request.kind == "music":
        return t(lang, "edit_confirm_music" if request.text else "edit_confirm_nomusic")
    if request.kind == "language":
        name = {"zh": {"zh": "中文", "en": "Chinese"}, "en": {"zh": "英文", "en": "English"}}
        return t(lang, "edit_confirm_language", language=name[request.text][lang])
    if request.kind in ("rate", "voice", "captions"):  # one line per word: faster, male, top ...
        return t(lang, f"edit_confirm_{request.kind}_{request.text}")
    return t(lang, f"edit_confirm_{request.kind}", index=request.index, text=request.text,
             seconds=request.seconds)  # fmt: skip


def confirm_keyboard(job_id: str, number: int, lang: str) -> InlineKeyboardMarkup:
    def button(action: str) -> InlineKeyboardButton:
        data = callbacks.encode(EditChoice(action, job_id, number))  # type: ignore[arg-type]
        return InlineKeyboardButton(t(lang, f"btn_edit_{action}"), callback_data=data)

    return InlineKeyboardMarkup([[button("ok"), button("no")]])


# Beyond the model's own limit (pipeline.make.editlm.TIMEOUT_S): the creator is answered even if
# a backend overran it; the thread is left to finish on its own.
UNDERSTAND_WAIT_S = 25.0


async def _understand(
    pipeline: Pipeline, text: str, script: Script, seconds: int, version: str
) -> EditRequest | None:
    """A reply the patterns did not understand, mapped by the language model, if there is one."""
    import asyncio

    if not isinstance(pipeline, Understanding):
        return None
    call = asyncio.to_thread(pipeline.understand_edit, text, tuple(script.spoken()), seconds,
                             script.language, version)  # fmt: skip
    try:
        return await asyncio.wait_for(call, UNDERSTAND_WAIT_S)
    except TimeoutError:
        log.warning("the language model did not map an edit reply within %.0f s",
                    UNDERSTAND_WAIT_S)  # fmt: skip
        return None


async def _transcribe(pipeline: Pipeline, path: str) -> str:
    import asyncio

    heard = await asyncio.to_thread(pipeline.transcribe, path, 120.0)
    return heard.text.strip()


async def edit_button(update: Update, context: Context) -> None:
    """✅ queues the edit (the job's next step), ✖ drops it."""
    from bot.review import queued_notice

    svc = services(context)
    query = update.callback_query
    if query is None:
        return
    lang = user_lang(update, context)
    pressed = callbacks.decode(query.data)
    job = svc.store.get(pressed.job_id) if isinstance(pressed, EditChoice) else None
    if not isinstance(pressed, EditChoice) or job is None:
        await query.answer(t(lang, "stale"))
        return
    if query.from_user.id != job.user_id:
        await query.answer(t(lang, "not_yours"))
        return
    pending = _folder(job) / f"{pressed.number}.json"
    if not pending.is_file() or job.status not in (DONE, UNDELIVERED):
        await query.answer(t(lang, "stale"))
        return
    await query.answer()
    if pressed.action == "no":
        pending.unlink(missing_ok=True)
        with contextlib.suppress(TelegramError):
            await query.edit_message_text(t(lang, "edit_dropped"))
        return
    if svc.store.active_for(job.user_id) is not None:
        await ask(update, t(lang, "edit_busy"), force=False)
        return
    with contextlib.suppress(TelegramError):
        await query.edit_message_reply_markup(None)
    data = load_json(pending)
    save_json(_folder(job) / CONFIRMED, {"number": pressed.number})
    pending.rename(pending.with_suffix(".taken"))  # one press, one edit
    svc.store.set_reply_to(job.id, int(data["video_msg"]))  # the new video answers the old one
    svc.store.requeue(job.id, "edit")
    await queued_notice(update, context, job.id)
