"""The transformers script writer: any causal LM by hub id or local path (or a .gguf file).

The model is loaded once per process and shared by every writer that names it. Generation runs
on a worker thread under a time limit; an answer is validated (`pipeline.script.parse`), and a bad
one gets one repair request naming the problem. Anything else (no model, a load error, the time
limit, a second bad answer) falls back to the offline writer, with the reason logged and kept in
`Script.fallback_reason`.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipeline.loadonce import Loader
from pipeline.promptfiles import as_data, load_prompt
from pipeline.script.length import speaking_rate
from pipeline.script.model import Script, ScriptError
from pipeline.script.offline import OfflineWriter
from pipeline.script.parse import HOOK_LIMIT, script_from_answer
from pipeline.script.request import ScriptRequest, normalise
from pipeline.script.styles import STYLES

log = logging.getLogger(__name__)

_LANGUAGE_NAMES = {"zh": "Simplified Chinese (简体中文)", "en": "English"}
# torch's random generator is global: seeding and sampling must not interleave across threads.
_GENERATE_LOCK = threading.Lock()


class ScriptTimeout(Exception):
    """Generation did not finish within the writer's time limit."""


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _load(key: tuple[str, str]) -> tuple[Any, Any, str]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model_id_or_path, device = key
    where = _resolve_device(device)
    source, extra = model_id_or_path, {}
    path = Path(model_id_or_path).expanduser()
    if path.suffix == ".gguf" and path.is_file():
        source, extra = str(path.parent), {"gguf_file": path.name}
    started = time.monotonic()
    tokenizer = AutoTokenizer.from_pretrained(source, **extra)
    dtype = torch.float32
    if where.startswith("cuda"):
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    model: Any = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, **extra)
    model.to(where).eval()
    log.info(
        "loaded script model %s on %s in %.1f s",
        model_id_or_path,
        where,
        time.monotonic() - started,
    )
    return tokenizer, model, where


# Keyed by (model, device): every writer naming the same model shares one copy.
MODELS: Loader[tuple[str, str], tuple[Any, Any, str]] = Loader("script model", _load)


def load_model(model_id_or_path: str, device: str = "auto") -> tuple[Any, Any, str]:
    """(tokenizer, model, device) for a hub id, a local folder or a .gguf file; loaded once."""
    return MODELS.get((model_id_or_path, device))


def footage_lines(req: ScriptRequest) -> str:
    """The footage as the prompt shows it: each shot in order with its length and what it
    shows (the strongest marked), then the captions and speech; all of it data."""
    shown = [(i, n) for i, n in enumerate(req.shots) if n.line()]
    strongest = max(shown, key=lambda item: item[1].score)[0] if shown else -1
    parts = [
        f"shot {i + 1} ({n.seconds:g} s{', strongest' if i == strongest else ''}): {n.line()}"
        for i, n in shown
    ]
    said = [t for t in req.footage_text if t]
    if said:
        parts.append("captions and speech: " + " / ".join(said))
    return " / ".join(parts)


def line_range(req: ScriptRequest) -> tuple[int, int]:
    """How many body lines a script for `req` has: about one per 5 s, and at least one fewer
    (or the style's least). The schema holds the model to it: left at "2 to 6" for 30 s, the
    embedded model wrote 3 lines, half the length, and was refused for it."""
    most = max(3, min(12, round(req.target_seconds / 5)))
    return min(max(fewest_lines(req), most - 1), most), most


def fewest_lines(req: ScriptRequest) -> int:
    """The fewest body lines the style's structure allows (its repeated part's least, plus the
    payoff): a model that writes long lines may stop there once the length is filled."""
    repeat = next((s for s in STYLES[req.style].structure if s.repeat), None)
    return max(2, (repeat.min if repeat else 1) + 1)


# What the hook and the call to action take of the budget, in the language's units.
_HOOK_UNITS = {"zh": 12, "en": 10}


def line_size(req: ScriptRequest) -> str:
    """How long one body line should be, as the prompt says it ("12-19 Chinese characters"):
    the budget less the hook and the call to action, shared by the lines."""
    rate = speaking_rate(req.language).rate
    body = req.target_seconds * rate * 0.9 - 2 * _HOOK_UNITS[req.language]
    per = max(4.0, body / line_range(req)[1])
    unit = "Chinese characters" if req.language == "zh" else "words"
    return f"{max(3, round(per * 0.8))}-{round(per * 1.25)} {unit}"


# The answer's shape as the prompt shows it. With footage, lines are plain sentences: each line's
# visual hint is then its shot's words (`parse.script_from_answer`), and the hints the model
# wrote were half of its answer's tokens (~10 tokens/s here). Without footage the model suggests
# what to film.
_SHAPES = {
    True: '{"title": "...", "hook": "...", "cta": "...", "hashtags": ["#...", "#..."], '
    '"lines": ["...", "..."]}',
    False: '{"title": "...", "hook": "...", "cta": "...", "hashtags": ["#...", "#..."], '
    '"lines": [{"text": "...", "visual": "2 to 5 words: what to film"}]}',
}


