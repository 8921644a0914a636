"""`reelbot render` and `reelbot bench render`."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def _render(args: argparse.Namespace) -> int:
    from pipeline.plan import EditPlan
    from pipeline.render.renderer import render

    plan = EditPlan.load(args.plan)
    last = [-1]

    def progress(frac: float) -> None:
        pct = int(frac * 100)
        if pct // 5 != last[0] // 5 and sys.stderr.isatty():
            print(f"\rrendering {pct:3d}%", end="", file=sys.stderr, flush=True)
        last[0] = pct

    result = render(plan, args.output, progress=progress, cover_path=args.cover)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    print(f"{result.path} ({result.duration:.2f}s {result.width}x{result.height}, "
          f"{result.size_bytes / 1e6:.1f} MB, {result.encoder}, cover {result.cover})")  # fmt: skip
    return 0


def register(sub: Any) -> None:
    p = sub.add_parser("render", help="render an edit plan (JSON) to MP4 + cover JPEG")
    p.add_argument("plan", metavar="PLAN.json")
    p.add_argument("-o", "--output", required=True, metavar="OUT.mp4")
    p.add_argument("--cover", metavar="COVER.jpg", help="default: OUT.cover.jpg")
    p.set_defaults(handler=_render)
