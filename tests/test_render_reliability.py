"""The renderer never waits forever, leaves no ffmpeg behind, and survives awkward inputs:
footage whose colour tags change at a join (the deadlock), a stalled ffmpeg (watchdog and the
segment-by-segment retry), a killed parent, odd characters in its folders, huge sources."""

from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
import pytest

import pipeline.ffmpeg as ffmpeg_mod
from pipeline import settings as pipeline_settings
from pipeline.bench import samples
from pipeline.errors import RenderTimeout
from pipeline.ffmpeg import ffmpeg_exe, run_ffmpeg
from pipeline.media import probe
from pipeline.plan import CaptionCue, EditPlan, OutputSpec, Rect, Segment, cover_rect
from pipeline.render import proxies, renderer
from pipeline.render.filters import filter_arg
from pipeline.render.renderer import frame_counts, render
from tests.conftest import closest_colour, frame_at

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *args], check=True, timeout=300)


def _decoded(path: Path) -> tuple[int, float, list[str]]:
    """(frames, duration from the container, decoder errors) of the video stream."""
    done = subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), "-f", "null", "-"],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    with av.open(str(path)) as c:
        frames = sum(1 for _ in c.decode(video=0))
        duration = float(c.duration or 0) / 1e6
    return frames, duration, [ln for ln in done.stderr.splitlines() if ln.strip()]


