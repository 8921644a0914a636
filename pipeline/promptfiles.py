"""Prompt files: text templates and data kept in `prompts/`, loaded by name.

A template file starts with a header of `#` lines; `# vars: a, b` declares the variables its body
uses as `$a` / `${b}` (`string.Template`, so JSON braces in a prompt need no escaping). Loading
checks that the body uses exactly the declared variables, and rendering checks that exactly those
are given: a typo in either place fails loudly instead of sending a model a literal `$topic`.
The body starts after the first line that is exactly `---`.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.errors import ReelbotError


class PromptError(ReelbotError):
    """A prompt file is missing or malformed, or was rendered with the wrong variables."""

    key = "prompt_invalid"

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"prompt {name}: {problem}", name=name, problem=problem)
        self.name = name
        self.problem = problem


def prompts_dir() -> Path:
    """The folder holding the prompt files, in a wheel (`pipeline.prompts`) or a checkout.

    A folder next to this very file wins: a wheel puts it at `pipeline/prompts`, a checkout at
    `prompts/` beside `pipeline/`. Only then `importlib.resources`, because an editable install
    maps `pipeline.prompts` to the checkout it was installed from, which need not be this one.
    """
    here = Path(__file__).resolve()
    for candidate in (here.parent / "prompts", here.parents[1] / "prompts"):
        if (candidate / "styles.json").is_file():
            return candidate
    try:
        return Path(str(importlib.resources.files("pipeline.prompts")))
    except ModuleNotFoundError as exc:
        raise PromptError("prompts", "no prompts folder found") from exc


@dataclass(frozen=True, slots=True)
class Prompt:
    """A loaded template with the variables it declares."""

    name: str
    variables: frozenset[str]
    body: str

    def render(self, **values: object) -> str:
        """Fill the template; every declared variable must be given, and nothing else."""
        given = set(values)
        if given != self.variables:
            missing = sorted(self.variables - given)
            extra = sorted(given - self.variables)
            raise PromptError(self.name, f"render with missing {missing} / unknown {extra}")
        return string.Template(self.body).substitute({k: str(v) for k, v in values.items()})


def parse_prompt(name: str, text: str) -> Prompt:
    """Parse a template file's text and check its declared variables against its body."""
    head, sep, body = text.partition("\n---\n")
    if not sep:
        raise PromptError(name, "no '---' line between the header and the body")
    declared: set[str] = set()
    found_vars = False
    for line in head.splitlines():
        line = line.strip()
        if not line:
            continue
        if not line.startswith("#"):
            raise PromptError(name, f"header line is not a '#' comment: {line[:40]!r}")
        key, _, value = line.lstrip("#").strip().partition(":")
        if key.strip() == "vars":
            found_vars = True
            declared |= {v.strip() for v in value.split(",") if v.strip()}
    if not found_vars:
        raise PromptError(name, "the header declares no '# vars:' line")
    template = string.Template(body)
    if not template.is_valid():
        raise PromptError(name, "a '$' is neither a variable nor escaped as '$$'")
    used = set(template.get_identifiers())
    if used - declared:
        raise PromptError(name, f"uses undeclared variables {sorted(used - declared)}")
    if declared - used:
        raise PromptError(name, f"declares unused variables {sorted(declared - used)}")
    return Prompt(name, frozenset(declared), body)


@functools.cache
def load_prompt(name: str) -> Prompt:
    """Load `prompts/<name>.txt` by name."""
    path = prompts_dir() / f"{name}.txt"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise PromptError(name, f"no file {path}") from exc
    return parse_prompt(name, text)


@functools.cache
def load_data(name: str) -> Any:
    """Load `prompts/<name>.json` (structured prompt data: styles, phrase banks, rates)."""
    path = prompts_dir() / f"{name}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PromptError(name, f"no file {path}") from exc
    except json.JSONDecodeError as exc:
        raise PromptError(name, f"not JSON: {exc.msg} at line {exc.lineno}") from exc


def prompt_names() -> list[str]:
    """Every template in the prompts folder, by name."""
    return sorted(p.stem for p in prompts_dir().glob("*.txt"))


def as_data(text: str) -> str:
    """User text for inside a prompt's <<<DATA ... DATA>>> fence, as one line: the fence's
    markers and line breaks taken out, so it cannot close the fence and go on as instructions."""
    for marker in ("<<<DATA", "DATA>>>", "<<<", ">>>"):
        text = text.replace(marker, " ")
    return " ".join(text.split())
