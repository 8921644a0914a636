"""`reelbot bench render|analyze|narrate|make|understand|comments|edit` (and plug-ins: `queue`).

Heavy imports live inside the handlers so `reelbot --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from importlib.metadata import entry_points
from typing import Any

# Benchmarks other parts add (`register(subparsers)` functions in this entry-point group, in
# pyproject.toml): the bot's `bench queue` measures the distributed engine, which the pipeline
# must not import.
BENCH_GROUP = "reelbot.bench"


def register(sub: Any) -> None:
    """Add `reelbot bench` and its benchmarks."""
    bench = sub.add_parser("bench", help="benchmarks that print speed ratios")
    what = bench.add_subparsers(dest="bench", required=True, metavar="WHAT")

    p = what.add_parser("render", help="renderer vs hand-written ffmpeg vs moviepy")
    p.add_argument("--runs", type=int, default=3, help="runs of each variant (median reported)")
    p.add_argument("--skip-moviepy", action="store_true", help="skip the slow moviepy reference")
    p.add_argument("--keep", metavar="DIR", help="keep inputs and outputs in this folder")
    p.set_defaults(handler=_render)

    p = what.add_parser("analyze", help="footage analysis speed and cut accuracy")
    p.add_argument("--seconds", type=float, default=60.0, help="length of generated footage")
    p.add_argument("--size", default="1920x1080", help="generated footage size")
    p.add_argument("--fps", type=int, default=30)
    p.add_argument("--workdir", help="keep generated footage here (default: a temp folder)")
    p.set_defaults(handler=_analyze)

    p = what.add_parser(
        "narrate",
        help="speaking rate (zh chars/s, en words/s) and real-time factor of the offline voices",
    )
    p.add_argument("--workdir", help="where to write the WAVs (default: a temporary folder)")
    p.set_defaults(handler=_narrate)

    p = what.add_parser("make", help="whole pipeline vs the render alone; caption sync")
    p.add_argument("--seconds", type=int, default=30, help="target length of the short")
    p.add_argument("--keep", metavar="DIR", help="keep the job folder here")
    p.add_argument("--no-whisper", action="store_true",
                   help="skip the whisper re-transcription of the output")  # fmt: skip
    p.add_argument("--writer", default="", metavar="MODEL",
                   help="the script writer (as REELBOT_SCRIPT_MODEL: 'offline', a model); "
                        "default: the configured one")  # fmt: skip
    p.set_defaults(handler=_make)

    p = what.add_parser("edit", help="re-render after an edit (segment cache) vs the full render")
    p.add_argument("--keep", metavar="DIR", help="keep the renders and the segment cache here")
    p.set_defaults(handler=_edit)

    p = what.add_parser(
        "understand", help="what footage shows: subject recall, grounded script lines, speed"
    )
    p.add_argument("--workdir", help="keep generated footage here (default: a temp folder)")
    p.set_defaults(handler=_understand)

    p = what.add_parser(
        "comments", help="comment analysis speed (1,000 comments) and sentiment accuracy zh/en"
    )
    p.add_argument(
        "--model-budget",
        type=float,
        default=None,
        metavar="S",
        help="seconds for the language-model pass on the labelled sets (default 480; 0: none)",
    )
    p.set_defaults(handler=_comments)

    for extra in sorted(entry_points(group=BENCH_GROUP), key=lambda e: e.name):
        extra.load()(what)


def _render(args: argparse.Namespace) -> int:
    from pipeline.bench.render import bench

    return bench(args.runs, args.skip_moviepy, args.keep)


def _analyze(args: argparse.Namespace) -> int:
    from pipeline.bench.analyze import run_bench
    from pipeline.plan import output_size

    result = run_bench(args.seconds, output_size(args.size), args.fps, args.workdir)
    print(json.dumps(result.details, indent=2), file=sys.stderr)
    print(
        f"analyze_x_realtime={result.x_realtime:.1f} "
        f"cut_recall={result.recall:.2f} cut_precision={result.precision:.2f}"
    )
    return 0


def _narrate(args: argparse.Namespace) -> int:
    from pipeline.bench.narrate import bench

    return bench(args.workdir)


def _make(args: argparse.Namespace) -> int:
    from pipeline.bench.make import bench

    result: int = bench(args.seconds, args.keep, not args.no_whisper, writer=args.writer)
    return result


def _edit(args: argparse.Namespace) -> int:
    from pipeline.bench.edit import bench

    return bench(args.keep)


def _understand(args: argparse.Namespace) -> int:
    from pipeline.bench.understand import run_bench

    r = run_bench(args.workdir)
    print(json.dumps({**r.details, "grounded": r.grounded, "writer": r.writer}, indent=2,
                     ensure_ascii=False), file=sys.stderr)  # fmt: skip
    print(
        f"subject_recall={r.subject_recall:.2f} grounded_lines={min(r.grounded.values()):.2f} "
        f"script_s_idle={r.script_s_idle:.2f} script_s_busy={r.script_s_busy:.2f} "
        f"analysis_ratio={r.analysis_ratio:.2f}"
    )
    return 0


def _comments(args: argparse.Namespace) -> int:
    from pipeline.bench.comments import DEFAULT_MODEL_BUDGET_S, bench

    budget = args.model_budget
    return bench(DEFAULT_MODEL_BUDGET_S if budget is None else budget)
