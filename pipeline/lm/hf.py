"""The transformers backend: any causal LM by hub id, local folder or .gguf file.

Loading is `pipeline.script.llm.load_model` (one copy of the weights per process, shared with the
script writer that used it first). transformers has no constrained decoding here, so a JSON
request is validated and repaired once (`generate_json_with_repair`). Generation runs on a
worker thread; at the deadline the caller gets `LMTimeout` and the generation loop stops at its
next token.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Sequence
from typing import Any

from pipeline.lm.base import (
    Completion,
    Enough,
    LMTimeout,
    LMUnavailable,
    Message,
    generate_json_with_repair,
    has_images,
)

BACKEND = "transformers"
# torch's random generator is global: seeding and sampling must not interleave across threads.
_GENERATE_LOCK = threading.Lock()


class TransformersModel:
    """A transformers chat model behind `LanguageModel`."""

    def __init__(self, model_id_or_path: str, device: str = "auto") -> None:
        if not model_id_or_path:
            raise LMUnavailable("no transformers model configured (set REELBOT_LM_MODEL)", BACKEND)
        self._model = model_id_or_path
        self.device = device
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="lm-hf")

    @property
    def backend(self) -> str:
        return BACKEND

    @property
    def model(self) -> str:
        return self._model

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
    ) -> Completion:
        """One answer within `timeout_s` (loading included); see `LanguageModel.generate`."""
        if has_images(messages):
            raise LMUnavailable("the transformers backend sends text only", BACKEND)
        started = time.monotonic()
        deadline = started + timeout_s
        counts = [seed or 0]

        def ask(chat: list[Message], left: float) -> tuple[str, int, int]:
            stop = threading.Event()
            future = self._pool.submit(
                self._generate_now, chat, counts[0], max_tokens, temperature, stop, left
            )
            counts[0] += 1  # a repair request samples differently from the answer it repairs
            try:
                return future.result(timeout=left)
            except concurrent.futures.TimeoutError as exc:
                stop.set()  # the generation loop checks this and ends at its next token
                raise LMTimeout(f"no answer within {timeout_s:g} s", BACKEND) from exc

        if json_schema is None:
            text, p, c = ask(list(messages), deadline - time.monotonic())
            data = None
        else:
            text, data, p, c = generate_json_with_repair(
                ask, messages, json_schema, deadline, BACKEND
            )
        return Completion(
            text=text,
            data=data,
            backend=BACKEND,
            model=self._model,
            prompt_tokens=p,
            completion_tokens=c,
            seconds=round(time.monotonic() - started, 3),
        )

    def _generate_now(
        self,
        messages: list[Message],
        seed: int,
        max_tokens: int,
        temperature: float,
        stop: threading.Event,
        left: float,
    ) -> tuple[str, int, int]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList

        from pipeline.script.llm import load_model

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
                return stop.is_set()

        try:
            tokenizer, model, device = load_model(self._model, self.device)
        except Exception as exc:  # hub, file and torch errors have no common base
            raise LMUnavailable(f"cannot load {self._model}: {exc}", BACKEND) from exc
        if stop.is_set():
            raise LMTimeout("cancelled before generation", BACKEND)
        if getattr(tokenizer, "chat_template", None):
            prompt = tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        else:
            prompt = "".join(f"{m['role'].upper()}:\n{m['content']}\n\n" for m in messages)
            prompt += "ASSISTANT:\n"
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(device)
        pad = tokenizer.pad_token_id
        with _GENERATE_LOCK, torch.inference_mode():
            torch.manual_seed(seed)
            out = model.generate(
                **inputs,
                max_new_tokens=max_tokens,
                do_sample=temperature > 0,
                temperature=temperature if temperature > 0 else None,
                top_p=0.9 if temperature > 0 else None,
                max_time=max(left, 0.1),
                stopping_criteria=StoppingCriteriaList([_Stop()]),
                pad_token_id=pad if pad is not None else tokenizer.eos_token_id,
            )
        if stop.is_set():
            raise LMTimeout("stopped at the time limit", BACKEND)
        n_prompt = int(inputs["input_ids"].shape[1])
        new = out[0, n_prompt:]
        return str(tokenizer.decode(new, skip_special_tokens=True)), n_prompt, int(new.shape[0])
