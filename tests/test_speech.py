"""Speech to text: the packaged model joined once, typed errors, real speech transcribed."""

from __future__ import annotations

import os
import threading
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from pipeline import settings, speech
from pipeline.bench.samples import colour_clip
from pipeline.errors import MediaError
from pipeline.lm import parts
from pipeline.narrate.align import normalise
from pipeline.narrate.model import write_wav
from pipeline.narrate.offline import EspeakEngine
from pipeline.speech import SpeechModelError, Transcript, default_transcriber

pytestmark = pytest.mark.slow  # renders or runs models end to end

EN_TEXT = "The quick brown fox jumps over the lazy dog. Then it runs into the forest."


@pytest.fixture(scope="module")
def transcriber() -> speech.Transcriber:
    return default_transcriber()  # the process-wide model: loaded once for the whole session


def test_packaged_model_is_joined_once_atomically(tmp_path: Path) -> None:
    target = speech.packaged_model_dir(tmp_path)
    parts = [
        Path(str(resources.files(m).joinpath("data"))) / f"model.bin.part{n}"
        for n, m in ((1, speech._PART_MODULES[0]), (2, speech._PART_MODULES[1]))
    ]
    size = sum(p.stat().st_size for p in parts)
    assert (target / "model.bin").stat().st_size == size
    for name in ("config.json", "tokenizer.json", "vocabulary.txt", "manifest.json"):
        assert (target / name).is_file()
    with open(target / "model.bin", "rb") as fh, open(parts[0], "rb") as p1:
        assert fh.read(4096) == p1.read(4096)
    mtime = (target / "model.bin").stat().st_mtime_ns
    assert speech.packaged_model_dir(tmp_path) == target
    assert (target / "model.bin").stat().st_mtime_ns == mtime  # reused, not joined again
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["whisper-base"]


def test_join_refuses_a_part_that_does_not_match_its_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(parts, "record_entry", lambda dist, rel: (1, "not-the-hash"))
    with pytest.raises(SpeechModelError, match="does not match"):
        speech.packaged_model_dir(tmp_path)
    assert list((tmp_path / "models").iterdir()) == []  # no half-written folder left behind


def test_a_damaged_cached_model_is_joined_again(tmp_path: Path) -> None:
    target = speech.packaged_model_dir(tmp_path)
    with open(target / "model.bin", "r+b") as fh:
        fh.truncate(1000)
    again = speech.packaged_model_dir(tmp_path)
    assert (again / "model.bin").stat().st_size > 1000


def test_configured_model_must_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELBOT_WHISPER_MODEL", str(tmp_path / "nope"))
    with pytest.raises(SpeechModelError, match="neither a model folder"):
        speech.resolve_model()
    with (
        settings.override(whisper_model=str(tmp_path)),
        pytest.raises(SpeechModelError, match=r"without model\.bin"),
    ):
        speech.resolve_model()
    with settings.override(whisper_model="small"):
        assert speech.resolve_model() == "small"


