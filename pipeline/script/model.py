"""The script: what is said, in order, and what should be on screen while it is said."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ScriptLine:
    """One sentence to narrate, with an optional hint of what the picture should show."""

    text: str
    visual: str = ""


@dataclass(frozen=True, slots=True)
class Script:
    """A short's script. Narrated in order: hook, lines, call to action."""

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

    def spoken(self) -> tuple[str, ...]:
        """Every narrated sentence in order: the hook, each line, the call to action."""
        return (self.hook, *(line.text for line in self.lines), self.cta)
