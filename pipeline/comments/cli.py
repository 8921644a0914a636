"""`reelbot comments FILE... [--json] [--chart OUT.png] [--lang zh|en]`: audience feedback
from comment exports, pasted text files or screenshots."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(sub: Any) -> None:
    """Add `reelbot comments`."""
    p = sub.add_parser(
        "comments",
        help="audience feedback: sentiment, themes, questions and next-video ideas from comments",
    )
    p.add_argument("files", nargs="+", metavar="FILE",
                   help="TXT, CSV, JSON, XLSX exports or screenshots (PNG/JPG)")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the whole report as JSON")
    p.add_argument("--chart", metavar="OUT.png", help="write the chart image here")
    p.add_argument("--lang", choices=("zh", "en"), help="report language (default: the comments')")
    p.add_argument(
        "--model-budget",
        type=float,
        default=60.0,
        metavar="S",
        help="seconds the language model may spend (REELBOT_LM; 0: lexicons only)",
    )
    p.set_defaults(handler=_comments)


def _comments(args: argparse.Namespace) -> int:
    from pipeline.comments import analyze_comments
    from pipeline.comments.inputs import load_files
    from pipeline.comments.summary import summary_text
    from pipeline.jsonfiles import dumps

    comments, problems = load_files(args.files)
    for problem in problems:
        print(f"skipped {problem.message}", file=sys.stderr)
    if not comments:
        print("error: no comments found", file=sys.stderr)
        return 2
    from pipeline.comments.lm import configured_model

    model = configured_model() if args.model_budget > 0 else None
    report = analyze_comments(
        comments, args.lang or "auto", model=model, model_budget_s=args.model_budget
    )
    if args.chart:
        from pipeline.comments.chart import save_chart

        save_chart(report, args.chart)
    print(dumps(report) if args.json else summary_text(report))
    return 1 if problems else 0
