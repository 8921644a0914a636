"""A local stand-in for Microsoft's edge-tts websocket service, for offline tests.

It speaks enough of the protocol for the real `edge_tts.Communicate` client: it reads the
`speech.config` and `ssml` messages, answers `turn.start`, binary `audio` frames (MP3 made by
espeak-ng + ffmpeg, so there is real speech in it), one `audio.metadata` WordBoundary message
per word (offsets in 100 ns ticks from espeak-ng's word events) and `turn.end`. Modes make it
fail the ways the real service does: HTTP 403 at the handshake, no audio, or no answer.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import uuid
from dataclasses import dataclass, field
from xml.sax.saxutils import unescape

import numpy as np
from aiohttp import WSMsgType, web

from pipeline.ffmpeg import ffmpeg_exe
from pipeline.narrate.offline import EspeakEngine
from pipeline.plan import WordTiming
from tests.standin_server import LoopbackServer


@dataclass
class Request:
    config: str = ""
    ssml: str = ""
    path: str = ""

    @property
    def text(self) -> str:
        m = re.search(r"<prosody[^>]*>(.*)</prosody>", self.ssml, re.S)
        return unescape(m.group(1)) if m else ""

    @property
    def voice(self) -> str:
        m = re.search(r"<voice name='([^']+)'>", self.ssml)
        return m.group(1) if m else ""


@dataclass
class EdgeStandIn(LoopbackServer):
    """Run with `with EdgeStandIn() as s:`; point the narrator at `s.url`."""

    mode: str = "ok"  # ok | 403 | no_audio | hang
    # Like the real service, time Chinese by words: here every `zh_word` characters make one.
    zh_word: int = 1
    requests: list[Request] = field(default_factory=list)
    port: int = 0

    @property
    def url(self) -> str:
        return (
            f"ws://127.0.0.1:{self.port}/consumer/speech/synthesize/readaloud/edge/v1"
            "?TrustedClientToken=test"
        )

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/consumer/speech/synthesize/readaloud/edge/v1", self._ws)

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        if self.mode == "403":
            raise web.HTTPForbidden()
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        req = Request(path=request.path_qs)
        self.requests.append(req)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            head, _, body = msg.data.partition("\r\n\r\n")
            if "Path:speech.config" in head:
                req.config = body
            elif "Path:ssml" in head:
                req.ssml = body
                if self.mode == "hang":  # never answer; let go when the stand-in stops
                    await self._stop.wait()
                    break
                await self._answer(ws, req)
                break
        await ws.close()
        return ws

    async def _answer(self, ws: web.WebSocketResponse, req: Request) -> None:
        rid = uuid.uuid4().hex
        await ws.send_str(f"X-RequestId:{rid}\r\nPath:turn.start\r\n\r\n{{}}")
        if self.mode != "no_audio":
            lang = "zh" if re.search(r"[\u4e00-\u9fff]", req.text) else "en"
            engine = EspeakEngine()
            voice = engine.voice_for(lang)
            clip = await asyncio.to_thread(engine.synthesize, req.text, lang, voice, 0.0, 0)
            mp3 = await asyncio.to_thread(_mp3, clip.samples, clip.rate)
            header = f"X-RequestId:{rid}\r\nContent-Type:audio/mpeg\r\nPath:audio\r\n".encode()
            for i in range(0, len(mp3), 4096):
                await ws.send_bytes(len(header).to_bytes(2, "big") + header + mp3[i : i + 4096])
            words = clip.words
            if lang == "zh" and self.zh_word > 1:
                words = tuple(
                    WordTiming("".join(w.text for w in grp), grp[0].start, grp[-1].end)
                    for grp in (
                        clip.words[i : i + self.zh_word]
                        for i in range(0, len(clip.words), self.zh_word)
                    )
                )
            for w in words:
                meta = {
                    "Metadata": [
                        {
                            "Type": "WordBoundary",
                            "Data": {
                                "Offset": int(w.start * 1e7),
                                "Duration": int((w.end - w.start) * 1e7),
                                "text": {
                                    "Text": w.text,
                                    "Length": len(w.text),
                                    "BoundaryType": "WordBoundary",
                                },
                            },
                        }
                    ]
                }
                await ws.send_str(
                    f"X-RequestId:{rid}\r\nContent-Type:application/json; charset=utf-8\r\n"
                    f"Path:audio.metadata\r\n\r\n{json.dumps(meta, ensure_ascii=False)}"
                )
        await ws.send_str(f"X-RequestId:{rid}\r\nPath:turn.end\r\n\r\n{{}}")


def _mp3(samples: np.ndarray, rate: int) -> bytes:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    done = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-f", "s16le", "-ar", str(rate), "-ac", "1", "-i", "-",
         "-ar", "24000", "-b:a", "48k", "-f", "mp3", "-"],
        input=pcm, capture_output=True, check=True,
    )  # fmt: skip
    out: bytes = done.stdout
    return out
