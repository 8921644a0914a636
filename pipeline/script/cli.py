"""`reelbot script`: write a script for a topic and style, from the command line."""

from __future__ import annotations

import argparse
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `script` subcommand."""
    p = subparsers.add_parser(
        "script",
        help="write a short's script (hook, lines, call to action, title, hashtags)",
        description="Write a script. Uses $REELBOT_SCRIPT_MODEL or --model when set, else the "
        "built-in offline writer.",
    )
    p.add_argument("--topic", required=True, help="what the video is about")
    p.add_argument(
        "--style",
        default="knowledge",
        help="knowledge, product, vlog, funny or motivational (default: knowledge)",
    )
    p.add_argument("--lang", default="zh", choices=("zh", "en"), help="script language")
    p.add_argument("--seconds", type=float, default=30.0, help="target length (default 30)")
    p.add_argument("--notes", default="", help="your own points, one per line or sentence")
    p.add_argument(
        "--footage-text",
        action="append",
        default=[],
        metavar="TEXT",
        help="what a shot shows (caption or transcript); repeat once per shot",
    )
    p.add_argument("--model", default=None, help="transformers model id/path, or 'offline'")
    p.add_argument("--seed", type=int, default=0, help="picks among phrasings (default 0)")
    p.add_argument(
        "--length-factor", type=float, default=1.0, help="<1 shorter, >1 longer (default 1)"
    )
    p.add_argument("--json", action="store_true", help="print the script as JSON")
    p.set_defaults(handler=_script_cmd)


def _script_cmd(args: argparse.Namespace) -> int:
    from pipeline.script import ScriptRequest, get_writer

    request = ScriptRequest(
        topic=args.topic,
        style=args.style,
        language=args.lang,
        seconds=args.seconds,
        notes=args.notes,
        footage_text=tuple(args.footage_text),
        seed=args.seed,
        length_factor=args.length_factor,
    )
    script = get_writer(args.model).write(request)
    if args.json:
        print(script.to_json())
        return 0
    print(script.title)
    print(" ".join(script.hashtags))
    print()
    for text, visual in zip(script.spoken(), script.visuals(), strict=True):
        print(f"{text}    [{visual}]" if visual else text)
    print()
    note = f", fallback: {script.fallback_reason}" if script.fallback_reason else ""
    print(
        f"~{script.estimated_seconds:.1f} s of {script.target_seconds:.0f} s "
        f"({script.writer}{note})"
    )
    return 0
