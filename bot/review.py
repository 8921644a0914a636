"""After the storyboard: render it, edit the script, or ask for another version.

These buttons outlive a restart, so they carry the job id and the job's owner and state come
from the store, not from conversation memory.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from contextlib import suppress

from telegram import ForceReply, ReplyParameters, Update
from telegram.error import TelegramError

from bot import callbacks
from bot.delivery import script_text
from bot.jobs import EDITING, REVIEW
from bot.services import Context, ask, is_group, services, user_lang
from bot.texts import t
from pipeline.script.model import Script, ScriptLine

log = logging.getLogger(__name__)

_TITLE = re.compile(r"^(?:title|标题)\s*[:：]\s*(.*)$", re.IGNORECASE)


def parse_script(text: str, old: Script) -> Script | None:
    """The user's corrected script: hook first, call to action last, one sentence a line.

    A "Title:" line and #hashtag lines are optional; what they leave out is kept from `old`.
    None when fewer than two sentences remain.
    """
    title = old.title
    tags: list[str] = []
    sentences: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        if m := _TITLE.match(line):
            title = m.group(1).strip() or title
        elif line.startswith("#"):
            tags += [w for w in line.split() if w.startswith("#") and len(w) > 1]
        else:
            sentences.append(line)
    if len(sentences) < 2:
        return None
    middle = sentences[1:-1]
    visuals = [line.visual for line in old.lines]
    lines = tuple(
        ScriptLine(text=s, visual=visuals[i] if i < len(visuals) else "")
        for i, s in enumerate(middle)
    )
    return dataclasses.replace(
        old,
        title=title,
        hook=sentences[0],
        lines=lines,
        cta=sentences[-1],
        hashtags=tuple(tags) if tags else old.hashtags,
        writer="user",
    )


async def storyboard_button(update: Update, context: Context) -> None:
    """✅ Render / ✏️ Edit script / 🔁 Another version under a storyboard."""
    svc = services(context)
    query = update.callback_query
    if query is None:
        return
    lang = user_lang(update, context)
    pressed = callbacks.decode(query.data)
    if not isinstance(pressed, callbacks.Board):
        await query.answer(t(lang, "stale"))
        return
    action = pressed.action
    job = svc.store.get(pressed.job_id)
    if job is None or job.status not in (REVIEW, EDITING):
        await query.answer(t(lang, "stale"))
        return
    if query.from_user.id != job.user_id:
        await query.answer(t(lang, "not_yours"))
        return
    await query.answer()
    with suppress(TelegramError):
        await query.edit_message_reply_markup(None)
    if action == "edit":
        svc.store.set_status(job.id, EDITING)
        reply = None
        if job.reply_to is not None:
            reply = ReplyParameters(message_id=job.reply_to, allow_sending_without_reply=True)
        text = t(job.lang, "edit_prompt")
        if job.script is not None:
            text += "\n\n" + script_text(job.script)
        await context.bot.send_message(
            job.chat_id,
            text,
            reply_markup=ForceReply(selective=True),
            reply_parameters=reply,
        )
        return
    step = "render" if action == "render" else "revise"
    svc.store.requeue(job.id, step, another=action == "another")
    await queued_notice(update, context, job.id)


async def queued_notice(update: Update, context: Context, job_id: str) -> None:
    """A new status message with the job's place in the queue, and wake the workers."""
    svc = services(context)
    job = svc.store.get(job_id)
    if job is None:
        return
    msg = await context.bot.send_message(
        job.chat_id, t(job.lang, "queued", ahead=svc.store.position(job.id))
    )
    svc.store.set_status_msg(job.id, msg.message_id)
    svc.runner.wake()


async def idle(update: Update, context: Context) -> None:
    """Footage sent in a private chat with no video in the making: say how to start one."""
    await ask(update, t(user_lang(update, context), "idle"), force=False)


async def edited_script(update: Update, context: Context) -> None:
    """Text from a member whose storyboard is waiting for a corrected script."""
    svc = services(context)
    chat, user, msg = update.effective_chat, update.effective_user, update.effective_message
    if chat is None or user is None or msg is None or not msg.text:
        return
    job = svc.store.latest_for(user.id, chat.id, (EDITING,))
    lang = user_lang(update, context)
    if job is None or job.script is None:
        if not is_group(update):
            await ask(update, t(lang, "idle"), force=False)
        return
    script = parse_script(msg.text, job.script)
    if script is None:
        await ask(update, t(lang, "edit_empty"))
        return
    svc.store.requeue(job.id, "revise", script=script, another=False)
    await queued_notice(update, context, job.id)
