"""Structure rules that keep the pipeline usable without the bot."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pipeline


def test_pipeline_never_imports_telegram() -> None:
    # A fresh interpreter: import every pipeline module and build the whole CLI parser.
    names = [m.name for m in pkgutil.walk_packages(pipeline.__path__, "pipeline.")]
    code = (
        "import importlib, sys\n"
        f"for n in {names!r}:\n"
        "    if n.endswith('__main__'): continue\n"
        "    importlib.import_module(n)\n"
        "import pipeline.cli\n"
        "pipeline.cli.build_parser()\n"
        "bad = sorted(m for m in sys.modules if m == 'telegram' or m.startswith('telegram.'))\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_cli_lists_every_part() -> None:
    from pipeline.cli import build_parser

    help_text = build_parser().format_help()
    for command in ("probe", "render", "analyze", "summarize", "script", "narrate", "bot"):
        assert command in help_text
