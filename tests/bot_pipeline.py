"""A small, real implementation of the bot's Pipeline protocol for the bot's end-to-end tests.

It does real work on the footage the bot received (probe, keyframes, an ffmpeg render of the
shots cut to 9:16, a cover JPEG, pipeline.speech for voice notes), without the models of the full
pipeline, so the bot's conversation, queue and delivery can be tested before `make.orchestrate`
lands. The tests pick it in one line (`make_pipeline` in test_bot_e2e.py).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.brief import Brief
from pipeline.errors import Cancelled, EditError, MediaError
from pipeline.ffmpeg import run_ffmpeg
from pipeline.make.editrequest import EditRequest
from pipeline.media import probe
from pipeline.script.model import Script, ScriptLine

W, H, SHOT = 180, 320, 1.0  # output size and seconds per shot: tiny and fast


@dataclass(frozen=True, slots=True)
class Storyboard:
    job_dir: str
    script: Script
    frames: tuple[tuple[str, str], ...]
    warnings: tuple[str, ...]
    sounds: tuple[tuple[int, str], ...] = ()

    def warnings_in(self, language: str) -> tuple[str, ...]:
        return self.warnings

    def shown_in(self, language: str) -> tuple[str, ...]:
        return ()  # the stand-in does not recognise what its frames show


@dataclass(frozen=True, slots=True)
class MakeResult:
    job_dir: str
    video: str
    cover: str
    script: Script
    duration: float
    width: int
    height: int
    voice_engine: str
    warnings: tuple[str, ...]

    def warnings_in(self, language: str) -> tuple[str, ...]:
        return self.warnings


@dataclass(frozen=True, slots=True)
class Transcript:
    language: str
    text: str


class FootagePipeline:
    """prepare / revise / render_job / transcribe with real media work; `realtime` paces the
    render at playback speed so a test can act while ffmpeg runs."""

    def __init__(self, realtime: bool = False) -> None:
        self.realtime = realtime
        self.renders = 0

    def _state(self, job_dir: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((Path(job_dir) / "state.json").read_text())
        return data

    def _board(
        self,
        job_dir: str,
        script: Script,
        shots: list[str],
        warnings: list[str],
        cancel: threading.Event | None,
    ) -> Storyboard:
        frames = []
        lines = script.spoken()
        for i, text in enumerate(lines):
            src = shots[i % len(shots)]
            jpg = str(Path(job_dir) / f"key_{i:02d}.jpg")
            run_ffmpeg(["-i", src, "-frames:v", "1", "-vf", f"scale={W}:-2", jpg], cancel=cancel)
            frames.append((text, jpg))
        state = {"shots": shots, "script": dataclasses.asdict(script), "warnings": warnings}
        (Path(job_dir) / "state.json").write_text(json.dumps(state, ensure_ascii=False))
        script.save(Path(job_dir) / "script.json")  # what a reply to the video is read against
        return Storyboard(job_dir, script, tuple(frames), tuple(warnings))

    def prepare(
        self,
        brief: Brief,
        job_dir: str,
        progress: Any = None,
        cancel: threading.Event | None = None,
    ) -> Storyboard:
        Path(job_dir).mkdir(parents=True, exist_ok=True)
        shots, captions, warnings = [], [], []
        for i, item in enumerate(brief.footage):
            if progress:
                progress("analyze", i / max(len(brief.footage), 1))
            try:
                probe(item.path)
            except MediaError as exc:
                warnings.append(f"{exc.params['name']} skipped ({exc.reason})")
                continue
            shots.append(item.path)
            captions.append(item.caption)
        if not shots:
            raise MediaError(brief.footage[0].path, "corrupt", "no usable footage")
        if progress:
            progress("script", 0.5)
        zh = brief.language == "zh"
        script = Script(
            title=brief.topic,
            hook=brief.topic,
            lines=tuple(
                ScriptLine(c or (f"镜头{i + 1}" if zh else f"Shot {i + 1}"))
                for i, c in enumerate(captions)
            ),
            cta="关注我看更多" if zh else "Follow for more",
            hashtags=("#reelbot", f"#{brief.style}"),
            language=brief.language,
            style=brief.style,
            target_seconds=brief.seconds,
            estimated_seconds=SHOT * len(shots),
            writer="test",
        )
        if progress:
            progress("plan", 0.9)
        return self._board(job_dir, script, shots, warnings, cancel)

    def revise(
        self,
        job_dir: str,
        script: Script | None = None,
        *,
        another: bool = False,
        progress: Any = None,
        cancel: threading.Event | None = None,
    ) -> Storyboard:
        state = self._state(job_dir)
        old = state["script"]
        old["lines"] = tuple(ScriptLine(**line) for line in old["lines"])
        old["hashtags"] = tuple(old["hashtags"])
        current = Script(**old)
        if script is None and another:
            script = dataclasses.replace(
                current, hook="Another take: " + current.hook, lines=current.lines[::-1]
            )
        if progress:
            progress("script", 1.0)
        return self._board(job_dir, script or current, state["shots"], state["warnings"], cancel)

    def render_job(
        self, job_dir: str, progress: Any = None, cancel: threading.Event | None = None
    ) -> MakeResult:
        state = self._state(job_dir)
        shots: list[str] = state["shots"]
        old = state["script"]
        old["lines"] = tuple(ScriptLine(**line) for line in old["lines"])
        old["hashtags"] = tuple(old["hashtags"])
        script = Script(**old)
        n = len(shots)
        args: list[str] = []
        chains = []
        for i, src in enumerate(shots):
            still = probe(src).is_still
            args += (["-loop", "1"] if still else []) + ["-t", str(SHOT), "-i", src]
            chains.append(
                f"[{i}:v]scale={W}:{H}:force_original_aspect_ratio=increase,"
                f"crop={W}:{H},setsar=1,fps=30,format=yuv420p[v{i}]"
            )
        duration = SHOT * n
        args += ["-f", "lavfi", "-t", str(duration), "-i", "sine=frequency=440:sample_rate=48000"]
        pace = ",realtime" if self.realtime else ""
        graph = ";".join(chains) + ";" + "".join(f"[v{i}]" for i in range(n))
        graph += f"concat=n={n}:v=1:a=0{pace}[v]"
        out = str(Path(job_dir) / "out.mp4")
        cover = str(Path(job_dir) / "cover.jpg")
        run_ffmpeg(
            [
                *args,
                "-filter_complex",
                graph,
                "-map",
                "[v]",
                "-map",
                f"{n}:a",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-c:a",
                "aac",
                "-shortest",
                "-movflags",
                "+faststart",
                out,
            ],
            duration=duration,
            progress=lambda f: progress and progress("render", f),
            cancel=cancel,
            what="test render",
        )
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        run_ffmpeg(["-i", out, "-frames:v", "1", cover], cancel=cancel)
        self.renders += 1
        return MakeResult(
            job_dir, out, cover, script, duration, W, H, "test-tone", tuple(state["warnings"])
        )

    def edit(
        self,
        job_dir: str,
        request: EditRequest,
        progress: Any = None,
        cancel: threading.Event | None = None,
    ) -> MakeResult:
        """A new version folder (v2, v3 ...) with the title or a sentence changed, rendered there
        as `render_job` does; other kinds are the real pipeline's (`pipeline.make.edits`)."""
        root = Path(job_dir)
        taken = [int(p.name[1:]) for p in root.glob("v[0-9]*")]
        version = root / f"v{max(taken, default=1) + 1}"
        version.mkdir()
        state = json.loads((root / request.base / "state.json").read_text())
        script = state["script"]
        if request.kind == "title":
            script["title"] = request.text
        elif request.kind == "line" and request.index == 1:
            script["hook"] = request.text
        else:
            raise EditError(f"the stand-in does not make {request.kind} edits")
        (version / "state.json").write_text(json.dumps(state, ensure_ascii=False))
        return self.render_job(str(version), progress, cancel)

    def understand_edit(
        self, reply: str, sentences: tuple[str, ...], seconds: int, language: str, base: str
    ) -> EditRequest | None:
        """The real mapping of a free-text edit reply (`pipeline.make.editlm`), with the
        process's language model settings (off in the tests unless a test sets them)."""
        from pipeline.make.editlm import understand_edit

        return understand_edit(reply, sentences, seconds, language, base)

    def transcribe(self, path: str, timeout: float | None = None) -> Transcript:
        heard = _transcriber().transcribe(path, timeout=timeout)
        return Transcript(heard.language, heard.text)


