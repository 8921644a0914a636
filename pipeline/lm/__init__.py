"""Language models behind one small interface, with three backends picked by settings.

`get_model()` returns the configured `LanguageModel` (or None when off): the embedded
Qwen2.5-Coder-1.5B run in-process by llama.cpp, any OpenAI-compatible server, or a transformers
model. `generate(messages, max_tokens=, temperature=, json_schema=, timeout_s=)` returns a
`Completion` or raises `LMUnavailable`, `LMTimeout` or `LMBadOutput` (all `ReelbotError`s);
`enough=` ends a streamed answer early (the embedded model; the others answer in full).
"""

from __future__ import annotations

from pipeline.lm.base import (
    Completion,
    Enough,
    LanguageModel,
    LMBadOutput,
    LMError,
    LMTimeout,
    LMUnavailable,
    Message,
    image_part,
    parse_json,
)
from pipeline.lm.select import BACKENDS, LMConfig, get_model

__all__ = [
    "BACKENDS",
    "Completion",
    "Enough",
    "LMBadOutput",
    "LMConfig",
    "LMError",
    "LMTimeout",
    "LMUnavailable",
    "LanguageModel",
    "Message",
    "get_model",
    "image_part",
    "parse_json",
]
