"""What footage analysis produces: `Shot`s (scored, framed, described moments) and `Analysis`.

Plain frozen data with a JSON round-trip, saved as the job folder's shots.json and in the
analysis cache. Inside the frozen classes everything is a tuple, so shots hash and compare.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pipeline.footage.heard import Heard
from pipeline.jsonfiles import dumps, from_dict, load_json, save_json, to_dict
from pipeline.plan import Rect

ShotKind = Literal["video", "photo", "animation"]
ASPECTS = ("9:16", "1:1", "16:9")
ANALYSIS_VERSION = 1


@dataclass(frozen=True, slots=True)
class ScoreParts:
    """Why a shot scored what it did; each part is 0..1 where 1 is good (penalty: 0 is good)."""

    sharpness: float
    exposure: float
    stability: float  # 1 = steady camera, 0 = shaking
    motion: float  # liveliness: some movement, neither frozen nor chaotic
    colour: float
    faces: float
    duplicate: float  # penalty for looking like a better shot already kept

    def items(self) -> tuple[tuple[str, float], ...]:
        return tuple((name, getattr(self, name)) for name in self.__slots__)


@dataclass(frozen=True, slots=True)
class Crop:
    """The window for one output aspect; `end` is set when the window should pan/zoom to it."""

    aspect: str  # "9:16", "1:1" or "16:9"
    start: Rect
    end: Rect | None = None


@dataclass(frozen=True, slots=True)
class SeenSubject:
    """An everyday word for what a shot shows, in both languages, with the classifier's
    confidence (`pipeline.see.subjects`)."""

    en: str
    zh: str
    confidence: float


@dataclass(frozen=True, slots=True)
class Seen:
    """What a shot's keyframe shows: subjects (best first), how many people (faces found by
    YuNet), the text on screen (OCR) and, when a vision-language model is configured, one
    sentence describing it. Empty when understanding was off or found nothing."""

    subjects: tuple[SeenSubject, ...] = ()
    people: int = 0
    text: str = ""  # on-screen text, lines joined by " / "
    description: str = ""  # one sentence from a vision-language model, in English

    def words(self, language: str) -> tuple[str, ...]:
        """The subjects in `language` ("zh" or "en"), best first, with people when there are."""
        out = [s.zh if language == "zh" else s.en for s in self.subjects]
        if self.people:
            out.append(people_word(self.people, language))
        return tuple(out)

    def summary(self, language: str) -> str:
        """A short line for people: "猫、纸箱 · 一个人 · 文字：SALE" / "cat, box · a person"."""
        zh = language == "zh"
        parts = []
        names = [s.zh if zh else s.en for s in self.subjects]
        if names:
            parts.append(("、" if zh else ", ").join(names))
        if self.people:
            parts.append(people_word(self.people, language))
        if self.text:
            parts.append(("文字：" if zh else "text: ") + self.text)
        if self.description and not zh:
            parts.append(self.description)
        return " · ".join(parts)

    def search_text(self) -> str:
        """Every word known about the shot, both languages: what matching compares lines with."""
        words = [w for s in self.subjects for w in (s.en, s.zh)]
        if self.people:
            words += [people_word(self.people, "en"), people_word(self.people, "zh")]
        return " ".join([*words, self.text, self.description]).strip()


def people_word(count: int, language: str) -> str:
    if language == "zh":
        return "一个人" if count == 1 else f"{count}个人"
    return "a person" if count == 1 else f"{count} people"


@dataclass(frozen=True, slots=True)
class Shot:
    """A usable moment of one footage file, scored and framed, with what is known about it."""

    source: int  # index into the MediaInfo list that was analysed
    path: str
    start: float  # source seconds (0 for photos)
    end: float  # source seconds (for photos, a suggested on-screen duration)
    keyframe_time: float
    score: float  # 0..1
    parts: ScoreParts
    crops: tuple[Crop, ...]
    text: str = ""
    faces: int = 0
    kind: ShotKind = "video"
    cut_in: Literal["start", "cut", "dissolve", "split"] = "start"  # how the moment begins
    seen: Seen = field(default_factory=Seen)  # what the keyframe shows (`footage.understand`)
    heard: Heard | None = None  # its own sound's tags (None: a photo, no sound, not listened)

    def document(self) -> str:
        """All the text known about the shot, for matching it to script lines: the user's
        caption and speech, then what was seen (subjects in zh and en, screen text)."""
        return " · ".join(t for t in (self.text, self.seen.search_text()) if t)

    @property
    def duration(self) -> float:
        return self.end - self.start

    def crop(self, aspect: str) -> Rect:
        """The start window for `aspect` (one of `ASPECTS`)."""
        for c in self.crops:
            if c.aspect == aspect:
                return c.start
        raise KeyError(aspect)

    def crop_end(self, aspect: str) -> Rect | None:
        for c in self.crops:
            if c.aspect == aspect:
                return c.end
        raise KeyError(aspect)


@dataclass(frozen=True, slots=True)
class FileAnalysis:
    """Per file: its shots' count, the cuts found, and whether the result came from the cache."""

    path: str
    cuts: tuple[float, ...]  # source seconds where a new shot starts (hard cuts)
    dissolves: tuple[float, ...]  # middles of gradual transitions
    shots: int
    from_cache: bool = False
    seconds: float = 0.0  # time the analysis took (0 for a cache hit)
    # Why the file was left out ("" when it was analysed): a `MediaError` reason and its text.
    failed: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class Analysis:
    """All shots of all files, in footage order (file, then time), plus per-file facts.

    `keyframes[i]` is shot i's keyframe as analysis saw it (JPEG, about 256 px wide), so the
    contact sheet needs no second decode of the footage. It is not saved in shots.json: an
    analysis read back from disk has none (and the sheet decodes the frames itself).
    """

    shots: tuple[Shot, ...]
    files: tuple[FileAnalysis, ...]
    keyframes: tuple[bytes, ...] = field(default=(), compare=False, repr=False)
    # features[i]: shot i's image features (`see.subjects`, L2-normalised), for clustering by
    # meaning; like the keyframes, not saved in shots.json (empty when understanding was off).
    features: tuple[tuple[float, ...], ...] = field(default=(), compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"version": ANALYSIS_VERSION, **to_dict(self, exclude={"keyframes", "features"})}

    def to_json(self, indent: int | None = 2) -> str:
        return dumps(self.to_dict(), indent)

    @staticmethod
    def from_dict(data: Any) -> Analysis:
        """Rebuild a saved analysis; a malformed one raises `DataError` naming the field."""
        return from_dict(Analysis, data, what="shots.json")

    @staticmethod
    def from_json(text: str) -> Analysis:
        return Analysis.from_dict(json.loads(text))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write shots.json atomically (a crash never leaves half a file for the next run)."""
        save_json(path, self.to_dict(), indent=2)

    @staticmethod
    def load(path: str | os.PathLike[str]) -> Analysis:
        return Analysis.from_dict(load_json(path))


def with_source(shot: Shot, source: int, text: str | None = None) -> Shot:
    """The same shot numbered for another media list (cached results are stored per file)."""
    return replace(shot, source=source, text=shot.text if text is None else text)


def _round_rect(r: Rect) -> Rect:
    return Rect(round(r.x, 5), round(r.y, 5), round(r.w, 5), round(r.h, 5))


def rounded(shot: Shot) -> Shot:
    """The shot with times and scores to 4 decimals and windows to 5, as analysis keeps them
    (so a shot read back from the cache or shots.json equals a fresh one, in a smaller file)."""
    return replace(
        shot,
        start=round(shot.start, 4),
        end=round(shot.end, 4),
        keyframe_time=round(shot.keyframe_time, 4),
        score=round(shot.score, 4),
        parts=ScoreParts(*(round(v, 4) for _, v in shot.parts.items())),
        crops=tuple(
            Crop(c.aspect, _round_rect(c.start), None if c.end is None else _round_rect(c.end))
            for c in shot.crops
        ),
    )
