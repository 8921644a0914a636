"""The bad-input corpus (tests/corpus.py) through probe, the analysis and `reelbot make`.

Each case has one exact outcome: kept as its kind, or left out with a message naming the file
and the reason; never a traceback, never leftover temporary files, and a picture over the caps
is refused before it is decoded (the child's peak memory is measured).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import pytest

from pipeline.errors import MediaError
from pipeline.footage import analyze
from pipeline.footage.contact import contact_sheet
from pipeline.media import probe
from pipeline.script import get_writer
from pipeline.script.request import ScriptRequest, ScriptRequestError, normalise
from tests.corpus import HOSTILE_TOPICS, Case, build_corpus

SMALL = ["--size", "180x320", "--seconds", "6", "--lang", "en", "--style", "vlog"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> list[Case]:
    return build_corpus(tmp_path_factory.mktemp("corpus"))


def by_name(corpus: list[Case], *names: str) -> list[Case]:
    found = {c.name: c for c in corpus}
    return [found[n] for n in names]


def reelbot(args: list[str], cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """`reelbot ARGS` in a child process, offline, with its own analysis cache."""
    full = {**os.environ, "REELBOT_TTS_OFFLINE": "1", "REELBOT_CACHE_DIR": str(cwd / "cache"),
            "PYTHONPATH": str(Path(__file__).resolve().parents[1]), **(env or {})}  # fmt: skip
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=timeout, check=False)  # fmt: skip


def no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "Traceback" not in done.stdout


def leftovers(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.rglob("*") if p.suffix in (".part", ".tmp")
                  or ".tmp." in p.name or p.name.endswith(".tmp.mp4"))  # fmt: skip


# --- probe ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_probe_gives_each_case_its_outcome(corpus: list[Case]) -> None:
    for case in corpus:
        if case.kept or case.stage == "analysis":
            assert probe(case.path).kind == (case.kind or "photo"), case.name
            continue
        with pytest.raises(MediaError) as err:
            probe(case.path)
        assert err.value.reason == case.reason, (case.name, err.value.message)
        assert err.value.message.startswith(f"{case.name}: "), err.value.message


@pytest.mark.slow
def test_probe_cli_names_each_refused_file(corpus: list[Case], tmp_path: Path) -> None:
    """`reelbot probe` in a child, with relative names: "a:b.mp4" is a file, not a protocol."""
    folder = corpus[0].path.parent
    names = [c.name if not c.name.startswith("-") else f"./{c.name}" for c in corpus]
    done = reelbot(["probe", "--json", *names], cwd=folder)
    no_traceback(done)
    assert done.returncode == 1  # some files are refused
    rows = json.loads(done.stdout)
    for case, row in zip(corpus, rows, strict=True):
        if case.reason and case.stage == "probe":
            assert row["error"] == f"media_{case.reason}", row
            assert case.name in row["message"]
        else:
            assert row["kind"] == (case.kind or "photo"), row


def peak_rss_mb(args: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    """The child's peak RSS: run it from a fresh process whose only child it is."""
    code = (
        "import resource, subprocess, sys, json\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(json.dumps([peak, done.returncode, done.stdout, done.stderr]))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    done = subprocess.run([sys.executable, "-c", code, sys.executable, "-m", "pipeline.cli",
                           *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120, check=True)  # fmt: skip
    peak, rc, out, err = json.loads(done.stdout)
    return float(peak), subprocess.CompletedProcess(args, rc, out, err)


@pytest.mark.slow
def test_oversized_pictures_are_refused_before_decoding(corpus: list[Case]) -> None:
    """A 420 KB 12000x12000 PNG: ffmpeg's stream probing alone used to take 471 MB for it."""
    folder = corpus[0].path.parent
    base, _ = peak_rss_mb(["probe", "good.jpg"], folder)
    for case in (c for c in corpus if c.big):
        peak, done = peak_rss_mb(["probe", case.name], folder)
        assert done.returncode == 1
        assert f"{case.name}: too large" in done.stdout
        assert "Traceback" not in done.stderr
        assert peak < base + 60, (case.name, peak, base)  # a probe, not a decode


