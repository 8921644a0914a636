"""Handlers for what users send as material: footage (checked and kept per job), albums
acknowledged once, footage pooled from other group members, and voice notes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from telegram import Update
from telegram.error import TelegramError

from bot.config import MB
from bot.services import Clip, Context, Draft, ask, services, user_lang
from bot.texts import error_text, t
from bot.uploads import download, incoming_media
from pipeline.errors import ReelbotError
from pipeline.media import probe

log = logging.getLogger(__name__)


async def take_footage(update: Update, context: Context, draft: Draft, credit: str) -> bool:
    """Check one incoming file against the limits, fetch it into the draft's folder, probe it.

    Every refusal is told to the user at once, naming the file; the rest of the footage stays.
    """
    svc = services(context)
    msg = update.effective_message
    lang = user_lang(update, context)
    item = incoming_media(msg) if msg is not None else None
    if item is None:
        return False
    limits = svc.settings
    if item.size is not None and item.size > limits.download_limit:
        size_mb, limit_mb = item.size / MB, limits.download_limit // MB
        text = t(lang, "too_big", name=item.name, size_mb=size_mb, limit_mb=limit_mb)
        await ask(update, text, force=False)
        return False
    if len(draft.footage) >= limits.max_footage:
        await ask(update, t(lang, "limit_footage", limit=limits.max_footage), force=False)
        return False
    try:
        path = await download(update.get_bot(), item.file_id, draft.uploads, item.name)
    except TelegramError as exc:
        log.warning("download of %s failed: %s", item.name, exc)
        if "too big" in str(exc).lower():  # Telegram did not tell the size up front
            limit_mb = limits.download_limit // MB
            text = t(lang, "too_big_unsized", name=item.name, limit_mb=limit_mb)
        else:
            text = t(lang, "download_failed", name=item.name)
        await ask(update, text, force=False)
        return False
    try:
        info = await asyncio.to_thread(probe, path)
    except ReelbotError as exc:
        log.info("footage %s refused: %s", path, exc)
        os.remove(path)
        params = {**exc.params, "name": item.name}
        text = error_text(lang, exc.key, params) + "\n" + t(lang, "skipped")
        await ask(update, text, force=False)
        return False
    seconds = 0.0 if info.is_still else info.duration
    if draft.total_seconds + seconds > limits.max_footage_seconds:
        os.remove(path)
        text = t(lang, "limit_seconds", limit=limits.max_footage_seconds, name=item.name)
        await ask(update, text, force=False)
        return False
    draft.footage.append(Clip(path, item.caption, credit, seconds))
    if item.media_group_id is None:
        await acknowledge(update, context, draft)
    else:
        debounce_album(update, context, draft, item.media_group_id)
    return True


async def acknowledge(update: Update, context: Context, draft: Draft) -> None:
    lang = user_lang(update, context)
    await update.get_bot().send_message(
        draft.chat_id, t(lang, "got_footage", items=tally(draft, lang))
    )


def tally(draft: Draft, lang: str) -> str:
    """What has been collected: "2 videos, 35 s and 3 photos" (parts that are zero left out)."""
    photos = sum(1 for clip in draft.footage if clip.photo)
    videos = len(draft.footage) - photos
    parts = []
    if videos:
        parts.append(t(lang, "n_videos", n=videos, seconds=draft.total_seconds))
    if photos:
        parts.append(t(lang, "n_photos", n=photos))
    return t(lang, "and").join(parts)


def debounce_album(update: Update, context: Context, draft: Draft, group_id: str) -> None:
    """Acknowledge an album once, when no item of it has arrived for `album_wait` seconds."""
    svc = services(context)
    key = (draft.chat_id, draft.owner_id, group_id)
    pending = svc.albums.pop(key, None)
    if pending is not None:
        pending.cancel()

    async def later() -> None:
        await asyncio.sleep(svc.settings.album_wait)
        svc.albums.pop(key, None)
        with contextlib.suppress(TelegramError):
            await acknowledge(update, context, draft)

    svc.albums[key] = context.application.create_task(later(), name=f"album-{group_id}")


async def pooled_footage(update: Update, context: Context) -> None:
    """Footage from another group member replying to an owner's prompt that allows pooling."""
    svc = services(context)
    msg, user = update.effective_message, update.effective_user
    if msg is None or user is None or msg.reply_to_message is None:
        return
    owner = svc.pools.get((msg.chat_id, msg.reply_to_message.message_id))
    if owner is None or owner == user.id:
        return
    draft = get_draft_of(context, owner, msg.chat_id)
    if draft is None or not draft.pool:
        return
    credit = f"@{user.username}" if user.username else user.full_name
    if await take_footage(update, context, draft, credit=credit):
        lang = user_lang(update, context)
        text = t(lang, "got_pooled", name=user.full_name, owner=draft.owner_name)
        await ask(update, text, force=False)


def get_draft_of(context: Context, user_id: int, chat_id: int) -> Draft | None:
    data = context.application.user_data.get(user_id)
    if data is None:
        return None
    draft = data.get("drafts", {}).get(chat_id)
    return draft if isinstance(draft, Draft) else None


async def transcribe_voice(update: Update, context: Context, draft: Draft) -> str:
    """Fetch a voice note into the draft's folder, transcribe it off the loop, echo the text."""
    svc = services(context)
    msg = update.effective_message
    lang = user_lang(update, context)
    voice = (msg.voice or msg.audio) if msg is not None else None
    if voice is None:
        return ""
    if voice.file_size and voice.file_size > svc.settings.download_limit:
        await ask(update, t(lang, "voice_unclear"))
        return ""
    with contextlib.suppress(TelegramError):
        await update.get_bot().send_chat_action(draft.chat_id, "typing")
    try:
        path = await download(
            update.get_bot(), voice.file_id, f"{draft.job_dir}/voice", "voice.ogg"
        )
        heard = await asyncio.to_thread(svc.pipeline.transcribe, path)
    except (TelegramError, ReelbotError) as exc:
        log.warning("voice note not transcribed: %s", exc)
        await ask(update, t(lang, "voice_unclear"))
        return ""
    text = heard.text.strip()
    if not text:
        await ask(update, t(lang, "voice_unclear"))
        return ""
    if heard.language in ("zh", "en"):
        draft.video_lang = heard.language
    await ask(update, t(lang, "heard", text=text) + "\n" + t(lang, "heard_fix"), force=False)
    return text
