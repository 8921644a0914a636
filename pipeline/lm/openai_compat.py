"""Any server speaking OpenAI's chat completions protocol: Ollama, vLLM, llama.cpp's server,
LM Studio, DeepSeek, DashScope, OpenAI itself.

Written on httpx (already installed with python-telegram-bot) rather than the `openai` package:
the few fields used here are stable across these servers, and what has to be controlled exactly
(one deadline over connect, retries and a trickling body; Retry-After; which `response_format`
a server accepts) is plain HTTP that the SDK would wrap in its own retry and timeout policy.

JSON answers: `response_format` json_schema first; a server that rejects it (HTTP 400 naming
response_format) is asked with json_object, then with plain text, the schema then being spelled
out in a system message. Whatever comes back is validated against the schema, and a bad answer
gets one repair request. 429 and 5xx answers are retried with backoff, honouring Retry-After, a
bounded number of times and never past the deadline.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import threading
import time
from collections.abc import Sequence
from datetime import UTC
from typing import Any

import httpx

from pipeline.lm.base import (
    Completion,
    Enough,
    LMBadOutput,
    LMTimeout,
    LMUnavailable,
    Message,
    generate_json_with_repair,
)

log = logging.getLogger(__name__)

BACKEND = "openai"
JSON_MODES = ("json_schema", "json_object", "plain")
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date), if any."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now if now is not None else time.time()
    return max(0.0, when.timestamp() - current)


class OpenAICompatible:
    """A chat model on an OpenAI-compatible server at `base_url` (ending in /v1 or similar)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "",
        *,
        json_mode: str = "json_schema",
        max_attempts: int = 3,
        backoff_s: float = 1.0,
    ) -> None:
        if not base_url:
            raise LMUnavailable("no server URL configured (set REELBOT_LM_URL)", BACKEND)
        if json_mode not in JSON_MODES:
            raise ValueError(f"json_mode must be one of {JSON_MODES}, not {json_mode!r}")
        self.base_url = base_url.rstrip("/")
        self._model = model
        self._key = api_key
        self.json_mode = json_mode
        self.max_attempts = max(1, max_attempts)
        self.backoff_s = backoff_s
        self._lock = threading.Lock()
        self._client = httpx.Client(headers=self._headers())

    @property
    def backend(self) -> str:
        return BACKEND

    @property
    def model(self) -> str:
        return self._model

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        return headers

    def close(self) -> None:
        self._client.close()

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
        """One answer within `timeout_s`, retries and the repair request included."""
        started = time.monotonic()
        deadline = started + timeout_s
        base: dict[str, Any] = {
            "model": self._model,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream": False,
        }
        if seed is not None:
            base["seed"] = seed
        if json_schema is None:
            text, p, c = self._ask(base, list(messages), None, deadline)
            data = None
        else:
            schema = json_schema

            def ask(chat: list[Message], _left: float) -> tuple[str, int, int]:
                return self._ask(base, chat, schema, deadline)

            text, data, p, c = generate_json_with_repair(ask, messages, schema, deadline, BACKEND)
        return Completion(
            text=text,
            data=data,
            backend=BACKEND,
            model=self._model,
            prompt_tokens=p,
            completion_tokens=c,
            seconds=round(time.monotonic() - started, 3),
        )

    def _ask(
        self,
        base: dict[str, Any],
        chat: list[Message],
        schema: dict[str, Any] | None,
        deadline: float,
    ) -> tuple[str, int, int]:
        """One completion, stepping down the JSON modes while the server rejects them."""
        while True:
            mode = self.json_mode
            body = dict(base, messages=chat)
            if schema is not None:
                if mode == "json_schema":
                    body["response_format"] = {
                        "type": "json_schema",
                        "json_schema": {"name": "answer", "schema": schema},
                    }
                else:
                    if mode == "json_object":
                        body["response_format"] = {"type": "json_object"}
                    note = "Answer with one JSON object matching this JSON schema: " + json.dumps(
                        schema, ensure_ascii=False
                    )
                    body["messages"] = [*chat, {"role": "system", "content": note}]
            status, answer = self._post(body, deadline)
            if status == 400 and schema is not None and mode != "plain" and _about_format(answer):
                with self._lock:
                    if self.json_mode == mode:
                        self.json_mode = JSON_MODES[JSON_MODES.index(mode) + 1]
                log.info(
                    "%s rejects response_format %s; using %s", self.base_url, mode, self.json_mode
                )
                continue
            if status != 200:
                raise LMUnavailable(
                    f"{self.base_url} answered HTTP {status}: {_snippet(answer)}",
                    BACKEND,
                    status=status,
                )
            return _content(answer)

    def _post(self, body: dict[str, Any], deadline: float) -> tuple[int, Any]:
        """(status, decoded JSON body) for a POST to /chat/completions, with bounded retries."""
        url = f"{self.base_url}/chat/completions"
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        for attempt in range(1, self.max_attempts + 1):
            left = deadline - time.monotonic()
            if left <= 0:
                raise LMTimeout("no time left for the request", BACKEND)
            try:
                status, headers, raw = self._exchange(url, payload, deadline)
            except httpx.TimeoutException as exc:
                raise LMTimeout(f"{self.base_url} did not answer in time", BACKEND) from exc
            except httpx.TransportError as exc:
                raise LMUnavailable(f"cannot reach {self.base_url}: {exc}", BACKEND) from exc
            if status in (401, 403):
                raise LMUnavailable(
                    f"{self.base_url} refused the API key (HTTP {status}): check REELBOT_LM_KEY",
                    BACKEND,
                    status=status,
                )
            if status not in _RETRY_STATUS:
                try:
                    return status, json.loads(raw)
                except ValueError as exc:
                    if status == 200:
                        raise LMBadOutput(
                            f"{self.base_url} sent a body that is not JSON", BACKEND
                        ) from exc
                    return status, raw.decode("utf-8", "replace")
            wait = retry_after_seconds(headers.get("retry-after"))
            if wait is None:
                wait = self.backoff_s * 2 ** (attempt - 1) * (0.8 + 0.4 * random.random())
            what = "rate limited (HTTP 429)" if status == 429 else f"HTTP {status}"
            if attempt == self.max_attempts:
                raise LMUnavailable(
                    f"{self.base_url}: {what} on all {attempt} attempts", BACKEND, status=status
                )
            if time.monotonic() + wait >= deadline:
                raise LMUnavailable(
                    f"{self.base_url}: {what}; it asks to wait {wait:.0f} s, past the time limit",
                    BACKEND,
                    status=status,
                )
            log.info("%s: %s; retrying in %.1f s", self.base_url, what, wait)
            time.sleep(wait)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _exchange(
        self, url: str, payload: bytes, deadline: float
    ) -> tuple[int, httpx.Headers, bytes]:
        """One HTTP exchange whose whole body arrives before `deadline` (a trickle is cut)."""
        left = max(0.01, deadline - time.monotonic())
        timeout = httpx.Timeout(left, connect=min(left, 10.0))
        with self._client.stream("POST", url, content=payload, timeout=timeout) as response:
            chunks: list[bytes] = []
            for chunk in response.iter_bytes():
                chunks.append(chunk)
                if time.monotonic() > deadline:
                    raise httpx.ReadTimeout("body still arriving at the deadline")
            return response.status_code, response.headers, b"".join(chunks)


def _about_format(answer: Any) -> bool:
    text = json.dumps(answer) if not isinstance(answer, str) else answer
    return "response_format" in text or "json_schema" in text


def _snippet(answer: Any) -> str:
    if isinstance(answer, dict):
        err = answer.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:300]
        return json.dumps(answer, ensure_ascii=False)[:300]
    return str(answer)[:300]


def _content(answer: Any) -> tuple[str, int, int]:
    """The text and token counts of a chat completion body."""
    try:
        message = answer["choices"][0]["message"]
    except (KeyError, IndexError, TypeError) as exc:
        raise LMBadOutput(f"not a chat completion: {_snippet(answer)}", BACKEND) from exc
    text = message.get("content")
    if not isinstance(text, str):
        refusal = message.get("refusal")
        why = f" (refusal: {refusal})" if refusal else ""
        raise LMBadOutput(f"the answer has no text{why}", BACKEND)
    usage = answer.get("usage") or {}
    return text, int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
