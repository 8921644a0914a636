"""What footage analysis produces: `Shot`s (scored, framed, described moments) and `Analysis`.

Plain frozen data with a JSON round-trip, saved as the job folder's shots.json and in the
analysis cache. Inside the frozen classes everything is a tuple, so shots hash and compare.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace
from typing import Any, Literal

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

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": ANALYSIS_VERSION,
            "shots": [shot_to_dict(s) for s in self.shots],
            "files": [
                {
                    "path": f.path,
                    "cuts": list(f.cuts),
                    "dissolves": list(f.dissolves),
                    "shots": f.shots,
                    "from_cache": f.from_cache,
                    "seconds": f.seconds,
                    **({"failed": f.failed, "message": f.message} if f.failed else {}),
                }
                for f in self.files
            ],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=indent)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Analysis:
        return Analysis(
            shots=tuple(shot_from_dict(s) for s in data["shots"]),
            files=tuple(
                FileAnalysis(
                    path=f["path"],
                    cuts=tuple(f["cuts"]),
                    dissolves=tuple(f["dissolves"]),
                    shots=int(f["shots"]),
                    from_cache=bool(f.get("from_cache", False)),
                    seconds=float(f.get("seconds", 0.0)),
                    failed=str(f.get("failed", "")),
                    message=str(f.get("message", "")),
                )
                for f in data["files"]
            ),
        )

    @staticmethod
    def from_json(text: str) -> Analysis:
        return Analysis.from_dict(json.loads(text))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write shots.json atomically (a crash never leaves half a file for the next run)."""
        tmp = f"{os.fspath(path)}.tmp"
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(self.to_json())
        os.replace(tmp, path)

    @staticmethod
    def load(path: str | os.PathLike[str]) -> Analysis:
        with open(path, encoding="utf-8") as fh:
            return Analysis.from_json(fh.read())


def _rect(d: dict[str, float]) -> Rect:
    return Rect(float(d["x"]), float(d["y"]), float(d["w"]), float(d["h"]))


def _rect_dict(r: Rect) -> dict[str, float]:
    return {"x": round(r.x, 5), "y": round(r.y, 5), "w": round(r.w, 5), "h": round(r.h, 5)}


def shot_to_dict(s: Shot) -> dict[str, Any]:
    return {
        "source": s.source,
        "path": s.path,
        "kind": s.kind,
        "start": round(s.start, 4),
        "end": round(s.end, 4),
        "keyframe_time": round(s.keyframe_time, 4),
        "score": round(s.score, 4),
        "parts": {k: round(v, 4) for k, v in s.parts.items()},
        "crops": {
            c.aspect: {
                "start": _rect_dict(c.start),
                "end": _rect_dict(c.end) if c.end is not None else None,
            }
            for c in s.crops
        },
        "text": s.text,
        "faces": s.faces,
        "cut_in": s.cut_in,
    }


def shot_from_dict(d: dict[str, Any]) -> Shot:
    crops = tuple(
        Crop(aspect, _rect(c["start"]), _rect(c["end"]) if c.get("end") else None)
        for aspect, c in d["crops"].items()
    )
    return Shot(
        source=int(d["source"]),
        path=str(d["path"]),
        start=float(d["start"]),
        end=float(d["end"]),
        keyframe_time=float(d["keyframe_time"]),
        score=float(d["score"]),
        parts=ScoreParts(**{k: float(v) for k, v in d["parts"].items()}),
        crops=crops,
        text=str(d.get("text", "")),
        faces=int(d.get("faces", 0)),
        kind=d.get("kind", "video"),
        cut_in=d.get("cut_in", "start"),
    )


def with_source(shot: Shot, source: int, text: str | None = None) -> Shot:
    """The same shot numbered for another media list (cached results are stored per file)."""
    return replace(shot, source=source, text=shot.text if text is None else text)


def rounded(shot: Shot) -> Shot:
    """The shot exactly as its JSON reads back (times, scores and windows rounded)."""
    return shot_from_dict(shot_to_dict(shot))
