"""Every inline button's callback data: encoded, decoded and matched here, and nowhere else.

Two kinds of button exist:

- `Choice`: a conversation button (style, language, length, Next, Done, let others add
  footage, 🔇 no music; Analyse in /feedback, and 🎬 Make this under an idea, whose value
  is the idea's number 0-2 in the member's last report; ⭐ a linked channel as the default).
  It carries its owner's id, so in a group only the member who started the conversation can
  press it: ``c|<owner>|<action>|<value>``.
- `Board`: a button about one job: under a storyboard (render, edit, another version),
  🔁 Send again under a video Telegram refused, 📊 Feedback under a delivered video (collect
  its comments), or publishing a delivered video to the owner's channel (📢 post now,
  🕒 schedule and its choices, cancel a scheduled post: `bot.publish`). It carries the job id;
  the job's owner and state come from the job store, so it outlives a restart:
  ``sb:<action>:<job id>``.
- `EditChoice`: ✅ / ✖ under the confirmation of an edit asked for by replying to a delivered
  video. It carries the job id and the edit's number in the job folder (`bot.edits`):
  ``ed:<ok|no>:<job id>:<n>``.

Callback data comes from the client, so anyone can send any string (up to 64 bytes) in a
callback query. `decode` checks everything (length, shape, action, value, ids) and returns None
for anything it would not have encoded itself; it never raises. The handlers' patterns are
predicates over `decode`, so forged or stale data matches no conversation handler and falls to
the catch-all that answers "no longer active".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias, get_args

from bot.texts import LENGTHS
from pipeline.script.styles import STYLES

MAX_BYTES: Final = 64  # the Bot API's limit on callback_data

ChoiceAction: TypeAlias = Literal[
    "style", "lang", "len", "next", "done", "pool", "music", "fbgo", "idea", "chan"
]
BoardAction: TypeAlias = Literal[
    "render", "edit", "another", "resend", "feedback",
    "post", "sched", "in1h", "at20", "at08", "athm", "unsched",
]  # fmt: skip
# The channel-publishing Board actions (`bot.publish`); the rest are storyboard buttons.
PUBLISH_ACTIONS: Final = ("post", "sched", "in1h", "at20", "at08", "athm", "unsched")
CHOICE_ACTIONS: Final[tuple[str, ...]] = get_args(ChoiceAction)
BOARD_ACTIONS: Final[tuple[str, ...]] = get_args(BoardAction)
EditAction: TypeAlias = Literal["ok", "no"]
EDIT_ACTIONS: Final[tuple[str, ...]] = get_args(EditAction)
_EDIT_NO = re.compile(r"[1-9][0-9]{0,5}")
VIDEO_LANGS: Final = ("zh", "en")
IDEA_NUMBERS: Final = ("0", "1", "2")  # a feedback report has three ideas

# Telegram user ids are positive and below 2**52; no leading zeros, so one id has one encoding.
_OWNER = re.compile(r"[1-9][0-9]{0,15}")
_CHAT_ID = re.compile(r"-?[1-9][0-9]{0,15}")  # a channel's id (negative: -100...)
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,48}")  # bot.jobs.new_job_id makes 24 of these


@dataclass(frozen=True, slots=True)
class Choice:
    """A conversation button: `action` with `value`, pressable only by `owner`."""

    owner: int
    action: ChoiceAction
    value: str = ""


@dataclass(frozen=True, slots=True)
class Board:
    """A storyboard button: `action` on job `job_id`."""

    action: BoardAction
    job_id: str


@dataclass(frozen=True, slots=True)
class EditChoice:
    """✅ / ✖ under an edit's confirmation: `action` on edit `number` of job `job_id`."""

    action: EditAction
    job_id: str
    number: int


Button: TypeAlias = Choice | Board | EditChoice


def _value_ok(action: str, value: str) -> bool:
    if action == "style":
        return value in STYLES
    if action == "lang":
        return value in VIDEO_LANGS
    if action == "len":
        return value in {str(n) for n in LENGTHS}
    if action == "chan":
        return bool(_CHAT_ID.fullmatch(value))  # make this linked channel the default
    if action == "music":
        return value == "off"  # the only music choice a button makes; music itself is a file
    if action == "idea":
        return value in IDEA_NUMBERS
    return value == ""  # next, done, pool, fbgo carry nothing


def encode(button: Button) -> str:
    """The callback data for `button`; raises ValueError for a button `decode` would refuse
    (a programming error, caught by the tests, never user input)."""
    if isinstance(button, Choice):
        data = f"c|{button.owner}|{button.action}|{button.value}"
    elif isinstance(button, EditChoice):
        data = f"ed:{button.action}:{button.job_id}:{button.number}"
    else:
        data = f"sb:{button.action}:{button.job_id}"
    if decode(data) != button:
        raise ValueError(f"not a valid button: {button!r}")
    return data


def decode(data: object) -> Button | None:
    """The button `data` encodes, or None when it is not one this bot made (forged, garbage,
    too long, an unknown action or value, or a layout of an older version)."""
    if not isinstance(data, str) or len(data.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        return None
    if data.startswith("c|"):
        parts = data.split("|")
        if len(parts) != 4:
            return None
        _, owner, action, value = parts
        if not _OWNER.fullmatch(owner) or action not in CHOICE_ACTIONS:
            return None
        if not _value_ok(action, value):
            return None
        return Choice(int(owner), action, value)  # type: ignore[arg-type]
    if data.startswith("sb:"):
        parts = data.split(":")
        if len(parts) != 3:
            return None
        _, action, job_id = parts
        if action not in BOARD_ACTIONS or not _JOB_ID.fullmatch(job_id):
            return None
        return Board(action, job_id)  # type: ignore[arg-type]
    if data.startswith("ed:"):
        parts = data.split(":")
        if len(parts) != 4:
            return None
        _, action, job_id, number = parts
        if action not in EDIT_ACTIONS or not _JOB_ID.fullmatch(job_id):
            return None
        if not _EDIT_NO.fullmatch(number):
            return None
        return EditChoice(action, job_id, int(number))  # type: ignore[arg-type]
    return None


def choice_pattern(*actions: ChoiceAction) -> Callable[[object], bool]:
    """A CallbackQueryHandler pattern: valid conversation buttons with one of `actions`."""

    def match(data: object) -> bool:
        button = decode(data)
        return isinstance(button, Choice) and button.action in actions

    return match


def board_pattern(data: object) -> bool:
    """A CallbackQueryHandler pattern: valid storyboard buttons."""
    button = decode(data)
    return isinstance(button, Board) and button.action in ("render", "edit", "another")


def resend_pattern(data: object) -> bool:
    """A CallbackQueryHandler pattern: valid 🔁 Send again buttons."""
    button = decode(data)
    return isinstance(button, Board) and button.action == "resend"


def feedback_pattern(data: object) -> bool:
    """A CallbackQueryHandler pattern: valid 📊 Feedback buttons under a delivered video."""
    button = decode(data)
    return isinstance(button, Board) and button.action == "feedback"


def publish_pattern(data: object) -> bool:
    """A CallbackQueryHandler pattern: valid channel-publishing buttons under a video."""
    button = decode(data)
    return isinstance(button, Board) and button.action in PUBLISH_ACTIONS


def edit_pattern(data: object) -> bool:
    """A CallbackQueryHandler pattern: valid ✅ / ✖ buttons under an edit's confirmation."""
    return isinstance(decode(data), EditChoice)