@pytest.mark.slow
def test_caps_are_settings(corpus: list[Case]) -> None:
    from pipeline.footage.frames import read_photo
    from pipeline.settings import override

    good = by_name(corpus, "good.jpg")[0]  # 320x240 = 76800 pixels
    with override(max_photo_pixels=76799), pytest.raises(MediaError) as err:
        probe(good.path)
    assert err.value.reason == "too_large"
    with override(max_photo_pixels=76800):
        info = probe(good.path)
        assert info.kind == "photo"
    with override(max_frame_pixels=160 * 90 - 1), pytest.raises(MediaError, match="too large"):
        probe(by_name(corpus, "good.mp4")[0].path)
    # Pillow's own bomb limit follows: a photo over the cap is refused by read_photo too.
    with override(max_photo_pixels=30000), pytest.raises(MediaError) as err:
        read_photo(info, 64)
    assert err.value.reason == "too_large"


# --- analysis ------------------------------------------------------------------------------


@pytest.mark.slow
def test_analysis_leaves_out_a_file_that_fails_and_keeps_the_rest(
    corpus: list[Case], tmp_path: Path
) -> None:
    cases = [c for c in corpus if c.kept or c.stage == "analysis"]
    media = [probe(c.path) for c in cases]
    analysis = analyze(media, use_cache=False)
    for case, f in zip(cases, analysis.files, strict=True):
        if case.kept:
            assert (f.failed, f.shots >= 1) == ("", True), (case.name, f)
        else:
            assert f.failed == case.reason and case.name in f.message
            assert all(s.path != str(case.path) for s in analysis.shots)
    # The sheet draws every kept shot, a 4096x16 strip included (its 9:16 window is under a
    # pixel wide at this thumbnail size: Pillow's ValueError ended the job).
    sheet = contact_sheet(analysis, media, str(tmp_path / "sheet.jpg"), thumb_width=120)
    with av.open(sheet) as c:
        assert next(c.decode(video=0)).width == 4 * 128


# --- reelbot make --------------------------------------------------------------------------


@pytest.mark.slow
def test_make_keeps_the_good_footage_and_names_each_file_left_out(
    corpus: list[Case], tmp_path: Path
) -> None:
    names = [str(c.path) for c in corpus]
    job = tmp_path / "job"
    out = tmp_path / "out.mp4"
    done = reelbot(["make", "--topic", "A day in small clips", "--footage", *names, *SMALL,
                    "--job-dir", str(job), "-o", str(out)], cwd=tmp_path)  # fmt: skip
    no_traceback(done)
    assert done.returncode == 0, done.stderr[-3000:]
    for case in corpus:
        line = f"warning: {case.name} skipped: {case.reason.replace('_', ' ')}"
        assert (line in done.stderr) == (not case.kept), (case.name, done.stderr[-2000:])
    shots = json.loads((job / "shots.json").read_text(encoding="utf-8"))
    kept = {os.path.basename(f["path"]) for f in shots["files"] if f["shots"] and not
            f.get("failed")}  # fmt: skip
    assert kept == {c.name for c in corpus if c.kept}
    with av.open(str(out)) as c:
        stream = c.streams.video[0]
        assert (stream.width, stream.height) == (180, 320)
        assert float(c.duration or 0) / av.time_base >= 5.0
    assert leftovers(tmp_path) == []


@pytest.mark.slow
def test_make_with_no_usable_footage_fails_naming_every_file(
    corpus: list[Case], tmp_path: Path
) -> None:
    bad = by_name(corpus, "empty.mp4", "notes.mp4", "truncated.jpg", "bomb.png")
    job = tmp_path / "job"
    done = reelbot(["make", "--topic", "cats", "--footage", *(str(c.path) for c in bad),
                    *SMALL, "--job-dir", str(job)], cwd=tmp_path)  # fmt: skip
    no_traceback(done)
    assert done.returncode == 2
    assert "no usable footage left" in done.stderr
    for case in bad:
        assert f"{case.name} ({case.reason.replace('_', ' ')})" in done.stderr, done.stderr
    assert not (job / "out.mp4").exists()
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--size", "0x0"], "--size 0x0: width and height must be even"),
        (["--size", "wide"], "--size wide: 'wide' is not WIDTHxHEIGHT"),
        (["--seconds", "4"], "--seconds 4: must be between 5 and 180"),
        (["--seconds", "181"], "--seconds 181: must be between 5 and 180"),
        (["--style", "epic"], "unknown style 'epic'"),
        (["--music", "voice.wav.txt"], "--music voice.wav.txt: missing"),
        (["--music", "notes.mp4"], "--music notes.mp4: not media"),
        (["--music", "good.jpg"], "--music good.jpg: not media (no sound in it)"),
        (["-o", "."], "-o .: is a folder"),
        (["-o", "nowhere/out.mp4"], "does not exist"),
        (["--topic", "😀🎉🐱"], "topic: is empty"),
    ],
    ids=["size-0x0", "size-word", "seconds-4", "seconds-181", "style", "music-missing",
         "music-text", "music-photo", "out-folder", "out-missing-folder", "emoji-topic"],
)  # fmt: skip
@pytest.mark.slow
def test_make_checks_its_arguments_before_any_work(
    corpus: list[Case], extra: list[str], message: str
) -> None:
    folder = corpus[0].path.parent
    job = folder / "never-made"
    args = ["make", "--topic", "cats", "--footage", "good.mp4", "--job-dir", str(job), *extra]
    done = reelbot(args, cwd=folder, timeout=60)
    no_traceback(done)
    assert done.returncode == 2
    assert message in done.stderr, done.stderr
    assert not job.exists()  # refused before the job folder, the analysis or the narration


