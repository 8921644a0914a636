"""Turning a language model's answer into a valid `Script`, or a `ScriptError` saying what is
wrong with it (which is what the repair request tells the model)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from pipeline.cjk import HAN_RE
from pipeline.script.length import estimate_seconds
from pipeline.script.model import Script, ScriptError, ScriptLine
from pipeline.script.request import ScriptRequest
from pipeline.script.styles import STYLES
from pipeline.script.text import clean, foreign_words

_THINK = re.compile(r"<(think|thinking|reasoning)>.*?</\1>", re.DOTALL | re.IGNORECASE)
_OPEN_THINK = re.compile(r"^.*</(think|thinking|reasoning)>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```(?:json|JSON)?")
_FIELD_CHARS = {"title": 90, "hook": 200, "cta": 200, "text": 300, "visual": 200}
# A model that says this much of its own instructions is echoing them, not writing a script.
_ECHO_CHARS = {"zh": 12, "en": 28}
_MAX_RATIO = 1.3
# Past this, body lines before the payoff are dropped: a 30 s request should not come back 35 s
# long (models pad; the repair round costs a whole second answer).
_TRIM_RATIO = 1.1
# The hook has to land in the first three seconds; a sentence this long cannot.
_HOOK_SECONDS = 6.0
_CLAUSE_BREAK = re.compile(r"[，,；;：:—]")
_FIRST_SENTENCE = re.compile(r".+?(?:[。！？!?…]+|\.(?=\s))", re.DOTALL)
# What the prompt asks of the hook (well inside _HOOK_SECONDS, which is what is refused).
HOOK_LIMIT = {"zh": "12 Chinese characters", "en": "10 words"}
_MIN_RATIO = 0.6


def strip_thinking(text: str) -> str:
    """Drop <think>...</think> blocks, and everything before a closing tag left unopened."""
    text = _THINK.sub("", text)
    text = _OPEN_THINK.sub("", text)
    if re.search(r"<(think|thinking|reasoning)>", text, re.IGNORECASE):
        # Thinking that never closed (cut by the token limit) holds no answer.
        raise ScriptError("answer", "the answer is an unfinished thinking block")
    return text


def extract_json(text: str) -> dict[str, Any]:
    """The first complete JSON object in `text`, ignoring code fences and prose around it."""
    text = _FENCE.sub("", strip_thinking(text))
    decoder = json.JSONDecoder()
    saw_brace = False
    for match in re.finditer(r"\{", text):
        saw_brace = True
        try:
            obj, _ = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and ("hook" in obj or "lines" in obj or "title" in obj):
            return obj
    if saw_brace:
        raise ScriptError("json", "the JSON object is incomplete or malformed (truncated?)")
    raise ScriptError("json", "the answer contains no JSON object")


def _echoes(text: str, prompt: str, language: str) -> bool:
    """Whether `text` repeats a stretch of the system prompt."""
    size = _ECHO_CHARS[language]
    flat = re.sub(r"\s+", " ", text.lower())
    source = re.sub(r"\s+", " ", prompt.lower())
    return any(flat[i : i + size] in source for i in range(0, max(0, len(flat) - size) + 1, 4))


def _field(obj: dict[str, Any], name: str) -> str:
    value = obj.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ScriptError(name, "missing or not a non-empty string")
    return clean(value, _FIELD_CHARS[name])


def _shorter_hook(hook: str, lang: str) -> str:
    """A hook that runs past its seconds, cut to what lands: its first sentence ("Why does X
    help? Let's find out."), else its longest opening clause that fits, ended as the sentence
    ends ("你是不是还在犹豫，为什么……？" -> "你是不是还在犹豫？"). Unchanged if neither fits."""
    first = _FIRST_SENTENCE.match(hook)
    sentence = first.group(0).strip() if first else hook.strip()
    if estimate_seconds(sentence, lang) <= _HOOK_SECONDS:
        return sentence
    end = sentence[-1] if sentence[-1] in "。！？!?." else ("。" if lang == "zh" else ".")
    if lang == "zh" and end in "!?.":
        end = {"!": "！", "?": "？", ".": "。"}[end]
    cuts = [m.start() for m in _CLAUSE_BREAK.finditer(sentence)]
    for at in reversed(cuts):
        clause = sentence[:at].rstrip() + end
        if len(sentence[:at].strip()) >= 4 and estimate_seconds(clause, lang) <= _HOOK_SECONDS:
            return clause
    return hook


def _said(text: str) -> str:
    """A line as it sounds, for spotting repeats: letters and digits only, lower case."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _check_language(text: str, where: str, language: str, user_text: str) -> None:
    if language == "zh" and not HAN_RE.search(text):
        raise ScriptError(where, "is not written in Chinese")
    foreign = foreign_words(text, language, allowed=user_text)
    if foreign:
        lang = "Chinese" if language == "zh" else "English"
        raise ScriptError(where, f"is not all in {lang} (found {' '.join(foreign[:5])!r})")


_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')


class LineBudget:
    """Ends a streamed script answer once its lines fill the video (`LanguageModel`'s `enough`).

    The schema puts `lines` last, so the title, hook, call to action and hashtags are whole by
    the time lines stream. After each complete line the seconds said so far are added up (the
    hook as the validator will cut it, the call to action, each usable line once), and the
    answer is enough once they reach the target with at least `least` lines: a small model
    that writes past the length costs ~0.1 s a token for lines the validator then drops.
    `close(text)` ends the JSON after the last complete line.
    """

    def __init__(self, request: ScriptRequest, least: int) -> None:
        self.request = request
        self.least = least
        self._head: float | None = None
        self._hook = ""  # as said, for spotting a line that repeats it
        self._user_text = " ".join((request.topic, request.notes, *request.footage_text))

    def _lines_start(self, text: str) -> int:
        at = text.find('"lines"')
        return -1 if at < 0 else text.find("[", at)

    def __call__(self, text: str) -> bool:
        start = self._lines_start(text)
        if start < 0:
            return False
        lang = self.request.language
        if self._head is None:
            try:
                head = json.loads(text[: text.find('"lines"')].rstrip().rstrip(",") + "}")
                hook = _shorter_hook(clean(str(head["hook"]), _FIELD_CHARS["hook"]), lang)
                cta = clean(str(head["cta"]), _FIELD_CHARS["cta"])
            except (ValueError, KeyError, TypeError):
                self._head = math.nan  # not the shape expected: never stop it early
                return False
            self._head = estimate_seconds(hook, lang) + estimate_seconds(cta, lang)
            self._hook = _said(hook)
        if math.isnan(self._head):
            return False
        seen: set[str] = set()
        total = self._head
        for match in _STRING.finditer(text, start):
            try:
                line = clean(json.loads(match.group(0)), _FIELD_CHARS["text"])
                _check_language(line, "line", lang, self._user_text)
            except (ValueError, ScriptError):
                continue  # a line the validator will drop does not count
            if line and _said(line) not in seen and _said(line) != self._hook:
                seen.add(_said(line))
                total += estimate_seconds(line, lang)
        return len(seen) >= self.least and total >= self.request.target_seconds

    def close(self, text: str) -> str:
        """`text` (an answer stopped early) ended after its last complete line."""
        start = self._lines_start(text)
        ends = [m.end() for m in _STRING.finditer(text, start)] if start >= 0 else []
        return text[: ends[-1]] + "]}" if ends else text


def script_from_answer(
    answer: str, request: ScriptRequest, system_prompt: str, writer: str
) -> Script:
    """Validate a model's answer for a normalised `request`; raises `ScriptError`."""
    obj = extract_json(answer)
    lang = request.language
    user_text = " ".join((request.topic, request.notes, *request.footage_text))
    title, hook, cta = _field(obj, "title"), _field(obj, "hook"), _field(obj, "cta")
    for name, value in (("title", title), ("hook", hook), ("cta", cta)):
        if _echoes(value, system_prompt, lang):
            raise ScriptError(name, "repeats the instructions instead of writing the script")
        _check_language(value, name, lang, user_text)
    opening: list[ScriptLine] = []
    if estimate_seconds(hook, lang) > _HOOK_SECONDS:
        hook = _shorter_hook(hook, lang)
    if estimate_seconds(hook, lang) > _HOOK_SECONDS and estimate_seconds(title, lang) <= 3.0:
        # One long sentence with nowhere to cut: it is said as the first line instead, and the
        # title (short and catchy by the prompt) opens the video.
        opening.append(ScriptLine(hook, "", "body"))
        hook = title if title[-1] in "。！？!?." else title + ("！" if lang == "zh" else "!")
    if estimate_seconds(hook, lang) > _HOOK_SECONDS:
        raise ScriptError(
            "hook", f"too long to land in the first seconds: keep it under {HOOK_LIMIT[lang]}"
        )
    raw_lines = obj.get("lines")
    if not isinstance(raw_lines, list) or not raw_lines:
        raise ScriptError("lines", "missing or not a non-empty list")
    lines: list[ScriptLine] = list(opening)
    wrong: list[ScriptError] = []
    for i, item in enumerate(raw_lines):
        if isinstance(item, str):
            item = {"text": item}
        if not isinstance(item, dict):
            raise ScriptError(f"lines[{i}]", "must be an object with text and visual")
        text = _field(item, "text")
        visual = clean(str(item.get("visual") or ""), _FIELD_CHARS["visual"])
        if _echoes(text, system_prompt, lang):
            continue  # a line that recites the instructions is dropped, not narrated
        if _said(text) in {_said(hook), *(_said(ln.text) for ln in lines)}:
            continue  # small models loop: a line said already (the hook too) is not said twice
        try:
            _check_language(text, f"lines[{i}].text", lang, user_text)
        except ScriptError as exc:
            # One line in the wrong language (a small model writes "Coffee" in a Chinese line)
            # is dropped like an echo; the script is refused only if too few lines are left.
            wrong.append(exc)
            continue
        lines.append(ScriptLine(text, visual, "body"))
    if wrong and len(lines) < 2:
        raise wrong[0]
    if not lines:
        raise ScriptError("lines", "no usable line")
    lines[-1] = ScriptLine(lines[-1].text, lines[-1].visual, "payoff")
    target = request.target_seconds

    def total() -> float:
        return sum(estimate_seconds(s, lang) for s in (hook, *(ln.text for ln in lines), cta))

    # Too long: drop body lines before the payoff rather than ask again, while one can go
    # without leaving the script short.
    while total() > _TRIM_RATIO * target and len(lines) > 2:
        shorter = total() - estimate_seconds(lines[-2].text, lang)
        if shorter < _MIN_RATIO * target:
            break
        del lines[-2]
    seconds = total()
    hook_visual, lines = _footage_hints(lines, request)
    if seconds > _MAX_RATIO * target:
        raise ScriptError("lines", f"too long: about {seconds:.0f} s for a {target:.0f} s video")
    if seconds < _MIN_RATIO * target:
        raise ScriptError("lines", f"too short: about {seconds:.0f} s for a {target:.0f} s video")
    return Script(
        title=title,
        hook=hook,
        lines=tuple(lines),
        cta=cta,
        hashtags=_hashtags(obj.get("hashtags"), request),
        language=lang,
        style=request.style,
        target_seconds=round(target, 2),
        estimated_seconds=round(seconds, 2),
        writer=writer,
        hook_visual=hook_visual,
        seed=request.seed,
    )


def _footage_hints(lines: list[ScriptLine], request: ScriptRequest) -> tuple[str, list[ScriptLine]]:
    """The hook's and the lines' visual hints from the footage, when the model wrote none: the
    hook's is the strongest shot (the prompt asks for the hook about it); a line's is the first
    shot not yet given whose words the line names, else the shot in its place in the order."""
    shown = [n for n in request.shots if n.line()]
    if not shown:
        return "", lines
    strongest = max(shown, key=lambda n: n.score).hint()
    hints = [n.hint() for n in shown]
    used: set[int] = set()
    filled = []
    for i, ln in enumerate(lines):
        if ln.visual:
            filled.append(ln)
            continue
        text = ln.text.lower()
        named = [k for k, n in enumerate(shown) if any(w.lower() in text for w in n.words)]
        pick = next((k for k in named if k not in used), i if i < len(hints) else None)
        if pick is None:
            filled.append(ln)
            continue
        used.add(pick)
        filled.append(ScriptLine(ln.text, hints[pick], ln.role))
    return strongest, filled


def _hashtags(raw: Any, request: ScriptRequest) -> tuple[str, ...]:
    """The model's hashtags cleaned up ('#' added, spaces removed), or the style's own."""
    if isinstance(raw, str):
        raw = raw.split()
    tags: list[str] = []
    for item in raw if isinstance(raw, list) else []:
        tag = re.sub(r"[^\w]", "", str(item))
        if tag and len(tag) <= 30 and not foreign_words(tag, request.language, request.topic):
            tags.append("#" + tag)
    if not tags:
        tags = list(STYLES[request.style].hashtags[request.language])
    return tuple(dict.fromkeys(tags))[:8]
