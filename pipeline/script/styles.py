"""Script styles (knowledge, product, vlog, funny, motivational) from `prompts/styles.json`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.promptfiles import load_data


@dataclass(frozen=True, slots=True)
class Slot:
    """One part of a style's body: a single line, or (`repeat`) a run of min..max lines."""

    slot: str
    role: str
    repeat: bool = False
    min: int = 1
    max: int = 1
    optional: bool = False  # may be dropped when the script has to be short


@dataclass(frozen=True, slots=True)
class Style:
    """A style: its button labels, the structure of its body, its tone and hashtags."""

    key: str
    names: Mapping[str, str]
    emoji: str
    structure: tuple[Slot, ...]
    structure_text: Mapping[str, str]
    tone: Mapping[str, str]
    hashtags: Mapping[str, tuple[str, ...]]

    def name(self, language: str) -> str:
        """The label shown to a user of `language` (zh/en)."""
        return self.names.get(language) or self.names["en"]


def _style(key: str, raw: Mapping[str, Any]) -> Style:
    slots = tuple(
        Slot(
            slot=s["slot"],
            role=s["role"],
            repeat=bool(s.get("repeat", False)),
            min=int(s.get("min", 1)),
            max=int(s.get("max", 1)),
            optional=bool(s.get("optional", False)),
        )
        for s in raw["structure"]
    )
    return Style(
        key=key,
        names=dict(raw["names"]),
        emoji=str(raw.get("emoji", "")),
        structure=slots,
        structure_text=dict(raw["structure_text"]),
        tone=dict(raw["tone"]),
        hashtags={lang: tuple(tags) for lang, tags in raw["hashtags"].items()},
    )


class _Styles(Mapping[str, Style]):
    """The styles by key, read from the data file the first time they are needed."""

    _cache: dict[str, Style] | None = None

    def _all(self) -> dict[str, Style]:
        if self._cache is None:
            raw = load_data("styles")
            self._cache = {k: _style(k, v) for k, v in raw.items() if not k.startswith("_")}
        return self._cache

    def __getitem__(self, key: str) -> Style:
        return self._all()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


STYLES: Mapping[str, Style] = _Styles()
