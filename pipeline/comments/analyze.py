"""`analyze_comments`: viewer comments in, a `FeedbackReport` out.

1. Every comment is read the fast way (`classify`: language, lexicon sentiment, question,
   request, complaint, spam); long copy-pasted repeats are marked duplicates.
2. With a language model, the comments the lexicons were unsure of are labelled again, most
   liked first, in batches, within a total time budget (`lm`).
3. The counted comments (not spam, not repeats) are grouped by meaning (`themes`).
4. Shares, the most-asked questions, top requests, praise and criticism are tallied, each
   comment weighted by 1 + sqrt(likes) when the export has likes: a like is a viewer agreeing,
   the square root keeps one viral comment from outweighing the rest of the section.
5. Three ideas for the next video come from the model when there is one, else from the
   request, question and praise themes.
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from pipeline.comments import classify, lm, themes
from pipeline.comments.model import (
    SENTIMENTS,
    Comment,
    CommentResult,
    FeedbackReport,
    Idea,
    Lang,
    Ranked,
    Sentiment,
    Theme,
)

log = logging.getLogger(__name__)

MAX_THEMES = 6
TOP = 5
# Comments embedded for the themes. Embedding is nearly all of the analysis' time (~7 ms a
# comment on an idle core); past this many, the most liked and an even spread of the rest are
# embedded and clustered, and every other comment joins the theme whose words it shares most
# (or its complaint's theme). Themes are the big groups, and 300 comments find them.
EMBED_CAP = 300
_ASPECTS = ("sound", "speed", "subtitles", "length", "picture", "ads")
_TAG_WEIGHT = 0.8  # how much a shared tag pulls comments together (see themes)


@dataclass(frozen=True, slots=True)
class _Group:
    """A theme while it is being built: its members (indices into the results)."""

    members: tuple[int, ...]
    keywords: tuple[str, ...]
    weight: float


def warm() -> None:
    """Load what the analysis reads with (snownlp's models, VADER, jieba's dictionary, the e5
    embedder, scipy's clustering), each once per process: ~5 s that the first analysis would
    otherwise pay; a benchmark loads them before it starts its clock."""
    classify.warm()
    themes.warm()


def _comment(item: Comment | str) -> Comment:
    return item if isinstance(item, Comment) else Comment(text=item)


def weight_of(likes: int, weighted: bool) -> float:
    return 1.0 + math.sqrt(max(0, likes)) if weighted else 1.0


def _tags(result: CommentResult) -> list[float]:
    w = _TAG_WEIGHT
    return [w if result.complaint == a else 0.0 for a in _ASPECTS] + [
        0.5 * w * result.request,
        0.5 * w * result.question,
        0.3 * w * (result.sentiment == "positive"),
        0.3 * w * (result.sentiment == "negative"),
    ]


def analyze_comments(
    comments: Sequence[Comment | str],
    language: Lang | Literal["auto"] = "auto",
    *,
    model: lm.JsonModel | None = None,
    model_budget_s: float = lm.DEFAULT_BUDGET_S,
    max_themes: int = MAX_THEMES,
) -> FeedbackReport:
    """Analyse `comments` (Comment objects or bare strings); `language` is the report's
    language (auto: the comments' majority). `model`, when given, relabels the uncertain
    comments and writes theme names and ideas within `model_budget_s` seconds in all."""
    items = [c for c in (_comment(x) for x in comments) if c.text.strip()]
    results: list[CommentResult] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(items):
        text = item.text.strip()
        key = classify.normalise(text)
        duplicate = seen.get(key) if len(key) >= classify.DUPLICATE_MIN_CHARS else None
        if duplicate is None and key:
            seen.setdefault(key, index)
        results.append(result_of(item, classify.read(text), duplicate))
    lang: Lang = language if language != "auto" else _majority_language(results)
    notes: list[str] = []
    budget = lm.Budget(model_budget_s)
    if model is not None:
        results, left = relabel(model, results, budget)
        if left:
            notes.append(f"model_budget_left_out:{left}")
    weighted = any(r.likes > 0 for r in results)
    counted = [i for i, r in enumerate(results) if not r.spam and r.duplicate_of is None]
    weights = {i: weight_of(results[i].likes, weighted) for i in counted}
    total_w = sum(weights.values()) or 1.0
    shares: dict[str, float] = {s: 0.0 for s in SENTIMENTS}
    for i in counted:
        shares[results[i].sentiment] += weights[i] / total_w
    shares = {s: round(v, 4) for s, v in shares.items()}

    groups = _groups(results, counted, weights, max_themes)
    for t_index, g in enumerate(groups):
        for i in g.members:
            results[i] = replace(results[i], theme=t_index)
    names = _theme_names(groups, results, lang)
    if model is not None and groups:
        examples = [[results[i].text for i in g.members[:4]] for g in groups]
        named = lm.name_themes(model, examples, lang, budget)
        names = named or names
    theme_list = tuple(
        _theme(g, name, results, weights, total_w) for g, name in zip(groups, names, strict=True)
    )
    ranked = _ranked(results, counted, weights)
    complaints: Counter[str] = Counter(
        results[i].complaint for i in counted if results[i].complaint
    )
    ideas = _fallback_ideas(results, ranked, theme_list, complaints, lang)
    model_ideas = None
    if model is not None and counted:
        numbered = _key_comments(ranked)
        summary = _summary(theme_list, shares, complaints)
        from pipeline.script.styles import STYLES

        model_ideas = lm.write_ideas(model, summary, numbered, list(STYLES), lang, budget)
        if model_ideas is None:
            notes.append("model_ideas_fallback")
    return FeedbackReport(
        language=lang,
        total=len(results),
        counted=len(counted),
        weighted=weighted,
        shares=shares,
        comments=tuple(results),
        themes=theme_list,
        questions=ranked["questions"],
        requests=ranked["requests"],
        praise=ranked["praise"],
        criticism=ranked["criticism"],
        complaints=dict(complaints.most_common()),
        ideas=tuple(model_ideas or ideas),
        model_used=model is not None,
        notes=tuple(notes),
    )


def result_of(
    item: Comment, reading: classify.Reading, duplicate_of: int | None = None
) -> CommentResult:
    """A comment's result from its fast reading (no theme yet)."""
    return CommentResult(
        text=item.text.strip(),
        likes=max(0, item.likes),
        language=reading.language,
        sentiment=reading.sentiment,
        score=reading.score,
        confident=reading.confident,
        source="lexicon",
        question=reading.question,
        request=reading.request,
        complaint=reading.complaint,
        spam=reading.spam,
        duplicate_of=duplicate_of,
        theme=None,
    )


def _majority_language(results: Sequence[CommentResult]) -> Lang:
    zh = sum(1 for r in results if r.language == "zh")
    return "zh" if zh * 2 >= len(results) and zh else "en"


def relabel(
    model: lm.JsonModel,
    results: list[CommentResult],
    budget: lm.Budget,
    request_s: float | None = None,
) -> tuple[list[CommentResult], int]:
    """The uncertain comments labelled by the model, most liked first, in batches (each within
    `request_s`, see `lm.label_comments`); how many it could not reach before the budget ran
    out or got no answer (they keep their lexicon reading)."""
    unsure = [i for i, r in enumerate(results) if not r.confident and not r.spam]
    unsure.sort(key=lambda i: -results[i].likes)
    texts = [results[i].text for i in unsure]
    labels = lm.label_comments(model, texts, budget, request_s=request_s)
    out = list(results)
    left = 0
    for i, found in zip(unsure, labels, strict=True):
        if found is None:
            left += 1
            continue
        r = out[i]
        if merged(r, found, classify.read(r.text, r.language).sarcasm_cue) != found:
            out[i] = replace(r, confident=True)  # the lexicons' reading stands
            continue
        score = {"positive": max(r.score, 0.5), "neutral": 0.0, "negative": min(r.score, -0.5)}
        out[i] = replace(r, sentiment=found, score=score[found], confident=True, source="model")
    return out, left


def merged(reading: CommentResult, found: Sentiment, sarcasm: bool) -> Sentiment:
    """The label of an unsure comment, from the model's `found` and the lexicons' reading.

    Measured on the hard sets (README, `reelbot bench comments`), the embedded 1.5B model reads
    sarcasm literally ("呵呵，讲得真好" positive) and calls terse negative slang neutral ("下头"),
    while the lexicons already turn praise next to a sarcasm cue negative. So a sarcasm cue
    the lexicons read as negative stays negative; the model's "neutral" stands only for a
    question or a request, or where the lexicons read neutral too; otherwise the model decides
    (it catches irony the cues missed: "Yeah right, like that's gonna work").
    """
    if sarcasm and reading.sentiment == "negative":
        return "negative"
    if found == "neutral" and not (reading.question or reading.request):
        return reading.sentiment
    return found


def _groups(
    results: Sequence[CommentResult],
    counted: Sequence[int],
    weights: dict[int, float],
    max_themes: int,
) -> list[_Group]:
    """The themes: a sample of the counted comments clustered by their embeddings and tags,
    the other counted comments placed by their words."""
    if not counted:
        return []
    sample = _sample([r.likes for r in results], counted)
    texts = [results[i].text for i in sample]
    tags = np.array([_tags(results[i]) for i in sample], dtype=np.float32)
    clusters = themes.group(texts, tags)
    # A theme is something several viewers said; with few comments, any group will do.
    min_size = 2 if len(counted) >= 10 else 1
    kept = [[sample[j] for j in c.members] for c in clusters if len(c.members) >= min_size]
    kept.sort(key=lambda m: -sum(weights[i] for i in m))
    kept = kept[:max_themes]
    rest = sorted(set(counted) - set(sample))
    if rest and kept:
        for i, t in zip(rest, _assign([results[i] for i in rest], kept, results), strict=True):
            if t is not None:
                kept[t].append(i)
    out = []
    for members, c in zip(kept, themes.keywords([[results[i].text for i in m] for m in kept]),
                          strict=True):  # fmt: skip
        out.append(_Group(tuple(members), c, sum(weights[i] for i in members)))
    out.sort(key=lambda g: -g.weight)
    return out


def _sample(likes: Sequence[int], counted: Sequence[int]) -> list[int]:
    """The comments to embed: all of them up to EMBED_CAP, else the most liked quarter of the
    cap and an even spread of the rest, in their original order."""
    if len(counted) <= EMBED_CAP:
        return list(counted)
    liked = set(sorted(counted, key=lambda i: -likes[i])[: EMBED_CAP // 4])
    others = [i for i in counted if i not in liked]
    step = len(others) / (EMBED_CAP - len(liked))
    spread = [others[int(k * step)] for k in range(EMBED_CAP - len(liked))]
    return sorted(liked | set(spread))


def _assign(
    rest: Sequence[CommentResult], groups: Sequence[Sequence[int]], results: Sequence[CommentResult]
) -> list[int | None]:
    """For comments that were not embedded: the group whose words they share most (each word
    weighted by how particular it is to the group), a shared complaint aspect counting as a
    strong word; None when nothing is shared."""
    counts = [Counter(w for i in g for w in set(themes.words_of(results[i].text))) for g in groups]
    aspects = [Counter(results[i].complaint for i in g if results[i].complaint) for g in groups]
    df: Counter[str] = Counter()
    for c in counts:
        df.update(c.keys())
    n = len(groups)
    out: list[int | None] = []
    for r in rest:
        words = set(themes.words_of(r.text))
        best, best_score = None, 0.0
        for t, c in enumerate(counts):
            score = sum(c[w] / len(groups[t]) * math.log(1 + n / df[w]) for w in words if w in c)
            if r.complaint and aspects[t][r.complaint] * 2 > len(groups[t]):
                score += 1.0
            if score > best_score:
                best, best_score = t, score
        out.append(best)
    return out


def _theme_names(
    groups: Sequence[_Group], results: Sequence[CommentResult], lang: Lang
) -> list[str]:
    names_by_aspect = classify.lexicon()["aspect_names"]
    out = []
    for g in groups:
        aspects = Counter(results[i].complaint for i in g.members if results[i].complaint)
        top = aspects.most_common(1)
        if top and top[0][1] * 2 > len(g.members):
            out.append(str(names_by_aspect[top[0][0]][lang]))
        elif g.keywords:
            out.append(" · ".join(g.keywords[:3]))
        else:
            out.append(results[g.members[0]].text[:20])
    return out


def _theme(
    g: _Group,
    name: str,
    results: Sequence[CommentResult],
    weights: dict[int, float],
    total_w: float,
) -> Theme:
    score = sum(results[i].score * weights[i] for i in g.members) / g.weight
    examples: list[str] = []
    for i in g.members:
        if results[i].text not in examples:
            examples.append(results[i].text)
        if len(examples) == 2:
            break
    return Theme(
        name=name,
        keywords=g.keywords,
        size=len(g.members),
        share=round(g.weight / total_w, 4),
        sentiment=classify.label(score),
        score=round(score, 3),
        examples=tuple(examples),
    )


def _ranked(
    results: Sequence[CommentResult], counted: Sequence[int], weights: dict[int, float]
) -> dict[str, tuple[Ranked, ...]]:
    """Questions, requests, praise and criticism: one entry per theme (what several viewers
    said once), its most liked comment standing for it, ranked by weight."""
    kinds: dict[str, Callable[[CommentResult], bool]] = {
        "questions": lambda r: r.question,
        "requests": lambda r: r.request,
        "praise": lambda r: r.sentiment == "positive" and not r.question and not r.request,
        "criticism": lambda r: r.sentiment == "negative",
    }
    out: dict[str, tuple[Ranked, ...]] = {}
    for kind, test in kinds.items():
        buckets: dict[object, list[int]] = {}
        for i in counted:
            r = results[i]
            if test(r):
                buckets.setdefault(r.theme if r.theme is not None else ("own", i), []).append(i)
        entries = []
        for members in buckets.values():
            best = max(members, key=lambda i: (results[i].likes, -i))
            entries.append(
                (
                    sum(weights[i] for i in members),
                    Ranked(
                        text=results[best].text,
                        count=len(members),
                        likes=sum(results[i].likes for i in members),
                    ),
                )
            )
        entries.sort(key=lambda e: -e[0])
        out[kind] = tuple(e[1] for e in entries[:TOP])
    return out


def _key_comments(ranked: dict[str, tuple[Ranked, ...]]) -> list[str]:
    seen: list[str] = []
    for kind in ("requests", "questions", "criticism", "praise"):
        for entry in ranked[kind]:
            if entry.text not in seen:
                seen.append(entry.text)
    return seen[:15]


def _summary(
    theme_list: Sequence[Theme], shares: dict[str, float], complaints: Counter[str]
) -> str:
    lines = [", ".join(f"{s} {shares[s]:.0%}" for s in SENTIMENTS)]
    lines += [f"theme: {t.name} ({t.share:.0%}, {t.sentiment})" for t in theme_list]
    if complaints:
        lines.append("complaints about the video: " + ", ".join(complaints))
    return "\n".join(lines)


# --- ideas without a model -----------------------------------------------------------------


def subject_of(text: str, lang: Lang) -> str:
    """What a request or question is about, with the asking words taken off ("Please do one
    about budget cameras" -> "budget cameras", "能不能出一期新手入门" -> "新手入门")."""
    fillers = sorted(classify.lexicon()["fillers"][lang], key=len, reverse=True)
    out = text.strip()
    low = out.casefold()
    for filler in fillers:
        pattern = re.escape(filler)
        if lang == "en":
            pattern = rf"\b{pattern}\b"
        low_new = re.sub(pattern, " ", low)
        if low_new != low:
            # Cut the same spans out of the original-case text.
            out = re.sub(pattern, " ", out, flags=re.IGNORECASE)
            low = low_new
    out = re.sub(r"[?？!！。，,.~～…:：]+", " ", out)
    out = re.sub(r"\s+", " ", out).strip(" -—'\"")
    return out[:40] or text.strip()[:40]


def style_for(texts: Sequence[str]) -> str:
    """The script style whose words the comments use most (knowledge when none)."""
    from pipeline.script.styles import STYLES

    words = classify.lexicon()["styles"]
    joined = " ".join(texts).casefold()
    scores = {k: sum(joined.count(w) for w in ws) for k, ws in words.items() if k in STYLES}
    best = max(scores.items(), key=lambda kv: kv[1], default=("knowledge", 0))
    return best[0] if best[1] > 0 else "knowledge"


def _fallback_ideas(
    results: Sequence[CommentResult],
    ranked: dict[str, tuple[Ranked, ...]],
    theme_list: Sequence[Theme],
    complaints: Counter[str],
    lang: Lang,
) -> list[Idea]:
    """Three ideas from the top requests, the most-asked questions and the best-liked theme;
    each answers the questions asked with it and fixes the top complaint."""
    fix: tuple[str, ...] = ()
    if complaints:
        aspect = complaints.most_common(1)[0][0]
        fix = (_FIX[aspect][lang],)
    theme_of = {r.text: r.theme for r in results}
    questions = [q.text for q in ranked["questions"]]
    ideas: list[Idea] = []
    topics: set[str] = set()

    def add(topic: str, style: str, points: Sequence[str], why: Sequence[str]) -> None:
        key = classify.normalise(topic)
        if key and key not in topics and len(ideas) < 3:
            topics.add(key)
            ideas.append(Idea(topic, style, tuple(points[:4]), tuple(dict.fromkeys(why))[:4]))

    for request in ranked["requests"]:
        subject = subject_of(request.text, lang)
        # The questions asked alongside this request (same theme) are what it should answer.
        theme = theme_of.get(request.text)
        related = [
            q for q in questions if q != request.text and theme is not None and theme_of[q] == theme
        ][:2]
        add(subject, style_for([request.text]), [*related, *fix], [request.text, *related])
    for question in ranked["questions"]:
        subject = subject_of(question.text, lang)
        topic = f"{_ANSWER[lang]}{subject}"
        add(topic, style_for([question.text]), [question.text, *fix], [question.text])
    for liked in sorted(theme_list, key=lambda t: -t.score):
        topic = f"{_MORE[lang]}{liked.name}"
        add(topic, style_for(liked.examples), [*liked.examples[:1], *fix], liked.examples)
    return ideas


_ANSWER = {"zh": "解答：", "en": "Answering: "}
_MORE = {"zh": "再来一期：", "en": "More of: "}
_FIX: dict[str, dict[str, str]] = {
    "sound": {"zh": "把人声调大、背景音乐调小", "en": "louder voice, quieter music"},
    "speed": {"zh": "放慢节奏，关键处停一停", "en": "slower pace, pause on key points"},
    "subtitles": {"zh": "字幕放大、加描边", "en": "bigger, outlined subtitles"},
    "length": {"zh": "更短，开门见山", "en": "shorter, straight to the point"},
    "picture": {"zh": "画面更清晰、更亮", "en": "sharper, brighter picture"},
    "ads": {"zh": "少放广告，或放到最后", "en": "fewer ads, or at the end"},
}
