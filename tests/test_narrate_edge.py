"""edge-tts through its real client against a local stand-in, and every failure falling back."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.narrate.edge import EdgeEngine
from pipeline.narrate.narrator import Narrator
from tests.edge_tts_standin import EdgeStandIn
from tests.narrate_helpers import check_narration, decode, rms

ZH = ["今天我们聊聊咖啡。", "一杯好咖啡，需要新鲜的豆子！"]
EN = ["Fresh beans make better coffee.", "Grind them right before you brew."]


def test_edge_tts_chinese_word_boundaries(tmp_path: Path) -> None:
    with EdgeStandIn() as server:
        n = Narrator(edge_endpoint=server.url).narrate(ZH, "zh", tmp_path, style="story")
    assert (n.engine, n.fallback_reason, n.fallback_code, n.timing) == (
        "edge-tts", None, None, "engine",
    )  # fmt: skip
    assert n.voice == "zh-CN-YunxiNeural"
    check_narration(n, ZH)
    # The stand-in times one boundary per Hanzi: Chinese is timed per character, not per line.
    assert len(n.words) == sum(len([c for c in s if "\u4e00" <= c <= "\u9fff"]) for s in ZH)
    assert len(server.requests) == 2  # one request per sentence
    req = server.requests[0]
    assert '"wordBoundaryEnabled":"true"' in req.config
    assert "zh-CN, YunxiNeural" in req.voice
    assert {r.text for r in server.requests} == set(ZH)


@pytest.mark.slow
def test_edge_tts_english_rate_and_pitch_reach_the_service(tmp_path: Path) -> None:
    with EdgeStandIn() as server:
        n = Narrator(edge_endpoint=server.url).narrate(
            EN, "en", tmp_path, voice="en-US-GuyNeural", rate="+10%", pitch="-5Hz"
        )
    assert (n.engine, n.voice) == ("edge-tts", "en-US-GuyNeural")
    check_narration(n, EN)
    assert [w.text for w in n.words][:5] == ["Fresh", "beans", "make", "better", "coffee."]
    assert all("rate='+10%'" in r.ssml and "pitch='-5Hz'" in r.ssml for r in server.requests)


def test_boundaries_mark_where_words_sound(tmp_path: Path) -> None:
    with EdgeStandIn() as server:
        n = Narrator(edge_endpoint=server.url).narrate(["One. Two. Three."], "en", tmp_path)
    samples, rate, _ = decode(n.audio_path)
    for w in n.words:  # each word's own stretch carries sound
        assert rms(samples, rate, w.start, w.end) > 0.02, w


@pytest.mark.slow
@pytest.mark.parametrize(
    ("mode", "reason", "code"),
    [
        ("403", "HTTP 403", "forbidden"),
        ("no_audio", "no audio", "no_audio"),
        ("hang", "timed out", "timeout"),
    ],
)
def test_service_failures_fall_back_to_espeak_for_chinese(
    tmp_path: Path, mode: str, reason: str, code: str
) -> None:
    with EdgeStandIn(mode=mode) as server:
        edge = EdgeEngine(server.url, connect_timeout=2, receive_timeout=2)
        n = Narrator(edge=edge).narrate(ZH, "zh", tmp_path)
    assert n.engine == "espeak-ng"
    assert n.voice.startswith("cmn")
    assert n.fallback_reason is not None and reason in n.fallback_reason
    assert n.fallback_code == code
    check_narration(n, ZH)


def test_unreachable_service_falls_back_and_says_why(tmp_path: Path) -> None:
    with EdgeStandIn() as server:
        url = server.url  # the port is closed once the stand-in stops
    n = Narrator(edge_endpoint=url, prefer_piper=False).narrate(EN, "en", tmp_path)
    assert n.engine == "espeak-ng"
    assert n.fallback_reason == "the edge-tts service could not be reached"
    assert n.fallback_code == "unreachable"
    check_narration(n, EN)


def test_chinese_words_from_the_service_stay_words(tmp_path: Path) -> None:
    with EdgeStandIn(zh_word=2) as server:
        n = Narrator(edge_endpoint=server.url).narrate(["今天我们聊聊咖啡。"], "zh", tmp_path)
    check_narration(n, ["今天我们聊聊咖啡。"])
    assert [w.text for w in n.words] == ["今天", "我们", "聊聊", "咖啡。"]
