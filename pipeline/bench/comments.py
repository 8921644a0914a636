"""`reelbot bench comments`: analysis speed on 1,000 comments (no model pass) and sentiment
accuracy on the labelled zh and en sets in tests/data (clear comments, and hard ones: slang,
emoji, sarcasm, mixed), against the bare lexicon libraries."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from pipeline.comments.model import Comment, Lang

DATA = Path(__file__).resolve().parents[2] / "tests" / "data"
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
    for kind in ("clear", "hard", "all"):
        sub = [r for r in rows if kind in ("all", r[1])]
        ours = sum(read(t, lang).sentiment == lab for lab, _, t in sub)
        raw = sum(label(raw_lexicon_score(t, lang)) == lab for lab, _, t in sub)
        out[f"{kind}"] = round(ours / len(sub), 3)
        out[f"{kind}_lexicon_only"] = round(raw / len(sub), 3)
        out[f"{kind}_n"] = len(sub)
    return out


def bench() -> int:
    from pipeline.comments import analyze_comments

    analyze_comments(["warm up 预热"])  # models and dictionaries load once, outside the timing
    comments = thousand()
    wall, cpu = time.perf_counter(), time.process_time()
    report = analyze_comments(comments)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    zh, en = accuracy("zh"), accuracy("en")
    details = {
        "comments": len(comments),
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "themes": [t.name for t in report.themes],
        "zh": zh,
        "en": en,
    }
    print(json.dumps(details, ensure_ascii=False, indent=2), file=sys.stderr)
    print(
        f"comments_per_s={len(comments) / wall:.0f} "
        f"sentiment_acc_zh={zh['all']:.2f} sentiment_acc_en={en['all']:.2f}"
    )
    return 0
