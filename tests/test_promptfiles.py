"""Prompt files: declared variables match the body, shipped prompts and phrase banks are sound."""

from __future__ import annotations

import re
import string

import pytest

from pipeline.promptfiles import (
    PromptError,
    load_data,
    load_prompt,
    parse_prompt,
    prompt_names,
    prompts_dir,
)
from pipeline.script.styles import STYLES


def test_prompts_folder_is_found_and_holds_the_data() -> None:
    folder = prompts_dir()
    assert (folder / "styles.json").is_file()
    assert {"script_system", "script_user", "script_repair"} <= set(prompt_names())


def test_a_prompt_using_an_undeclared_variable_fails() -> None:
    with pytest.raises(PromptError, match="undeclared variables \\['tpoic'\\]"):
        parse_prompt("bad", "# vars: topic\n---\nAbout $topic and $tpoic.\n")


def test_a_prompt_declaring_an_unused_variable_fails() -> None:
    with pytest.raises(PromptError, match="unused variables \\['notes'\\]"):
        parse_prompt("bad", "# vars: topic, notes\n---\nAbout ${topic}.\n")


def test_a_prompt_without_header_or_with_a_stray_dollar_fails() -> None:
    with pytest.raises(PromptError, match="no '---'"):
        parse_prompt("bad", "About $topic.")
    with pytest.raises(PromptError, match="no '# vars:'"):
        parse_prompt("bad", "# just a comment\n---\nAbout nothing.")
    with pytest.raises(PromptError, match="neither a variable"):
        parse_prompt("bad", "# vars: topic\n---\n$topic costs $ 5")


def test_rendering_needs_exactly_the_declared_variables() -> None:
    prompt = parse_prompt("ok", '# vars: topic\n---\n{"json": "$topic", "price": "$$5"}')
    assert prompt.render(topic="猫") == '{"json": "猫", "price": "$5"}'
    with pytest.raises(PromptError, match="missing \\['topic'\\]"):
        prompt.render()
    with pytest.raises(PromptError, match="unknown \\['extra'\\]"):
        prompt.render(topic="x", extra="y")


@pytest.mark.parametrize(
    "name", ["script_system", "script_user", "script_repair", "edit_system", "edit_user"]
)
def test_shipped_prompts_load_with_their_variables(name: str) -> None:
    prompt = load_prompt(name)
    assert prompt.variables
    assert set(string.Template(prompt.body).get_identifiers()) == prompt.variables


def _strings(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [s for item in node for s in _strings(item)]
    if isinstance(node, dict):
        return [s for k, v in node.items() if not k.startswith("_") for s in _strings(v)]
    return []


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_phrase_banks_cover_every_style_and_use_known_placeholders(lang: str) -> None:
    bank = load_data(f"offline_{lang}")
    for key, style in STYLES.items():
        entry = bank[key]
        for part in ("hook", "cta", "title", "visual"):
            assert entry[part], (key, part)
        for slot in style.structure:
            assert slot.slot in entry, (key, slot.slot)
            assert slot.slot in entry["visual"], (key, slot.slot)
            if slot.repeat:
                for frames in entry[slot.slot]["frames"]:
                    assert len(frames["seq"]) >= slot.max, (key, frames["seq"][0])
        for text in _strings(entry):
            names = set(re.findall(r"\{(\w*)\}", text))
            assert names <= {"topic", "Topic", "point", "Point", "n"}, text
            bare = re.sub(r"\{\w+\}", "", text)
            if lang == "zh":
                assert not re.search(r"[A-Za-z]", bare), text
            else:
                assert not re.search(r"[\u3000-\u9fff\uff00-\uffef]", bare), text


def test_styles_have_labels_in_both_languages() -> None:
    assert {"knowledge", "product", "vlog", "funny", "motivational"} <= set(STYLES)
    for style in STYLES.values():
        assert style.name("zh") and style.name("en")
        assert sum(s.repeat for s in style.structure) == 1
        assert style.hashtags["zh"] and style.hashtags["en"]


def test_speaking_rates_are_data() -> None:
    rates = load_data("speaking_rates")
    assert 3.5 <= rates["zh"]["rate"] <= 5.0
    assert 2.2 <= rates["en"]["rate"] <= 3.2