@pytest.fixture(scope="module")
def joined(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Phone-app footage: four separately encoded shots (B-frames, AAC) joined by stream copy,
    hard cuts at 4, 7 and 12 s; the last shot is tagged BT.470BG, the others untagged."""
    d = tmp_path_factory.mktemp("joined")
    lines = []
    for i, secs in enumerate((4, 3, 5, 4)):
        tags = ["-colorspace", "bt470bg", "-color_range", "tv"] if i == 3 else []
        _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=640x360:r=30", "-f", "lavfi", "-i",
                f"sine=f={300 + 100 * i}:sample_rate=48000", "-t", str(secs), "-c:v", "libx264",
                "-preset", "veryfast", "-bf", "3", "-g", "60", "-pix_fmt", "yuv420p", *tags,
                "-c:a", "aac", "-shortest", str(d / f"shot{i}.mp4"))  # fmt: skip
        lines.append(f"file 'shot{i}.mp4'\n")
    (d / "list.txt").write_text("".join(lines))
    _ffmpeg("-f", "concat", "-safe", "0", "-i", str(d / "list.txt"), "-c", "copy",
            str(d / "footage.mp4"))  # fmt: skip
    return d / "footage.mp4"


def _hang_plan(footage: Path) -> EditPlan:
    """The reported plan: a still window late in the file, then a pan ending at the last join."""
    src = probe(footage)
    return EditPlan(
        sources=(src,),
        segments=(
            Segment(0, 13.15, 14.85, Rect(0.2774, 0.0, 0.31641, 1.0)),
            Segment(
                0,
                7.0,
                12.0,
                Rect(0.52421, 0.0, 0.31641, 1.0),
                crop_end=Rect(0.18162, 0.0, 0.31641, 1.0),
            ),
        ),
        output=OutputSpec(width=360, height=640, encoder="libx264"),
    )


def _cli(*args: str, **kw: object) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)  # type: ignore[call-overload]  # fmt: skip


def test_joined_footage_renders_in_one_pass(joined: Path, tmp_path: Path) -> None:
    """The deadlock: this plan hung forever before inputs got `-reinit_filter 0`. Run as a
    child process so a hang is a timeout here, not a stuck test run."""
    plan = _hang_plan(joined)
    plan.save(str(tmp_path / "plan.json"))
    proc = _cli("render", str(tmp_path / "plan.json"), "-o", str(tmp_path / "out.mp4"))
    try:
        _, err = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("the render hung")
    assert proc.returncode == 0, err
    assert "retrying" not in err  # the main pass itself finished, not the fallback
    frames, duration, errors = _decoded(tmp_path / "out.mp4")
    assert frames == sum(frame_counts(plan)) == 201
    assert duration == pytest.approx(201 / 30, abs=0.05)
    assert errors == []


def _fake_ffmpeg(tmp_path: Path, stall_when: str) -> Path:
    """An ffmpeg that, when an argument contains `stall_when`, reports one frame of progress and
    then sleeps (like the deadlocked one); otherwise it runs the real ffmpeg. It records its pid."""
    fake = tmp_path / "ffmpeg"
    fake.write_text(
        "#!/bin/bash\n"
        f'for a in "$@"; do case "$a" in *"{stall_when}"*)\n'
        f'  echo $$ >> "{tmp_path}/stalled.pids"\n'
        "  echo frame=1; echo out_time_us=33333; echo progress=continue\n"
        "  sleep 600; exit 0;;\n"
        "esac; done\n"
        f'exec "{ffmpeg_exe()}" "$@"\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    return fake


@pytest.fixture
def fake_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    def install(stall_when: str) -> Path:
        fake = _fake_ffmpeg(tmp_path, stall_when)
        monkeypatch.setenv("REELBOT_FFMPEG", str(fake))
        # Fixtures that made media have read the settings already: read them again.
        pipeline_settings.reset()
        ffmpeg_mod.ffmpeg_exe.cache_clear()
        return fake

    yield install
    ffmpeg_mod.ffmpeg_exe.cache_clear()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie still answers kill(0): look at its state.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except OSError:
        return True


def test_watchdog_kills_a_stalled_ffmpeg(tmp_path: Path, fake_ffmpeg) -> None:  # type: ignore[no-untyped-def]
    fake_ffmpeg("-f")
    began = time.monotonic()
    with pytest.raises(RenderTimeout) as err:
        run_ffmpeg(["-f", "lavfi", "-i", "testsrc2", "-f", "null", "-"], duration=10.0,
                   stall_after=2.0, time_limit=60.0)  # fmt: skip
    assert time.monotonic() - began < 5.0
    assert err.value.reason == "stalled" and err.value.key == "render_timeout"
    pid = int((tmp_path / "stalled.pids").read_text().split()[0])
    assert _gone(pid)  # the whole process group went, the fake's `sleep` too


def test_overall_limit_ends_a_slow_ffmpeg(tmp_path: Path) -> None:
    began = time.monotonic()
    with pytest.raises(RenderTimeout) as err:  # progresses, but would take ~forever
        run_ffmpeg(["-re", "-f", "lavfi", "-i", "testsrc2=s=64x64:d=600", "-f", "null", "-"],
                   duration=600.0, stall_after=30.0, time_limit=2.0)  # fmt: skip
    assert time.monotonic() - began < 5.0
    assert err.value.reason == "too_long"


def test_limits_scale_with_the_work() -> None:
    short, longer = ffmpeg_mod.limits_for(10.0), ffmpeg_mod.limits_for(60.0)
    assert short[0] < longer[0] and short[1] < longer[1]
    heavy = ffmpeg_mod.limits_for(10.0, slowness=4.0)
    assert heavy[0] == pytest.approx(4 * short[0]) and heavy[1] == pytest.approx(4 * short[1])


def _small_plan(media_dir: Path, captions: bool = True) -> EditPlan:
    red, blue = probe(media_dir / "red.mp4"), probe(media_dir / "blue.mp4")
    cues = (CaptionCue("Hello there", 0.1, 0.9), CaptionCue("你好", 1.1, 1.9)) if captions else ()
    return EditPlan(
        sources=(red, blue),
        segments=(
            Segment(0, 0.5, 1.5, cover_rect(320, 180, 180, 320)),
            Segment(1, 1.0, 2.0, cover_rect(320, 180, 180, 320)),
        ),
        output=OutputSpec(width=180, height=320, encoder="libx264"),
        captions=cues,
    )


def test_stalled_render_is_retried_segment_by_segment(
    media_dir: Path, tmp_path: Path, fake_ffmpeg, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    fake_ffmpeg("-reinit_filter")  # only the one-pass render has it
    monkeypatch.setattr(renderer, "limits_for", lambda d, s=1.0: (3.0, 120.0))
    plan = _small_plan(media_dir)
    began = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="pipeline.render.renderer"):
        render(plan, tmp_path / "out.mp4")
    assert "retrying segment by segment" in caplog.text
    assert time.monotonic() - began < 60
    frames, duration, errors = _decoded(tmp_path / "out.mp4")
    assert frames == 60 and duration == pytest.approx(2.0, abs=0.05) and errors == []
    assert closest_colour(frame_at(tmp_path / "out.mp4", 0.5)) == "red"
    assert closest_colour(frame_at(tmp_path / "out.mp4", 1.5)) == "blue"
    assert [p.name for p in tmp_path.iterdir() if "part" in p.name] == []


def test_render_that_stalls_twice_fails_with_a_typed_error(
    media_dir: Path, tmp_path: Path, fake_ffmpeg, monkeypatch: pytest.MonkeyPatch,  # type: ignore[no-untyped-def]
) -> None:  # fmt: skip
    from bot.texts import T, error_text

    fake_ffmpeg("[v0]")  # the one-pass render and every segment pass map or name [v0]
    monkeypatch.setattr(renderer, "limits_for", lambda d, s=1.0: (2.0, 120.0))
    with pytest.raises(RenderTimeout) as err:
        render(_small_plan(media_dir), tmp_path / "out.mp4")
    assert err.value.key == "render_timeout" and err.value.reason == "stalled"
    assert "render_timeout" in T
    assert error_text("zh", err.value.key) != error_text("zh", "error_generic")
    assert not (tmp_path / "out.mp4").exists()


def _cmdline(pid: int) -> bytes:
    """A process's command line; empty once it has exited (a probe can end between the two
    reads: CI saw `/proc/N/cmdline` vanish)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _ffmpeg_children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return [c for c in found if b"ffmpeg" in _cmdline(c)]