@functools.cache
def _transcriber() -> Any:
    """pipeline.speech's transcriber on the packaged whisper base (which it joins once), an
    instance of the stand-in's own: the real pipeline's, shared by the process, may be busy
    with footage of a job an earlier test left running."""
    from pipeline import speech

    return speech.Transcriber(str(speech.packaged_model_dir()), cpu_threads=2)


RENDERS_LOG = "renders.log"


class CountedFootagePipeline(FootagePipeline):
    """The stand-in, noting each render's start and end in the job folder (`renders.log`: "start
    PID TIME" / "end PID TIME"), so a test can count renders across worker processes."""

    def render_job(
        self, job_dir: str, progress: Any = None, cancel: threading.Event | None = None
    ) -> MakeResult:
        import os
        import time

        log = Path(job_dir) / RENDERS_LOG
        with open(log, "a") as f:
            f.write(f"start {os.getpid()} {time.time()}\n")
        result = super().render_job(job_dir, progress, cancel)
        with open(log, "a") as f:
            f.write(f"end {os.getpid()} {time.time()}\n")
        return result


def realtime_counted() -> FootagePipeline:
    """What `reelbot worker` runs steps with in the engine tests (REELBOT_WORKER_PIPELINE)."""
    return CountedFootagePipeline(realtime=True)
