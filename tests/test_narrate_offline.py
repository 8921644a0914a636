"""Offline voices: espeak-ng with its own word events, piper timed by its phonemes (or whisper),
typed errors."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pipeline.cjk import is_han
from pipeline.cli import main
from pipeline.loadonce import Loader
from pipeline.narrate import align, offline
from pipeline.narrate.align import normalise, split_units
from pipeline.narrate.model import Narration, NarrationError
from pipeline.narrate.narrator import Narrator
from pipeline.narrate.offline import Phone, PiperEngine, words_from_phonemes
from pipeline.settings import override
from tests.narrate_helpers import check_narration, decode, rms

ZH = ["为什么咖啡要现磨？", "因为香气，几分钟就散了。", "关注我，学更多。"]
EN = ["Coffee tastes better fresh.", "Grind your beans right before brewing.", "Follow for more!"]


def test_espeak_chinese_is_timed_per_word(tmp_path: Path) -> None:
    n = Narrator(offline=True, prefer_kokoro=False).narrate(ZH, "zh", tmp_path)
    assert (n.engine, n.timing, n.fallback_reason) == (
        "espeak-ng", "engine", "offline mode was requested",
    )  # fmt: skip
    assert n.fallback_code == "offline"
    samples = check_narration(n, ZH)
    assert [w.text for w in n.words] == [u for s in ZH for u in split_units(s)]
    assert max(len(normalise(w.text)) for w in n.words) <= 4  # words, never a whole line
    for w in n.words:  # and each is voiced where it is said to be
        assert rms(samples, 48000, w.start, w.end) > 0.02, w


def test_without_jieba_chinese_is_timed_per_character(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(align, "zh_word_starts", lambda text: None)
    n = Narrator(offline=True, prefer_kokoro=False).narrate(ZH, "zh", tmp_path)
    check_narration(n, ZH)
    hanzi = [c for s in ZH for c in s if is_han(c)]
    assert [w.text[0] for w in n.words] == hanzi  # one timed unit per character, in order


def test_espeak_english_words_and_rate(tmp_path: Path) -> None:
    slow = Narrator(offline=True, prefer_piper=False).narrate(EN, "en", tmp_path / "a")
    fast = Narrator(offline=True, prefer_piper=False).narrate(EN, "en", tmp_path / "b", rate="+50%")
    check_narration(slow, EN)
    check_narration(fast, EN)
    assert [w.text for w in slow.words] == " ".join(EN).split()
    assert fast.duration < 0.85 * slow.duration


class _NoAlignments:
    """The loaded piper voice, minus its phoneme alignments (a model onnx could not patch)."""

    def __init__(self, voice: Any) -> None:
        self.voice = voice

    def phonemize(self, text: str) -> Any:
        return self.voice.phonemize(text)

    def synthesize(self, text: str, **kwargs: Any) -> Iterator[Any]:
        for chunk in self.voice.synthesize(text, **kwargs):
            yield dataclasses.replace(chunk, phoneme_alignments=None)


@pytest.fixture
def piper_without_alignments(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("piper")
    real = PiperEngine()
    voice = _NoAlignments(real._voice)
    stand_in = Loader("piper voice", lambda _: (voice, real.voice_name))
    monkeypatch.setattr(offline, "PIPER_VOICES", stand_in)


def _check_piper_words(n: Narration) -> None:
    check_narration(n, EN)
    # Each sentence's first word starts at its onset and its last word ends near its end.
    for i, (start, end) in enumerate(n.line_spans):
        words = n.line_words(i)
        assert words[0].start - start < 0.3
        assert end - words[-1].end < 0.4
        durations = [w.end - w.start for w in words]
        assert min(durations) > 0.03  # no word squeezed to nothing by a misalignment


@pytest.mark.slow
def test_piper_english_is_timed_by_its_phonemes(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    n = Narrator(offline=True).narrate(EN, "en", tmp_path)
    assert (n.engine, n.voice, n.timing) == ("piper", "en_US-joe-medium", "engine")
    _check_piper_words(n)


@pytest.mark.slow
def test_piper_word_times_land_on_the_pauses_it_made(tmp_path: Path) -> None:
    # A comma makes piper pause: the word before it must end before the silence and the word
    # after it must start where the sound comes back (the ground truth is in the audio).
    pytest.importorskip("onnx")
    said = ["Stop, look, and listen.", "First grind; then wait, and brew."]
    n = Narrator(offline=True).narrate(said, "en", tmp_path)
    assert n.timing == "engine"
    samples, rate, _ = decode(n.audio_path)
    win = int(0.01 * rate)
    level = np.sqrt(np.convolve(samples**2, np.ones(win) / win, "same"))
    pauses = [(a, b) for a, b in zip(n.words, n.words[1:], strict=False) if a.text[-1] in ",;"]
    assert len(pauses) == 4
    for before, after in pauses:
        quiet = int(before.end * rate) + int(
            np.argmin(level[int(before.end * rate) : int(after.start * rate)])
        )
        onset = quiet + int(np.argmax(level[quiet:] > 0.02))
        assert abs(after.start - onset / rate) < 0.03, (after, onset / rate)
        assert rms(samples, rate, before.end + 0.02, after.start - 0.02) < 0.005, before
        assert rms(samples, rate, before.start, before.end) > 0.02, before


@pytest.mark.slow
def test_piper_words_after_a_pause_start_where_their_sound_does(tmp_path: Path) -> None:
    # Words that open on a stressed vowel, at a sentence start (after the narrator's 0.3 s
    # pause) and after a comma: piper spends up to ~60 ms on the stress mark before the vowel,
    # and the caption must come up with the sound, not after it. Ground truth: the audio.
    pytest.importorskip("onnx")
    said = ["Open it, open it now.", "Every evening, only apples."]
    n = Narrator(offline=True).narrate(said, "en", tmp_path)
    assert n.timing == "engine"
    samples, rate, _ = decode(n.audio_path)
    win = int(0.005 * rate)
    level = np.sqrt(np.convolve(samples**2, np.ones(win) / win, "same"))
    after_pause = [w for k, w in enumerate(n.words)
                   if k == 0 or n.words[k - 1].text[-1] in ",."]  # fmt: skip
    assert [normalise(w.text) for w in after_pause] == ["open", "open", "every", "only"]
    for w in after_pause:
        a = max(int((w.start - 0.15) * rate), 0)
        quiet = a + int(np.nonzero(level[a : int(w.start * rate) + 1] < 0.005)[0][-1])
        onset = quiet + int(np.argmax(level[quiet:] > 0.02))
        assert abs(w.start - onset / rate) < 0.03, (w, onset / rate)


@pytest.mark.slow
def test_piper_without_alignments_is_timed_by_whisper(
    tmp_path: Path, piper_without_alignments: None
) -> None:
    n = Narrator(offline=True).narrate(EN, "en", tmp_path)
    assert (n.engine, n.voice, n.timing) == ("piper", "en_US-joe-medium", "whisper")
    _check_piper_words(n)


def test_words_from_phonemes_follow_what_piper_said() -> None:
    # "Dr. 3.5 a": the tokens as spelled alone; piper says "3.5" as three words, reads the
    # article differently in context, and pauses at the full stop.
    tokens = [("Dr.", "dɑːktɚ"), ("3.5", "θɹiːpɔɪntfaɪv"), ("a", "eɪ"), ("cat.", "kæt")]
    said = "^ d ˈɑː k t ɚ . _ θ ɹ ˈiː _ p ɔɪ n t _ f ˈaɪ v _ ɐ _ k ˈæ t . $".split()  # noqa: SIM905
    phones, t = [], 0.0
    for sym in said:
        length = 0.3 if sym in ".^$" else 0.05 if sym == "_" else 0.1
        phones.append(Phone(" " if sym == "_" else sym, t, t + length))
        t += length
    words = words_from_phonemes(tokens, phones)
    assert [w.text for w in words] == ["Dr.", "3.5", "cat."]  # "a" is left to interpolation
    dr, num, cat = words
    assert (round(dr.start, 2), round(dr.end, 2)) == (0.3, 0.8)  # not the stop's pause
    assert (round(num.start, 2), round(num.end, 2)) == (1.15, 2.25)
    assert (round(cat.start, 2), round(cat.end, 2)) == (2.45, 2.75)


def test_a_stress_mark_before_a_word_belongs_to_its_start() -> None:
    # piper speaks a stress mark as a phoneme of its own, with a length, before the vowel it
    # stresses: "Open" starts at the mark (measured up to 58 ms before the vowel), not after.
    tokens = [("go,", "ɡoʊ"), ("open", "oʊpən")]
    said = "^ ɡ ˈ o ʊ , _ ˈ o ʊ p ə n $".split()  # noqa: SIM905
    phones, t = [], 0.0
    for sym in said:
        length = 0.3 if sym in ",^$" else 0.05 if sym in "_ˈ" else 0.1
        phones.append(Phone(" " if sym == "_" else sym, t, t + length))
        t += length
    go, open_ = words_from_phonemes(tokens, phones)
    assert (round(go.start, 2), round(go.end, 2)) == (0.3, 0.65)  # the g, before its mark
    # After the comma's pause and the word gap: from the mark on, neither pause counted.
    assert (round(open_.start, 2), round(open_.end, 2)) == (1.0, 1.55)


def test_without_piper_english_falls_back_to_espeak(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(offline, "PIPER_VOICES", Loader("piper voice", offline._load_piper))
    monkeypatch.setitem(sys.modules, "piper", None)  # import piper -> ImportError
    n = Narrator(offline=True).narrate(EN[:1], "en", tmp_path)
    assert n.engine == "espeak-ng"
    check_narration(n, EN[:1])


@pytest.mark.parametrize(
    ("kwargs", "match", "key"),
    [
        ({"sentences": []}, "nothing to narrate", "narration_empty"),
        ({"sentences": ["ok", "  "]}, "sentence 2 has no words", "narration_empty"),
        ({"sentences": ["好。", "……🔥"]}, "sentence 2 has no words", "narration_empty"),
        ({"rate": "fast"}, "rate must look like", "narration_option"),
        ({"pitch": "+5"}, "pitch must look like", "narration_option"),
        ({"voice": "Xiaoxiao"}, "not an edge-tts voice", "narration_option"),
    ],
)
def test_bad_requests_raise_narration_errors(
    tmp_path: Path, kwargs: dict[str, object], match: str, key: str
) -> None:
    args: dict[str, object] = {"sentences": ["你好。"], "language": "zh", "out_dir": tmp_path}
    args.update(kwargs)
    with pytest.raises(NarrationError, match=match) as err:
        Narrator(edge_endpoint="ws://127.0.0.1:9/x?a=b").narrate(**args)  # type: ignore[arg-type]
    assert err.value.key == key
    assert not list(tmp_path.iterdir())  # nothing was written


def test_cli_prints_engine_voice_and_timings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "voice.wav"
    with override(offline_voice="espeak-ng"):  # espeak-ng for Chinese too, as the bot can be set
        code = main(
            ["narrate", "--lang", "zh", "--offline", "-o", str(out), "你好，世界。", "再见！"]
        )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["engine"] == "espeak-ng"
    assert report["audio"] == str(out)
    samples, rate, _ = decode(str(out))
    assert abs(len(samples) / rate - report["duration"]) < 0.01
    assert "".join(w[0] for w in report["words"]) == "你好，世界。再见！"
    assert all(w[1] < w[2] for w in report["words"])
    assert len(report["line_spans"]) == 2
    assert [c["text"] for c in report["captions"]] == ["你好，世界", "再见！"]


def test_cli_reports_bad_input_without_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["narrate", "--lang", "en", "--offline", "--rate", "x", "-o",
                 str(tmp_path / "o.wav"), "Hi."])  # fmt: skip
    assert code == 2
    assert "rate must look like" in capsys.readouterr().err


def test_narration_round_trips_through_json(tmp_path: Path) -> None:
    n = Narrator(offline=True, prefer_kokoro=False).narrate(ZH[:2], "zh", tmp_path)
    n.save(tmp_path / "words.json")
    assert Narration.load(tmp_path / "words.json") == n
    (tmp_path / "bad.json").write_text('{"engine": "edge-tts"}', encoding="utf-8")
    with pytest.raises(NarrationError, match="malformed"):
        Narration.load(tmp_path / "bad.json")


@pytest.mark.slow
def test_without_a_whisper_model_piper_times_are_estimated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, piper_without_alignments: None
) -> None:
    from pipeline.narrate import narrator as narrator_mod
    from pipeline.speech import SpeechModelError

    def no_model() -> None:
        raise SpeechModelError("no model")

    monkeypatch.setattr(narrator_mod, "default_transcriber", no_model)
    n = Narrator(offline=True).narrate(EN[:2], "en", tmp_path)
    assert (n.engine, n.timing) == ("piper", "estimated")
    check_narration(n, EN[:2])


def test_cli_lists_voices(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["voices", "--lang", "zh", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["gender"] for r in rows} == {"female", "male"}
    assert all(r["voice"].startswith("zh-CN-") for r in rows)
    assert any("knowledge" in r["styles"] for r in rows)


@pytest.mark.slow
def test_word_times_agree_with_whisper_on_the_written_audio(tmp_path: Path) -> None:
    # End to end through trimming, pauses and resampling: the times in the Narration must be
    # where an independent listener (whisper) hears the words in the final WAV.
    n = Narrator(offline=True, prefer_piper=False).narrate(EN, "en", tmp_path)
    _agrees_with_whisper(n, tolerance=0.2)


def _agrees_with_whisper(n: Narration, tolerance: float) -> None:
    """90% of the words whisper hears start within `tolerance` of where the narration says."""
    from pipeline.speech import default_transcriber

    heard = default_transcriber().transcribe(
        n.audio_path, language="en", vad=False, retry_temperatures=False
    )
    ours = {normalise(w.text): w.start for w in n.words}
    theirs = [w for w in heard.words if normalise(w.text) in ours]
    assert len(theirs) >= 0.6 * len(n.words)  # whisper base mishears some robotic words
    errors = sorted(abs(w.start - ours[normalise(w.text)]) for w in theirs)
    assert errors[int(0.9 * (len(errors) - 1))] < tolerance, errors


def test_a_script_is_narrated_hook_lines_cta(tmp_path: Path) -> None:
    from pipeline.script.model import Script, ScriptLine

    script = Script(
        title="咖啡", hook=ZH[0], lines=(ScriptLine(ZH[1]),), cta=ZH[2], hashtags=("#咖啡",),
        language="zh", style="knowledge", target_seconds=10, estimated_seconds=8, writer="test",
    )  # fmt: skip
    n = Narrator(offline=True, prefer_kokoro=False).narrate_script(script, tmp_path)
    assert n.sentences == script.spoken()
    check_narration(n, ZH)
    # knowledge -> Yunxi, a male edge voice, but nobody asked for a male one: the offline voice
    # is the better understood female variant.
    assert n.voice == "cmn-latn-pinyin+f3"
