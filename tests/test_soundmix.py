"""Footage sound: tagged per shot in analysis (cached), kept or muted by the planner, ducked under
the narration by the mixer. Footage is generated with known sound: espeak-ng speech, a sine
melody and white noise. Laughter and applause could not be synthesised convincingly (YAMNet hears
pulsed "ha" bursts as music or a horn, and click trains as fireworks or crackle), so the kept
laughter path is driven by a shot whose tags are set by hand over a tone clip.
"""

from __future__ import annotations

import dataclasses
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from pipeline.bench import samples
from pipeline.footage.analyze import analyze
from pipeline.footage.heard import Heard, HeardTag, listen
from pipeline.footage.model import Analysis, Crop, ScoreParts, Shot
from pipeline.make.planner import build_plan, sound_choice, sound_decisions
from pipeline.media import MediaInfo, probe
from pipeline.narrate.model import write_wav
from pipeline.plan import (
    AudioTrack,
    CaptionStyle,
    EditPlan,
    OutputSpec,
    Rect,
    Segment,
    cover_rect,
)
from pipeline.render.audiomix import mix_audio
from pipeline.script.model import Script, ScriptLine
from pipeline.see import sound

QUOTE = "the box is my castle"
SAID = "The box is my castle. I sit in it every day and nobody can make me leave."
OUT = OutputSpec(width=180, height=320, fps=30.0)


@dataclass(frozen=True, slots=True)
class Clips:
    speech: MediaInfo
    music: MediaInfo
    noise: MediaInfo
    analysis: Analysis
    tagging_s: float  # seconds listen() took for all three files
    sound_s: float  # seconds of sound in them


class _Word:
    def __init__(self, text: str, start: float, end: float) -> None:
        self.text, self.start, self.end = text, start, end


class _Transcript:
    """What whisper would hear in the speech clip (the words, spread over the clip)."""

    def __init__(self, duration: float) -> None:
        words = SAID.split()
        step = duration / len(words)
        self.words = [_Word(w, k * step, (k + 1) * step) for k, w in enumerate(words)]


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Clips:
    d = tmp_path_factory.mktemp("sound")
    subprocess.run(["espeak-ng", "-w", str(d / "speech.wav"), SAID], check=True, timeout=30)
    samples.melody_wav(str(d / "melody.wav"), 6.0)
    samples.noise_wav(str(d / "noise.wav"), 5.0)
    speech = probe(samples.clip_with_sound(str(d / "speech.mp4"), str(d / "speech.wav"), "blue"))
    music = probe(samples.clip_with_sound(str(d / "music.mp4"), str(d / "melody.wav"), "green"))
    noise = probe(samples.clip_with_sound(str(d / "noise.mp4"), str(d / "noise.wav"), "gray"))
    assert listen(speech.path, speech.duration) is not None  # loads YAMNet (once a process)
    t0 = time.perf_counter()
    for info in (speech, music, noise):
        assert listen(info.path, info.duration) is not None
    tagging = time.perf_counter() - t0
    media = [speech, music, noise]

    def transcriber(path: str) -> _Transcript:
        return _Transcript(speech.duration if path == speech.path else 0.0)

    analysis = analyze(
        media, ["", "a song", "the wind"], transcriber=transcriber, cache_dir=str(d / "cache")
    )
    return Clips(speech, music, noise, analysis, tagging, sum(m.duration for m in media))


def _heard_of(analysis: Analysis, source: int) -> list[Heard]:
    return [s.heard for s in analysis.shots if s.source == source and s.heard is not None]


@pytest.mark.slow
# Silence drives YAMNet's logits far negative: its sigmoid must not overflow (it warned before).
@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_each_shot_hears_its_own_sound(clips: Clips) -> None:
    for source, tag in ((0, "speech"), (1, "music"), (2, "noise")):
        heard = _heard_of(clips.analysis, source)
        assert heard and all(h.dominant == tag for h in heard), (tag, heard)
    speech = _heard_of(clips.analysis, 0)[0]
    assert not speech.has("music") and -40 < speech.level_db < -3
    # Tagging the three files' sound runs well above real time on this machine's two cores.
    assert clips.sound_s / clips.tagging_s >= 10, (clips.sound_s, clips.tagging_s)


@pytest.mark.slow
def test_sound_tags_are_cached_with_the_analysis(clips: Clips, tmp_path: Path) -> None:
    cache = Path(clips.speech.path).parent / "cache"
    again = analyze([clips.speech, clips.music, clips.noise], ["", "a song", "the wind"],
                    cache_dir=str(cache))  # fmt: skip
    assert all(f.from_cache for f in again.files)
    assert [s.heard for s in again.shots] == [s.heard for s in clips.analysis.shots]
    back = Analysis.from_json(clips.analysis.to_json())
    assert back.shots == clips.analysis.shots


