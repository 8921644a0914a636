"""`reelbot analyze`, `reelbot summarize` and `reelbot bench analyze`.

Heavy imports live inside the handlers so `reelbot --help` stays fast.
"""

from __future__ import annotations

import argparse
import logging
from typing import Any

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    p = sub.add_parser("analyze", help="find, score and frame the usable moments of footage")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument(
        "--caption",
        action="append",
        default=[],
        metavar="TEXT",
        help="caption of the Nth file (repeat in file order)",
    )
    p.add_argument("--json", action="store_true", help="print the analysis as JSON")
    p.add_argument("--contact-sheet", metavar="OUT.jpg", help="write a keyframe contact sheet")
    p.add_argument("--no-cache", action="store_true", help="analyse again even if cached")
    p.add_argument("--cache-dir", help="analysis cache folder (default: $REELBOT_CACHE_DIR)")
    p.set_defaults(handler=_analyze_cmd)

    s = sub.add_parser("summarize", help="render an N-second highlight reel of videos (视频摘要)")
    s.add_argument("files", nargs="+", metavar="VIDEO")
    s.add_argument("--seconds", type=float, required=True, help="length of the reel")
    s.add_argument("-o", "--output", required=True, metavar="OUT.mp4")
    s.add_argument("--music", metavar="M", help="music under the reel (replaces source sound)")
    s.add_argument("--size", default="1080x1920", help="output WIDTHxHEIGHT (default 1080x1920)")
    s.add_argument("--plan", metavar="PLAN.json", help="also save the edit plan here")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--cache-dir", help="analysis cache folder (default: $REELBOT_CACHE_DIR)")
    s.set_defaults(handler=_summarize_cmd)


def _probe_files(files: list[str]) -> list[Any]:
    from pipeline.media import probe

    return [probe(f) for f in files]


def _analyze_cmd(args: argparse.Namespace) -> int:
    from pipeline.footage.analyze import analyze
    from pipeline.footage.contact import contact_sheet
    from pipeline.footage.heard import short_label

    media = _probe_files(args.files)
    analysis = analyze(media, args.caption, cache_dir=args.cache_dir, use_cache=not args.no_cache)
    if args.contact_sheet:
        contact_sheet(analysis, media, args.contact_sheet)
        log.info("contact sheet written to %s", args.contact_sheet)
    if args.json:
        print(analysis.to_json())
        return 0
    for k, s in enumerate(analysis.shots):
        parts = " ".join(f"{n}={v:.2f}" for n, v in s.parts.items())
        r = s.crop("9:16")
        print(
            f"#{k} {s.path} {s.kind} {s.start:.2f}-{s.end:.2f}s key={s.keyframe_time:.2f}s "
            f"score={s.score:.2f} [{parts}] 9:16=({r.x:.3f},{r.y:.3f},{r.w:.3f},{r.h:.3f})"
            + (f" sound=[{short_label(s.heard)}] {s.heard.level_db:.0f}dB" if s.heard else "")
            + (f" text={s.text!r}" if s.text else "")
            + (f" seen={s.seen.summary('en')!r} 看到={s.seen.summary('zh')!r}" if _seen(s) else "")
        )
    for f in analysis.files:
        cached = " (cached)" if f.from_cache else ""
        print(f"{f.path}: {f.shots} moments, cuts at {list(f.cuts)}{cached}")
    return 0


def _seen(shot: Any) -> bool:
    return bool(shot.seen.subjects or shot.seen.people or shot.seen.text)


def _summarize_cmd(args: argparse.Namespace) -> int:
    from pipeline.footage.analyze import analyze
    from pipeline.footage.summary import looks_for, summary_plan
    from pipeline.plan import output_size
    from pipeline.render.renderer import render

    size = output_size(args.size)
    media = _probe_files(args.files)
    analysis = analyze(media, cache_dir=args.cache_dir)
    looks, by_meaning = looks_for(analysis, media)
    plan, picks = summary_plan(
        analysis.shots,
        media,
        looks,
        args.seconds,
        size=size,
        music=args.music,
        seed=args.seed,
        by_meaning=by_meaning,
    )
    if args.plan:
        plan.save(args.plan)
    for p in picks:
        s = analysis.shots[p.shot]
        log.info("cluster %d: %s %.2f-%.2fs (score %.2f)", p.cluster, s.path, p.start, p.end,
                 s.score)  # fmt: skip
    render(plan, args.output, progress=None)
    print(args.output)
    return 0
