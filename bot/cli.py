"""`reelbot bot`: run the Telegram assistant (telegram is imported only when it runs)."""

from __future__ import annotations

import argparse
import logging
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
