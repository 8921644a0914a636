"""`reelbot bench comments`: analysis speed on 1,000 comments (no model pass) and sentiment
accuracy on the labelled zh and en sets in tests/data (clear comments; hard ones: slang, emoji,
sarcasm, mixed; and held-out hard ones, written after the rule that merges the model's labels
with the lexicons' was chosen on the hard set), against the bare lexicon libraries; then, when a
language model is configured, the model pass on the same sets within a time budget: the model
alone on the hard comments, and the product's reading (lexicons, the unsure ones relabelled by
the model, `analyze.merged`)."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from pipeline.comments.model import Comment, Lang

if TYPE_CHECKING:
    from pipeline.comments.lm import JsonModel

log = logging.getLogger(__name__)

DATA = Path(__file__).resolve().parents[2] / "tests" / "data"
LANGS: tuple[Lang, ...] = ("zh", "en")
# The model pass's time for both labelled sets: ~140 labels, one a request, ~1.5 s each here.
DEFAULT_MODEL_BUDGET_S = 480.0
# A request's time limit here: the product's (`lm.label_comments`) is for a chat waiting on an
# answer; on cores shared with other jobs it would measure the load, not the labels.
REQUEST_S = 90.0
KINDS = ("clear", "hard", "heldout", "all")
_DECOR = ("", " 👍", "!!", " 😂", "。", " lol", "？", " 🔥")


def labelled(lang: Lang) -> list[tuple[str, str, str]]:
    """(label, set, text) rows of tests/data/comments_<lang>.tsv."""
    rows = []
    for line in (DATA / f"comments_{lang}.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            label, kind, text = line.split("\t", 2)
            rows.append((label, kind, text))
    return rows


def thousand() -> list[Comment]:
    """1,000 comments from the labelled sets, each made distinct (a number, an emoji, a mark)
    so none is a repeat the analysis could skip, with likes like an export's."""
    base = [r[2] for lang in ("zh", "en") for r in labelled(lang)]
    out = []
    for i in range(1000):
        text = base[i % len(base)]
        if i >= len(base):
            text = f"{text}{_DECOR[i % len(_DECOR)]} {i // len(base)}"
        out.append(Comment(text, likes=(i * 37) % 200 if i % 3 == 0 else 0))
    return out


def accuracy(lang: Lang) -> dict[str, float]:
    from pipeline.comments.classify import label, raw_lexicon_score, read

    rows = labelled(lang)
    out: dict[str, float] = {}
    for kind in KINDS:
        sub = [r for r in rows if kind in ("all", r[1])]
        ours = sum(read(t, lang).sentiment == lab for lab, _, t in sub)
        raw = sum(label(raw_lexicon_score(t, lang)) == lab for lab, _, t in sub)
        out[f"{kind}"] = round(ours / len(sub), 3)
        out[f"{kind}_lexicon_only"] = round(raw / len(sub), 3)
        out[f"{kind}_n"] = len(sub)
    return out


def model_accuracy(model: JsonModel, lang: Lang, budget_s: float) -> dict[str, float]:
    """The model pass on the labelled set of `lang` within `budget_s`: `hard_model_only` (every
    hard comment labelled by the model, unanswered ones counted wrong) and, as the analysis does
    it, the lexicon reading with its unsure comments relabelled (`clear_with_model`,
    `hard_with_model`, `all_with_model`); how many were asked, left unanswered, and the time."""
    from pipeline.comments.analyze import relabel, result_of
    from pipeline.comments.classify import read
    from pipeline.comments.lm import Budget, label_comments

    rows = labelled(lang)
    hard = [(lab, t) for lab, kind, t in rows if kind == "hard"]
    started = time.perf_counter()
    budget = Budget(budget_s)
    alone = label_comments(model, [t for _, t in hard], budget, request_s=REQUEST_S)
    out: dict[str, float] = {
        "hard_model_only": round(
            sum(a == lab for a, (lab, _) in zip(alone, hard, strict=True)) / len(hard), 3
        ),
        "hard_model_only_unanswered": sum(a is None for a in alone),
    }
    results = [result_of(Comment(t), read(t, lang)) for _, _, t in rows]
    relabelled, left = relabel(model, results, budget, request_s=REQUEST_S)
    for kind in KINDS:
        sub = [
            (lab, r) for (lab, k, _), r in zip(rows, relabelled, strict=True) if kind in ("all", k)
        ]
        out[f"{kind}_with_model"] = round(sum(r.sentiment == lab for lab, r in sub) / len(sub), 3)
    out["asked"] = sum(not r.confident and not r.spam for r in results)
    out["unanswered"] = left
    out["model_s"] = round(time.perf_counter() - started, 1)
    return out


