"""Length fitting and stage reuse in `make.orchestrate`, with a narrator whose length we choose."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pipeline.bench import samples
from pipeline.brief import Brief, Footage
from pipeline.make import orchestrate as make
from pipeline.make import stages as make_stages
from pipeline.narrate.model import Narration
from pipeline.plan import OutputSpec, WordTiming
from pipeline.script.model import Script


class Voice:
    """Speaks any script in `lengths[k]` seconds on its k-th call (the last length repeats)."""

    def __init__(self, lengths: list[float]) -> None:
        self.lengths = lengths
        self.scripts: list[Script] = []

    def narrate_script(
        self, script: Script, out_dir: Any, voice: str | None = None, rate: str = "+0%"
    ) -> Narration:
        total = self.lengths[min(len(self.scripts), len(self.lengths) - 1)]
        self.scripts.append(script)
        wav = os.path.join(out_dir, "narration.wav")
        samples.tone_wav(wav, total)
        sentences = script.spoken()
        step = total / len(sentences)
        spans = tuple((k * step, (k + 1) * step - 0.2) for k in range(len(sentences)))
        words = tuple(WordTiming(s, a, b) for s, (a, b) in zip(sentences, spans, strict=True))
        return Narration(wav, total, "espeak-ng", "test", script.language, words, spans,
                         sentences, fallback_reason="offline mode was requested")  # fmt: skip


@pytest.fixture
def brief(tmp_path: Path) -> Brief:
    photo = samples.photo(str(tmp_path / "p.jpg"), (30, 120, 200), (640, 480))
    return Brief(topic="Why the sky is blue", seconds=20, footage=(Footage(photo, "blue sky"),),
                 output=OutputSpec(width=180, height=320))  # fmt: skip


@pytest.mark.slow
def test_narration_far_off_target_gets_one_refit(
    brief: Brief, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    voice = Voice([40.0, 30.0])  # twice the 20 s target, then still 50% over
    monkeypatch.setattr(make_stages, "narrator", lambda config=None: voice)
    job = str(tmp_path / "job")
    board = make.prepare(brief, job)
    assert len(voice.scripts) == 2  # one refit, not a loop
    first, second = voice.scripts
    assert second.target_seconds < first.target_seconds  # asked for a shorter script
    assert board.script == second == Script.from_json(Path(job, "script.json").read_text())
    assert make.last_run(job)["narration"] == "ran"
    # Nothing changed: preparing again reuses every stage and does not speak again.
    make.prepare(brief, job)
    assert len(voice.scripts) == 2
    assert set(make.last_run(job).values()) == {"reused"}


@pytest.mark.slow
def test_on_target_narration_is_kept_and_user_scripts_are_not_refitted(
    brief: Brief, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    voice = Voice([21.0])
    monkeypatch.setattr(make_stages, "narrator", lambda config=None: voice)
    job = str(tmp_path / "job")
    board = make.prepare(brief, job)
    assert len(voice.scripts) == 1
    voice.lengths = [45.0]  # the user's script runs long: it is theirs, so it is not rewritten
    edited = Script.from_dict({**board.script.to_dict(), "hook": "A much longer hook, " * 6})
    revised = make.revise(job, edited)
    assert len(voice.scripts) == 2 and revised.script == edited
    runs = make.last_run(job)
    assert runs["analysis"] == "reused" and runs["narration"] == runs["plan"] == "ran"
    assert any("offline mode" in w for w in revised.warnings)


@pytest.mark.slow
def test_cancel_stops_between_stages_and_the_job_can_go_on(
    brief: Brief, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from pipeline.errors import Cancelled

    voice = Voice([20.0])
    monkeypatch.setattr(make_stages, "narrator", lambda config=None: voice)
    job = str(tmp_path / "job")
    stop = threading.Event()

    def progress(stage: str, _fraction: float) -> None:
        if stage == "script":
            stop.set()  # the user pressed cancel while the script was being written

    with pytest.raises(Cancelled):
        make.prepare(brief, job, progress, stop)
    assert voice.scripts == [] and not Path(job, "plan.json").exists()
    make.prepare(brief, job)  # later, the same job folder finishes; the analysis is kept
    assert make.last_run(job)["analysis"] == "reused" and len(voice.scripts) == 1


@pytest.mark.slow
def test_a_new_output_size_redoes_only_the_plan_and_render_inputs(
    brief: Brief, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import dataclasses

    voice = Voice([20.0])
    monkeypatch.setattr(make_stages, "narrator", lambda config=None: voice)
    job = str(tmp_path / "job")
    make.prepare(brief, job)
    square = dataclasses.replace(brief, output=OutputSpec(width=240, height=240))
    make.prepare(square, job)
    runs = make.last_run(job)
    assert runs["script"] == runs["narration"] == runs["analysis"] == "reused"
    assert runs["plan"] == "ran" and len(voice.scripts) == 1
