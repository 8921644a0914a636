"""The 🔁 Send again button, under a finished video that Telegram refused: the video was kept
(the job is undelivered, not failed), so pressing it sends the same file again. The button
carries the job id and the video's facts are in the job's row, so it works after a restart."""

from __future__ import annotations

import logging
from contextlib import suppress
from pathlib import Path

from telegram import CallbackQuery, InlineKeyboardMarkup, Update
from telegram.error import TelegramError

from bot import callbacks, delivery
from bot.jobs import DONE, FAILED, UNDELIVERED
from bot.keyboards import resend_keyboard
from bot.services import Context, services, user_lang
from bot.texts import error_text, t

log = logging.getLogger(__name__)


async def resend_button(update: Update, context: Context) -> None:
    """Send an undelivered video again; the button message says how it went."""
    svc = services(context)
    query = update.callback_query
    if query is None or not query.data:
        return
    lang = user_lang(update, context)
    pressed = callbacks.decode(query.data)
    job = svc.store.get(pressed.job_id) if isinstance(pressed, callbacks.Board) else None
    rendered = svc.store.rendered(job.id) if job is not None else None
    if job is None or rendered is None:
        await query.answer(t(lang, "stale"))
        return
    if query.from_user.id != job.user_id:
        await query.answer(t(lang, "not_yours"))
        return
    await query.answer()
    if not (Path(rendered.video).is_file() and Path(rendered.cover).is_file()):
        # Removed by the cleanup or by hand: nothing left to send.
        svc.store.set_status(job.id, FAILED, "delivery:gone")
        await say(query, t(job.lang, "resend_gone"))
        return
    # A second press waits behind this one (one user's updates run in order) and then finds
    # the job done; meanwhile the message shows the upload instead of the button.
    with suppress(TelegramError):
        await query.edit_message_text(t(job.lang, "stage_upload"))
    outcome = await delivery.deliver_video(context.bot, svc.store, job, rendered)
    if outcome == DONE:
        text, markup = t(job.lang, "done"), None
    elif outcome == UNDELIVERED:
        text = t(job.lang, "delivery_failed")
        markup = resend_keyboard(job.lang, job.id)
    else:
        text, markup = error_text(job.lang, "internal"), None
    await say(query, text, markup)


async def say(query: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None = None) -> None:
    """Edit the button's message; a failure to edit is only logged (the video is what counts)."""
    try:
        await query.edit_message_text(text, reply_markup=markup)
    except TelegramError as exc:
        log.info("could not update the send-again message: %s", exc)