def test_killed_render_leaves_no_ffmpeg_and_a_rerun_is_clean(tmp_path: Path) -> None:
    """SIGKILL `reelbot render` mid-render: its ffmpeg dies with it, and a render started at
    once writes a clean file (the orphan used to keep writing the same `.part`)."""
    clip = tmp_path / "clip.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=s=1280x720:r=30", "-t", "12", "-c:v", "libx264",
            "-preset", "ultrafast", str(clip))  # fmt: skip
    src = probe(clip)
    segs = tuple(Segment(0, s, s + 3.0, cover_rect(1280, 720, 720, 1280)) for s in (0, 3, 6, 9))
    plan = EditPlan(sources=(src,), segments=segs,
                    output=OutputSpec(width=720, height=1280, preset="medium"))  # fmt: skip
    plan.save(str(tmp_path / "plan.json"))
    out = tmp_path / "out.mp4"
    proc = _cli("render", str(tmp_path / "plan.json"), "-o", str(out))
    deadline = time.monotonic() + 120
    children: list[int] = []
    while time.monotonic() < deadline and not children:
        children = [c for c in _ffmpeg_children(proc.pid)
                    if b"-reinit_filter" in _cmdline(c)]  # fmt: skip
        time.sleep(0.05)
    assert children, "the render's main ffmpeg never started"
    # Mid-render: wait until ffmpeg writes the .part file (it opens it with its first packet).
    until = time.monotonic() + 60
    while time.monotonic() < until and not list(tmp_path.glob(".out.mp4.*.part.mp4")):
        time.sleep(0.05)
    assert list(tmp_path.glob(".out.mp4.*.part.mp4"))
    assert proc.poll() is None
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    gone_by = time.monotonic() + 2.0
    while time.monotonic() < gone_by and not all(_gone(c) for c in children):
        time.sleep(0.05)
    assert all(_gone(c) for c in children), "ffmpeg outlived the killed render"
    again = _cli("render", str(tmp_path / "plan.json"), "-o", str(out))
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    frames, duration, errors = _decoded(out)
    assert frames == 360 and duration == pytest.approx(12.0, abs=0.05)
    assert errors == []
    assert list(tmp_path.glob(".out.mp4.*part*")) == []  # the stale one was removed


WEIRD = "a:b\\c'd,e[f];g h 中文"


