"""`reelbot bot`: run the Telegram assistant (telegram is imported only when it runs), and
`reelbot worker`: run job steps for it on the distributed engine (Celery on Redis)."""

from __future__ import annotations

import argparse
import logging
import os
import socket
from typing import Any

log = logging.getLogger(__name__)


class RedactToken(logging.Filter):
    """Replaces the bot token in log records, so it never reaches a log file."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if self.token and self.token in text:
            record.msg = text.replace(self.token, "<token>")
            record.args = ()
        return True


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bot",
        help="run the Telegram bot (configured by environment variables and .env)",
        description="Run the Telegram assistant. Settings come from environment variables "
        "(TELEGRAM_BOT_TOKEN, REELBOT_DATA_DIR, ...; see docs) and a .env file.",
    )
    p.add_argument("--env-file", default=".env", help="a .env file to read first (default .env)")
    p.set_defaults(handler=_bot_cmd)

    p = subparsers.add_parser(
        "worker",
        help="run job steps for the bot on Celery and Redis (REELBOT_BROKER_URL)",
        description="Run a Celery worker that executes the bot's job steps (prepare, revise, "
        "render) from the Redis at REELBOT_BROKER_URL. Job folders are read and written under "
        "the same paths as the bot's REELBOT_DATA_DIR, so both must see the same disk.",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=default_concurrency(),
        help="jobs run at once (default: one per 2 cores, here %(default)s)",
    )
    p.add_argument(
        "--hostname",
        default="reelbot@%h",
        help="the worker's node name; %%h is the host name (default reelbot@%%h)",
    )
    p.add_argument(
        "--ping",
        action="store_true",
        help="only check that this worker answers (exit 0): a health check",
    )
    p.add_argument("--env-file", default=".env", help="a .env file to read first (default .env)")
    p.set_defaults(handler=_worker_cmd)


def default_concurrency() -> int:
    """One job per two cores: a render keeps about a core and a half busy (x264's threads,
    audio, captions), and a step's other work leaves the rest in use."""
    return max(1, (os.cpu_count() or 2) // 2)


def _bot_cmd(args: argparse.Namespace) -> int:
    from bot.app import run
    from bot.config import load_settings
    from bot.pipeline_api import DefaultPipeline

    settings = load_settings(dotenv=args.env_file)
    # httpx logs every request URL, and those URLs contain the bot token; anything else that
    # would print it (PTB's debug lines, error messages) has it blotted out.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactToken(settings.token))
    log.info("starting the bot; data in %s, %d worker(s)", settings.data_dir, settings.workers)
    run(settings, DefaultPipeline(settings.pipeline))
    return 0


def _worker_cmd(args: argparse.Namespace) -> int:
    from dotenv import load_dotenv

    from bot import engine
    from bot.config import ConfigError, load_engine_settings
    from pipeline import settings as pipeline_settings

    if args.concurrency < 1:
        raise ConfigError("--concurrency", "must be at least 1")
    if args.env_file:
        load_dotenv(args.env_file, override=False)
    # The pipeline's variables (voices, models, caches) reach every step this worker runs.
    pipeline_settings.install(pipeline_settings.Settings.from_env(os.environ))
    settings = load_engine_settings(os.environ)
    if settings is None:
        raise ConfigError("REELBOT_BROKER_URL", "not set (e.g. redis://redis:6379/0)")
    engine.configure_worker(settings)
    app = engine.make_app(settings, worker=True)
    name = args.hostname.replace("%h", socket.gethostname())
    if args.ping:
        replies = app.control.ping(destination=[name], timeout=settings.timeout)
        print("ok" if replies else f"{name} did not answer")
        return 0 if replies else 1
    log.info("worker %s: %d job(s) at once", name, args.concurrency)
    app.worker_main(
        [
            "worker",
            f"--concurrency={args.concurrency}",
            f"--hostname={name}",
            f"--queues={engine.QUEUE}",
            "--loglevel=INFO",
            # No start-up chatter with the other workers: nothing here needs it, and it costs
            # a second or more at every start.
            "--without-gossip",
            "--without-mingle",
        ]
    )
    return 0
