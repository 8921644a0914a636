"""The conversation that collects a video: topic, style, options, footage, then the queue.

The whole flow is the STATES table in `build_conversation` (drawn in README.md, "The
conversation"). Groups work with privacy mode on: prompts go out as a selective ForceReply to
the member's own message, each member has their own conversation (per chat and per user), and
buttons carry their owner's id.
"""

from __future__ import annotations

import logging
import time
import warnings
from pathlib import Path

from telegram import Update
from telegram.error import BadRequest
from telegram.ext import BaseHandler as Handler
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot import media_in
from bot.callbacks import choice_pattern
from bot.jobs import CANCELLED, EDITING, QUEUED, REVIEW, Job, new_job_id
from bot.keyboards import footage_keyboard, options_keyboard, owned_query, style_keyboard
from bot.services import Context, Draft, ask, get_draft, is_group, services, set_draft, user_lang
from bot.texts import error_text, style_names, t
from bot.uploads import parse_request
from pipeline.brief import Brief, Footage
from pipeline.script.request import ScriptRequest, ScriptRequestError, normalise

log = logging.getLogger(__name__)

TOPIC, STYLE, OPTIONS, FOOTAGE = range(4)
END = ConversationHandler.END

MEDIA = (
    filters.VIDEO
    | filters.PHOTO
    | filters.VIDEO_NOTE
    | filters.ANIMATION
    | filters.Document.VIDEO
    | filters.Document.IMAGE
)
VOICE = filters.VOICE | filters.AUDIO
# Music for the video: an audio file (sent as music or as a document); voice notes are not.
MUSIC = filters.AUDIO | filters.Document.AUDIO
TEXT = filters.TEXT & ~filters.COMMAND


async def start_new(update: Update, context: Context) -> int:
    """/new: start a fresh draft and ask for the topic."""
    draft = await open_draft(update, context)
    if draft is None:
        return END
    await ask(update, t(user_lang(update, context), "ask_topic"))
    return TOPIC


async def open_draft(update: Update, context: Context) -> Draft | None:
    """A new draft for this member in this chat, or None (with the reason told) if not allowed."""
    svc = services(context)
    chat, user, msg = update.effective_chat, update.effective_user, update.effective_message
    if chat is None or user is None:
        return None
    lang = user_lang(update, context)
    if svc.store.active_for(user.id) is not None:
        await ask(update, t(lang, "busy"), force=False)
        return None
    if svc.store.count_since(user.id, time.time() - 3600) >= svc.settings.jobs_per_hour:
        await ask(update, t(lang, "limit_jobs", limit=svc.settings.jobs_per_hour), force=False)
        return None
    old = get_draft(context, chat.id)
    if old is not None:
        old.discard(svc.prefetch)
    # A storyboard still waiting for this member is superseded by the new video.
    waiting = svc.store.latest_for(user.id, chat.id, (REVIEW, EDITING))
    if waiting is not None:
        svc.store.set_status(waiting.id, CANCELLED)
    job_id = new_job_id()
    draft = Draft(
        job_id=job_id,
        job_dir=str(Path(svc.settings.data_dir) / "jobs" / job_id),
        chat_id=chat.id,
        owner_id=user.id,
        owner_name=user.full_name,
        video_lang=lang,
        reply_to=msg.message_id if msg is not None and is_group(update) else None,
    )
    set_draft(context, chat.id, draft)
    return draft


async def voice_request(update: Update, context: Context) -> int:
    """A voice note outside a conversation: start one from it, asking only what is missing."""
    draft = await open_draft(update, context)
    if draft is None:
        return END
    text = await media_in.transcribe_voice(update, context, draft)
    lang = user_lang(update, context)
    if not text:
        await ask(update, t(lang, "ask_topic"))
        return TOPIC
    request = parse_request(text)
    if not await topic_ok(update, context, request.topic):
        return TOPIC
    draft.topic = request.topic
    draft.style = request.style
    draft.seconds = request.seconds or draft.seconds
    draft.skip_options = True
    style = style_names().get(draft.style or "", {}).get(lang, "?")
    summary = t(lang, "voice_request", topic=draft.topic, style=style, seconds=draft.seconds)
    await ask(update, summary, force=False)
    if draft.style is None:
        return await ask_style(update, context, draft)
    return await ask_footage(update, context, draft)


