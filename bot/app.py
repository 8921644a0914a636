"""Assembling the bot: the Application with its handlers, rate limiter, persistence and job
runner, and running it by long polling or webhook."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import urlparse

from telegram import Update
from telegram.constants import ChatType
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CallbackQueryHandler,
    CommandHandler,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot import callbacks, edits, feedback, media_in, publish, resend, review
from bot import conversation as conv
from bot.config import ConfigError, Settings
from bot.jobs import JobStore
from bot.pipeline_api import ModelWarming, Pipeline
from bot.prefetch import PrefetchingPipeline, prefetcher_for
from bot.services import Context, Services, ask, services, user_lang
from bot.state import JsonPersistence
from bot.texts import LANGS, error_key, error_text, t
from bot.updates import PerUserUpdateProcessor
from bot.workers import JobRunner, Runner

log = logging.getLogger(__name__)

BotApp: TypeAlias = "Application[Any, Any, Any, Any, Any, Any]"


async def gate(update: Update, context: Context) -> None:
    """Let only REELBOT_ALLOWED_IDS through (when set); everyone else is told once and stopped.
    Comments under the channel posts of an allowed user pass too (`publish.listened`): the
    bot only records them, it never answers there."""
    settings = services(context).settings
    user, chat = update.effective_user, update.effective_chat
    if settings.allowed(user.id if user else None, chat.id if chat else None):
        return
    if publish.listened(update, context, settings.allowed_ids):
        return
    if chat is not None and chat.type == ChatType.PRIVATE and update.message is not None:
        await update.message.reply_text(t(user_lang(update, context), "not_allowed"))
    raise ApplicationHandlerStop


async def help_cmd(update: Update, context: Context) -> None:
    """/start and /help: what the bot does and its commands, in the user's language."""
    await ask(update, t(user_lang(update, context), "help"), force=False)


async def lang_cmd(update: Update, context: Context) -> None:
    """/lang: switch the bot's language between English and Chinese."""
    if context.user_data is None:
        return
    now = user_lang(update, context)
    new = LANGS[(LANGS.index(now) + 1) % len(LANGS)] if now in LANGS else "en"
    context.user_data["lang"] = new
    await ask(update, t(new, "lang_set"), force=False)


async def stray_button(update: Update, context: Context) -> None:
    """Every button press no other handler took: a conversation button pressed by someone
    else or after its conversation ended, and data that is no button of ours (forged, or
    from an older version). Each gets a short answer, so the client stops spinning."""
    query = update.callback_query
    if query is None:
        return
    pressed = callbacks.decode(query.data)
    theirs = isinstance(pressed, callbacks.Choice) and pressed.owner != query.from_user.id
    await query.answer(t(user_lang(update, context), "not_yours" if theirs else "stale"))


async def on_error(update: object, context: Context) -> None:
    """Log the failure with its details; the user gets a short message by key, no traceback."""
    err = context.error
    log.error("handling an update failed", exc_info=err)
    if not isinstance(update, Update) or update.effective_chat is None:
        return
    key, params = error_key(err)
    with contextlib.suppress(Exception):
        text = error_text(user_lang(update, context), key, params)
        await context.bot.send_message(update.effective_chat.id, text)


def build_application(settings: Settings, pipeline: Pipeline) -> BotApp:
    """The Application, wired: handlers, AIORateLimiter with retries, persistent conversations."""
    Path(settings.data_dir).mkdir(parents=True, exist_ok=True)
    builder = (
        ApplicationBuilder()
        .token(settings.token)
        .rate_limiter(AIORateLimiter(group_max_rate=settings.group_rate, max_retries=3))
        .persistence(JsonPersistence(settings.data_dir, update_interval=5))
        .local_mode(settings.local_mode)
        .concurrent_updates(PerUserUpdateProcessor())
        .post_init(on_start)
        .post_stop(on_stop)
        .read_timeout(30)
        .write_timeout(120)
    )
    if settings.base_url:
        builder = builder.base_url(settings.base_url)
    if settings.base_file_url:
        builder = builder.base_file_url(settings.base_file_url)
    app: BotApp = builder.build()
    app.bot_data["settings"] = settings
    app.bot_data["pipeline"] = pipeline
    add_handlers(app)
    return app


def add_handlers(app: BotApp) -> None:
    """The handlers in the order they are tried: access gate, conversation, then the rest."""
    app.add_handler(TypeHandler(Update, gate), group=-1)
    publish.add_handlers(app)  # channels: first in group 0 (discussion groups, its questions)
    # Group 0: a reply to a delivered video is an edit (bot.edits), even mid-conversation;
    # then the conversation; what it does not take falls to the handlers after it.
    app.add_handler(MessageHandler(edits.REPLY_TO_VIDEO & edits.EDIT_INPUT, edits.reply_to_video))
    app.add_handler(conv.build_conversation())
    app.add_handler(feedback.build_feedback())
    app.add_handler(CommandHandler(["start", "help"], help_cmd))
    app.add_handler(CommandHandler("lang", lang_cmd))
    app.add_handler(CommandHandler("cancel", conv.cancel))
    app.add_handler(CallbackQueryHandler(review.storyboard_button, pattern=callbacks.board_pattern))
    app.add_handler(CallbackQueryHandler(resend.resend_button, pattern=callbacks.resend_pattern))
    app.add_handler(CallbackQueryHandler(edits.edit_button, pattern=callbacks.edit_pattern))
    app.add_handler(MessageHandler(filters.Sticker.ALL, media_in.sticker))
    app.add_handler(CallbackQueryHandler(stray_button))
    app.add_handler(MessageHandler(filters.REPLY & conv.MEDIA, media_in.pooled_footage))
    app.add_handler(MessageHandler(filters.ChatType.PRIVATE & conv.MEDIA, review.idle))
    app.add_handler(MessageHandler(conv.TEXT, review.edited_script))
    app.add_error_handler(on_error)


