"""What the bot needs from the pipeline, as a protocol, so tests can drive the real bot with any
implementation and the bot never reaches into pipeline internals.

`default_pipeline()` is the real one: `pipeline.make.orchestrate` for the video and
`pipeline.speech` for voice notes, imported lazily so the bot starts without loading models.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol, runtime_checkable

from pipeline.brief import Brief
from pipeline.make.editrequest import EditRequest
from pipeline.script.model import Script
from pipeline.settings import Settings as PipelineSettings

ProgressFn = Callable[[str, float], None]


class StoryboardLike(Protocol):
    """The result of preparing a job: the script and one keyframe per narrated line."""

    @property
    def job_dir(self) -> str: ...
    @property
    def script(self) -> Script: ...
    @property
    def frames(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def sounds(self) -> tuple[tuple[int, str], ...]:
        """The footage's own sound per sentence: (sentence from 1, reason code); 0 = the video."""
        ...

    def warnings_in(self, language: str) -> tuple[str, ...]:
        """What the user should know (a file left out, the fallback voice), in `language`."""

    def shown_in(self, language: str) -> tuple[str, ...]:
        """What the shot under each frame shows ("咖啡 · 1人"), in `language`; may be shorter
        than `frames` (unknown)."""


class MakeResultLike(Protocol):
    """The rendered video and the facts sendVideo needs."""

    @property
    def video(self) -> str: ...
    @property
    def cover(self) -> str: ...
    @property
    def script(self) -> Script: ...
    @property
    def duration(self) -> float: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def voice_engine(self) -> str: ...
    def warnings_in(self, language: str) -> tuple[str, ...]:
        """What the user should know (a file left out, the fallback voice), in `language`."""


class TranscriptLike(Protocol):
    """Speech turned into text: at least the language heard and the text."""

    @property
    def language(self) -> str: ...
    @property
    def text(self) -> str: ...


class Pipeline(Protocol):
    """The four calls the bot makes; all blocking, run on worker threads."""

    def prepare(
        self,
        brief: Brief,
        job_dir: str,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> StoryboardLike:
        """Analysis, script, narration and plan into `job_dir`; everything but the render."""
        ...

    def revise(
        self,
        job_dir: str,
        script: Script | None = None,
        *,
        another: bool = False,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> StoryboardLike:
        """The user's edited script, or another version, planned again reusing the analysis."""
        ...

    def render_job(
        self,
        job_dir: str,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> MakeResultLike:
        """The job folder's plan rendered to the MP4 and its cover."""
        ...

    def transcribe(self, path: str, timeout: float | None = None) -> TranscriptLike:
        """A voice note's words and language; a `ReelbotError` (key `speech_timeout`) once it
        has taken `timeout` seconds."""
        ...


@runtime_checkable
class Warming(Protocol):
    """A pipeline that can analyse one footage file ahead of its job (`bot.prefetch`)."""

    def warm(self, path: str, cancel: threading.Event | None = None) -> object:
        """Analyse (and transcribe) `path` into the caches `prepare` reads."""
        ...


@runtime_checkable
class ModelWarming(Protocol):
    """A pipeline that can load its models before the first job (the bot calls it at start)."""

    def warm_models(self) -> str:
        """Load them now; returns the script writer's name."""
        ...


@runtime_checkable
class Editing(Protocol):
    """A pipeline that can apply an edit to a delivered video (`bot.edits`)."""

    def edit(
        self,
        job_dir: str,
        request: EditRequest,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> MakeResultLike:
        """A new version of the job with `request` applied, rendered (changed segments only)."""
        ...


@runtime_checkable
class Understanding(Protocol):
    """A pipeline that can map a free-text edit reply with its language model (`bot.edits`)."""

    def understand_edit(
        self, reply: str, sentences: tuple[str, ...], seconds: int, language: str, base: str
    ) -> EditRequest | None:
        """The edit `reply` asks of a video of `sentences`, or None (not understood, or the
        model is off, failed or took too long: bounded to about 20 s)."""
        ...


class DefaultPipeline:
    """The real pipeline: `pipeline.make.orchestrate` and the packaged speech-to-text model."""

    def __init__(self, config: PipelineSettings | None = None) -> None:
        # The pipeline settings every job runs with (None: the process's snapshot).
        self.config = config

    def prepare(
        self,
        brief: Brief,
        job_dir: str,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> StoryboardLike:
        from pipeline.make import orchestrate as make  # type: ignore[attr-defined,unused-ignore]

        result: StoryboardLike = make.prepare(
            brief, job_dir, progress=progress, cancel=cancel, config=self.config
        )
        return result

    def revise(
        self,
        job_dir: str,
        script: Script | None = None,
        *,
        another: bool = False,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> StoryboardLike:
        from pipeline.make import orchestrate as make  # type: ignore[attr-defined,unused-ignore]

        result: StoryboardLike = make.revise(
            job_dir, script, another=another, progress=progress, cancel=cancel, config=self.config
        )
        return result

    def render_job(
        self,
        job_dir: str,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> MakeResultLike:
        from pipeline.make import orchestrate as make  # type: ignore[attr-defined,unused-ignore]

        result: MakeResultLike = make.render_job(
            job_dir, progress=progress, cancel=cancel, config=self.config
        )
        return result

    def warm_models(self) -> str:
        from pipeline.make.orchestrate import warm_models

        return warm_models(self.config)

    def warm(self, path: str, cancel: threading.Event | None = None) -> object:
        from pipeline.footage.warm import warm

        return warm(path, self.config, cancel)

    def edit(
        self,
        job_dir: str,
        request: EditRequest,
        progress: ProgressFn | None = None,
        cancel: threading.Event | None = None,
    ) -> MakeResultLike:
        from pipeline.make.edits import apply_edit

        result: MakeResultLike = apply_edit(
            job_dir, request, progress=progress, cancel=cancel, config=self.config
        )
        return result

    def understand_edit(
        self, reply: str, sentences: tuple[str, ...], seconds: int, language: str, base: str
    ) -> EditRequest | None:
        from pipeline.make.editlm import understand_edit

        return understand_edit(reply, sentences, seconds, language, base, config=self.config)

    def transcribe(self, path: str, timeout: float | None = None) -> TranscriptLike:
        # The whisper model loads once per process, on the first voice note (pipeline.loadonce).
        from pipeline import speech  # type: ignore[attr-defined,unused-ignore]

        result: TranscriptLike = speech.default_transcriber().transcribe(
            path, language=None, timeout=timeout
        )
        return result
