"""pipeline.loadonce: one load per key under concurrency, failures shared then retried; and every
site that keeps a model for the process goes through it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from pipeline.loadonce import Loader


class _Counting:
    """A slow factory that counts its calls per key (and can be told to fail)."""

    def __init__(self, delay: float = 0.2, fail: int = 0) -> None:
        self.calls: dict[Any, int] = {}
        self.delay = delay
        self.fail = fail  # how many first calls raise
        self._lock = threading.Lock()

    def __call__(self, key: Any) -> object:
        with self._lock:
            self.calls[key] = self.calls.get(key, 0) + 1
            n = sum(self.calls.values())
        time.sleep(self.delay)
        if n <= self.fail:
            raise OSError(f"load {n} failed")
        return object()


def _together(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Run fn(i) on n threads released at the same moment; results or exceptions, in order."""
    out: list[Any] = [None] * n
    gate = threading.Barrier(n)

    def run(i: int) -> None:
        gate.wait()
        try:
            out[i] = fn(i)
        except Exception as exc:
            out[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert not any(t.is_alive() for t in threads)
    return out


def test_threads_asking_at_once_load_once() -> None:
    factory = _Counting()
    loader: Loader[str, object] = Loader("thing", factory)
    got = _together(8, lambda _: loader.get("a"))
    assert factory.calls == {"a": 1}
    assert all(g is got[0] for g in got) and isinstance(got[0], object)
    assert loader.get("a") is got[0] and loader.loaded("a")


def test_distinct_keys_load_separately_and_in_parallel() -> None:
    factory = _Counting(delay=0.5)
    loader: Loader[int, object] = Loader("thing", factory)
    started = time.monotonic()
    got = _together(4, lambda i: loader.get(i % 2))
    took = time.monotonic() - started
    assert factory.calls == {0: 1, 1: 1}
    assert got[0] is got[2] and got[1] is got[3] and got[0] is not got[1]
    assert took < 0.9  # the two keys loaded side by side, not one after the other


def test_a_failed_load_raises_to_every_waiter_and_is_retried() -> None:
    factory = _Counting(fail=1)
    loader: Loader[str, object] = Loader("thing", factory)
    got = _together(6, lambda _: loader.get("a"))
    assert factory.calls == {"a": 1}  # the waiters shared the one failed attempt
    assert all(isinstance(g, OSError) and str(g) == "load 1 failed" for g in got)
    assert not loader.loaded("a")
    value = loader.get("a")  # not cached: the next call loads again, and succeeds
    assert factory.calls == {"a": 2} and loader.get("a") is value


def test_a_load_asking_for_itself_raises_instead_of_hanging() -> None:
    loader: Loader[str, object] = Loader("thing", lambda k: loader.get(k))
    with pytest.raises(RuntimeError, match="asked for itself"):
        loader.get("a")
    assert not loader.loaded("a")


def test_clear_forgets() -> None:
    factory = _Counting(delay=0.0)
    loader: Loader[str, object] = Loader("thing", factory)
    first = loader.get("a")
    loader.clear()
    assert loader.get("a") is not first and factory.calls == {"a": 2}


# --- every site goes through the helper ----------------------------------------------------
# Each swaps the site's loader for one with a slow counting stand-in, asks from several threads
# at once through the site's public function, and checks the stand-in ran once.


def _swap(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> _Counting:
    factory = _Counting()
    monkeypatch.setattr(module, name, Loader(name, factory))
    return factory


def test_script_writer_model_loads_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.script import llm

    factory = _Counting()
    monkeypatch.setattr(llm, "MODELS", Loader("script model", lambda k: (factory(k), None, "cpu")))
    got = _together(4, lambda _: llm.load_model("some/model", "cpu"))
    assert factory.calls == {("some/model", "cpu"): 1}
    assert all(g is got[0] for g in got)


def test_whisper_loads_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline import speech

    monkeypatch.setenv("REELBOT_WHISPER_MODEL", "tiny")
    factory = _swap(monkeypatch, speech, "TRANSCRIBERS")
    got = _together(4, lambda _: speech.default_transcriber())
    assert factory.calls == {"tiny": 1} and all(g is got[0] for g in got)


def test_offline_voices_load_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.narrate import offline

    espeak = _Counting()
    monkeypatch.setattr(offline, "ESPEAK", Loader("espeak", lambda k: (espeak(k), 22050)))
    engines = _together(4, lambda _: offline.EspeakEngine())
    assert sum(espeak.calls.values()) == 1
    assert len({id(e._lib) for e in engines}) == 1

    piper = _Counting()
    monkeypatch.setenv("REELBOT_PIPER_VOICE", "/voices/x.onnx")
    monkeypatch.setattr(offline, "PIPER_VOICES", Loader("piper", lambda k: (piper(k), "x")))
    voices = _together(4, lambda _: offline.PiperEngine())
    assert piper.calls == {"/voices/x.onnx": 1}
    assert len({id(v._voice) for v in voices}) == 1


def test_face_detector_loads_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.footage import faces

    monkeypatch.delenv("REELBOT_FACE_MODEL", raising=False)
    factory = _swap(monkeypatch, faces, "DETECTORS")
    got = _together(4, lambda _: faces.default_detector())
    assert factory.calls == {"": 1} and all(g is got[0] for g in got)


def test_matching_models_load_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.footage import scorers

    clip = _swap(monkeypatch, scorers, "SCORERS")
    embed = _swap(monkeypatch, scorers, "EMBEDDERS")
    a = _together(4, lambda _: scorers.image_text_scorer("clip-dir"))
    b = _together(4, lambda _: scorers.text_embedder("minilm-dir"))
    assert clip.calls == {"clip-dir": 1} and embed.calls == {"minilm-dir": 1}
    assert all(x is a[0] for x in a) and all(x is b[0] for x in b)
    monkeypatch.delenv("REELBOT_IMAGE_TEXT_MODEL", raising=False)
    assert scorers.image_text_scorer() is None  # not configured: nothing is loaded


def test_narrators_and_jieba_load_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline.make import stages
    from pipeline.narrate import align

    narrators = _swap(monkeypatch, stages, "NARRATORS")
    got = _together(4, lambda _: stages.narrator())
    assert sum(narrators.calls.values()) == 1 and all(g is got[0] for g in got)

    seg = _Counting()
    monkeypatch.setattr(align, "_JIEBA", Loader("jieba", lambda k: seg(k) and None))
    _together(4, lambda _: align.zh_word_starts("你好"))
    assert seg.calls == {"": 1}