@pytest.mark.slow
def test_cli_and_contact_sheet_show_the_sound(
    clips: Clips, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pipeline.cli import main

    sheet = tmp_path / "sheet.jpg"
    paths = [clips.speech.path, clips.music.path, clips.noise.path]
    cache = str(Path(clips.speech.path).parent / "cache")
    assert main(["analyze", *paths, "--contact-sheet", str(sheet), "--cache-dir", cache]) == 0
    out = capsys.readouterr().out
    assert "sound=[speech" in out and "sound=[music" in out and "sound=[noise" in out
    # The sheet without the sound tags differs only on the sound line under each keyframe.
    from PIL import Image

    from pipeline.footage.contact import contact_sheet

    deaf = dataclasses.replace(
        clips.analysis,
        shots=tuple(dataclasses.replace(s, heard=None) for s in clips.analysis.shots),
    )
    media = [clips.speech, clips.music, clips.noise]
    contact_sheet(clips.analysis, media, str(tmp_path / "a.jpg"))
    contact_sheet(deaf, media, str(tmp_path / "b.jpg"))
    with Image.open(tmp_path / "a.jpg") as a, Image.open(tmp_path / "b.jpg") as b:
        diff = np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).sum(axis=2) > 60
    rows = np.nonzero(diff.any(axis=1))[0]
    thumb_h = 256 * 9 // 16
    assert len(rows) and rows.min() >= 4 + thumb_h + 36, rows  # the third label line only


# --- the planner's decisions (pure) --------------------------------------------------------


def _shot(src: int, heard: Heard | None, text: str = "", kind: str = "video") -> Shot:
    return Shot(src, f"f{src}", 0.0, 4.0, 2.0, 0.8, ScoreParts(1, 1, 1, 1, 1, 0, 0),
                (Crop("9:16", Rect(0.3, 0.0, 0.32, 1.0)),), text=text, kind=kind,  # type: ignore[arg-type]
                heard=heard)  # fmt: skip


def _heard(*tags: tuple[str, float, float], level: float = -26.0) -> Heard:
    return Heard(tuple(HeardTag(t, s, sh) for t, s, sh in tags), tags[0][0] if tags else "", level)


def _script(*sentences: str) -> Script:
    hook, *lines, cta = sentences
    return Script("t", hook, tuple(ScriptLine(x) for x in lines), cta, (), "en", "knowledge",
                  10, 10, "test")  # fmt: skip


def test_what_is_kept_and_what_is_muted() -> None:
    quotes = ("theboxismycastle",)
    cases = {
        "laughter_kept": _heard(("laughter", 0.9, 0.6), ("speech", 0.5, 0.4)),
        "applause_kept": _heard(("applause", 0.8, 1.0)),
        "noise_muted": _heard(("noise", 0.7, 1.0)),
        "speech_muted": _heard(("speech", 0.95, 1.0)),
        "music_in_footage": _heard(("music", 0.9, 0.9)),
        "": _heard(("silence", 1.0, 1.0)),
    }
    for reason, heard in cases.items():
        choice = sound_choice(_shot(0, heard, "someone talking"), quotes)
        assert choice.reason == reason, (reason, choice)
        assert (choice.volume > 0) == reason.endswith(("_kept", "_in_footage"))
    quoted = sound_choice(_shot(0, cases["speech_muted"], "The box is my castle, he said"), quotes)
    assert quoted.reason == "speech_quoted" and quoted.volume > 0
    # The kept sound is brought to one level: a quiet laugh gets more gain than a loud one.
    quiet = sound_choice(_shot(0, _heard(("laughter", 0.9, 1.0), level=-40)), quotes)
    loud = sound_choice(_shot(0, _heard(("laughter", 0.9, 1.0), level=-12)), quotes)
    assert quiet.volume > 1 > loud.volume
    # A photo, or a shot never listened to, has no sound to decide on.
    assert sound_choice(_shot(0, None), quotes).reason == ""
    assert sound_choice(_shot(0, cases["laughter_kept"], kind="photo"), quotes).volume == 0


def test_footage_music_is_never_doubled_by_background_music() -> None:
    music = _heard(("music", 0.9, 1.0))
    noise = _heard(("noise", 0.8, 1.0))
    crop = Rect(0.3, 0.0, 0.32, 1.0)
    segs = [Segment(0, 0, 3, crop), Segment(1, 0, 1, crop)]
    script = _script("a", "b")
    # Most of the video carries its own music: the background music is left out.
    out, left = sound_decisions(segs, [_shot(0, music), _shot(1, noise)], script, "bg.mp3")
    assert left is None and [s.sound_reason for s in out] == ["music_in_footage", "noise_muted"]
    assert out[0].volume > 0
    # A little of it: the background music plays and the footage's music is muted.
    out, left = sound_decisions(segs, [_shot(0, noise), _shot(1, music)], script, "bg.mp3")
    assert left == "bg.mp3" and [s.sound_reason for s in out] == ["noise_muted",
                                                                 "footage_music_muted"]  # fmt: skip
    assert all(s.volume == 0 for s in out)
    # No background music: the footage's music is heard.
    out, left = sound_decisions(segs, [_shot(0, noise), _shot(1, music)], script, None)
    assert left is None and out[1].volume > 0


