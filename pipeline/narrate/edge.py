"""edge-tts (Microsoft's online neural voices): one request per sentence, with word boundaries.

Sentences are synthesised concurrently (a few at a time) so a 10-line script costs about one
round trip, and each sentence's audio and boundaries stay separate: every script line gets an
exact span. `endpoint` replaces edge-tts's websocket URL (a self-hosted relay, or a local
stand-in in tests); the real `edge_tts.Communicate` client runs either way.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import tempfile
import threading
import wave
from collections.abc import Coroutine, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np

from pipeline.ffmpeg import run_ffmpeg
from pipeline.narrate.model import Clip, TTSFailure
from pipeline.plan import WordTiming
from pipeline.settings import settings

log = logging.getLogger(__name__)

T = TypeVar("T")
_TICKS = 10_000_000  # edge-tts offsets are in 100 ns ticks
# edge_tts reads its URL from a module global; swapping it is guarded so that concurrent
# narrations with different endpoints cannot interleave.
_url_lock = threading.Lock()


@contextlib.contextmanager
def _endpoint(url: str | None) -> Iterator[None]:
    if url is None:
        yield
        return
    import edge_tts.communicate as comm

    with _url_lock:
        saved = getattr(comm, "WSS_URL")  # noqa: B009 - not re-exported, typed as private
        setattr(comm, "WSS_URL", url)  # noqa: B010
        try:
            yield
        finally:
            setattr(comm, "WSS_URL", saved)  # noqa: B010


def run_coroutine(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion from sync code, even when this thread already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def describe_failure(exc: BaseException) -> tuple[str, str]:
    """A stable code and a short English reason for an edge-tts failure (told to the user)."""
    import aiohttp
    from edge_tts import exceptions as ex

    if isinstance(exc, aiohttp.WSServerHandshakeError | aiohttp.ClientResponseError):
        if exc.status == 403:
            return "forbidden", "the edge-tts service refused the request (HTTP 403)"
        return "http_error", f"the edge-tts service answered HTTP {exc.status}"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "dns", "the edge-tts service's address could not be resolved (DNS error)"
    if isinstance(exc, aiohttp.ClientConnectorError | ConnectionError):
        return "unreachable", "the edge-tts service could not be reached"
    if isinstance(exc, TimeoutError | aiohttp.ServerTimeoutError):
        return "timeout", "the edge-tts service timed out"
    if isinstance(exc, ex.NoAudioReceived):
        return "no_audio", "the edge-tts service returned no audio"
    if isinstance(exc, ex.EdgeTTSException):
        return "protocol", f"the edge-tts service sent an unexpected answer ({type(exc).__name__})"
    return "error", f"edge-tts failed ({type(exc).__name__}: {exc})"


class EdgeEngine:
    """Synthesises sentences with edge-tts and returns one decoded `Clip` per sentence."""

    name = "edge-tts"

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        concurrency: int = 3,
        connect_timeout: int = 8,
        receive_timeout: int = 15,
    ) -> None:
        self.endpoint = endpoint or settings().edge_tts_url or None
        self.concurrency = concurrency
        self.connect_timeout = connect_timeout
        self.receive_timeout = receive_timeout

    def synthesize(
        self, sentences: Sequence[str], voice: str, rate: str, pitch: str, work_dir: str
    ) -> list[Clip]:
        """All sentences, in order; any failure raises `TTSFailure` with a readable reason."""
        with _endpoint(self.endpoint):
            try:
                results = run_coroutine(self._all(sentences, voice, rate, pitch))
            except TTSFailure:
                raise
            except Exception as exc:  # aiohttp / edge_tts / timeouts: all mean "use fallback"
                log.info("edge-tts failed: %r", exc)
                code, reason = describe_failure(exc)
                raise TTSFailure(self.name, reason, code) from exc
        return [self._decode(mp3, words, work_dir) for mp3, words in results]

    async def _all(
        self, sentences: Sequence[str], voice: str, rate: str, pitch: str
    ) -> list[tuple[bytes, tuple[WordTiming, ...]]]:
        gate = asyncio.Semaphore(self.concurrency)

        async def one(text: str) -> tuple[bytes, tuple[WordTiming, ...]]:
            async with gate:
                # A hard ceiling on top of the socket timeouts: a trickling server cannot hang us.
                limit = self.connect_timeout + self.receive_timeout + 0.05 * len(text)
                return await asyncio.wait_for(self._one(text, voice, rate, pitch), limit)

        tasks = [asyncio.create_task(one(s)) for s in sentences]
        try:
            return list(await asyncio.gather(*tasks))
        finally:
            for t in tasks:
                t.cancel()

    async def _one(
        self, text: str, voice: str, rate: str, pitch: str
    ) -> tuple[bytes, tuple[WordTiming, ...]]:
        import edge_tts

        comm = edge_tts.Communicate(
            text,
            voice,
            rate=rate,
            pitch=pitch,
            boundary="WordBoundary",
            connect_timeout=self.connect_timeout,
            receive_timeout=self.receive_timeout,
        )
        audio = bytearray()
        words: list[WordTiming] = []
        async for chunk in comm.stream():
            if chunk["type"] == "audio":
                audio += chunk.get("data", b"")
            elif chunk["type"] == "WordBoundary":
                start = chunk.get("offset", 0) / _TICKS
                end = start + chunk.get("duration", 0) / _TICKS
                words.append(WordTiming(chunk.get("text", ""), start, end))
        if not audio:
            raise TTSFailure(self.name, "the edge-tts service returned no audio", "no_audio")
        return bytes(audio), tuple(words)

    def _decode(self, mp3: bytes, words: tuple[WordTiming, ...], work_dir: str) -> Clip:
        fd, src = tempfile.mkstemp(suffix=".mp3", dir=work_dir)
        dst = src[:-4] + ".wav"
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(mp3)
            try:
                run_ffmpeg(["-v", "error", "-i", src, "-ac", "1", "-c:a", "pcm_s16le", dst],
                           what="decoding edge-tts audio")  # fmt: skip
            except Exception as exc:
                raise TTSFailure(
                    self.name, "the edge-tts audio could not be decoded", "protocol"
                ) from exc
            with wave.open(dst, "rb") as wav:
                rate = wav.getframerate()
                pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
        finally:
            for p in (src, dst):
                with contextlib.suppress(OSError):
                    os.remove(p)
        if not len(pcm):
            raise TTSFailure(self.name, "the edge-tts service returned empty audio", "no_audio")
        return Clip(pcm.astype(np.float32) / 32768.0, rate, words, timed=bool(words))
