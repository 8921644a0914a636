"""pipeline/comments: sentiment on the labelled sets, flags, themes, weighting, the model pass,
every input kind (and bad ones), screenshots, the chart and the CLI."""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pipeline.bench.comments import accuracy, labelled
from pipeline.comments import (
    Comment,
    CommentsError,
    analyze_comments,
    classify,
    load_report,
    save_report,
)
from pipeline.comments.analyze import subject_of
from pipeline.comments.inputs import load_file, load_files, parse_count, parse_text
from pipeline.comments.lm import LABEL_BATCH, Budget, label_comments, labels_schema
from pipeline.script.styles import STYLES
from tests.comment_shots import SHOT_COMMENTS, draw_comment_section


@pytest.mark.slow
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_sentiment_accuracy_on_the_labelled_sets(lang: str) -> None:
    assert len(labelled(lang)) >= 60  # type: ignore[arg-type]
    acc = accuracy(lang)  # type: ignore[arg-type]
    assert acc["clear"] >= 0.85
    # Slang, emoji and sarcasm: the added words beat the bare libraries by a wide margin.
    assert acc["hard"] > acc["hard_lexicon_only"] + 0.2


def test_flags() -> None:
    r = classify.read("声音太小了，完全听不清")
    assert r.complaint == "sound" and r.sentiment == "negative"
    assert classify.read("The subtitles are too small to read").complaint == "subtitles"
    assert classify.read("用的什么相机？").question
    assert classify.read("这个是手机拍的吗").question
    assert not classify.read("太好看了吧").question
    assert classify.read("求教程").request
    assert classify.read("Please do one about budget cameras").request
    assert classify.read("互粉互粉，关注我主页").spam
    assert classify.read("check out my channel www.example.com").spam
    assert not classify.read("love this").spam
    sarcastic = classify.read("Oh great, another 10 minute ad 🙄")
    assert sarcastic.sentiment == "negative" and not sarcastic.confident
    # Praise next to a sarcasm cue and something wrong is the irony, not praise.
    assert classify.read("呵呵，讲得真好").sentiment == "negative"
    assert classify.read("Wow, so original. Never seen this before 🙄").sentiment == "negative"


def test_subject_of_requests() -> None:
    assert subject_of("Please do one about budget cameras", "en") == "budget cameras"
    assert subject_of("能不能出一期新手入门", "zh") == "新手入门"


def _mixed() -> list[Comment]:
    texts = [
        ("声音太小了，听不清", 30), ("音量太低了", 12), ("the audio is too quiet", 8),
        ("can't hear you, volume please", 3), ("背景音乐太吵了听不清讲解", 2),
        ("求一期剪辑教程", 50), ("能不能出个剪辑教程", 20), ("please do a tutorial on editing", 5),
        ("太好看了爱了", 9), ("this is amazing", 4), ("love it so much ❤️", 2), ("宝藏博主", 1),
        ("用的什么相机？", 7), ("what camera is this?", 3), ("相机型号是什么？", 2),
        ("加微信看更多内容 vx123", 0),
        ("This is the same long comment pasted twice", 0),
        ("This is the same long comment pasted twice", 0),
    ]  # fmt: skip
    return [Comment(t, likes=k) for t, k in texts]


@pytest.mark.slow
def test_report_themes_lists_ideas_and_json(tmp_path: Path) -> None:
    report = analyze_comments(_mixed())
    assert report.total == 18 and report.counted == 16  # spam and the repeat left out
    spam = [c for c in report.comments if c.spam]
    assert [c.text for c in spam] == ["加微信看更多内容 vx123"]
    assert report.comments[17].duplicate_of == 16
    assert report.weighted
    assert abs(sum(report.shares.values()) - 1.0) < 0.01
    # The sound complaints, zh and en, are one theme, named by their aspect.
    sound = [t for t in report.themes if t.name in ("声音问题", "sound problems")]
    assert len(sound) == 1 and sound[0].size >= 4 and sound[0].sentiment == "negative"
    members = {c.text for c in report.comments if c.theme == report.themes.index(sound[0])}
    assert {"声音太小了，听不清", "the audio is too quiet"} <= members
    assert len(sound[0].examples) == 2
    assert report.requests[0].text == "求一期剪辑教程"
    assert any("相机" in q.text or "camera" in q.text for q in report.questions)
    assert report.complaints.get("sound", 0) >= 4
    assert len(report.ideas) == 3
    assert all(i.style in STYLES and i.topic and i.why for i in report.ideas)
    assert report.ideas[0].topic == "剪辑教程" and report.ideas[0].style == "knowledge"
    path = tmp_path / "report.json"
    save_report(path, report)
    assert load_report(path) == report


