"""Handlers for what users send as material: footage (checked and kept per job), albums
acknowledged once, footage pooled from other group members, and voice notes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

import av
from telegram import Update
from telegram.error import TelegramError

from bot.config import MB
from bot.disk import room_for
from bot.services import Clip, Context, Draft, ask, get_draft, is_group, services, user_lang
from bot.texts import error_text, t
from bot.uploads import download, incoming_media
from pipeline.errors import MediaError, ReelbotError
from pipeline.media import probe
from pipeline.music import check_music

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
    room = room_for(draft.uploads, item.size or 0, limits.min_free_mb)
    if not room.ok:
        # Refused before a byte is written; the footage already received stays in the draft.
        text = t(lang, "disk_low_footage", name=item.name, free_mb=room.free_mb)
        await ask(update, text, force=False)
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
    draft.footage.append(Clip(path, item.caption, credit, seconds, item.name))
    if svc.prefetch is not None:  # analysed now, while the user keeps sending (bot.prefetch)
        svc.prefetch.add(draft.job_dir, path)
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
    """Fetch a voice note into the draft's folder, transcribe it off the loop, echo the text.

    Notes over `max_voice_seconds` are refused: by the length Telegram states, before
    downloading, and again by the length of the file itself. The transcription has a time
    limit, so a note that decodes slowly cannot hold a worker thread for long."""
    svc = services(context)
    msg = update.effective_message
    lang = user_lang(update, context)
    voice = (msg.voice or msg.audio) if msg is not None else None
    if voice is None:
        return ""
    cap = svc.settings.max_voice_seconds
    # Read from the serialised form: the attribute warns that it will become a timedelta.
    stated = float(voice.to_dict().get("duration") or 0)
    if stated > cap:
        await ask(update, too_long_text(lang, stated, cap))
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
        # What Telegram says of the length is the sender's word; the file is checked too.
        seconds = await asyncio.to_thread(audio_seconds, path)
        if seconds > cap + 1.0:
            os.remove(path)
            await ask(update, too_long_text(lang, seconds, cap))
            return ""
        heard = await asyncio.to_thread(svc.pipeline.transcribe, path, max(60.0, 2 * cap))
    except (TelegramError, ReelbotError) as exc:
        log.warning("voice note not transcribed: %s", exc)
        key = "speech_timeout" if getattr(exc, "key", "") == "speech_timeout" else "voice_unclear"
        await ask(update, t(lang, key))
        return ""
    text = heard.text.strip()
    if not text:
        await ask(update, t(lang, "voice_unclear"))
        return ""
    if heard.language in ("zh", "en"):
        draft.video_lang = heard.language
    await ask(update, t(lang, "heard", text=text) + "\n" + t(lang, "heard_fix"), force=False)
    return text


async def take_music(update: Update, context: Context, draft: Draft) -> bool:
    """An audio file sent while collecting footage: fetch it, check it plays, make it the
    video's music (replacing any sent before). A bad file is named in the refusal; the footage
    and any music already accepted stay."""
    svc = services(context)
    msg = update.effective_message
    lang = user_lang(update, context)
    if msg is None:
        return False
    audio = msg.audio or msg.document
    if audio is None:
        return False
    name = getattr(audio, "file_name", None) or "music"
    limits = svc.settings
    if audio.file_size is not None and audio.file_size > limits.download_limit:
        size_mb, limit_mb = audio.file_size / MB, limits.download_limit // MB
        await ask(update, t(lang, "too_big", name=name, size_mb=size_mb, limit_mb=limit_mb),
                  force=False)  # fmt: skip
        return False
    room = room_for(draft.job_dir, audio.file_size or 0, limits.min_free_mb)
    if not room.ok:
        await ask(update, t(lang, "disk_low_footage", name=name, free_mb=room.free_mb), force=False)
        return False
    try:
        path = await download(update.get_bot(), audio.file_id, f"{draft.job_dir}/music", name)
    except TelegramError as exc:
        log.warning("download of music %s failed: %s", name, exc)
        await ask(update, t(lang, "download_failed", name=name), force=False)
        return False
    try:
        music = await asyncio.to_thread(check_music, path)
    except MediaError as exc:
        log.info("music %s refused: %s", path, exc)
        os.remove(path)
        await ask(update, error_text(lang, exc.key, {**exc.params, "name": name}), force=False)
        return False
    drop_music(draft)
    draft.music, draft.music_name = music.path, name
    text = t(lang, "music_ok", name=name, seconds=span(lang, music.seconds))
    await ask(update, text, force=False)
    return True


def drop_music(draft: Draft) -> None:
    """Forget the draft's music and delete its file."""
    if draft.music:
        with contextlib.suppress(OSError):
            os.remove(draft.music)
    draft.music, draft.music_name = None, ""


def too_long_text(lang: str, seconds: float, cap: float) -> str:
    return t(lang, "voice_too_long", length=span(lang, seconds), limit=span(lang, cap))


def span(lang: str, seconds: float) -> str:
    """A length as people say it: "30 min", "1.5 min", "45 s"."""
    if seconds < 60:
        return t(lang, "n_seconds", n=f"{seconds:.0f}")
    minutes = seconds / 60
    n = f"{minutes:.0f}" if abs(minutes - round(minutes)) < 0.05 else f"{minutes:.1f}"
    return t(lang, "n_minutes", n=n)


def audio_seconds(path: str) -> float:
    """The length of an audio file as its container states it (0 when it does not say)."""
    try:
        with av.open(path) as container:
            if container.duration is not None:
                return float(container.duration) / av.time_base
            stream = container.streams.audio[0] if container.streams.audio else None
            if stream is not None and stream.duration is not None and stream.time_base:
                return float(stream.duration * stream.time_base)
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise MediaError(path, "not_media", str(exc)) from exc
    return 0.0


async def sticker(update: Update, context: Context) -> None:
    """A sticker (static, animated or video): say what to send instead. In groups only when it
    answers the bot or its sender has a video in the making there (else it is chat noise)."""
    msg, chat = update.effective_message, update.effective_chat
    if msg is None or chat is None:
        return
    draft = get_draft(context, chat.id)
    answered = msg.reply_to_message.from_user if msg.reply_to_message else None
    to_bot = answered is not None and answered.id == context.bot.id
    if is_group(update) and draft is None and not to_bot:
        return
    lang = user_lang(update, context)
    await ask(update, t(lang, "sticker_in_draft" if draft else "sticker_idle"), force=False)
