"""The inline keyboards of the conversation. Every button carries its owner's id, so in a group
only the member who started the conversation can press it (callback data: `bot.callbacks`)."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot import callbacks
from bot.callbacks import Board, Choice, ChoiceAction
from bot.services import Draft
from bot.texts import LENGTHS, style_names, t


def button(text: str, owner: int, action: ChoiceAction, value: str = "") -> InlineKeyboardButton:
    return InlineKeyboardButton(text, callback_data=callbacks.encode(Choice(owner, action, value)))


async def owned_query(update: Update, lang: str) -> Choice | None:
    """The button pressed, when its owner pressed it; anyone else, and data that is not a
    button of ours (forged, or from an older version), gets a short answer and None."""
    query = update.callback_query
    if query is None:
        return None
    pressed = callbacks.decode(query.data)
    if not isinstance(pressed, Choice):
        await query.answer(t(lang, "stale"))
        return None
    if query.from_user.id != pressed.owner:
        await query.answer(t(lang, "not_yours"))
        return None
    await query.answer()
    return pressed


def style_keyboard(lang: str, owner: int) -> InlineKeyboardMarkup:
    names = style_names()
    buttons = [button(n.get(lang, sid), owner, "style", sid) for sid, n in names.items()]
    return InlineKeyboardMarkup([buttons[i : i + 2] for i in range(0, len(buttons), 2)])


def options_keyboard(draft: Draft, owner: int) -> InlineKeyboardMarkup:
    def mark(on: bool, text: str) -> str:
        return f"✓ {text}" if on else text

    langs = [
        button(mark(draft.video_lang == code, name), owner, "lang", code)
        for code, name in (("zh", "中文"), ("en", "English"))
    ]
    lengths = [button(mark(draft.seconds == n, f"{n} s"), owner, "len", str(n)) for n in LENGTHS]
    nxt = [button(t(draft_lang(draft), "btn_next"), owner, "next")]
    return InlineKeyboardMarkup([langs, lengths, nxt])


def draft_lang(draft: Draft) -> str:
    return "zh" if draft.video_lang == "zh" else "en"


def footage_keyboard(lang: str, owner: int, group: bool) -> InlineKeyboardMarkup:
    row = [button(t(lang, "btn_done"), owner, "done")]
    if group:
        row.append(button(t(lang, "btn_pool_on"), owner, "pool"))
    return InlineKeyboardMarkup([row, [button(t(lang, "btn_no_music"), owner, "music", "off")]])


def resend_keyboard(lang: str, job_id: str) -> InlineKeyboardMarkup:
    """The 🔁 Send again button under a video Telegram refused (the job id outlives a restart)."""
    data = callbacks.encode(Board("resend", job_id))
    return InlineKeyboardMarkup([[InlineKeyboardButton(t(lang, "btn_resend"), callback_data=data)]])
