"""reelbot's video pipeline: footage + topic + style -> a narrated, captioned vertical short.

Nothing in this package imports `telegram`; the bot in `bot/` is a thin adapter over it.
"""
