"""Script writing: topic + style (+ what the footage shows) -> `Script`."""

from pipeline.script.model import Script, ScriptLine

__all__ = ["Script", "ScriptLine"]