# --- topics and lengths --------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(HOSTILE_TOPICS))
def test_hostile_topics_are_cleaned_or_refused(kind: str) -> None:
    topic, kept = HOSTILE_TOPICS[kind]
    request = ScriptRequest(topic=topic, seconds=10)
    if kept is None:
        with pytest.raises(ScriptRequestError, match="topic: is empty"):
            normalise(request)
        return
    clean = normalise(request)
    assert clean.topic.startswith(kept)
    assert len(clean.topic) <= 80
    assert not any(ord(ch) < 32 for ch in clean.topic)
    assert "<" not in clean.topic
    script = get_writer(None).write(clean)
    assert script.spoken()


@pytest.mark.slow
@pytest.mark.parametrize("seconds", [5, 10, 180])
@pytest.mark.parametrize("spoken", [0.5, 1.0, 60.0, 900.0])
def test_every_documented_length_survives_a_refit(seconds: int, spoken: float) -> None:
    """A refit (the voice ran `spoken` s) is a valid request and the offline writer writes it:
    --seconds 5 and 180 used to fail whenever the factor was clamped (5 x 0.3 < 5 s)."""
    first = normalise(ScriptRequest(topic="لماذا تحب القطط الصناديق", seconds=seconds))
    again = normalise(first.refit(spoken * seconds / 10))
    script = get_writer(None).write(again)
    assert script.spoken()
    assert 0 < again.target_seconds <= 240


@pytest.mark.slow
def test_make_five_seconds_end_to_end(corpus: list[Case], tmp_path: Path) -> None:
    good = by_name(corpus, "good.mp4", "good.jpg")
    out = tmp_path / "five.mp4"
    done = reelbot(["make", "--topic", "Why cats love boxes, the long story of it",
                    "--footage", *(str(c.path) for c in good), "--size", "180x320",
                    "--seconds", "5", "--job-dir", str(tmp_path / "job"), "-o", str(out)],
                   cwd=tmp_path)  # fmt: skip
    no_traceback(done)
    assert done.returncode == 0, done.stderr[-2000:]
    with av.open(str(out)) as c:
        assert 2.0 < float(c.duration or 0) / av.time_base < 15.0


@pytest.mark.slow
def test_make_plays_animated_webp_and_avif(corpus: list[Case], tmp_path: Path) -> None:
    """Both reach the video: the WebP as an animation (ffmpeg's WebP demuxer cannot loop, and a
    looped input used to hang the render), the AVIF as a photo."""
    files = by_name(corpus, "anim.webp", "photo.avif")
    job = tmp_path / "job"
    done = reelbot(["make", "--topic", "colour cards", "--footage", *(str(c.path) for c in files),
                    "--size", "180x320", "--seconds", "5", "--job-dir", str(job)],
                   cwd=tmp_path, timeout=150)  # fmt: skip
    no_traceback(done)
    assert done.returncode == 0, done.stderr[-2000:]
    plan = json.loads((job / "plan.json").read_text(encoding="utf-8"))
    assert [s["kind"] for s in plan["sources"]] == ["animation", "photo"]
    assert {s["source"] for s in plan["segments"]} == {0, 1}
    with av.open(str(job / "out.mp4")) as c:
        assert sum(1 for _ in c.decode(video=0)) >= 5 * 30