async def topic_text(update: Update, context: Context) -> int | None:
    """The topic, typed: keep it and ask for the style."""
    draft = current(update, context)
    msg = update.effective_message
    if draft is None or msg is None or not msg.text:
        return END
    if not await topic_ok(update, context, msg.text):
        return None  # asked again; the conversation stays where it is
    draft.topic = msg.text.strip()
    return await ask_style(update, context, draft)


async def topic_ok(update: Update, context: Context, topic: str) -> bool:
    """Whether the script writer will take `topic`, checked as the script request checks it
    (so the member hears the problem now, not after the upload); if not, say what is wrong."""
    try:
        normalise(ScriptRequest(topic=topic))
    except ScriptRequestError as exc:
        await ask(update, error_text(user_lang(update, context), exc.key, exc.params))
        return False
    return True


async def topic_voice(update: Update, context: Context) -> int | None:
    """The topic, spoken: transcribe, echo it back, and ask for the style."""
    draft = current(update, context)
    if draft is None:
        return END
    text = await media_in.transcribe_voice(update, context, draft)
    if not text or not await topic_ok(update, context, text):
        return None
    draft.topic = text
    return await ask_style(update, context, draft)


async def ask_style(update: Update, context: Context, draft: Draft) -> int:
    """Offer the style buttons (owned by the draft's member)."""
    lang = user_lang(update, context)
    await ask(update, t(lang, "ask_style"), style_keyboard(lang, draft.owner_id))
    return STYLE


async def style_chosen(update: Update, context: Context) -> int | None:
    """A style button: keep it, then the options (or straight to footage for voice requests)."""
    lang = user_lang(update, context)
    picked = await owned_query(update, lang)
    draft = current(update, context)
    if picked is None or draft is None:
        return None
    draft.style = picked.value
    query = update.callback_query
    assert query is not None
    await query.edit_message_text(f"{t(lang, 'ask_style')} {style_names()[draft.style][lang]}")
    if draft.skip_options:
        return await ask_footage(update, context, draft)
    await ask(update, options_text(lang, draft), options_keyboard(draft, draft.owner_id))
    return OPTIONS


def options_text(lang: str, draft: Draft) -> str:
    name = "中文" if draft.video_lang == "zh" else "English"
    return t(lang, "ask_options", language=name, seconds=draft.seconds)


async def option_chosen(update: Update, context: Context) -> int | None:
    """A language or length button: update the choice in place; Next goes on to footage."""
    lang = user_lang(update, context)
    picked = await owned_query(update, lang)
    draft = current(update, context)
    query = update.callback_query
    if picked is None or draft is None or query is None:
        return None
    if picked.action == "next":
        await query.edit_message_reply_markup(None)
        return await ask_footage(update, context, draft)
    before = (draft.video_lang, draft.seconds)
    if picked.action == "lang":
        draft.video_lang = picked.value
    elif picked.action == "len":
        draft.seconds = int(picked.value)  # decode let only LENGTHS through
    if (draft.video_lang, draft.seconds) == before:
        return None  # the ticked option again: nothing changes, so nothing to edit
    try:
        await query.edit_message_text(
            options_text(lang, draft), reply_markup=options_keyboard(draft, draft.owner_id)
        )
    except BadRequest as exc:
        # Two quick taps can both change the draft before the first edit lands; Telegram then
        # refuses the second edit as identical. The message already shows the choice.
        if "not modified" not in str(exc).lower():
            raise
    return None


