"""Typed errors raised inside the pipeline.

Every error carries a message *key* and parameters. The bot turns the key into a short message in
the user's language (zh/en); the CLI prints the English text; the details go to the log. Nothing
here is meant to be shown as a traceback.
"""

from __future__ import annotations

from typing import Any


class ReelbotError(Exception):
    """Base of every error the pipeline raises on purpose."""

    key: str = "internal"

    def __init__(self, message: str, **params: Any) -> None:
        super().__init__(message)
        self.message = message
        self.params: dict[str, Any] = params


class MediaError(ReelbotError):
    """A footage or audio file cannot be used; `reason` says why, `path` says which file."""

    key = "media_unusable"

    # The reasons a probe can give, each with a message key of its own.
    REASONS = (
        "missing",
        "empty",
        "not_media",
        "corrupt",
        "audio_only",
        "zero_duration",
        "unsupported",
        "too_large",
        "not_audio",  # music that is not a playable sound
    )

    def __init__(self, path: str, reason: str, detail: str = "") -> None:
        if reason not in self.REASONS:
            raise ValueError(f"unknown media error reason {reason!r}")
        name = path.rsplit("/", 1)[-1]
        text = f"{name}: {reason.replace('_', ' ')}"
        if detail:
            text += f" ({detail})"
        super().__init__(text, path=path, name=name, reason=reason, detail=detail)
        self.path = path
        self.reason = reason
        self.key = f"media_{reason}"


class PlanError(ReelbotError):
    """An edit plan is invalid; `field` is the dotted path of the offending field."""

    key = "plan_invalid"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"invalid edit plan: {field}: {problem}", field=field, problem=problem)
        self.field = field
        self.problem = problem


class RenderError(ReelbotError):
    """ffmpeg failed; `log_tail` holds the last lines it printed."""

    key = "render_failed"

    def __init__(self, message: str, log_tail: str = "", returncode: int | None = None) -> None:
        super().__init__(message, log_tail=log_tail, returncode=returncode)
        self.log_tail = log_tail
        self.returncode = returncode

    def __str__(self) -> str:
        if not self.log_tail:
            return self.message
        return f"{self.message}\n--- ffmpeg log (last lines) ---\n{self.log_tail}"


class Cancelled(ReelbotError):
    """The user (or the bot's shutdown) cancelled the job while it ran."""

    key = "cancelled"

    def __init__(self, message: str = "cancelled") -> None:
        super().__init__(message)


class RenderTimeout(RenderError):
    """ffmpeg stopped making progress (`reason="stalled"`) or ran past its overall limit
    (`reason="too_long"`) and was ended; the renderer retries once in a safer way first."""

    key = "render_timeout"

    def __init__(self, message: str, reason: str, log_tail: str = "") -> None:
        super().__init__(message, log_tail)
        self.reason = reason
        self.params["reason"] = reason


class EditError(ReelbotError):
    """An edit of a delivered video that cannot be applied (no other footage for a shot, a
    pipeline that cannot edit)."""

    key = "edit_impossible"


class EditLimit(EditError):
    """An edit that would take the voice's speed or the captions' size past its limit."""

    key = "edit_limit"
