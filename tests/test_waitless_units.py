"""Units of waiting less: edit requests understood without a model, their buttons, and the
background prefetcher's cancel and hand-over."""

from __future__ import annotations

import threading
import time

import pytest

from bot import callbacks
from bot.callbacks import EditChoice
from bot.prefetch import Prefetcher
from pipeline.errors import Cancelled
from pipeline.make.editrequest import EditRequest, parse_edit


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("第三个镜头换掉", EditRequest("shot", index=3)),
        ("replace shot 3", EditRequest("shot", index=3)),
        ("swap the second clip", EditRequest("shot", index=2)),
        ("line 2: Cats sleep a lot", EditRequest("line", index=2, text="Cats sleep a lot")),
        ("第2句改成：猫很能睡", EditRequest("line", index=2, text="猫很能睡")),
        ("title: Boxes!", EditRequest("title", text="Boxes!")),
        ("标题：盒子", EditRequest("title", text="盒子")),
        ("shorter", EditRequest("length", seconds=22)),
        ("短一点", EditRequest("length", seconds=22)),
        ("make it 20 s", EditRequest("length", seconds=20)),
        ("15秒", EditRequest("length", seconds=15)),
        ("make it in English", EditRequest("language", text="en")),
        ("用中文", EditRequest("language", text="zh")),
        ("no music", EditRequest("music", text="")),
        ("不要音乐", EditRequest("music", text="")),
        ("faster voice", EditRequest("rate", text="faster")),
        ("slower", EditRequest("rate", text="slower")),
        ("语速快一点", EditRequest("rate", text="faster")),
        ("说慢点", EditRequest("rate", text="slower")),
        ("male voice", EditRequest("voice", text="male")),
        ("use a female voice", EditRequest("voice", text="female")),
        ("换个声音", EditRequest("voice", text="other")),
        ("男声", EditRequest("voice", text="male")),
        ("女声", EditRequest("voice", text="female")),
        ("bigger captions", EditRequest("captions", text="bigger")),
        ("字幕大一点", EditRequest("captions", text="bigger")),
        ("make the captions smaller", EditRequest("captions", text="smaller")),
        ("captions at the top", EditRequest("captions", text="top")),
        ("字幕放上面", EditRequest("captions", text="top")),
        ("字幕放到中间", EditRequest("captions", text="middle")),
    ],
)
def test_edit_requests_in_zh_and_en(text: str, want: EditRequest) -> None:
    assert parse_edit(text, lines=5, seconds=30) == want


@pytest.mark.parametrize("text", ["hello", "make it purple", "change the music", "line 9: x",
                                  "replace shot 7", "2 s", "快一点", "bigger"])  # fmt: skip
def test_what_is_not_understood_or_out_of_range_is_none(text: str) -> None:
    assert parse_edit(text, lines=5, seconds=30) is None


def test_an_audio_file_with_the_reply_is_the_new_music() -> None:
    assert parse_edit("", 5, 30, music="/j/edits/music-1.mp3", base="v2") == EditRequest(
        "music", text="/j/edits/music-1.mp3", base="v2"
    )


def test_each_new_edit_has_a_confirm_line_in_zh_and_en() -> None:
    from bot.edits import confirm_text
    from bot.texts import T
    from pipeline.make.editrequest import CAPTION_WORDS, RATE_WORDS, VOICE_WORDS

    kinds = [("rate", RATE_WORDS), ("voice", VOICE_WORDS), ("captions", CAPTION_WORDS)]
    for kind, words in kinds:
        for word in words:
            request = EditRequest(kind, text=word)  # type: ignore[arg-type]
            assert f"edit_confirm_{kind}_{word}" in T
            zh, en = confirm_text("zh", request), confirm_text("en", request)
            assert zh != en and "✅" not in en and en.endswith(":") and zh.endswith("：")
    assert "faster" in confirm_text("en", EditRequest("rate", text="faster"))
    assert "上方" in confirm_text("zh", EditRequest("captions", text="top"))


def test_edit_buttons_round_trip_and_forgeries_are_refused() -> None:
    button = EditChoice("ok", "20250101-120000-abcdef12", 3)
    data = callbacks.encode(button)
    assert data == "ed:ok:20250101-120000-abcdef12:3" and callbacks.decode(data) == button
    assert callbacks.edit_pattern(data) and not callbacks.board_pattern(data)
    for forged in ("ed:go:job:1", "ed:ok:job:0", "ed:ok:job:01", "ed:ok:j/b:1", "ed:ok:job",
                   "ed:ok:job:1:2", "ed:ok:job:" + "9" * 7):  # fmt: skip
        assert callbacks.decode(forged) is None, forged


def test_prefetch_runs_one_file_at_a_time_and_cancel_stops_the_running_one() -> None:
    running: list[str] = []
    most = [0]
    lock = threading.Lock()
    stopped = threading.Event()

    def warm(path: str, cancel: threading.Event) -> object:
        with lock:
            running.append(path)
            most[0] = max(most[0], len(running))
        try:
            for _ in range(200):
                if cancel.is_set():
                    stopped.set()
                    raise Cancelled("stopped")
                time.sleep(0.01)
            return path
        finally:
            with lock:
                running.remove(path)

    pre = Prefetcher(warm)
    pre.add("job-a", "a1")
    pre.add("job-a", "a2")
    time.sleep(0.1)
    pre.cancel("job-a")  # the draft is gone: a1 stops, a2 never starts
    assert stopped.wait(2.0)
    time.sleep(0.1)
    assert pre.warmed == 0 and most[0] == 1 and pre.pending("job-a") == 0
    pre.shutdown()


@pytest.mark.slow
def test_prepare_withdraws_files_not_started_and_waits_for_the_running_one() -> None:
    done: list[str] = []

    def warm(path: str, cancel: threading.Event) -> object:
        time.sleep(0.3)
        done.append(path)
        return path

    pre = Prefetcher(warm)
    for name in ("a", "b", "c"):
        pre.add("job", name)
    time.sleep(0.1)  # "a" is running, "b" and "c" wait
    began = time.monotonic()
    assert pre.settle("job") == 1
    assert done == ["a"] and time.monotonic() - began < 0.6
    time.sleep(0.5)
    assert done == ["a"]  # b and c were left to the job's own analysis
    pre.shutdown()
