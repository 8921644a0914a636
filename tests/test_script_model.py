"""Script JSON round-trip and validation errors that name the field."""

from __future__ import annotations

import json

import pytest

from pipeline.script import Script, ScriptError, ScriptLine, estimate_seconds


def _script() -> Script:
    return Script(
        title="早起的3个真相",
        hook="早起，90%的人都做错了。",
        lines=(ScriptLine("第一，睡前别看手机。", "手机放远", "point"), ScriptLine("记住这一点。")),
        cta="关注我。",
        hashtags=("#早起", "#自律"),
        language="zh",
        style="knowledge",
        target_seconds=15,
        estimated_seconds=14.2,
        writer="offline",
    )


def test_round_trip_through_json_keeps_everything() -> None:
    script = _script()
    text = script.to_json()
    assert "早起" in text  # not \u-escaped: readable in the job folder
    again = Script.from_json(text)
    assert again == script
    assert again.spoken() == (script.hook, "第一，睡前别看手机。", "记住这一点。", "关注我。")
    assert len(again.visuals()) == len(again.spoken())


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d["lines"][1].update(text="  "), "lines[1].text"),
        (lambda d: d.update(hashtags=["no hash"]), "hashtags[0]"),
        (lambda d: d.update(language="fr"), "language"),
        (lambda d: d.update(target_seconds="long"), "target_seconds"),
        (lambda d: d.pop("hook"), "hook"),
        (lambda d: d.update(lines=[{"visual": "x"}]), "lines[0].text"),
    ],
)
def test_invalid_script_names_the_field(change: object, field: str) -> None:
    data = _script().to_dict()
    change(data)  # type: ignore[operator]
    with pytest.raises(ScriptError) as info:
        Script.from_dict(data)
    assert info.value.field == field
    assert info.value.key == "script_invalid"


def test_not_json_is_a_script_error() -> None:
    with pytest.raises(ScriptError, match="not JSON"):
        Script.from_json("{nope")
    json.loads(_script().to_json())


def test_estimates_follow_the_speaking_rates() -> None:
    zh = estimate_seconds("一二三四五六七八九十一二三四五六七八九十一二。", "zh")
    assert 5.0 < zh < 5.8  # 21 characters at ~4.2/s plus a sentence pause
    en = estimate_seconds("one two three four five six seven eight nine ten.", "en")
    assert 3.6 < en < 4.3  # 10 words at ~2.65/s plus a pause
    assert estimate_seconds("续航30小时", "zh") > estimate_seconds("续航小时", "zh")
