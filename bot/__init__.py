"""The Telegram assistant: a thin python-telegram-bot adapter around `pipeline`."""
