"""/feedback: collect a video's comments (pasted or forwarded text, exported files,
screenshots), analyse them (`pipeline.comments`), answer with a short report, a chart and three
ideas for the next video, each with a 🎬 Make this button that opens /new with the topic,
style and points filled in.

The comments collected so far live in the member's user data (plain JSON, per chat), so a
restart mid-collection loses nothing. Files are downloaded into the data folder and removed once
read. One unreadable file is named and skipped; what was collected before stays.
"""

from __future__ import annotations

import asyncio
import io
import logging
import shutil
import warnings
from pathlib import Path
from typing import Any

from telegram import InlineKeyboardMarkup, Update
from telegram.ext import BaseHandler as Handler
from telegram.ext import (
    CallbackQueryHandler,
    CommandHandler,
    ConversationHandler,
    MessageHandler,
    filters,
)

from bot import callbacks
from bot.callbacks import Choice
from bot.keyboards import button, owned_query
from bot.services import Context, ask, services, user_lang
from bot.texts import error_text, t
from bot.uploads import download
from pipeline.comments.model import Comment, CommentsError

log = logging.getLogger(__name__)

COLLECT = 10  # the one state; distinct from the new-video conversation's numbers
END = ConversationHandler.END
ANALYSE_TIMEOUT_S = 180.0
MODEL_BUDGET_S = 60.0  # the language model's share of it (uncertain comments, names, ideas)
MAX_COMMENTS = 5000
TEXT = filters.TEXT & ~filters.COMMAND
IMAGES = filters.PHOTO | filters.Document.IMAGE


def _store(context: Context) -> dict[str, Any]:
    data = context.user_data if context.user_data is not None else {}
    found = data.setdefault("feedback", {})
    return found if isinstance(found, dict) else {}


def _key(update: Update) -> str:
    chat = update.effective_chat
    return str(chat.id) if chat is not None else "0"


def collected(update: Update, context: Context) -> list[dict[str, Any]]:
    """The comments this member has sent in this chat so far (as plain dicts)."""
    found = _store(context).setdefault(_key(update), [])
    return found if isinstance(found, list) else []


def _folder(update: Update, context: Context) -> Path:
    user = update.effective_user
    name = f"{_key(update)}_{user.id if user else 0}"
    return Path(services(context).settings.data_dir) / "feedback" / name


def _add(update: Update, context: Context, comments: list[Comment]) -> int:
    items = collected(update, context)
    room = max(0, MAX_COMMENTS - len(items))
    items.extend(
        {"text": c.text, "likes": c.likes, "time": c.time, "author": c.author}
        for c in comments[:room]
    )
    return len(items)


def _keyboard(lang: str, owner: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[button(t(lang, "btn_analyse"), owner, "fbgo")]])


async def _got(update: Update, context: Context, added: int) -> None:
    lang = user_lang(update, context)
    user = update.effective_user
    total = len(collected(update, context))
    text = t(lang, "feedback_got", added=added, total=total)
    await ask(update, text, _keyboard(lang, user.id if user else 0), force=False)


async def start(update: Update, context: Context) -> int:
    """/feedback or 📊 Feedback: start collecting comments afresh."""
    if update.callback_query is not None:
        await update.callback_query.answer()
    _store(context)[_key(update)] = []
    await ask(update, t(user_lang(update, context), "feedback_ask"))
    return COLLECT


async def text_in(update: Update, context: Context) -> int | None:
    """Pasted comments (one a line) or one forwarded message (one comment)."""
    from pipeline.comments.inputs import parse_text

    msg = update.effective_message
    if msg is None or not msg.text:
        return None
    if msg.forward_origin is not None:
        comments = [Comment(msg.text.strip())]
    else:
        comments = parse_text(msg.text)
    _add(update, context, comments)
    await _got(update, context, len(comments))
    return None


async def file_in(update: Update, context: Context) -> int | None:
    """An export file or a screenshot: download, read, keep its comments, remove the file."""
    from pipeline.comments.inputs import load_file

    msg = update.effective_message
    lang = user_lang(update, context)
    if msg is None:
        return None
    if msg.photo:
        ref, name, size = msg.photo[-1].file_id, "screenshot.jpg", msg.photo[-1].file_size
    elif msg.document is not None:
        doc = msg.document
        ref, name, size = doc.file_id, doc.file_name or "comments", doc.file_size
    else:
        return None
    limit = services(context).settings.download_limit
    if size is not None and size > limit:
        detail = f"{size / 2**20:.0f} MB"
        await ask(update, error_text(lang, "comments_too_big", {"name": name, "detail": detail}))
        return None
    folder = _folder(update, context)
    try:
        path = await download(update.get_bot(), ref, str(folder), name)
        comments = await asyncio.to_thread(load_file, path)
    except CommentsError as exc:
        await ask(update, error_text(lang, exc.key, exc.params), force=False)
        return None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    _add(update, context, comments)
    await _got(update, context, len(comments))
    return None


