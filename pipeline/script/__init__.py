"""Script writing: topic + style (+ what the footage shows) -> `Script`.

`get_writer()` picks the writer (a transformers model when `REELBOT_SCRIPT_MODEL` or an explicit
model names one, the offline writer otherwise); `writer.write(ScriptRequest(...))` returns a
`Script`. The transformers writer is imported only when asked for, so this stays light.
"""

from pipeline.script.length import estimate_seconds, speaking_rate
from pipeline.script.model import Script, ScriptError, ScriptLine
from pipeline.script.offline import OfflineWriter
from pipeline.script.request import ScriptRequest, ScriptRequestError, ShotNote
from pipeline.script.styles import STYLES, Style
from pipeline.script.writer import ScriptWriter, get_writer, warm_writer

__all__ = [
    "STYLES",
    "OfflineWriter",
    "Script",
    "ScriptError",
    "ScriptLine",
    "ScriptRequest",
    "ScriptRequestError",
    "ScriptWriter",
    "ShotNote",
    "Style",
    "TransformersWriter",
    "estimate_seconds",
    "get_writer",
    "speaking_rate",
    "warm_writer",
]


def __getattr__(name: str) -> object:
    if name == "TransformersWriter":
        from pipeline.script.llm import TransformersWriter

        return TransformersWriter
    raise AttributeError(name)
