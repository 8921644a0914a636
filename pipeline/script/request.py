"""What a script writer is asked for, validated and cleaned once for every writer."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from pipeline.errors import ReelbotError
from pipeline.script.styles import STYLES
from pipeline.script.text import clean

if TYPE_CHECKING:
    from pipeline.brief import Brief

TOPIC_MAX = 80
NOTES_MAX = 1200
FOOTAGE_MAX = 240
FOOTAGE_ITEMS = 40
# The video lengths a user may ask for, and how far a refit may scale the length written for.
SECONDS_RANGE = (5.0, 180.0)
FACTOR_RANGE = (0.3, 3.0)
# The scaled length itself: never above this (a 180 s video refit by 3 would ask for 9 minutes).
TARGET_MAX = 240.0


def factor_range(seconds: float) -> tuple[float, float]:
    """The `length_factor`s allowed for a `seconds` target: FACTOR_RANGE, narrowed so the
    scaled target stays at most TARGET_MAX. (No lower bound on the target beyond the factor's:
    a 5 s video whose voice ran long must be allowed to ask for less than 5 s of text.)"""
    lo, hi = FACTOR_RANGE
    return lo, max(lo, min(hi, TARGET_MAX / seconds))


WORD_MAX = 24  # one subject word
WORDS_PER_SHOT = 4


class ScriptRequestError(ReelbotError):
    """A script request cannot be served: unknown style or language, empty topic, bad length."""

    key = "script_request_invalid"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"script request: {field}: {problem}", field=field, problem=problem)
        self.field = field
        self.problem = problem


@dataclass(frozen=True, slots=True)
class ShotNote:
    """What one shot of the footage shows, for the writer, in the request's language.

    `words` are its subjects, best first (咖啡, 一个人 / coffee, a person); `screen_text` what is
    written on screen; `description` one sentence from a vision-language model when one is
    configured; `seconds` how long the shot lasts; `score` its quality (0..1), so the writer can
    lead with the strongest shot. Footage words are data, cleaned like the user's own text.
    """

    words: tuple[str, ...]
    seconds: float
    score: float = 0.0
    screen_text: str = ""
    description: str = ""

    def line(self) -> str:
        """One line for a prompt: the words, screen text and description, "" when nothing."""
        parts = [", ".join(self.words)] if self.words else []
        if self.screen_text:
            parts.append(f"text on screen: {self.screen_text}")
        if self.description:
            parts.append(self.description)
        return "; ".join(parts)

    def hint(self) -> str:
        """A few words of what is on screen, for a line's visual hint ("" when nothing)."""
        return ", ".join(self.words) or self.screen_text or self.description


@dataclass(frozen=True, slots=True)
class ScriptRequest:
    """Topic, style, language, target length, notes and what the footage shows.

    `footage_text` holds one string per shot (the user's caption and/or its transcript), in
    the order the shots were given. `length_factor` scales the target: the narration stage asks
    again with < 1 when the spoken audio came out too long, > 1 when too short.
    """

    topic: str
    style: str = "knowledge"
    language: str = "en"
    seconds: float = 30.0
    notes: str = ""
    footage_text: tuple[str, ...] = ()
    seed: int = 0
    length_factor: float = 1.0
    # What each shot shows, in footage order (from `Shot.seen`): the writer's view of the footage.
    shots: tuple[ShotNote, ...] = ()

    @property
    def footage_shown(self) -> bool:
        """Whether any shot says what it shows (then each line's visual hint is its shot)."""
        return any(n.line() for n in self.shots)

    @property
    def target_seconds(self) -> float:
        """The length to write for: `seconds` scaled by `length_factor`."""
        return self.seconds * self.length_factor

    def refit(self, spoken_seconds: float) -> ScriptRequest:
        """The request to write again when the narration of its script lasted `spoken_seconds`.

        Scales `length_factor` so the next script, spoken by the same voice, lands on `seconds`.
        """
        if not (math.isfinite(spoken_seconds) and spoken_seconds > 0):
            raise ScriptRequestError("spoken_seconds", "must be a positive number")
        factor = self.length_factor * self.seconds / spoken_seconds
        lo, hi = factor_range(self.seconds)
        # Clamped into exactly what `normalise` accepts, so a refit is always a valid request.
        return replace(self, length_factor=min(hi, max(lo, factor)))

    @staticmethod
    def from_brief(
        brief: Brief,
        footage_text: tuple[str, ...] = (),
        length_factor: float = 1.0,
        shots: tuple[ShotNote, ...] = (),
    ) -> ScriptRequest:
        """The request for a `Brief`; captions the user gave the footage count as footage text."""
        if not footage_text:
            footage_text = tuple(f.caption for f in brief.footage)
        return ScriptRequest(
            topic=brief.topic,
            style=brief.style,
            language=brief.language,
            seconds=float(brief.seconds),
            notes=brief.notes,
            footage_text=footage_text,
            seed=brief.seed,
            length_factor=length_factor,
            shots=shots,
        )


def normalise(request: ScriptRequest) -> ScriptRequest:
    """Check a request and clean its user text; raises `ScriptRequestError` naming the field."""
    if request.style not in STYLES:
        raise ScriptRequestError(
            "style", f"unknown style {request.style!r}; one of {', '.join(STYLES)}"
        )
    if request.language not in ("zh", "en"):
        raise ScriptRequestError("language", f"must be 'zh' or 'en', not {request.language!r}")
    low, high = SECONDS_RANGE
    if not (math.isfinite(request.seconds) and low <= request.seconds <= high):
        raise ScriptRequestError("seconds", f"must be between {low:g} and {high:g}")
    lo, hi = factor_range(request.seconds)
    factor = request.length_factor
    if not (math.isfinite(factor) and lo - 1e-9 <= factor <= hi + 1e-9):
        raise ScriptRequestError("length_factor", f"must be between {lo:.3g} and {hi:.3g}")
    topic = clean(request.topic, TOPIC_MAX)
    if len(topic.strip(" .,，。!！?？-")) < 1:
        raise ScriptRequestError("topic", "is empty")
    footage = tuple(clean(t, FOOTAGE_MAX) for t in request.footage_text[:FOOTAGE_ITEMS])
    shots = tuple(
        ShotNote(
            words=tuple(w for w in (clean(x, WORD_MAX) for x in n.words[:WORDS_PER_SHOT]) if w),
            seconds=round(min(max(float(n.seconds), 0.0), 3600.0), 1)
            if math.isfinite(n.seconds)
            else 0.0,
            score=min(max(float(n.score), 0.0), 1.0) if math.isfinite(n.score) else 0.0,
            screen_text=clean(n.screen_text, FOOTAGE_MAX),
            description=clean(n.description, FOOTAGE_MAX),
        )
        for n in request.shots[:FOOTAGE_ITEMS]
    )
    return replace(
        request,
        topic=topic,
        notes=clean(request.notes, NOTES_MAX, keep_newlines=True),
        footage_text=footage,
        shots=shots,
    )