async def analyse(update: Update, context: Context) -> int | None:
    """/done or Analyse: the report, the chart and the ideas with their buttons."""
    from pipeline.comments import analyze_comments
    from pipeline.comments.chart import png_bytes
    from pipeline.comments.summary import summary_text

    lang = user_lang(update, context)
    if update.callback_query is not None and await owned_query(update, lang) is None:
        return None
    items = collected(update, context)
    if not items:
        await ask(update, t(lang, "feedback_none"), force=False)
        return None
    comments = [Comment(**item) for item in items]
    await ask(update, t(lang, "feedback_working", n=len(comments)), force=False)

    def work() -> tuple[Any, bytes]:
        from pipeline.comments.lm import configured_model

        report = analyze_comments(
            comments,
            "zh" if lang == "zh" else "en",
            model=configured_model(),
            model_budget_s=MODEL_BUDGET_S,
        )
        return report, png_bytes(report)

    try:
        report, chart = await asyncio.wait_for(asyncio.to_thread(work), ANALYSE_TIMEOUT_S)
    except TimeoutError:
        await ask(update, t(lang, "feedback_timeout"), force=False)
        return None
    chat = update.effective_chat
    user = update.effective_user
    assert chat is not None and user is not None
    bot = update.get_bot()
    await ask(update, summary_text(report, ideas=False), force=False)
    await bot.send_photo(chat.id, io.BytesIO(chart), filename="feedback.png")
    ideas = [{"topic": i.topic, "style": i.style, "points": list(i.points)} for i in report.ideas]
    _store(context)[f"ideas:{_key(update)}"] = ideas
    _store(context).pop(_key(update), None)
    if ideas:
        from bot.texts import style_names

        names = style_names()
        lines = [t(lang, "feedback_ideas")]
        rows = []
        for n, idea in enumerate(ideas):
            style = names.get(idea["style"], {}).get(lang, idea["style"])
            lines.append(f"{n + 1}. {idea['topic']} — {style}")
            lines += [f"   – {p[:80]}" for p in idea["points"][:3]]
            label = t(lang, "btn_make_idea", n=n + 1)
            rows.append([button(label, user.id, "idea", str(n))])
        await ask(update, "\n".join(lines), InlineKeyboardMarkup(rows), force=False)
    return END


def idea(update: Update, context: Context, picked: Choice) -> dict[str, Any] | None:
    """The idea a 🎬 Make this button names, from the member's last report in this chat."""
    ideas = _store(context).get(f"ideas:{_key(update)}")
    number = int(picked.value)  # decode let only 0-2 through
    if not isinstance(ideas, list) or number >= len(ideas):
        return None
    found = ideas[number]
    return found if isinstance(found, dict) else None


async def cancel(update: Update, context: Context) -> int:
    _store(context).pop(_key(update), None)
    await ask(update, t(user_lang(update, context), "cancelled"), force=False)
    return END


def build_feedback() -> ConversationHandler[Context]:
    """/feedback as a table: one state that takes text, files and screenshots."""
    states: dict[object, list[Handler[Update, Context, object]]] = {
        COLLECT: [
            MessageHandler(TEXT, text_in),
            MessageHandler(IMAGES | filters.Document.ALL, file_in),
            CommandHandler("done", analyse),
            CallbackQueryHandler(analyse, pattern=callbacks.choice_pattern("fbgo")),
        ],
    }
    with warnings.catch_warnings():
        # per_message=False is deliberate: buttons belong to a member, not to one message.
        warnings.filterwarnings("ignore", message=".*per_message.*")
        return _conversation(states)


def _conversation(
    states: dict[object, list[Handler[Update, Context, object]]],
) -> ConversationHandler[Context]:
    return ConversationHandler(
        entry_points=[
            CommandHandler("feedback", start),
            CallbackQueryHandler(start, pattern=callbacks.feedback_pattern),
        ],
        states=states,
        fallbacks=[CommandHandler("cancel", cancel)],
        per_chat=True,
        per_user=True,
        per_message=False,
        allow_reentry=True,
        name="feedback",
        persistent=True,
    )