def _model(budget_s: float) -> tuple[JsonModel | None, str]:
    """The configured model, loaded and warmed outside the clock, or None and why not."""
    if budget_s <= 0:
        return None, "--model-budget 0"
    from pipeline.comments.lm import Budget, FromLanguageModel, configured_model, label_comments
    from pipeline.lm import LMError

    model = configured_model()
    if model is None:
        return None, "no language model configured or installed (REELBOT_LM)"
    started = time.perf_counter()
    try:
        if isinstance(model, FromLanguageModel):
            model.warm()
    except LMError as exc:
        return None, f"the language model did not load: {exc}"
    # The first request reads the whole prompt (llama.cpp keeps its prefix for the next ones).
    if label_comments(model, ["warm up 预热"], Budget(120), request_s=120) == [None]:
        return None, "the language model did not answer its warm-up request (see the log)"
    log.info("language model loaded and warm in %.1f s", time.perf_counter() - started)
    return model, ""


def last_line(
    per_s: float,
    lexicons: dict[Lang, dict[str, float]],
    with_model: dict[Lang, dict[str, float]],
) -> str:
    """The bench's last line: speed, accuracy on all comments, then on the hard and the held-out
    hard ones with the lexicons alone and with the model pass (`na` when there was none)."""
    parts = [f"comments_per_s={per_s:.0f}"]
    parts += [f"sentiment_acc_{lang}={lexicons[lang]['all']:.2f}" for lang in LANGS]
    for kind in ("hard", "heldout"):
        for lang in LANGS:
            got = with_model.get(lang)
            model = f"{got[f'{kind}_with_model']:.2f}" if got else "na"
            parts.append(
                f"{kind}_lexicon_{lang}={lexicons[lang][kind]:.2f} {kind}_model_{lang}={model}"
            )
    return " ".join(parts)


def bench(model_budget_s: float = DEFAULT_MODEL_BUDGET_S) -> int:
    from pipeline.comments import analyze_comments
    from pipeline.comments.analyze import warm

    # Models and dictionaries load once per process, outside the timing (printed apart).
    started = time.perf_counter()
    warm()
    load_s = time.perf_counter() - started
    comments = thousand()
    load = os.getloadavg()[0]
    wall, cpu = time.perf_counter(), time.process_time()
    report = analyze_comments(comments)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    lexicons: dict[Lang, dict[str, float]] = {lang: accuracy(lang) for lang in LANGS}
    details: dict[str, object] = {
        "comments": len(comments),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "load_s": round(load_s, 2),
        "load_avg_1min": [round(load, 2), round(os.getloadavg()[0], 2)],
        "themes": [t.name for t in report.themes],
        "zh": lexicons["zh"],
        "en": lexicons["en"],
    }
    model, why_not = _model(model_budget_s)
    with_model: dict[Lang, dict[str, float]] = {}
    if model is not None:
        for lang in LANGS:
            with_model[lang] = model_accuracy(model, lang, model_budget_s / len(LANGS))
        details["model_load_avg_1min"] = round(os.getloadavg()[0], 2)
    details["model"] = with_model or why_not
    print(json.dumps(details, ensure_ascii=False, indent=2), file=sys.stderr)
    if model is None:
        print(f"no model pass: {why_not}", file=sys.stderr)
    print(last_line(len(comments) / wall, lexicons, with_model))
    return 0
