"""The script writer on the configured language model (`pipeline.lm`): the embedded model by
default, an OpenAI-compatible server or a transformers model by settings.

Same prompts (`prompts/script_*.txt`, the user's text fenced as data), same validation and one
repair request (`pipeline.script.parse`) as the transformers writer; the JSON shape is asked for
as a schema, which the embedded model and most servers enforce while generating. A model that is
missing, fails, times out or answers badly twice leaves the script to the offline writer, with
the reason in `Script.fallback_reason` for the caller to show.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from typing import Any

from pipeline.lm import LanguageModel, LMError, LMTimeout
from pipeline.promptfiles import load_prompt
from pipeline.script.llm import fewest_lines, line_range, script_messages
from pipeline.script.model import Script, ScriptError
from pipeline.script.offline import OfflineWriter
from pipeline.script.parse import LineBudget, script_from_answer
from pipeline.script.request import ScriptRequest, normalise

log = logging.getLogger(__name__)

_TEXT = {"type": "string", "minLength": 1}
# The number of lines is capped in the schema at what the prompt asks (every token a 1.5B model
# writes costs ~70 ms on 2 cores, and it padded 30 s with a dozen lines). String lengths are
# not: a grammar that cuts a sentence at N characters made the embedded model write hooks that
# stop mid-sentence and then repeat one line six times; a long hook is trimmed to its first
# sentence by the validator instead, and a long script loses body lines.


def script_schema(max_lines: int = 12, *, min_lines: int = 2, hints: bool = True) -> dict[str, Any]:
    """The JSON shape a script answer must have, with `min_lines` to `max_lines` body lines: each an
    object with its text and a visual hint when `hints`, a plain sentence otherwise (a request
    with footage: the hints come from the shots)."""
    line: dict[str, Any] = _TEXT
    if hints:
        line = {
            "type": "object",
            "properties": {"text": _TEXT, "visual": {"type": "string"}},
            "required": ["text", "visual"],
        }
    # `lines` last: the embedded model streams its answer, and once the lines fill the video
    # the rest would be lines the validator drops (`parse.LineBudget` stops it there).
    return {
        "type": "object",
        "properties": {
            "title": _TEXT,
            "hook": _TEXT,
            "cta": _TEXT,
            "hashtags": {"type": "array", "items": {"type": "string"}, "maxItems": 4},
            "lines": {
                "type": "array",
                "items": line,
                "minItems": max(1, min(min_lines, max_lines)),
                "maxItems": max(2, max_lines),
            },
        },
        "required": ["title", "hook", "cta", "hashtags", "lines"],
    }


SCRIPT_SCHEMA = script_schema()


class LMWriter:
    """Writes scripts with a `LanguageModel`, or says why it could not (`unavailable`)."""

    def __init__(
        self,
        model: LanguageModel | None,
        *,
        unavailable: str = "",
        timeout_s: float = 180.0,
        max_tokens: int = 900,
        temperature: float = 0.7,
    ) -> None:
        self.model = model
        self.unavailable = unavailable
        self.timeout_s = timeout_s
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.name = f"{model.backend}:{model.model}" if model else "offline"
        self._fallback = OfflineWriter()

    def prime(self) -> None:
        """Have the embedded model read the instructions once now (one token generated).

        llama.cpp keeps the last prompt's state and reuses its longest common start, and the
        system prompt puts what every script shares first, so the first user's script can skip
        ~450 tokens of reading (~10 s on 2 cores at ~45 tokens/s; not measured apart). Servers
        elsewhere are not asked: a request there may cost money, and their caching is their own.
        """
        if self.model is None or self.model.backend != "embedded":
            return
        req = normalise(ScriptRequest(topic="短视频", style="knowledge", language="zh", seconds=30))
        try:
            self.model.generate(script_messages(req), max_tokens=1, timeout_s=self.timeout_s)
        except LMError as exc:
            log.warning("priming %s failed: %s", self.name, exc.message)

    def write(self, request: ScriptRequest) -> Script:
        """A script from the model, or from the offline writer with the reason it was needed."""
        req = normalise(request)
        reason = self.unavailable
        if self.model is not None:
            try:
                return self._write(self.model, req)
            except (LMError, ScriptError) as exc:
                reason = f"{type(exc).__name__}: {exc.message}"
            except Exception as exc:  # a broken model must not sink the video
                log.debug("language model failed", exc_info=True)
                reason = f"{type(exc).__name__}: {exc}"
            log.warning("language model %s not used, writing offline: %s", self.name, reason)
        script = self._fallback.write(req)
        return replace(script, fallback_reason=reason[:500])

    def _write(self, model: LanguageModel, req: ScriptRequest) -> Script:
        deadline = time.monotonic() + self.timeout_s
        messages: list[dict[str, Any]] = list(script_messages(req))
        system = messages[0]["content"]
        least, most = line_range(req)
        schema = script_schema(most, min_lines=least, hints=not req.footage_shown)
        # Plain-string lines can be counted as they stream (with hints they are objects).
        budget = LineBudget(req, fewest_lines(req)) if req.footage_shown else None
        answer = self._ask(model, messages, req.seed, deadline, schema, budget)
        try:
            return script_from_answer(answer, req, system, self.name)
        except ScriptError as exc:
            log.info("script answer rejected (%s); asking once more: %.300s", exc, answer)
            problem = f"{exc.field}: {exc.problem}"
        messages += [
            {"role": "assistant", "content": answer[-4000:]},
            {"role": "user", "content": load_prompt("script_repair").render(problem=problem)},
        ]
        answer = self._ask(model, messages, req.seed + 1, deadline, schema, budget)
        return script_from_answer(answer, req, system, self.name)

    def _ask(
        self,
        model: LanguageModel,
        messages: list[dict[str, Any]],
        seed: int,
        deadline: float,
        schema: dict[str, Any],
        budget: LineBudget | None = None,
    ) -> str:
        left = deadline - time.monotonic()
        if left <= 0:
            raise LMTimeout(f"no time left of the {self.timeout_s:g} s limit", model.backend)
        done = model.generate(
            messages,
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            json_schema=schema,
            timeout_s=left,
            seed=seed,
            enough=budget,
        )
        log.info(
            "%s answered in %.1f s (%d prompt tokens, %d answered%s)",
            self.name,
            done.seconds,
            done.prompt_tokens,
            done.completion_tokens,
            ", stopped once the lines filled the video" if done.stopped_early else "",
        )
        if done.stopped_early and budget is not None:
            return budget.close(done.text)
        return done.text
