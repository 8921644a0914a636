"""A local stand-in for an OpenAI-compatible chat completions server, for offline tests.

It answers POST /v1/chat/completions with whatever the test queued, in order (the last reply
repeats): a completion whose message content is given text, an HTTP error with headers (429
with Retry-After, 500, 401, a 400 rejecting `response_format`), a hang, or a body that trickles
out a byte at a time. Every request body is kept, with the time it arrived, so a test can check
what the client sent (the response_format, the repair message, the Authorization header).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.standin_server import LoopbackServer


@dataclass(frozen=True)
class Reply:
    """What the stand-in answers one request with."""

    content: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    error: str = ""
    hang_s: float = 0.0  # sleep this long before answering
    trickle_s: float = 0.0  # send the body one byte per this many seconds


def ok(content: str | dict[str, Any]) -> Reply:
    text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
    return Reply(content=text)


@dataclass
class Seen:
    body: dict[str, Any]
    headers: dict[str, str]
    at: float


@dataclass
class OpenAIStandIn(LoopbackServer):
    """Run with `with OpenAIStandIn([...replies]) as s:`; point the client at `s.url`."""

    replies: list[Reply] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    shutdown_timeout = 0.5

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self._chat)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.seen.append(Seen(body, dict(request.headers), time.monotonic()))
        reply = self.replies[min(len(self.seen), len(self.replies)) - 1]
        if reply.hang_s:
            # Hang, but let the stand-in's shutdown end the wait (no handler left pending).
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), reply.hang_s)
        if reply.status != 200:
            payload = {"error": {"message": reply.error or f"status {reply.status}"}}
            return web.json_response(payload, status=reply.status, headers=reply.headers)
        answer = {
            "id": f"chatcmpl-{len(self.seen)}",
            "object": "chat.completion",
            "model": body.get("model", ""),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        }
        raw = json.dumps(answer, ensure_ascii=False).encode("utf-8")
        if not reply.trickle_s:
            return web.Response(body=raw, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        for i in range(len(raw)):
            await response.write(raw[i : i + 1])
            await asyncio.sleep(reply.trickle_s)
        await response.write_eof()
        return response
