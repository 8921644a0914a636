"""Edit requests the patterns do not understand, mapped by the configured language model.

A reply such as "the bit about the cat's nap should say sixteen hours" or "could the guy talk a
bit quicker" goes to `pipeline.lm`'s model (embedded llama.cpp by default, an OpenAI-compatible
server or transformers, by settings) with a JSON schema of the edit kinds. The reply and the
video's sentences are passed as data inside a fence, never as instructions (as in
`pipeline.script.lmwriter`), the call is bounded in time, and the answer is checked before it
becomes an `EditRequest`: a known kind, an index in range, a word the kind takes, a length the
pipeline accepts. A music change never takes a path from the model (a new track comes only as
an audio file with the reply). Whatever goes wrong, the answer is None and the bot says what can
be changed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pipeline.lm import LanguageModel, LMConfig, LMError, get_model
from pipeline.make.editrequest import (
    CAPTION_WORDS,
    EDIT_KINDS,
    RATE_WORDS,
    VOICE_WORDS,
    EditRequest,
)
from pipeline.promptfiles import as_data, load_prompt
from pipeline.settings import Settings, settings

log = logging.getLogger(__name__)

TIMEOUT_S = 20.0  # the creator waits for the one-line confirmation meanwhile
MAX_TOKENS = 120  # one small JSON object
MAX_REPLY = 600  # characters of the reply the model sees; a longer one is cut
MAX_TEXT = 200  # characters of a new sentence or title the model may write

EDIT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "kind": {"type": "string", "enum": [*EDIT_KINDS, "none"]},
        "index": {"type": "integer", "minimum": 0, "maximum": 50},
        "text": {"type": "string", "maxLength": 400},
        "seconds": {"type": "integer", "minimum": 0, "maximum": 600},
    },
    "required": ["kind", "index", "text", "seconds"],
}

_WORDS: dict[str, tuple[str, ...]] = {
    "rate": RATE_WORDS,
    "voice": VOICE_WORDS,
    "captions": CAPTION_WORDS,
    "language": ("zh", "en"),
}


def edit_messages(reply: str, sentences: Sequence[str], seconds: int, language: str) -> list[
    dict[str, str]
]:  # fmt: skip
    """The chat: the rules, then the video's sentences and the reply as data."""
    system = load_prompt("edit_system").render(
        lines=len(sentences),
        seconds=seconds,
        language="Chinese" if language == "zh" else "English",
    )
    numbered = " / ".join(f"{i}. {as_data(s)}" for i, s in enumerate(sentences, start=1))
    user = load_prompt("edit_user").render(sentences=numbered, reply=as_data(reply)[:MAX_REPLY])
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def request_from_answer(data: Any, lines: int, base: str = "") -> EditRequest | None:
    """The model's JSON as an `EditRequest`, or None when it is not one this video can take."""
    if not isinstance(data, dict):
        return None
    kind, index = data.get("kind"), data.get("index")
    text, seconds = data.get("text"), data.get("seconds")
    if kind not in EDIT_KINDS or not isinstance(index, int) or not isinstance(text, str):
        return None
    if not isinstance(seconds, int):
        return None
    text = " ".join(text.split())
    if kind in ("line", "shot") and not 1 <= index <= lines:
        return None
    if kind in ("line", "title"):
        if not text or len(text) > MAX_TEXT:
            return None
        return EditRequest(kind, index=index if kind == "line" else 0, text=text, base=base)
    if kind == "shot":
        return EditRequest("shot", index=index, base=base)
    if kind == "music":
        # Only "no music": a path from the model could name any file on the server.
        return EditRequest("music", text="", base=base) if not text else None
    if kind == "length":
        return EditRequest("length", seconds=seconds, base=base) if 5 <= seconds <= 180 else None
    word = text.lower()
    if word not in _WORDS.get(kind, ()):
        return None
    return EditRequest(kind, text=word, base=base)


def understand_edit(
    reply: str,
    sentences: Sequence[str],
    seconds: int,
    language: str,
    base: str = "",
    *,
    config: Settings | None = None,
    model: LanguageModel | None = None,
    timeout_s: float = TIMEOUT_S,
) -> EditRequest | None:
    """The edit the language model reads in `reply` to a video of `sentences`, or None: the
    model is off, unusable, slow, answered nonsense, or found no change it may make."""
    if not reply.strip() or not sentences:
        return None
    try:
        lm = model or get_model(LMConfig.from_settings(config or settings()))
        if lm is None:
            return None
        done = lm.generate(
            edit_messages(reply, sentences, seconds, language),
            max_tokens=MAX_TOKENS,
            temperature=0.0,
            json_schema=EDIT_SCHEMA,
            timeout_s=timeout_s,
            seed=0,
        )
    except LMError as exc:
        log.warning("edit reply not understood by the language model: %s (%s)", exc.key, exc)
        return None
    except Exception:  # a broken model must not leave the creator without an answer
        log.warning("the language model failed on an edit reply", exc_info=True)
        return None
    request = request_from_answer(done.data, len(sentences), base)
    log.info("edit reply mapped by %s:%s in %.1f s to %s", lm.backend, lm.model, done.seconds,
             request)  # fmt: skip
    return request