async def ask_footage(update: Update, context: Context, draft: Draft) -> int:
    """Ask for footage; in groups as a ForceReply that other members may reply to."""
    lang = user_lang(update, context)
    draft.collecting = True
    if not is_group(update):
        await ask(update, t(lang, "ask_footage"), footage_keyboard(lang, draft.owner_id, False))
        return FOOTAGE
    # ForceReply and buttons cannot share a message: the buttons come second.
    prompt = await ask(update, t(lang, "ask_footage"))
    if prompt is not None:
        draft.prompt_id = prompt.message_id
    await update.get_bot().send_message(
        draft.chat_id, "👇", reply_markup=footage_keyboard(lang, draft.owner_id, True)
    )
    return FOOTAGE


async def footage_received(update: Update, context: Context) -> int | None:
    """A video, photo, album item, video note or media document: fetch, check and keep it."""
    draft = current(update, context)
    if draft is None:
        return END
    await media_in.take_footage(update, context, draft, credit="")
    return None


async def audio_entry(update: Update, context: Context) -> int | None:
    """An audio file (not a voice note) where a new conversation may start: the music of the
    video whose footage is being collected (the entry points are checked before the states),
    else a spoken request like a voice note."""
    draft = current(update, context)
    if draft is not None and draft.collecting:
        await media_in.take_music(update, context, draft)
        return FOOTAGE
    return await voice_request(update, context)


async def music_received(update: Update, context: Context) -> int | None:
    """An audio file while collecting footage: it becomes the video's music."""
    draft = current(update, context)
    if draft is None:
        return END
    await media_in.take_music(update, context, draft)
    return None


async def not_footage(update: Update, context: Context) -> int | None:
    """Anything else while collecting footage: say what is expected."""
    await ask(update, t(user_lang(update, context), "not_footage"), force=False)
    return None


async def footage_button(update: Update, context: Context) -> int | None:
    """Done (queue the job) or, in groups, let other members add footage."""
    lang = user_lang(update, context)
    picked = await owned_query(update, lang)
    draft = current(update, context)
    if picked is None or draft is None:
        return None
    if picked.action == "music":  # 🔇 No music: drop the music sent so far, if any
        media_in.drop_music(draft)
        await ask(update, t(lang, "music_off"), force=False)
        return None
    if picked.action == "pool":
        draft.pool = True
        if draft.prompt_id is not None:
            services(context).pools[(draft.chat_id, draft.prompt_id)] = draft.owner_id
        await ask(update, t(lang, "pool_on"), force=False)
        return None
    return await submit(update, context)


async def submit(update: Update, context: Context) -> int | None:
    """/done: turn the draft into a queued job and show its place in the queue."""
    svc = services(context)
    draft = current(update, context)
    lang = user_lang(update, context)
    if draft is None:
        return END
    if not draft.footage:
        await ask(update, t(lang, "no_footage"), force=False)
        return None
    if svc.store.active_for(draft.owner_id) is not None:
        await ask(update, t(lang, "busy"), force=False)
        return None
    brief = Brief(
        topic=draft.topic,
        style=draft.style or "knowledge",
        language="zh" if draft.video_lang == "zh" else "en",
        seconds=draft.seconds,
        notes=draft.notes,
        footage=tuple(Footage(c.path, c.caption, c.credit, c.name) for c in draft.footage),
        music=draft.music,
    )
    job = svc.store.submit(
        Job(
            id=draft.job_id,
            chat_id=draft.chat_id,
            user_id=draft.owner_id,
            lang=lang,
            step="prepare",
            status=QUEUED,
            brief=brief,
            job_dir=draft.job_dir,
            reply_to=draft.reply_to,
        )
    )
    forget_draft(context, draft, keep_files=True)
    msg = await ask(update, t(lang, "queued", ahead=svc.store.position(job.id)), force=False)
    if msg is not None:
        svc.store.set_status_msg(job.id, msg.message_id)
    svc.runner.wake()
    return END


def forget_draft(context: Context, draft: Draft, keep_files: bool = False) -> None:
    """Drop a draft (and its files unless they now belong to a job)."""
    svc = services(context)
    if draft.prompt_id is not None:
        svc.pools.pop((draft.chat_id, draft.prompt_id), None)
    if not keep_files:
        draft.discard(svc.prefetch)
    set_draft(context, draft.chat_id, None)


