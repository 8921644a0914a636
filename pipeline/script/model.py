"""The script: what is said, in order, and what should be on screen while it is said."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

from pipeline.errors import ReelbotError
from pipeline.jsonfiles import Document


class ScriptError(ReelbotError):
    """A script (JSON, a request, or a model's answer) is invalid; `field` says where."""

    key = "script_invalid"

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"invalid script: {field}: {problem}", field=field, problem=problem)
        self.field = field
        self.problem = problem


@dataclass(frozen=True, slots=True)
class ScriptLine:
    """One sentence to narrate, with an optional hint of what the picture should show.

    `role` names the part of the style's structure the line plays (context, point, payoff...),
    so the edit planner can, say, hold the payoff on the strongest shot.
    """

    text: str
    visual: str = ""
    role: str = ""


@dataclass(frozen=True, slots=True)
class Script(Document):
    """A short's script. Narrated in order: hook, lines, call to action."""

    WHAT: ClassVar[str] = "script"
    ERROR: ClassVar[Callable[[str, str], Exception]] = ScriptError
    title: str
    hook: str
    lines: tuple[ScriptLine, ...]
    cta: str
    hashtags: tuple[str, ...]
    language: str
    style: str
    target_seconds: float
    estimated_seconds: float
    writer: str
    hook_visual: str = ""
    cta_visual: str = ""
    seed: int = 0
    # Why the configured model did not write this script (empty when it did, or none was set).
    fallback_reason: str = ""

    def spoken(self) -> tuple[str, ...]:
        """Every narrated sentence in order: the hook, each line, the call to action."""
        return (self.hook, *(line.text for line in self.lines), self.cta)

    def visuals(self) -> tuple[str, ...]:
        """The visual hint for each spoken sentence, aligned with `spoken()`."""
        return (self.hook_visual, *(line.visual for line in self.lines), self.cta_visual)

    def validate(self) -> None:
        validate_script(self)


def validate_script(script: Script) -> None:
    """Check what types cannot: non-empty sentences, a known language, sane durations."""
    if script.language not in ("zh", "en"):
        raise ScriptError("language", f"must be 'zh' or 'en', not {script.language!r}")
    if not script.title.strip():
        raise ScriptError("title", "must not be empty")
    if not script.hook.strip():
        raise ScriptError("hook", "must not be empty")
    if not script.cta.strip():
        raise ScriptError("cta", "must not be empty")
    for i, line in enumerate(script.lines):
        if not line.text.strip():
            raise ScriptError(f"lines[{i}].text", "must not be empty")
    for i, tag in enumerate(script.hashtags):
        if not tag.startswith("#") or len(tag) < 2 or any(c.isspace() for c in tag):
            raise ScriptError(f"hashtags[{i}]", "must be '#' followed by text without spaces")
    if not 0 < script.target_seconds <= 600:
        raise ScriptError("target_seconds", "must be in (0, 600]")
    if not 0 <= script.estimated_seconds <= 3600:
        raise ScriptError("estimated_seconds", "must be in [0, 3600]")