# --- the mix, decoded ----------------------------------------------------------------------

RATE = 48000
SPANS = ((0.1, 1.6), (2.8, 4.3), (5.5, 7.0))  # narration sentences; 1.2 s pauses between


def _narration(path: Path) -> str:
    """Voiced bursts (harmonics of 150 Hz, all under 1.2 kHz) inside SPANS, silence between."""
    sig = np.zeros(int(7.3 * RATE))
    for a, b in SPANS:
        t = np.arange(int((b - a) * RATE)) / RATE
        burst = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 8))
        env = 0.5 + 0.5 * np.sign(np.sin(2 * np.pi * 3 * t))  # syllables, 3 a second
        sig[int(a * RATE) : int(a * RATE) + len(t)] = 0.2 * burst * env
    write_wav(str(path), sig, RATE)
    return str(path)


def _band(x: np.ndarray, lo: float, hi: float) -> float:
    """RMS of `x` within lo..hi Hz (FFT band), so the source's tone is measured apart from the
    narration."""
    spec = np.fft.rfft(x * np.hanning(len(x)))
    freqs = np.fft.rfftfreq(len(x), 1 / sound.SAMPLE_RATE)
    keep = (freqs > lo) & (freqs < hi)
    return float(np.sqrt(np.sum(np.abs(spec[keep]) ** 2)) / len(x))


def _db(v: float) -> float:
    return 20 * np.log10(max(v, 1e-9))


@pytest.mark.slow
def test_kept_sound_is_ducked_under_the_voice_and_muted_noise_is_silent(
    clips: Clips, tmp_path: Path
) -> None:
    # A 3 kHz tone clip stands for footage whose laughter is kept (its tags set by hand); the
    # noise clip and the speech clip go through the planner with the tags analysis heard.
    tone_wav = samples.tone_wav(str(tmp_path / "tone.wav"), 9.0, freq=3000.0, level=0.1)
    tone = probe(samples.clip_with_sound(str(tmp_path / "tone.mp4"), tone_wav, "red"))
    laugh = _heard(("laughter", 0.9, 1.0), level=-23.0)
    noise_shot = next(s for s in clips.analysis.shots if s.source == 2)
    shots = (
        dataclasses.replace(_shot(0, laugh), end=8.0),
        dataclasses.replace(noise_shot, source=1),
    )
    sources = (tone, clips.noise)
    narr = _Narr(_narration(tmp_path / "narr.wav"), 7.3, SPANS)
    script = _script("the laugh", "more laughing", "and the wind")
    plan = build_plan(sources, Analysis(shots, ()), script, narr, (), CaptionStyle(), OUT)
    reasons = {(s.source, s.sound_reason) for s in plan.segments}
    assert (0, "laughter_kept") in reasons and (1, "noise_muted") in reasons
    mixed = mix_audio(plan, str(tmp_path), None)
    assert mixed is not None
    # Decoded as 16 kHz mono (PyAV resamples; the 3 kHz tone is well inside).
    pcm, rate = sound.read_audio(mixed[0]), sound.SAMPLE_RATE
    assert len(pcm) == pytest.approx(plan.duration * rate, abs=rate * 0.05)
    t, windows = 0.0, []
    for seg in plan.segments:
        windows.append((t, t + seg.duration, seg))
        t += seg.duration
    source = sound.read_audio(tone.path)
    checked_gap = checked_voice = checked_noise = 0
    for a, b, seg in windows:
        for (s0, s1), (n0, _) in zip(SPANS, [*SPANS[1:], (99.0, 99.0)], strict=True):
            if seg.sound_reason == "laughter_kept":
                # Under the voice (away from its start) vs the middle of the next pause.
                under = (max(a, s0 + 0.3), min(b, s1 - 0.1))
                gap = (max(a, s1 + 0.4), min(b, n0 - 0.3))
                if under[1] - under[0] >= 0.3 and gap[1] - gap[0] >= 0.2:
                    u = _band(pcm[int(under[0] * rate) : int(under[1] * rate)], 2900, 3100)
                    g = _band(pcm[int(gap[0] * rate) : int(gap[1] * rate)], 2900, 3100)
                    assert _db(g) - _db(u) >= 8, (seg, _db(g), _db(u))
                    # In the pause the tone plays at the gain the plan gave it (the release
                    # brings it back within a few hundred ms).
                    alone = _band(source[: int((gap[1] - gap[0]) * rate)], 2900, 3100)
                    assert _db(g) == pytest.approx(_db(alone * seg.volume), abs=2)
                    checked_gap += 1
                    checked_voice += 1
            if seg.sound_reason == "noise_muted":
                gap = (max(a, s1 + 0.3), min(b, n0 - 0.3))
                if gap[1] - gap[0] >= 0.2:
                    quiet = pcm[int(gap[0] * rate) : int(gap[1] * rate)]
                    assert _db(float(np.sqrt(np.mean(quiet**2)))) < -60
                    checked_noise += 1
    assert checked_gap and checked_voice and checked_noise, plan.segments