def script_messages(req: ScriptRequest) -> list[dict[str, str]]:
    """The chat for a normalised request: instructions, then the user's text as data."""
    style = STYLES[req.style]
    rate = speaking_rate(req.language)
    target = req.target_seconds
    unit = "Chinese characters" if req.language == "zh" else "words"
    system = load_prompt("script_system").render(
        language_name=_LANGUAGE_NAMES[req.language],
        style_name=f"{style.name('en')} ({style.name('zh')})",
        structure=style.structure_text[req.language],
        tone=style.tone[req.language],
        seconds=round(target),
        budget=f"{round(target * rate.rate * 0.9)} {unit}",
        min_lines=line_range(req)[0],
        max_lines=line_range(req)[1],
        line_size=line_size(req),
        hook_limit=HOOK_LIMIT[req.language],
        shape=_SHAPES[req.footage_shown],
    )
    # The user's words, captions and text read off the footage stay inside the data fence.
    footage = "\n".join(as_data(line) for line in footage_lines(req).splitlines())
    user = load_prompt("script_user").render(
        topic=as_data(req.topic),
        notes=as_data(req.notes.replace("\n", " / ")) or "(none)",
        footage=footage or "(none)",
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


class TransformersWriter:
    """Writes scripts with a chat/causal language model; falls back to the offline writer."""

    def __init__(
        self,
        model_id_or_path: str,
        device: str = "auto",
        timeout_s: float = 180.0,
        max_new_tokens: int = 900,
        temperature: float = 0.7,
    ) -> None:
        self.model_id = model_id_or_path
        self.device = device
        self.timeout_s = timeout_s
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.name = f"transformers:{model_id_or_path}"
        self._fallback = OfflineWriter()
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="script-llm")

    def write(self, request: ScriptRequest) -> Script:
        """A script from the model, or from the offline writer with the reason it was needed."""
        req = normalise(request)
        try:
            return self._write(req)
        except (ScriptError, ScriptTimeout) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # a model that cannot load or run must not sink the video
            log.debug("script model failed", exc_info=True)
            reason = f"{type(exc).__name__}: {exc}"
        log.warning("script model %s not used, writing offline: %s", self.model_id, reason)
        script = self._fallback.write(req)
        return replace(script, fallback_reason=reason[:500])

    def messages(self, req: ScriptRequest) -> list[dict[str, str]]:
        """The chat for a normalised request: instructions, then the user's text as data."""
        return script_messages(req)

    def _write(self, req: ScriptRequest) -> Script:
        deadline = time.monotonic() + self.timeout_s
        messages = self.messages(req)
        answer = self._generate(messages, req.seed, deadline)
        try:
            return script_from_answer(answer, req, messages[0]["content"], self.name)
        except ScriptError as exc:
            log.info("script model answer rejected (%s); asking once more", exc)
            problem = f"{exc.field}: {exc.problem}"
        messages += [
            {"role": "assistant", "content": answer[-4000:]},
            {"role": "user", "content": load_prompt("script_repair").render(problem=problem)},
        ]
        answer = self._generate(messages, req.seed + 1, deadline)
        return script_from_answer(answer, req, messages[0]["content"], self.name)

    def _generate(self, messages: list[dict[str, str]], seed: int, deadline: float) -> str:
        """The model's reply, generated on the worker thread; `ScriptTimeout` past `deadline`."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise ScriptTimeout(f"no time left of the {self.timeout_s:g} s limit")
        stop = threading.Event()
        future = self._pool.submit(self._generate_now, messages, seed, stop, left)
        try:
            return future.result(timeout=left)
        except concurrent.futures.TimeoutError as exc:
            stop.set()  # the generation loop checks this and ends at its next token
            raise ScriptTimeout(f"generation took longer than {self.timeout_s:g} s") from exc

    def _generate_now(
        self, messages: list[dict[str, str]], seed: int, stop: threading.Event, left: float
    ) -> str:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
                return stop.is_set()

        tokenizer, model, device = load_model(self.model_id, self.device)
        if stop.is_set():
            raise ScriptTimeout("cancelled before generation")
        if getattr(tokenizer, "chat_template", None):
            prompt = tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        else:
            prompt = "".join(f"{m['role'].upper()}:\n{m['content']}\n\n" for m in messages)
            prompt += "ASSISTANT:\n"
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(device)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else None
        with _GENERATE_LOCK, torch.inference_mode():
            torch.manual_seed(seed)
            out = model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=self.temperature > 0,
                temperature=self.temperature if self.temperature > 0 else None,
                top_p=0.9 if self.temperature > 0 else None,
                max_time=max(left, 0.1),
                stopping_criteria=StoppingCriteriaList([_Stop()]),
                pad_token_id=pad if pad is not None else tokenizer.eos_token_id,
            )
        if stop.is_set():
            raise ScriptTimeout("stopped at the time limit")
        new = out[0, inputs["input_ids"].shape[1] :]
        return str(tokenizer.decode(new, skip_special_tokens=True))
