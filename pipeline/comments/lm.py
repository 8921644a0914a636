"""The language-model pass: a small protocol (`JsonModel`: generate JSON under a schema within a
time limit) and what the analysis asks through it: a sentiment label for the comments the
lexicons were unsure of (sarcasm, mixed, slang), theme names, and ideas for the next video.

Labels are asked `LABEL_BATCH` comments a request (numbered, the answer an object keyed by
those numbers with each value constrained to the three labels), one by default: the embedded
1.5B model labelling ten at a time let its neighbours sway each label (questions after a run of
complaints came back negative) and its pass came out no better than the lexicons on the hard
set; asked alone, each comment is judged on its own, and the instructions, which come first in
the prompt, are reused from llama.cpp's prompt cache (~1.4 s a comment on two idle cores).
Every request has its own time limit and the pass a total budget; what the budget does not
reach keeps its lexicon reading, and the report says how many were left. How the model's label
and the lexicons' reading merge is `analyze.merged`; the measured accuracy, model against
lexicons, is in README (`reelbot bench comments`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from pipeline.comments.model import SENTIMENTS, Idea, Sentiment
from pipeline.promptfiles import load_prompt

log = logging.getLogger(__name__)

DEFAULT_BUDGET_S = 60.0
REQUEST_TIMEOUT_S = 15.0


class ModelError(Exception):
    """A model request failed or timed out; the analysis keeps its fast answer."""


class JsonModel(Protocol):
    """Anything that answers a prompt with JSON matching `schema` (a JSON Schema), within
    `timeout_s`, or raises (`ModelError`, `TimeoutError`)."""

    def generate_json(self, prompt: str, schema: Mapping[str, Any], *, timeout_s: float) -> Any: ...


# Comments labelled per request (see the module docstring: one, so that neighbours do not sway
# a small model's label).
LABEL_BATCH = 1
# A batch's time limit: a base for reading the prompt plus this much per comment answered
# (a batch of ten took 10-30 s on two cores shared with other jobs, load ~6).
LABEL_BASE_S = 10.0
LABEL_PER_COMMENT_S = 3.0


def labels_schema(count: int) -> Mapping[str, Any]:
    """An object keyed "1".."count", each value one of the three labels, all required (in
    order: llama.cpp's grammar writes the properties as listed)."""
    keys = [str(n) for n in range(1, count + 1)]
    label = {"type": "string", "enum": list(SENTIMENTS)}
    return {
        "type": "object",
        "properties": {k: label for k in keys},
        "required": keys,
        "additionalProperties": False,
    }


NAMES_SCHEMA: Mapping[str, Any] = {
    "type": "object",
    "properties": {"names": {"type": "array", "items": {"type": "string", "maxLength": 24}}},
    "required": ["names"],
}


def ideas_schema(styles: Sequence[str]) -> Mapping[str, Any]:
    return {
        "type": "object",
        "properties": {
            "ideas": {
                "type": "array",
                "minItems": 3,
                "maxItems": 3,
                "items": {
                    "type": "object",
                    "properties": {
                        "topic": {"type": "string", "maxLength": 80},
                        "style": {"type": "string", "enum": list(styles)},
                        "points": {"type": "array", "items": {"type": "string"}, "maxItems": 5},
                        "why": {"type": "array", "items": {"type": "integer"}, "maxItems": 5},
                    },
                    "required": ["topic", "style", "points", "why"],
                },
            }
        },
        "required": ["ideas"],
    }


class Budget:
    """A total time budget shared by the requests of one pass."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def timeout(self, cap: float = REQUEST_TIMEOUT_S) -> float | None:
        """The time one request may take now, or None when the budget is spent."""
        left = self.left()
        return min(cap, left) if left > 0.5 else None


def _ask(
    model: JsonModel,
    prompt: str,
    schema: Mapping[str, Any],
    budget: Budget,
    cap: float = REQUEST_TIMEOUT_S,
) -> Any | None:
    timeout = budget.timeout(cap)
    if timeout is None:
        return None
    try:
        return model.generate_json(prompt, schema, timeout_s=timeout)
    except Exception as exc:  # a model's failure never fails the analysis: log and fall back
        log.warning("language model request failed: %s", exc)
        return None


def label_comments(
    model: JsonModel,
    texts: Sequence[str],
    budget: Budget,
    batch: int = LABEL_BATCH,
    request_s: float | None = None,
) -> list[Sentiment | None]:
    """The model's sentiment label for each of `texts`, asked `batch` at a time, each request
    within `request_s` (default: LABEL_BASE_S + LABEL_PER_COMMENT_S a comment); None for a
    comment whose batch got no answer (no time left, failure, a missing or bad label)."""
    out: list[Sentiment | None] = [None] * len(texts)
    for start in range(0, len(texts), batch):
        part = texts[start : start + batch]
        listing = "\n".join(f"{n}. {' '.join(t.split())[:200]}" for n, t in enumerate(part, 1))
        prompt = load_prompt("comment_labels").render(comments=listing)
        cap = request_s or LABEL_BASE_S + LABEL_PER_COMMENT_S * len(part)
        if budget.timeout(cap) is None:
            break
        answer = _ask(model, prompt, labels_schema(len(part)), budget, cap=cap)
        if not isinstance(answer, dict):
            continue
        for n in range(len(part)):
            found = answer.get(str(n + 1))
            out[start + n] = next((s for s in SENTIMENTS if s == found), None)
    return out


def name_themes(
    model: JsonModel, groups: Sequence[Sequence[str]], language: str, budget: Budget
) -> list[str] | None:
    """A few-word name for each group of example comments, or None."""
    listing = "\n".join(
        f"{i + 1}. " + " | ".join(t[:80] for t in texts[:4]) for i, texts in enumerate(groups)
    )
    prompt = load_prompt("comment_themes").render(groups=listing, language=language)
    answer = _ask(model, prompt, NAMES_SCHEMA, budget, cap=30.0)
    names = answer.get("names") if isinstance(answer, dict) else None
    if not isinstance(names, list) or len(names) != len(groups):
        return None
    if not all(isinstance(n, str) and n.strip() for n in names):
        return None
    return [n.strip()[:24] for n in names]


def write_ideas(
    model: JsonModel,
    summary: str,
    numbered: Sequence[str],
    styles: Sequence[str],
    language: str,
    budget: Budget,
) -> list[Idea] | None:
    """Three ideas from the summary and the numbered key comments (`why` holds their text)."""
    listing = "\n".join(f"{i + 1}. {t[:120]}" for i, t in enumerate(numbered))
    prompt = load_prompt("comment_ideas").render(
        summary=summary, comments=listing, styles=", ".join(styles), language=language
    )
    answer = _ask(model, prompt, ideas_schema(styles), budget, cap=60.0)
    raw = answer.get("ideas") if isinstance(answer, dict) else None
    if not isinstance(raw, list) or len(raw) < 3:
        return None
    ideas: list[Idea] = []
    for item in raw[:3]:
        if not isinstance(item, dict):
            return None
        topic, style = str(item.get("topic", "")).strip(), str(item.get("style"))
        if not topic or style not in styles:
            return None
        points = tuple(str(p).strip() for p in item.get("points", []) if str(p).strip())[:5]
        why = tuple(
            numbered[n - 1]
            for n in item.get("why", [])
            if isinstance(n, int) and 1 <= n <= len(numbered)
        )
        ideas.append(Idea(topic=topic[:80], style=style, points=points, why=why[:5]))
    return ideas


class FromLanguageModel:
    """A `pipeline.lm` model (embedded llama.cpp, an OpenAI-compatible server, transformers)
    as a `JsonModel`: one user message, temperature 0, the schema passed down for constrained
    output, and as many tokens as the answer's shape needs."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def warm(self) -> None:
        """Load the model now when it loads in-process (the embedded one: ~5-15 s on two shared
        cores), so that the first request's time limit is spent answering."""
        load = getattr(self.model, "load", None)
        if callable(load):
            load()

    def generate_json(self, prompt: str, schema: Mapping[str, Any], *, timeout_s: float) -> Any:
        props = schema.get("properties", {})
        # A label entry ("12": "negative", ) is ~7 tokens, with room for the grammar's optional
        # line breaks; names and ideas are prose.
        tokens = 200 if "names" in props else 700 if "ideas" in props else 10 * len(props) + 16
        done = self.model.generate(
            [{"role": "user", "content": prompt}],
            max_tokens=tokens,
            temperature=0.0,
            json_schema=dict(schema),
            timeout_s=timeout_s,
        )
        return done.data


def configured_model() -> JsonModel | None:
    """The language model the settings choose (`REELBOT_LM`, see `pipeline.lm`), or None."""
    from pipeline.lm import LMError, get_model

    try:
        found = get_model()
    except LMError as exc:
        log.warning("no language model for the comment analysis: %s", exc)
        return None
    return FromLanguageModel(found) if found is not None else None
