"""The offline script writer: no model, a script built from the style's structure and the user's
own words, fitted to the target length by the speaking rates.

The phrase banks (`prompts/offline_zh.json`, `prompts/offline_en.json`) give several phrasings
for each slot of each style. The user's notes and the text of their footage become the body
(numbered tips, selling points, story beats), introduced by the style's frames; generic lines
only fill in where the user gave too little. The seed picks the phrasings; a small search then
adds or drops body lines and swaps phrasings until the estimate is near the target.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass
from typing import Any

from pipeline.cjk import HAN_RE
from pipeline.promptfiles import load_data
from pipeline.script.length import estimate_seconds
from pipeline.script.model import Script, ScriptLine
from pipeline.script.request import ScriptRequest, normalise
from pipeline.script.styles import STYLES, Slot
from pipeline.script.text import (
    capitalise,
    cut,
    finish_sentence,
    is_language,
    mid_sentence,
    points,
    strip_end,
)

log = logging.getLogger(__name__)

# How close to the target the fitter tries to get before it stops swapping phrasings.
_GOOD_ENOUGH = 0.06
_POINT_CHARS = {"zh": 40, "en": 150}
_TOPIC_CHARS = {"zh": 18, "en": 60}
_TOPIC_WORDS = 8
# Phrasings that promise several points ("这几点", "Do these"): not for a one-point script.
_PLURAL = re.compile(r"这几|几件事|几句话|几条|\bthese\b")


@dataclass(slots=True)
class _Part:
    """One spoken slot while fitting: its phrasings, which one is used, and whether it speaks."""

    slot: str
    role: str
    options: list[str]
    choice: int = 0
    visual: str = ""
    optional: bool = False
    on: bool = True

    @property
    def text(self) -> str:
        return self.options[self.choice] if self.on else ""


@dataclass(slots=True)
class _Points:
    """The repeating slot's points: the user's own first, then generic ones the seed picked."""

    user: list[str]
    generic: list[str]
    order: list[int]  # the seed's order of the generic points
    frames: dict[str, Any]  # "seq" (one frame per position), optional "last"
    single: str  # the frame for a lone point, when the style has one
    story: bool  # generic beats keep the order they are written in (the order a day goes)
    language: str

    def contents(self, n: int) -> list[str]:
        """The first `n` points."""
        picked = self.order[: max(0, n - len(self.user))]
        if self.story:
            picked = sorted(picked)
        return (self.user + [self.generic[i] for i in picked])[:n]

    def lines(self, n: int) -> list[str]:
        """The first `n` points as spoken sentences, each introduced by its frame."""
        out = []
        seq = self.frames["seq"]
        for i, point in enumerate(self.contents(n)):
            if n == 1 and self.single:
                frame = self.single  # "第一，…" with no second reads wrong
            elif i == n - 1 and n >= 2 and "last" in self.frames:
                frame = self.frames["last"]
            else:
                frame = seq[i] if i < len(seq) else seq[-1]
            en = self.language == "en"
            pv = {"point": mid_sentence(point) if en else point, "Point": capitalise(point)}
            out.append(finish_sentence(_fill(frame, pv), self.language))
        return out


def _spoken_topic(topic: str, language: str) -> str:
    """The topic as it is said inside sentences: trimmed, no trailing 的 or punctuation."""
    topic = strip_end(cut(topic, _TOPIC_CHARS[language])).rstrip("?？")
    # A topic is said in several sentences: keep it to a phrase, whatever the user typed.
    if HAN_RE.search(topic):
        topic = cut(topic, _TOPIC_CHARS["zh"] if language == "zh" else 12)
    elif len(topic.split()) > _TOPIC_WORDS:
        topic = " ".join(topic.split()[:_TOPIC_WORDS])
    if language == "zh":
        topic = re.sub(r"的+$", "", topic).strip() or topic
        topic = re.sub(r"^(关于|说说|聊聊|讲讲)", "", topic) or topic
    return topic


# A phrasing's own word met by the same word opening the user's topic ("我的" + "我的早晨").
_DOUBLED = re.compile(
    r"(我的|我们的|关于|这款|这个|这次|的)\1|\b(my|the|a|an|your|our)\s+\2\b", re.I
)


def _things(words: list[str], language: str) -> str:
    """Subjects as a phrase: "咖啡和汤" / "the coffee and the soup" ("a person" keeps its a)."""
    if language == "zh":
        return "和".join(words)
    said = [w if w.startswith(("a ", "an ")) or w[:1].isdigit() else f"the {w}" for w in words]
    return " and ".join(said)


def _strongest_words(req: ScriptRequest) -> str:
    """The words of the best-scored shot that shows something (the hook's visual)."""
    shown = [n for n in req.shots if n.words]
    return ", ".join(max(shown, key=lambda n: n.score).words) if shown else ""


def _fill(template: str, values: dict[str, str]) -> str:
    return _DOUBLED.sub(lambda m: m.group(1) or m.group(2), template.format_map(values))


class OfflineWriter:
    """Writes a script without a model; deterministic for a seed, varied across seeds."""

    name = "offline"

    def write(self, request: ScriptRequest) -> Script:
        """A script for `request` (raises `ScriptRequestError` for a bad one)."""
        req = normalise(request)
        lang = req.language
        style = STYLES[req.style]
        bank: dict[str, Any] = load_data(f"offline_{lang}")[req.style]
        rng = random.Random(f"{req.seed}|{lang}|{req.style}|{req.topic}")
        topic = _spoken_topic(req.topic, lang)
        values = {
            "topic": mid_sentence(topic) if lang == "en" else topic,
            "Topic": capitalise(topic),
        }

        def options(slot: str) -> list[str]:
            opts = [_fill(t, values) for t in bank[slot]]
            rng.shuffle(opts)
            return opts

        visual = bank["visual"]
        hook = _Part("hook", "hook", options("hook"), visual=visual["hook"])
        cta = _Part("cta", "cta", options("cta"), visual=visual["cta"])
        singles: list[_Part] = [hook, cta]
        body: list[_Part | Slot] = []
        repeat: Slot | None = None
        for slot in style.structure:
            if slot.repeat:
                repeat = slot
                body.append(slot)
            else:
                opts = options(slot.slot)
                part = _Part(
                    slot.slot, slot.role, opts, visual=visual[slot.slot], optional=slot.optional
                )
                singles.append(part)
                body.append(part)
        story = repeat is not None and repeat.slot == "beats"
        user_points, from_footage = self._material(req, story)
        seen_tags: list[str] = []
        if not user_points and repeat is not None:
            # No notes and no captions to tell: the beats are what the footage shows, in order.
            user_points, from_footage, seen_tags = self._seen_points(req, rng)
        generic = [_fill(t, values) for t in bank[repeat.slot]["generic"]] if repeat else []
        generic = [g for g in generic if g not in user_points]
        order = list(range(len(generic)))
        rng.shuffle(order)
        pts = _Points(
            user=user_points,
            generic=generic,
            order=order,
            frames=rng.choice(bank[repeat.slot]["frames"]) if repeat else {"seq": []},
            single=bank[repeat.slot].get("single", "") if repeat else "",
            story=story,
            language=lang,
        )

        target = req.target_seconds
        available = len(user_points) + len(generic)
        n_lo = min(repeat.min, available) if repeat else 0
        n_hi = min(max(repeat.max, min(len(user_points), 8)), available) if repeat else 0

        def total(n: int) -> float:
            if n < 2 and any(p.on and _PLURAL.search(p.text) for p in singles):
                return 1e6
            spoken = [p.text for p in singles if p.on] + pts.lines(n)
            return sum(estimate_seconds(s, lang) for s in spoken)

        n = self._fit_all(
            singles, min(max(len(user_points), n_lo), n_hi), n_lo, n_hi, total, target
        )
        if abs(total(n) - target) > 0.15 * target:
            log.warning(
                "offline script is %.0f s for a %.0f s target: the style and the user's notes "
                "hold no more (or no less); more notes or a model write closer to it",
                total(n),
                target,
            )
        point_visual = visual[repeat.slot] if repeat else ""
        lines, hook_visual = self._assemble(
            body, pts, n, from_footage, req.footage_text, point_visual
        )
        hook_visual = hook_visual or _strongest_words(req) or hook.visual
        spoken = (hook.text, *(ln.text for ln in lines), cta.text)
        return Script(
            title=self._title(bank, values, n, rng, lang, seen_tags),
            hook=spoken[0],
            lines=tuple(lines),
            cta=spoken[-1],
            hashtags=self._hashtags(style.hashtags[lang], topic, lang, rng, seen_tags),
            language=lang,
            style=req.style,
            target_seconds=round(target, 2),
            estimated_seconds=round(sum(estimate_seconds(s, lang) for s in spoken), 2),
            writer=self.name,
            hook_visual=hook_visual,
            cta_visual=cta.visual,
            seed=req.seed,
        )

    @classmethod
    def _assemble(
        cls,
        body: list[_Part | Slot],
        pts: _Points,
        n: int,
        from_footage: dict[str, str],
        footage: tuple[str, ...],
        point_visual: str,
    ) -> tuple[list[ScriptLine], str]:
        """The body lines in the style's order with their visual hints, and the hook's shot."""
        lines: list[ScriptLine] = []
        for item in body:
            if isinstance(item, _Part):
                if item.on:
                    lines.append(ScriptLine(item.text, item.visual, item.role))
                continue
            for point, text in zip(pts.contents(n), pts.lines(n), strict=True):
                hint = from_footage.get(point, point_visual)
                lines.append(ScriptLine(text, hint, item.role))
        used = set(from_footage.values())
        spare = [f for f in footage if f and f not in used]
        hook_visual = ""
        if spare:
            # The hook plays over the first shot the user gave: creators lead with their best.
            hook_visual = spare[0]
            used.add(spare[0])
        return cls._footage_visuals(lines, footage, used), hook_visual

    @staticmethod
    def _material(req: ScriptRequest, story: bool) -> tuple[list[str], dict[str, str]]:
        """Body points from the notes, then (story styles) from footage text in the language.

        A story follows its footage, so a vlog's beats can be what each shot shows; a list of
        tips or selling points cannot be made of captions like "the beach at dawn", so there the
        footage only gives the visual hints.
        """
        # A point is one sentence, and in a short video a short one: at most about a third of
        # the target. Chinese takes longer per character than English, so it is capped apart.
        share = min(1.0, req.target_seconds / 40)
        zh_cap = max(14, round(_POINT_CHARS["zh"] * share))
        limit = zh_cap if req.language == "zh" else max(40, round(_POINT_CHARS["en"] * share))
        found = [p if not HAN_RE.search(p) else cut(p, zh_cap) for p in points(req.notes, limit)]
        from_footage: dict[str, str] = {}
        for shot in req.footage_text if story else ():
            if not is_language(shot, req.language):
                continue
            for p in points(shot, limit, limit=1):
                if p not in found and len(p) >= (4 if req.language == "zh" else 8):
                    found.append(p)
                    from_footage[p] = shot
        return found, from_footage

    @staticmethod
    def _seen_points(
        req: ScriptRequest, rng: random.Random
    ) -> tuple[list[str], dict[str, str], list[str]]:
        """Body points naming what each shot shows ("镜头里是咖啡" / "here we see the coffee"),
        one per distinct subject in footage order; the visual hint of each is its shot's words.
        Also the subjects themselves, for the title and hashtags."""
        templates = list(load_data(f"offline_{req.language}")["seen"])
        start = rng.randrange(len(templates))
        found: list[str] = []
        hints: dict[str, str] = {}
        tags: list[str] = []
        for note in req.shots:
            things = [w for w in note.words if w not in tags][:2]
            if not things:
                continue
            tags += things
            phrase = _things(things, req.language)
            point = _fill(templates[(start + len(found)) % len(templates)], {"subject": phrase})
            found.append(point)
            hints[point] = ", ".join(note.words)
        return found, hints, tags

    @classmethod
    def _fit_all(
        cls, singles: list[_Part], n_user: int, n_lo: int, n_hi: int, total: Any, target: float
    ) -> int:
        """The number of body points, and phrasings for the rest, that best fit the target.

        Exactly the user's own points come first: generic points come in (or user points go)
        only when phrasings and optional slots cannot bring the user's material to the length.
        """
        start = [(p.choice, p.on) for p in singles]
        others = sorted(range(n_lo, n_hi + 1), key=lambda k: abs(total(k) - target))
        # Fewer points than the style likes, only when a short target leaves no other way.
        others += range(n_lo - 1, -1, -1)
        best: tuple[float, int, list[tuple[int, bool]]] | None = None
        for k in [n_user, *(k for k in others if k != n_user)]:
            for p, (choice, on) in zip(singles, start, strict=True):
                p.choice, p.on = choice, on
            cls._fit(singles, k, k, k, total, target)
            err = abs(total(k) - target)
            if best is None or err < best[0]:
                best = (err, k, [(p.choice, p.on) for p in singles])
            if err <= (1.5 if k == n_user else 1.0) * _GOOD_ENOUGH * target:
                break
        assert best is not None
        for p, (choice, on) in zip(singles, best[2], strict=True):
            p.choice, p.on = choice, on
        return best[1]

    @staticmethod
    def _fit(singles: list[_Part], n: int, n_lo: int, n_hi: int, total: Any, target: float) -> int:
        """Swap phrasings and add/drop body lines, greedily, while that brings the length closer."""
        err = abs(total(n) - target)
        for _ in range(40):
            if err <= _GOOD_ENOUGH * target:
                break
            best: tuple[float, int, int, int] | None = None  # (error, part, choice, n)
            for k in (n - 1, n + 1):
                if n_lo <= k <= n_hi:
                    e = abs(total(k) - target)
                    if e < err and (best is None or e < best[0]):
                        best = (e, -1, 0, k)
            for i, part in enumerate(singles):
                if part.optional:
                    part.on = not part.on
                    e = abs(total(n) - target)
                    part.on = not part.on
                    if e < err and (best is None or e < best[0]):
                        best = (e, i, -1, n)
                keep = part.choice
                for c in range(len(part.options)):
                    if c == keep:
                        continue
                    part.choice = c
                    e = abs(total(n) - target)
                    if e < err and (best is None or e < best[0]):
                        best = (e, i, c, n)
                part.choice = keep
            if best is None:
                break
            err, i, c, n = best
            if i >= 0 and c < 0:
                singles[i].on = not singles[i].on
            elif i >= 0:
                singles[i].choice = c
        return n

    @staticmethod
    def _footage_visuals(
        lines: list[ScriptLine], footage: tuple[str, ...], used: set[str]
    ) -> list[ScriptLine]:
        """Give the lines still on a generic hint the footage nobody has used yet, in order."""
        spare = [f for f in footage if f and f not in used]
        out = []
        for line in lines:
            if spare and line.visual and line.visual not in used and line.role != "payoff":
                line = ScriptLine(line.text, spare.pop(0), line.role)
            out.append(line)
        return out

    @staticmethod
    def _title(
        bank: dict[str, Any],
        values: dict[str, str],
        n: int,
        rng: random.Random,
        lang: str,
        seen: list[str] = [],  # noqa: B006 - read only
    ) -> str:
        usable = [t for t in bank["title"] if n >= 2 or "{n}" not in t]
        title = _fill(rng.choice(usable), {**values, "n": str(n)})
        things = [w for w in seen if not w[:1].isdigit() and w not in ("一个人", "a person")][:3]
        if things:
            # What the video shows, after the topic: "猫咪的一天｜猫、纸箱".
            title = (
                f"{title}｜{'、'.join(things)}"
                if lang == "zh"
                else f"{title} | {', '.join(things)}"
            )
        return capitalise(cut(title, 40 if lang == "zh" else 90))

    @staticmethod
    def _hashtags(
        style_tags: tuple[str, ...],
        topic: str,
        lang: str,
        rng: random.Random,
        seen: list[str] = [],  # noqa: B006 - read only
    ) -> tuple[str, ...]:
        """A tag for the topic, one for what the footage shows most, the style's tags and one
        platform tag: at most six, no duplicates."""
        tags: list[str] = []
        shown = [w for w in seen if re.fullmatch(r"[\w ]+", w) and not w[:1].isdigit()]
        shown = [w for w in shown if w not in ("一个人", "a person")]
        if lang == "zh":
            word = re.sub(r"[^\w]", "", re.sub(r"^(这款|这个|这些|这家|这次|我的|我家)", "", topic))
            if 2 <= len(word) <= 16:
                tags.append("#" + word)
        else:
            words = re.findall(r"[A-Za-z0-9]+", re.sub(r"(?i)^(my|the|a|an|this|our) ", "", topic))
            camel = ""
            for w in words:
                if len(camel) + len(w) > 24:
                    break
                camel += w[:1].upper() + w[1:]
            if 3 <= len(camel) <= 30:
                tags.append("#" + camel)
        if shown:
            word = shown[0].replace(" ", "")
            tags.append("#" + (word if lang == "zh" else word[:1].upper() + word[1:]))
        tags += [t for t in style_tags if t.lower() not in {x.lower() for x in tags}]
        platform = list(load_data(f"offline_{lang}")["platform_tags"])
        tags.append(rng.choice([p for p in platform if p not in tags] or platform))
        return tuple(dict.fromkeys(tags))[:6]