def test_filter_arg_survives_ffmpegs_two_unescapings(tmp_path: Path) -> None:
    """A text file read through a filter option (`sendcmd`'s file) at a path with every awkward
    character: ffmpeg finds it only if the escaping is right."""
    d = tmp_path / WEIRD
    d.mkdir()
    cmds = d / "c m d's.txt"
    cmds.write_text("0.0 drawbox w 10;\n")
    graph = f"sendcmd=filename={filter_arg(str(cmds))},drawbox"
    run_ffmpeg(["-f", "lavfi", "-i", "color=s=32x32:d=0.1", "-vf", graph, "-f", "null", "-"],
               what="escaping check")  # fmt: skip


def test_render_with_odd_tmpdir_and_cache_dir(
    media_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Captions (an .ass in TMPDIR) and the HDR table (a .cube in the cache dir) are read by
    filters: both folders here have `:`, `\\`, `'`, `,`, `[`, `;`, spaces and Chinese in them."""
    tmpdir, cache = tmp_path / f"tmp {WEIRD}", tmp_path / f"cache {WEIRD}"
    tmpdir.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmpdir))
    monkeypatch.setenv("REELBOT_CACHE_DIR", str(cache))
    hlg = probe(samples.hdr_clip(str(tmp_path / "hlg.mp4"), 1.0, "hlg"))
    plan = _small_plan(media_dir)
    plan = EditPlan(sources=(*plan.sources, hlg),
                    segments=(*plan.segments, Segment(2, 0.0, 1.0, cover_rect(hlg.width,
                              hlg.height, 180, 320))),
                    output=plan.output, captions=plan.captions)  # fmt: skip
    render(plan, tmp_path / "out.mp4")
    assert list(cache.rglob("*.cube"))
    frames, _, errors = _decoded(tmp_path / "out.mp4")
    assert frames == 90 and errors == []
    plain = _small_plan(media_dir, captions=False)
    render(plain, tmp_path / "plain.mp4")
    # The caption is there: the captioned frame differs from the plain one in the text area.
    a = frame_at(tmp_path / "out.mp4", 0.5).astype(np.int16)
    b = frame_at(tmp_path / "plain.mp4", 0.5).astype(np.int16)
    assert np.abs(a - b).max() > 100


def test_renders_run_below_the_bots_priority(
    media_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The render's ffmpeg runs REELBOT_RENDER_NICE steps below this process (a script or an
    edit reply waited for in the chat gets the cores first); other ffmpeg runs do not."""
    log = tmp_path / "nice.log"
    fake = tmp_path / "ffmpeg"
    # Each run's niceness and arguments, unless it is the encoder check (a 0.1 s probe, cached).
    fake.write_text(
        "#!/bin/sh\n"
        'case "$*" in *256x256*) ;; *) echo "$(nice) $*" >> "' + str(log) + '";; esac\n'
        f'exec "{ffmpeg_exe()}" "$@"\n'
    )
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    base = os.nice(0)
    try:
        monkeypatch.setenv("REELBOT_FFMPEG", str(fake))
        for value, expected in (("7", min(19, base + 7)), ("0", base)):
            monkeypatch.setenv("REELBOT_RENDER_NICE", value)
            pipeline_settings.reset()
            ffmpeg_mod.ffmpeg_exe.cache_clear()
            log.unlink(missing_ok=True)
            render(_small_plan(media_dir, captions=False), tmp_path / f"out{value}.mp4")
            runs = log.read_text().splitlines()
            assert len(runs) >= 2 and {int(r.split()[0]) for r in runs} == {expected}
        monkeypatch.setenv("REELBOT_RENDER_NICE", "7")
        pipeline_settings.reset()
        log.unlink()
        run_ffmpeg(["-f", "lavfi", "-i", "color=s=32x32:d=0.1", "-f", "null", "-"])
        assert int(log.read_text().split()[0]) == base
    finally:
        pipeline_settings.reset()
        ffmpeg_mod.ffmpeg_exe.cache_clear()


def _two_colour_clip(path: Path, size: str) -> Path:
    """Red for 2 s, then blue for 2 s."""
    _ffmpeg("-f", "lavfi", "-i", f"color=red:s={size}:r=30:d=2", "-f", "lavfi", "-i",
            f"color=blue:s={size}:r=30:d=2", "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v]",
            "-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast", "-g", "15",
            "-pix_fmt", "yuv420p", str(path))  # fmt: skip
    return path


def test_large_sources_are_shrunk_once_and_keep_their_timing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(proxies, "PROXY_ABOVE_PIXELS", 640 * 360)
    clip = probe(_two_colour_clip(tmp_path / "clip.mp4", "1280x720"))
    photo = probe(samples.photo(str(tmp_path / "big.jpg"), (0, 200, 0), (2000, 1500)))
    window = cover_rect(1280, 720, 180, 320)
    plan = EditPlan(
        sources=(clip, photo),
        segments=(
            Segment(0, 2.5, 3.5, window),  # blue first, out of order
            Segment(1, 0.0, 0.5, cover_rect(2000, 1500, 180, 320)),
            Segment(0, 0.5, 1.5, window, crop_end=Rect(0.4, 0.1, 0.2, 0.8)),
        ),
        output=OutputSpec(width=180, height=320, encoder="libx264"),
    )
    with caplog.at_level(logging.INFO, logger="pipeline.render.proxies"):
        render(plan, tmp_path / "out.mp4")
    assert caplog.text.count("shrunk") == 2  # one pass per file, not per segment
    frames, _duration, errors = _decoded(tmp_path / "out.mp4")
    assert frames == 75 and errors == []
    out = tmp_path / "out.mp4"
    assert closest_colour(frame_at(out, 0.1)) == "blue"
    assert closest_colour(frame_at(out, 0.95)) == "blue"
    assert closest_colour(frame_at(out, 1.2)) == "green"
    assert closest_colour(frame_at(out, 1.6)) == "red"
    assert closest_colour(frame_at(out, 2.45)) == "red"


def test_proxy_scale_keeps_the_output_resolution(tmp_path: Path) -> None:
    clip = probe(_two_colour_clip(tmp_path / "clip.mp4", "1280x720"))
    plan = EditPlan(
        sources=(clip,),
        segments=(
            Segment(
                0, 0.0, 1.0, Rect(0.1, 0.0, 0.3164, 1.0), crop_end=Rect(0.2, 0.25, 0.1582, 0.5)
            ),
        ),
        output=OutputSpec(width=180, height=320),
    )
    # The smaller window (half the height) must still get 320 lines: 320 / 360.
    assert proxies.needed_scale(plan, 0) == pytest.approx(320 / 360, rel=0.01)


def test_moviepy_variant_leaves_the_cwd_clean(
    media_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moviepy writes the sound first to a temporary file (named after the output, in the
    current directory unless told otherwise) and deletes it only after a successful write: a
    failed or killed variant left it behind. Here the video write fails after the sound."""
    import moviepy.video.VideoClip as moviepy_clip

    from pipeline.bench.render import run_moviepy
    from pipeline.plan import AudioTrack

    red = probe(media_dir / "red.mp4")
    seg = Segment(0, 0.0, 0.5, cover_rect(320, 180, 180, 320))
    plan = EditPlan(sources=(red,), segments=(seg,),
                    output=OutputSpec(width=180, height=320),
                    captions=(CaptionCue("hi", 0.0, 0.4),),
                    audio=(AudioTrack(str(media_dir / "narration.wav"), "narration"),))  # fmt: skip
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    sound: list[str] = []

    def fail(*args: object, audiofile: str | None = None, **kw: object) -> None:
        assert audiofile is not None and os.path.getsize(audiofile) > 0
        sound.append(os.path.abspath(audiofile))
        raise RuntimeError("video write failed")

    monkeypatch.setattr(moviepy_clip, "ffmpeg_write_video", fail)
    with pytest.raises(RuntimeError):
        run_moviepy(plan, str(tmp_path / "moviepy.mp4"))
    assert sound and not sound[0].startswith(str(cwd))
    assert list(cwd.iterdir()) == []
    assert not os.path.exists(sound[0])
