"""The `reelbot` command line: one entry point, subcommands contributed by each part.

A part adds its subcommands through a module with `register(subparsers)`; modules listed in
`_PARTS` that are not installed in this build are skipped. `bench` works the same way with
`register_bench(subparsers)`. Modules import their heavy dependencies inside their handlers,
so `reelbot --help` stays fast and `pipeline` never imports `telegram` unless `reelbot bot` runs.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

from pipeline.errors import ReelbotError

log = logging.getLogger("reelbot")

# Modules that contribute subcommands (`register`) and benchmarks (`register_bench`).
_PARTS = (
    "pipeline.render_cli",
    "pipeline.footage.cli",
    "pipeline.script.cli",
    "pipeline.narrate.cli",
    "pipeline.make_cli",
    "bot.cli",
)

Handler = Callable[[argparse.Namespace], int]


def _parts() -> list[Any]:
    mods = []
    for name in _PARTS:
        if importlib.util.find_spec(name) is None:
            continue
        mods.append(importlib.import_module(name))
    return mods


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

    bench = sub.add_parser("bench", help="benchmarks that print speed ratios")
    bench_sub = bench.add_subparsers(dest="bench", required=True, metavar="WHAT")

    for mod in _parts():
        if hasattr(mod, "register"):
            mod.register(sub)
        if hasattr(mod, "register_bench"):
            mod.register_bench(bench_sub)
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