@dataclass(frozen=True, slots=True)
class _Narr:
    audio_path: str
    duration: float
    line_spans: tuple[tuple[float, float], ...]


@pytest.mark.slow
def test_quoted_speech_is_kept_from_analysed_footage(clips: Clips, tmp_path: Path) -> None:
    sources = (clips.speech, clips.music, clips.noise)
    narr = _Narr(_narration(tmp_path / "narr.wav"), 7.3, SPANS)
    script = _script(f"The cat says “{QUOTE}”.", "Then a song", "Then the wind")
    plan = build_plan(sources, clips.analysis, script, narr, (), CaptionStyle(), OUT, "bg.wav")
    by_source = {s.source: s.sound_reason for s in plan.segments}
    assert by_source.get(0) == "speech_quoted", plan.segments
    if 2 in by_source:
        assert by_source[2] == "noise_muted"
    if 1 in by_source:
        assert by_source[1] in ("music_in_footage", "footage_music_muted")
    assert all((s.volume > 0) == (s.sound_reason in ("speech_quoted", "music_in_footage"))
               for s in plan.segments)  # fmt: skip
    plan2 = EditPlan.from_json(plan.to_json())
    assert [s.sound_reason for s in plan2.segments] == [s.sound_reason for s in plan.segments]


def test_plain_segments_default_to_silence_without_a_reason(tmp_path: Path) -> None:
    seg = Segment(0, 0.0, 1.0, cover_rect(320, 180, 180, 320))
    assert seg.volume == 0 and seg.sound_reason == ""
    assert AudioTrack("m.wav", "music").duck


def test_storyboard_notes_name_the_sentence_of_each_decision() -> None:
    from pipeline.make.planner import sound_notes

    crop = Rect(0.3, 0.0, 0.32, 1.0)
    src = MediaInfo("v.mp4", "video", 20.0, 1920, 1080, 30.0, 0, True, "h264", 1000)
    plan = EditPlan(
        sources=(src,),
        segments=(
            Segment(0, 0, 2, crop, volume=1.0, sound_reason="laughter_kept"),
            Segment(0, 2, 3, crop, sound_reason="noise_muted"),  # still the first sentence
            Segment(0, 3, 6, crop, sound_reason="noise_muted"),
            Segment(0, 6, 8, crop),
        ),
        output=OUT,
        audio=(AudioTrack("n.wav", "narration"),),
    )
    spans = ((0.1, 2.8), (3.2, 5.8), (6.2, 7.5))  # cuts at 3.0 and 6.0
    assert sound_notes(plan, spans, None) == ((1, "laughter_kept"), (1, "noise_muted"),
                                              (2, "noise_muted"))  # fmt: skip
    assert sound_notes(plan, spans, "song.mp3")[0] == (0, "music_left_out")


def test_music_is_measured_and_a_non_audio_file_refused(tmp_path: Path) -> None:
    from pipeline.errors import MediaError
    from pipeline.music import MUSIC_LEVEL_DB, check_music

    loud = samples.tone_wav(str(tmp_path / "loud.wav"), 2.0, level=0.5)
    quiet = samples.tone_wav(str(tmp_path / "quiet.wav"), 2.0, level=0.05)
    a, b = check_music(loud), check_music(quiet)
    assert a.level_db == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.3)
    assert a.seconds == pytest.approx(2.0, abs=0.05)
    # Both end up at the same level under the narration.
    assert a.level_db + a.gain_db == pytest.approx(MUSIC_LEVEL_DB, abs=0.2)
    assert b.level_db + b.gain_db == pytest.approx(MUSIC_LEVEL_DB, abs=0.2)
    for name, data in (("text.mp3", b"not audio at all " * 40), ("empty.wav", b"")):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(MediaError) as err:
            check_music(str(tmp_path / name))
        assert err.value.key == "media_not_audio" and err.value.params["name"] == name
    silent = samples.tone_wav(str(tmp_path / "silent.wav"), 2.0, level=0.0)
    with pytest.raises(MediaError):
        check_music(silent)
    video_only = samples.colour_clip(str(tmp_path / "v.mp4"), "red", 1.0)
    with pytest.raises(MediaError):
        check_music(video_only)
