"""The `reelbot` command line: one entry point, subcommands contributed by each part.

A part adds its subcommands through a `register(subparsers)` function named in the
`reelbot.commands` entry-point group (pyproject.toml), so this module names no part, and the
pipeline never names the bot. Modules import their heavy dependencies inside their handlers,
so `reelbot --help` stays fast and `pipeline` never imports `telegram` unless `reelbot bot` runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from importlib.metadata import entry_points

from pipeline.errors import ReelbotError

log = logging.getLogger("reelbot")

COMMAND_GROUP = "reelbot.commands"

Handler = Callable[[argparse.Namespace], int]


def _probe_cmd(args: argparse.Namespace) -> int:
    from pipeline.media import probe

    infos = []
    failed = 0
    for path in args.files:
        try:
            infos.append(asdict(probe(path)))
        except ReelbotError as exc:
            failed += 1
            infos.append({"path": path, "error": exc.key, "message": exc.message})
    if args.json:
        print(json.dumps(infos, ensure_ascii=False, indent=2))
    else:
        for info in infos:
            if "error" in info:
                print(f"{info['path']}: ERROR {info['message']}")
            else:
                print(
                    f"{info['path']}: {info['kind']} {info['width']}x{info['height']} "
                    f"{info['duration']:.2f}s {info['fps']:.2f}fps rot={info['rotation']} "
                    f"audio={'yes' if info['has_audio'] else 'no'}"
                )
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reelbot",
        description="Turn a topic, a style and your footage into a narrated vertical short.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("probe", help="read media facts of footage files")
    p.add_argument("files", nargs="+", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=_probe_cmd)

    for part in sorted(entry_points(group=COMMAND_GROUP), key=lambda e: e.name):
        part.load()(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    handler: Handler = args.handler
    try:
        return handler(args)
    except ReelbotError as exc:
        log.debug("failed", exc_info=True)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