def test_english_speech_words_and_times(transcriber: speech.Transcriber, tmp_path: Path) -> None:
    # The same audio espeak-ng reports word positions for: ground truth for whisper's times.
    clip = EspeakEngine().synthesize(EN_TEXT, "en", "en-us", 0.0, 0)
    wav = str(tmp_path / "en.wav")
    write_wav(wav, clip.samples, clip.rate)
    result = transcriber.transcribe(wav, language="en", vad=False)
    assert isinstance(result, Transcript)
    assert result.language == "en"
    heard = [normalise(w.text) for w in result.words]
    expected = [normalise(w) for w in EN_TEXT.split()]
    common = sum(1 for w in expected if w in heard)
    assert common >= 0.7 * len(expected), heard
    starts = [w.start for w in result.words]
    assert starts == sorted(starts)
    assert all(0 <= w.start <= w.end <= result.duration + 0.05 for w in result.words)

    truth = {normalise(w.text): w.start for w in clip.words}
    offsets = [abs(w.start - truth[normalise(w.text)]) for w in result.words
               if normalise(w.text) in truth and heard.count(normalise(w.text)) == 1]  # fmt: skip
    assert len(offsets) >= 5
    assert sorted(offsets)[len(offsets) // 2] < 0.2, offsets


def test_chinese_speech_is_recognised_and_timed_per_character(
    transcriber: speech.Transcriber, tmp_path: Path
) -> None:
    text = "今天我们来聊一聊咖啡。咖啡一定要现磨，因为香气很快就会散失。"
    clip = EspeakEngine().synthesize(text, "zh", "cmn-latn-pinyin", 0.0, 0)
    wav = str(tmp_path / "zh.wav")
    write_wav(wav, clip.samples, clip.rate)
    # Temperature retries on: greedy decoding alone can loop on a robotic voice ("咸咸咸...").
    result = transcriber.transcribe(wav, language="zh", vad=False)
    assert result.language == "zh"
    # Whisper may answer in traditional characters; these words are written the same in both.
    # espeak-ng's Mandarin is robotic and varies a little from call to call, and whisper base
    # hears only part of it: one sure word proves it is recognised as Chinese speech.
    found = [w for w in ("今天", "咖啡", "一定", "很快") if w in result.text]
    assert found, result.text
    # Chinese words come back as one to a few characters each, never a whole sentence.
    assert max(len(normalise(w.text)) for w in result.words) <= 4
    starts = [w.start for w in result.words]
    assert starts == sorted(starts)
    assert all(0 <= w.start <= w.end <= result.duration + 0.05 for w in result.words)
    assert result.words[-1].end > 0.5 * result.duration


def test_bad_input_raises_media_errors(transcriber: speech.Transcriber, tmp_path: Path) -> None:
    with pytest.raises(MediaError) as missing:
        transcriber.transcribe(tmp_path / "nothing.wav")
    assert missing.value.reason == "missing"
    junk = tmp_path / "junk.wav"
    junk.write_bytes(os.urandom(2000))
    with pytest.raises(MediaError) as bad:
        transcriber.transcribe(junk)
    assert bad.value.reason == "not_media"


def test_video_without_sound_has_no_speech(transcriber: speech.Transcriber, tmp_path: Path) -> None:
    silent = colour_clip(str(tmp_path / "silent.mp4"), "red", 1.0)
    assert transcriber.transcribe(silent, language="zh") == Transcript("zh", "", (), 0.0)
    tone = colour_clip(str(tmp_path / "tone.mp4"), "blue", 2.0, audio=True)
    result = transcriber.transcribe(tone)
    assert result.words == () and abs(result.duration - 2.0) < 0.1  # a tone is not speech


def test_default_transcriber_is_one_instance_across_threads(
    transcriber: speech.Transcriber,
) -> None:
    seen: list[speech.Transcriber] = []
    threads = [
        threading.Thread(target=lambda: seen.append(default_transcriber())) for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(s is transcriber for s in seen)


@pytest.fixture(scope="module")
def long_speech(tmp_path_factory: pytest.TempPathFactory) -> str:
    """About 50 s of English speech: two of whisper's 30-s windows."""
    clip = EspeakEngine().synthesize(" ".join([EN_TEXT] * 10), "en", "en-us", 0.0, 0)
    wav = str(tmp_path_factory.mktemp("long") / "long.wav")
    write_wav(wav, clip.samples, clip.rate)
    assert len(clip.samples) / clip.rate > 40
    return wav


def test_a_short_note_is_not_stuck_behind_a_long_transcription(
    transcriber: speech.Transcriber,
    long_speech: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clip = EspeakEngine().synthesize("Make a video about my cat.", "en", "en-us", 0.0, 0)
    short = str(tmp_path / "short.wav")
    write_wav(short, clip.samples, clip.rate)
    # Know when the long file is inside the model (not just queued), without timing guesses.
    inside = threading.Event()
    real = transcriber._model.transcribe

    def spy(audio: Any, *args: Any, **kwargs: Any) -> Any:
        if audio == long_speech:
            inside.set()
        return real(audio, *args, **kwargs)

    monkeypatch.setattr(transcriber._model, "transcribe", spy)
    finished: list[str] = []
    results: dict[str, Transcript] = {}

    def work(name: str, path: str) -> None:
        results[name] = transcriber.transcribe(
            path, language="en", vad=False, retry_temperatures=False
        )
        finished.append(name)

    long_job = threading.Thread(target=work, args=("long", long_speech))
    long_job.start()
    assert inside.wait(60)
    short_job = threading.Thread(target=work, args=("short", short))
    short_job.start()
    short_job.join(120)
    long_job.join(180)
    # Under one lock held for a whole file the short note could only finish second.
    assert finished == ["short", "long"]
    assert "cat" in results["short"].text.lower()
    assert results["long"].duration > 40 and len(results["long"].words) > 50


def test_a_transcription_past_its_time_limit_is_stopped(
    transcriber: speech.Transcriber, long_speech: str
) -> None:
    with pytest.raises(speech.SpeechTimeout) as stopped:
        transcriber.transcribe(long_speech, language="en", vad=False, retry_temperatures=False,
                               timeout=0.5)  # fmt: skip
    assert stopped.value.key == "speech_timeout"
    # The slot it held was given back: the next call runs.
    hello = EspeakEngine().synthesize("Hello there.", "en", "en-us", 0.0, 0)
    wav = str(Path(long_speech).with_name("hello.wav"))
    write_wav(wav, hello.samples, hello.rate)
    assert "hello" in transcriber.transcribe(wav, language="en", timeout=30).text.lower()
