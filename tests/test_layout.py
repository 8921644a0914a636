"""Structure rules: the pipeline stands without the bot; the CLI has what the README promises."""

from __future__ import annotations

import argparse
import ast
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pipeline

ROOT = Path(__file__).resolve().parent.parent


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


def names_of_bot(source: str) -> list[str]:
    """Every place in `source` that imports the bot package or names one of its modules."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name == "bot" or a.name.startswith("bot.")]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "bot" or node.module.startswith("bot."):
                found.append(node.module)
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            # A module path in a string (importlib, entry points, mock targets).
            and re.fullmatch(r"bot(\.\w+)+(:\w+)?", node.value)
        ):
            found.append(node.value)
    return found


def test_the_check_for_bot_names_finds_each_form() -> None:
    assert names_of_bot("import bot.cli") == ["bot.cli"]
    assert names_of_bot("from bot import texts") == ["bot"]
    assert names_of_bot("from bot.jobs import Job") == ["bot.jobs"]
    assert names_of_bot('PARTS = ("pipeline.render.cli", "bot.cli")') == ["bot.cli"]
    assert names_of_bot('help = "run the Telegram bot"\nfrom robot import x') == []


def test_no_pipeline_module_imports_or_names_the_bot() -> None:
    offenders = {
        str(path.relative_to(ROOT)): hits
        for path in sorted((ROOT / "pipeline").rglob("*.py"))
        if (hits := names_of_bot(path.read_text(encoding="utf-8")))
    }
    assert not offenders, offenders


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def registered_commands() -> set[str]:
    """Every command the real parser accepts: `make`, `bench render`, ..."""
    from pipeline.cli import build_parser

    commands = set()
    for name, sub in _subcommands(build_parser()).items():
        nested = _subcommands(sub)
        commands |= {f"{name} {n}" for n in nested} if nested else {name}
    return commands


def documented_commands() -> set[str]:
    """The commands in the README's command table, `bench render|analyze` spelt out."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("| command | what it does |", 1)[1].split("\n\n", 1)[0]
    commands = set()
    for cell in re.findall(r"^\| (.+?) \| ", table, flags=re.M):
        for usage in re.findall(r"`reelbot ([^`]+)`", cell):
            words = usage.replace("\\|", "|").split()
            if len(words) > 1 and "|" in words[1] and not words[1].startswith("-"):
                commands |= {f"{words[0]} {w}" for w in words[1].split("|")}
            else:
                commands.add(words[0])
    return commands


def test_every_documented_command_is_registered_and_nothing_else() -> None:
    documented = documented_commands()
    # The table lists the commands a user needs; a sanity floor so a parsing slip cannot pass.
    assert {"make", "demo", "bot", "render", "narrate", "bench make"} <= documented
    assert registered_commands() == documented


def test_each_part_contributes_its_commands_through_an_entry_point() -> None:
    from importlib.metadata import entry_points

    parts = {e.name: e.value for e in entry_points(group="reelbot.commands")}
    assert parts["bot"] == "bot.cli:register"
    assert parts["render"] == "pipeline.render.cli:register"
    assert parts["narrate"] == "pipeline.narrate.cli:register"
    assert parts["make"] == "pipeline.make.cli:register"
    assert parts["bench"] == "pipeline.bench.cli:register"