def test_likes_weight_the_shares() -> None:
    plain = analyze_comments([Comment("太好看了，爱了"), Comment("垃圾视频，浪费时间")])
    liked = analyze_comments([Comment("太好看了，爱了", likes=400), Comment("垃圾视频，浪费时间")])
    assert plain.shares["positive"] == pytest.approx(0.5)
    assert liked.shares["positive"] > 0.9 and liked.weighted and not plain.weighted


class Labeller:
    """A stand-in language model: labels every comment negative (as a sarcasm-aware model
    would label the sarcastic one), optionally slowly, optionally failing for idea requests."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.prompts: list[str] = []

    def generate_json(self, prompt: str, schema: Mapping[str, Any], *, timeout_s: float) -> Any:
        self.prompts.append(prompt)
        props = schema["properties"]
        assert 0 < timeout_s <= 40
        time.sleep(self.delay)
        if "1" in props:
            return {key: "negative" for key in props}
        if "names" in props:
            return {"names": ["bad"] * prompt.count("\n1. ")}
        raise TimeoutError("too slow")


def _label_prompts(prompts: list[str]) -> list[str]:
    return [p for p in prompts if "For each numbered comment" in p]


@pytest.mark.slow
def test_model_relabels_only_the_uncertain_and_keeps_its_budget() -> None:
    model = Labeller()
    comments = ["Oh great, another 10 minute ad 🙄", "This is amazing, thank you so much!"]
    report = analyze_comments(comments, model=model)
    sarcastic, clear = report.comments
    assert sarcastic.source == "model" and sarcastic.sentiment == "negative"
    assert clear.source == "lexicon" and clear.sentiment == "positive"  # never asked
    (asked,) = _label_prompts(model.prompts)
    assert "1. Oh great" in asked and "amazing" not in asked
    # The idea request failed: the fallback ideas stand, and the report says so.
    assert "model_ideas_fallback" in report.notes and report.ideas  # as many as 2 comments give
    # 25 unsure comments, a request each; at 0.6 s a request a 1 s budget answers the first.
    slow = Labeller(delay=0.6)
    many = [f"Oh great, another ad number {i} 🙄" for i in range(25)]
    started = time.monotonic()
    report = analyze_comments(many, model=slow, model_budget_s=1.0)
    assert time.monotonic() - started < 1.0 + 0.6 + 8  # + the fast analysis
    assert len(_label_prompts(slow.prompts)) == 1
    assert f"model_budget_left_out:{25 - LABEL_BATCH}" in report.notes
    assert sum(c.source == "model" for c in report.comments) == LABEL_BATCH


def test_labels_are_asked_in_batches_and_matched_by_number() -> None:
    """Each answer is read by its key: a label lands on its own comment across batches, and a
    missing or invalid label leaves only that comment to the lexicons."""
    schemas: list[Mapping[str, Any]] = []

    class ByWord:
        def generate_json(self, prompt: str, schema: Mapping[str, Any], *, timeout_s: float) -> Any:
            schemas.append(schema)
            lines = [ln for ln in prompt.splitlines() if ln[:1].isdigit() and ". " in ln]
            out: dict[str, str] = {}
            for line in lines:
                number, text = line.split(". ", 1)
                if "bad" in text:
                    out[number] = "negative"
                elif "good" in text:
                    out[number] = "positive"
                elif "odd" in text:
                    out[number] = "sarcastic"  # not a label: ignored
            return out

    texts = [("bad", "good", "odd", "silent")[i % 4] + f" comment {i}" for i in range(23)]
    found = label_comments(ByWord(), texts, Budget(30), batch=10)
    expected = {"bad": "negative", "good": "positive", "odd": None, "silent": None}
    assert found == [expected[t.split()[0]] for t in texts]
    assert [len(s["required"]) for s in schemas] == [10, 10, 3]
    # The default: one comment a request, so that no neighbour sways its label.
    schemas.clear()
    assert label_comments(ByWord(), texts[:3], Budget(30)) == found[:3]
    assert [len(s["required"]) for s in schemas] == [LABEL_BATCH] * 3 == [1] * 3
    assert labels_schema(3)["required"] == ["1", "2", "3"]


def test_bench_measures_the_model_pass_and_prints_it_last() -> None:
    """With a stand-in that says negative to everything: the model alone gets the hard set's
    negatives right (10 of 25), the product's path asks only the unsure comments, and the last
    line carries both hard figures."""
    from pipeline.bench.comments import last_line, model_accuracy

    model = Labeller()
    found = model_accuracy(model, "en", 30)
    assert found["hard_model_only"] == pytest.approx(10 / 25, abs=0.001)
    assert found["hard_model_only_unanswered"] == 0 and found["unanswered"] == 0
    # The 25 hard comments alone, then the unsure ones of all 85, a request each.
    asked = int(found["asked"])
    assert 0 < asked < 85
    assert len(_label_prompts(model.prompts)) == 25 + asked
    lexicons = {
        "zh": {"all": 0.9, "hard": 0.8, "heldout": 0.6},
        "en": {"all": 0.87, "hard": 0.72, "heldout": 0.67},
    }
    line = last_line(300.4, lexicons, {"en": found})  # type: ignore[dict-item]
    assert line.startswith("comments_per_s=300 sentiment_acc_zh=0.90 sentiment_acc_en=0.87 ")
    assert "hard_lexicon_zh=0.80 hard_model_zh=na" in line
    assert f"hard_lexicon_en=0.72 hard_model_en={found['hard_with_model']:.2f}" in line
    assert line.endswith(
        f"heldout_lexicon_zh=0.60 heldout_model_zh=na "
        f"heldout_lexicon_en=0.67 heldout_model_en={found['heldout_with_model']:.2f}"
    )


@pytest.mark.parametrize(
    ("text", "lexicons", "model", "merged"),
    [
        # Praise beside a sarcasm cue, already turned negative: the literal reading loses.
        ("呵呵，讲得真好", "negative", "positive", "negative"),
        ("Wow, so original. Never seen this before 🙄", "negative", "neutral", "negative"),
        # Terse slang the model calls neutral keeps the lexicons' polar reading...
        ("下头", "negative", "neutral", "negative"),
        # ...but a question or a request is neutral when the model says so.
        ("Please do one about budget cameras", "positive", "neutral", "neutral"),
        # Irony the cues missed, and any other disagreement: the model decides.
        ("Yeah right, like that's gonna work", "positive", "negative", "negative"),
        ("不得不说，确实有点东西", "neutral", "positive", "positive"),
    ],
)
def test_model_labels_merge_with_the_lexicons_reading(
    text: str, lexicons: str, model: str, merged: str
) -> None:
    from pipeline.comments.analyze import merged as merge
    from pipeline.comments.analyze import result_of

    reading = classify.read(text)
    assert reading.sentiment == lexicons and not reading.confident  # what the model is asked
    result = result_of(Comment(text), reading)
    assert merge(result, model, reading.sarcasm_cue) == merged  # type: ignore[arg-type]


def test_paste_and_forwarded_messages() -> None:
    pasted = (
        "太好看了\n\n求教程\n[12.03.24 14:05] Anna: Love it\nBob, [12.03.2024 14:06]\nToo loud\n"
    )
    found = parse_text(pasted)
    assert [c.text for c in found] == ["太好看了", "求教程", "Love it", "Too loud"]
    assert found[2].author == "Anna" and found[2].time == "12.03.24 14:05"
    assert found[3].author == "Bob"
    assert (
        parse_count("1.2k") == 1200 and parse_count("3.4w") == 34000 and parse_count("2万") == 20000
    )


def _write_csv(path: Path, rows: list[list[object]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows(rows)
    return path


def test_exports_by_header_and_by_content(tmp_path: Path) -> None:
    youtube = _write_csv(tmp_path / "yt.csv", [
        ["authorDisplayName", "textOriginal", "likeCount", "publishedAt"],
        ["@anna", "Love this", 12, "2024-03-01T10:00:00Z"],
        ["@bob", "Too quiet", 3, "2024-03-01T11:00:00Z"],
    ])  # fmt: skip
    found = load_file(youtube)
    assert found[0] == Comment("Love this", 12, "2024-03-01T10:00:00Z", "@anna")
    douyin = _write_csv(tmp_path / "dy.csv", [
        ["用户昵称", "评论内容", "点赞数", "评论时间"],
        ["小明", "太好看了", "1.2w", "2024-03-01 10:00"],
    ])  # fmt: skip
    assert load_file(douyin) == [Comment("太好看了", 12000, "2024-03-01 10:00", "小明")]
    headless = _write_csv(tmp_path / "plain.csv", [
        ["2024-03-01", "这个视频讲得很清楚", 5],
        ["2024-03-02", "声音太小了听不清", 1],
    ])  # fmt: skip
    assert [c.text for c in load_file(headless)] == ["这个视频讲得很清楚", "声音太小了听不清"]
    bili = tmp_path / "bili.json"
    bili.write_text(json.dumps({"data": {"replies": [
        {"member": {"uname": "阿杰"}, "content": {"message": "求出续集"}, "like": 88},
        {"member": {"uname": "K"}, "content": {"message": "up主辛苦了"}, "like": 2},
    ]}}, ensure_ascii=False))  # fmt: skip
    assert load_file(bili)[0] == Comment("求出续集", 88, "", "阿杰")
    tiktok = tmp_path / "tt.json"
    tiktok.write_text(json.dumps([{"text": "slaps", "diggCount": 7, "createTime": 1700000000}]))
    assert load_file(tiktok) == [Comment("slaps", 7, "1700000000", "")]
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    assert sheet is not None
    for row in (["昵称", "评论", "点赞"], ["小红", "种草了", 30], ["路人", "链接在哪", None]):
        sheet.append(row)
    xlsx = tmp_path / "xhs.xlsx"
    book.save(xlsx)
    assert load_file(xlsx) == [
        Comment("种草了", 30, "", "小红"),
        Comment("链接在哪", 0, "", "路人"),
    ]


def test_bad_inputs_are_named_and_cost_nothing_else(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    binary = tmp_path / "data.bin"
    binary.write_bytes(bytes(range(256)) * 40)
    huge = tmp_path / "huge.csv"
    with open(huge, "wb") as fh:
        fh.truncate(50 * 2**20)
    no_text = _write_csv(tmp_path / "numbers.csv", [["id", "likes"], [1, 2], [3, 4]])
    blank = tmp_path / "blank.png"
    Image.new("RGB", (400, 300), "white").save(blank)
    good = tmp_path / "good.txt"
    good.write_text("太好看了\nlove it\n", encoding="utf-8")
    comments, problems = load_files([empty, binary, huge, no_text, good, blank])
    assert [c.text for c in comments] == ["太好看了", "love it"]
    assert [(p.name, p.reason) for p in problems] == [
        ("empty.txt", "empty"),
        ("data.bin", "not_text"),
        ("huge.csv", "too_big"),
        ("numbers.csv", "no_text_column"),
        ("blank.png", "no_text_in_image"),
    ]
    assert all(p.key == f"comments_{p.reason}" for p in problems)
    with pytest.raises(CommentsError):
        load_file(tmp_path / "missing.csv")


@pytest.mark.slow
def test_screenshot_recovers_the_comments(tmp_path: Path) -> None:
    import difflib

    shot = draw_comment_section(tmp_path / "shot.png")
    found = load_file(shot)
    assert len(found) == len(SHOT_COMMENTS)
    expected = "".join(text for _, text, _, _ in SHOT_COMMENTS)
    got = "".join(c.text for c in found)
    matcher = difflib.SequenceMatcher(None, expected, got, autojunk=False)
    recovered = sum(b.size for b in matcher.get_matching_blocks()) / len(expected)
    assert recovered >= 0.9
    # Names, times and likes are separated from the text.
    for comment, (name, _, when, likes) in zip(found, SHOT_COMMENTS, strict=True):
        assert name not in comment.text
        assert comment.author.replace(" ", "") == name.replace(" ", "")
        assert comment.time.replace(" ", "") == when.replace(" ", "")
        if likes >= 10:  # one digit alone is below what the OCR keeps as text
            assert comment.likes == likes


def test_chart_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pipeline.cli import main

    src = tmp_path / "comments.txt"
    src.write_text("\n".join(c.text for c in _mixed()), encoding="utf-8")
    chart = tmp_path / "chart.png"
    lexicons_only = ["--model-budget", "0"]
    assert main(["comments", str(src), "--chart", str(chart), "--lang", "en", *lexicons_only]) == 0
    out = capsys.readouterr().out
    assert "comments: positive" in out and "Ideas for the next video" in out
    img = np.asarray(Image.open(chart).convert("RGB")).astype(int)
    green = ((img[..., 1] > 150) & (img[..., 0] < 100)).sum()
    red = ((img[..., 0] > 200) & (img[..., 1] < 80)).sum()
    assert green > 1000 and red > 1000
    assert main(["comments", str(src), "--json", *lexicons_only]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["language"] == "zh" and len(data["ideas"]) == 3
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert main(["comments", str(empty), *lexicons_only]) == 2


def test_pipeline_lm_models_answer_through_the_adapter() -> None:
    from pipeline.comments.lm import FromLanguageModel
    from pipeline.lm import Completion

    asked: list[dict[str, Any]] = []

    class Chat:
        def generate(self, messages: list[dict[str, Any]], **kw: Any) -> Completion:
            asked.append({"messages": messages, **kw})
            data = {"1": "negative", "2": "positive"}
            return Completion(json.dumps(data), data, "stub", "m", 1, 1, 0.1)

    found = label_comments(
        FromLanguageModel(Chat()), ["呵呵，讲得真好", "爱了"], Budget(5), batch=2
    )
    assert found == ["negative", "positive"]
    (call,) = asked
    assert call["json_schema"] == dict(labels_schema(2)) and call["max_tokens"] == 36
    assert call["temperature"] == 0.0 and 0 < call["timeout_s"] <= 5
    assert "1. 呵呵，讲得真好\n2. 爱了" in call["messages"][0]["content"]
