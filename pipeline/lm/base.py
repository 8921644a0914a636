"""The one interface every language model backend offers, its result and its errors.

A caller builds OpenAI-style chat messages (`{"role": ..., "content": ...}`; content is a string
or a list of parts, images as data URLs from `image_part`), asks `generate()` for at most
`max_tokens` within `timeout_s` seconds, optionally constrained to a JSON schema and with a
sampling `seed` where the backend honours one, and gets a `Completion` back or one of three
typed errors. No backend ever waits past `timeout_s`. A backend that streams its answer (the
embedded model) also takes `enough`, a test of the answer so far that ends generation early when
it says so (the script writer stops once its lines fill the video); the others answer in full.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pipeline.errors import ReelbotError
from pipeline.promptfiles import load_prompt

log = logging.getLogger(__name__)

Message = dict[str, Any]


class LMError(ReelbotError):
    """Base of the language model errors; `backend` names the backend that raised it."""

    key = "lm_failed"

    def __init__(self, message: str, backend: str = "", **params: Any) -> None:
        super().__init__(message, backend=backend, **params)
        self.backend = backend


class LMUnavailable(LMError):
    """The model cannot be used: not installed, not configured, unreachable, refused the key."""

    key = "lm_unavailable"


class LMTimeout(LMError):
    """The model did not answer within the time limit."""

    key = "lm_timeout"


class LMBadOutput(LMError):
    """The model answered, but not with what was asked (invalid JSON, wrong shape), twice."""

    key = "lm_bad_output"


@dataclass(frozen=True, slots=True)
class Completion:
    """A model's answer: its text, the parsed JSON when a schema was given, and what it cost."""

    text: str
    data: Any
    backend: str
    model: str
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    # `enough` ended the answer: `text` is its start (possibly incomplete JSON) and `data` None.
    stopped_early: bool = False


# A test of the answer so far, for backends that stream (see the module docstring).
Enough = Callable[[str], bool]


class LanguageModel(Protocol):
    """A chat model behind one call; see the module docstring."""

    @property
    def backend(self) -> str: ...

    @property
    def model(self) -> str: ...

    def generate(
        self,
        messages: Sequence[Message],
        *,
        max_tokens: int = 1024,
        temperature: float = 0.7,
        json_schema: dict[str, Any] | None = None,
        timeout_s: float = 120.0,
        seed: int | None = None,
        enough: Enough | None = None,
    ) -> Completion: ...


def image_part(image: bytes | Path, mime: str = "image/jpeg") -> dict[str, Any]:
    """A message content part carrying an image as a data URL (OpenAI's vision format)."""
    data = image.read_bytes() if isinstance(image, Path) else image
    url = f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
    return {"type": "image_url", "image_url": {"url": url}}


def has_images(messages: Sequence[Message]) -> bool:
    """Whether any message carries a non-text part."""
    for m in messages:
        content = m.get("content")
        if isinstance(content, list) and any(
            isinstance(p, dict) and p.get("type") != "text" for p in content
        ):
            return True
    return False


_FENCE = re.compile(r"```(?:json|JSON)?")
_THINK = re.compile(r"<(think|thinking|reasoning)>.*?</\1>", re.DOTALL | re.IGNORECASE)


def parse_json(text: str, schema: dict[str, Any]) -> Any:
    """The first JSON value in `text` that satisfies `schema`; `ValueError` says what is wrong.

    Prose, code fences and closed thinking blocks around the JSON are ignored, because models
    without constrained decoding add them however firmly they are told not to.
    """
    import jsonschema

    cleaned = _FENCE.sub("", _THINK.sub("", text))
    decoder = json.JSONDecoder()
    problem = ""
    end = 0
    for match in re.finditer(r"[\[{]", cleaned):
        if match.start() < end:
            continue  # inside a value already read: its parts are not candidates of their own
        try:
            value, end = decoder.raw_decode(cleaned, match.start())
        except json.JSONDecodeError:
            problem = problem or "the JSON is incomplete or malformed (cut off?)"
            continue
        try:
            jsonschema.validate(value, schema)
        except jsonschema.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(top level)"
            # The first value read is the answer; a later one failing too says less.
            problem = problem or f"the JSON does not match the schema at {where}: {exc.message}"
            continue
        return value
    raise ValueError(problem or "the answer contains no JSON value")


def generate_json_with_repair(
    ask: Callable[[list[Message], float], tuple[str, int, int]],
    messages: Sequence[Message],
    schema: dict[str, Any],
    deadline: float,
    backend: str,
) -> tuple[str, Any, int, int]:
    """Ask, parse against `schema`; on a bad answer ask once more naming the problem.

    `ask(messages, seconds_left)` returns (text, prompt_tokens, completion_tokens). For backends
    without constrained decoding (or servers that ignore `response_format`). Raises
    `LMBadOutput` when the second answer is bad too, `LMTimeout` when no time is left.
    """
    chat = list(messages)
    prompt_tokens = completion_tokens = 0
    for attempt in (1, 2):
        left = deadline - time.monotonic()
        if left <= 0:
            raise LMTimeout("no time left for the repair request", backend)
        text, p, c = ask(chat, left)
        prompt_tokens += p
        completion_tokens += c
        try:
            return text, parse_json(text, schema), prompt_tokens, completion_tokens
        except ValueError as exc:
            problem = str(exc)
        if attempt == 1:
            log.info("%s answer is not the JSON asked for (%s); asking once more", backend, problem)
            repair = load_prompt("lm_json_repair").render(
                problem=problem, schema=json.dumps(schema, ensure_ascii=False)
            )
            chat += [
                {"role": "assistant", "content": text[-4000:]},
                {"role": "user", "content": repair},
            ]
    raise LMBadOutput(f"the model's answer is not the JSON asked for: {problem}", backend)