async def cancel(update: Update, context: Context) -> int:
    """/cancel: drop the draft, or stop this member's queued or running job."""
    svc = services(context)
    lang = user_lang(update, context)
    chat, user = update.effective_chat, update.effective_user
    if chat is None or user is None:
        return END
    done = False
    draft = get_draft(context, chat.id)
    if draft is not None:
        forget_draft(context, draft)
        done = True
    job = svc.store.active_for(user.id) or svc.store.latest_for(user.id, chat.id, (REVIEW, EDITING))
    if job is not None:
        if svc.runner.running(job.id):
            # The worker marks it cancelled and edits its status message when ffmpeg has ended.
            svc.runner.cancel(job.id)
            await svc.runner.wait_idle(job.id)
            return END
        svc.store.set_status(job.id, CANCELLED)
        done = True
    await ask(update, t(lang, "cancelled" if done else "nothing_to_cancel"), force=False)
    return END


def current(update: Update, context: Context) -> Draft | None:
    """The draft of the member who sent this update, in this chat."""
    chat = update.effective_chat
    return get_draft(context, chat.id) if chat is not None else None


async def idea_chosen(update: Update, context: Context) -> int:
    """🎬 Make this under a /feedback idea: a new draft with its topic, style and points
    (the script writer's notes), then the options as after a style button."""
    from bot.feedback import idea

    lang = user_lang(update, context)
    picked = await owned_query(update, lang)
    if picked is None:
        return END
    found = idea(update, context, picked)
    if found is None:
        await ask(update, t(lang, "stale"), force=False)
        return END
    draft = await open_draft(update, context)
    if draft is None:
        return END
    style = str(found.get("style", ""))
    draft.style = style if style in style_names() else None
    draft.notes = "\n".join(str(p) for p in found.get("points", []))
    if not await topic_ok(update, context, str(found.get("topic", ""))):
        return TOPIC
    draft.topic = str(found["topic"]).strip()
    name = style_names().get(draft.style or "", {}).get(lang, "?")
    await ask(update, t(lang, "idea_picked", topic=draft.topic, style=name), force=False)
    if draft.style is None:
        return await ask_style(update, context, draft)
    await ask(update, options_text(lang, draft), options_keyboard(draft, draft.owner_id))
    return OPTIONS


def build_conversation() -> ConversationHandler[Context]:
    """The conversation as one table: state -> what the bot accepts there."""
    states: dict[object, list[Handler[Update, Context, object]]] = {
        TOPIC: [
            MessageHandler(TEXT, topic_text),
            MessageHandler(VOICE, topic_voice),
        ],
        STYLE: [
            CallbackQueryHandler(style_chosen, pattern=choice_pattern("style")),
            MessageHandler(TEXT, topic_text),  # a corrected topic
            MessageHandler(VOICE, topic_voice),
        ],
        OPTIONS: [
            CallbackQueryHandler(option_chosen, pattern=choice_pattern("lang", "len", "next")),
        ],
        FOOTAGE: [
            MessageHandler(MEDIA, footage_received),
            MessageHandler(MUSIC, music_received),
            CommandHandler("done", submit),
            CallbackQueryHandler(footage_button, pattern=choice_pattern("done", "pool", "music")),
            MessageHandler(TEXT | VOICE | filters.Document.ALL, not_footage),
        ],
    }
    with warnings.catch_warnings():
        # per_message=False is deliberate: buttons belong to a member, not to one message.
        warnings.filterwarnings("ignore", message=".*per_message.*")
        return ConversationHandler(
            entry_points=[
                CommandHandler("new", start_new),
                MessageHandler(filters.VOICE, voice_request),
                MessageHandler(filters.AUDIO, audio_entry),
                CallbackQueryHandler(idea_chosen, pattern=choice_pattern("idea")),
            ],
            states=states,
            fallbacks=[CommandHandler("cancel", cancel)],
            per_chat=True,
            per_user=True,
            per_message=False,
            allow_reentry=True,
            name="new-video",
            persistent=True,
        )