async def on_start(app: BotApp) -> None:
    """After initialize: open the job store, resume unfinished jobs, clean old job folders."""
    settings: Settings = app.bot_data["settings"]
    store = JobStore(str(Path(settings.data_dir) / "jobs.sqlite3"))
    pipeline: Pipeline = app.bot_data["pipeline"]
    prefetch = prefetcher_for(pipeline)  # footage analysed as it arrives (bot.prefetch)
    runner: Runner
    if settings.engine is not None:
        # Imported here: Celery loads only when the engine is configured.
        from bot.engine import Engine
        from bot.remote import RemoteRunner

        runner = RemoteRunner(app.bot, store, settings, Engine(settings.engine))
    else:
        worked: Pipeline = PrefetchingPipeline(pipeline, prefetch) if prefetch else pipeline
        runner = JobRunner(app.bot, store, worked, settings)
    app.bot_data["services"] = Services(settings, store, runner, pipeline, prefetch=prefetch)
    store.cleanup(
        str(Path(settings.data_dir) / "jobs"),
        settings.keep_days,
        settings.keep_total_mb * 2**20,
        cache_dir=analysis_cache_dir(),
    )
    await runner.start()
    await publish.start(app)  # scheduled channel posts armed again
    assert app.job_queue is not None  # publish.start refuses to start without it
    # Old job folders are removed now and then, not only at start, on the same queue as posts.
    app.job_queue.run_repeating(
        housekeeping, interval=HOUSEKEEPING_S, first=HOUSEKEEPING_S, name="housekeeping"
    )
    if settings.engine is None and isinstance(pipeline, ModelWarming):
        # Jobs run in this process: load their models now, in the background, so the first
        # user's storyboard does not wait for them (engine workers warm their own).
        app.bot_data["warm-up"] = asyncio.create_task(warm_up(pipeline), name="warm-up")
    log.info("reelbot is up as @%s", app.bot.username)


async def warm_up(pipeline: ModelWarming) -> None:
    """The pipeline's models loaded on a worker thread; a failure is logged, never raised."""
    try:
        writer = await asyncio.to_thread(pipeline.warm_models)
    except Exception:
        log.exception("loading the models at start failed; jobs load them as they need them")
    else:
        log.info("models loaded; scripts are written by %s", writer)


def analysis_cache_dir() -> Path:
    """The footage analysis's cross-job cache, which the job-folder budget counts too."""
    from pipeline.footage.cache import default_dir

    return default_dir()


HOUSEKEEPING_S = 3600.0


async def housekeeping(context: Context) -> None:
    """Remove job folders past their age or the size budget (a JobQueue job, hourly)."""
    svc = services(context)
    settings = svc.settings
    try:
        svc.store.cleanup(str(Path(settings.data_dir) / "jobs"), settings.keep_days,
                          settings.keep_total_mb * 2**20,
                          cache_dir=analysis_cache_dir())  # fmt: skip
    except OSError:
        log.exception("cleaning old job folders failed")


async def on_stop(app: BotApp) -> None:
    """After the updater stops: interrupt running jobs (they resume next start), close the store."""
    task: asyncio.Task[None] | None = app.bot_data.pop("warm-up", None)
    if task is not None:
        task.cancel()
    svc: Services | None = app.bot_data.get("services")
    if svc is None:
        return
    await publish.stop(app)
    await svc.runner.stop()
    if svc.prefetch is not None:
        svc.prefetch.shutdown()
    svc.store.close()


def webhook_options(settings: Settings) -> dict[str, Any]:
    """How to listen for webhook calls: on the path of REELBOT_WEBHOOK_URL, with the secret."""
    url = settings.webhook_url or ""
    if not settings.webhook_secret:
        # load_settings always sets one in webhook mode; Settings made by hand must too.
        raise ConfigError("REELBOT_WEBHOOK_SECRET", "webhook mode needs a secret")
    return {
        "listen": settings.webhook_listen,
        "port": settings.webhook_port,
        "url_path": urlparse(url).path.strip("/"),
        "webhook_url": url,
        "secret_token": settings.webhook_secret,
        "allowed_updates": Update.ALL_TYPES,
    }


@contextlib.asynccontextmanager
async def running(app: BotApp, poll_timeout: float = 10) -> AsyncIterator[BotApp]:
    """Run `app` inside an async block (what run_polling/run_webhook do, minus signals): by
    webhook when the settings name one, else by long polling."""
    settings: Settings = app.bot_data["settings"]
    async with app:
        await on_start(app)
        assert app.updater is not None
        try:
            await app.start()
            if settings.webhook_url:
                await app.updater.start_webhook(**webhook_options(settings))
            else:
                await app.updater.start_polling(poll_interval=0.0, timeout=int(poll_timeout))
            yield app
        finally:
            if app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()
            await on_stop(app)


def run(settings: Settings, pipeline: Pipeline) -> None:
    """Run until interrupted: long polling, or a webhook when REELBOT_WEBHOOK_URL is set."""
    app = build_application(settings, pipeline)
    if settings.webhook_url:
        app.run_webhook(**webhook_options(settings))
    else:
        app.run_polling(allowed_updates=Update.ALL_TYPES)
