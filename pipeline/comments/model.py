"""The comment analysis' data: what comes in (`Comment`), what each comment is found to be
(`CommentResult`), and what comes out (`FeedbackReport`), frozen and saved as JSON through
`pipeline.jsonfiles`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pipeline.errors import ReelbotError
from pipeline.jsonfiles import StrPath, from_dict, load_json, save_json

Sentiment = Literal["positive", "neutral", "negative"]
SENTIMENTS: tuple[Sentiment, ...] = ("positive", "neutral", "negative")
Lang = Literal["zh", "en"]
# What a complaint about the video itself is about.
Aspect = Literal["", "sound", "speed", "subtitles", "length", "picture", "ads"]


class CommentsError(ReelbotError):
    """Comments cannot be read from an input; `reason` says why, `name` which input."""

    REASONS = (
        "empty",
        "not_text",
        "too_big",
        "no_text_column",
        "no_text_in_image",
        "unreadable",
        "no_comments",
    )

    def __init__(self, name: str, reason: str, detail: str = "") -> None:
        if reason not in self.REASONS:
            raise ValueError(f"unknown comments error reason {reason!r}")
        text = f"{name}: {reason.replace('_', ' ')}"
        if detail:
            text += f" ({detail})"
        super().__init__(text, name=name, reason=reason, detail=detail)
        self.name = name
        self.reason = reason
        self.key = f"comments_{reason}"


@dataclass(frozen=True, slots=True)
class Comment:
    """One viewer comment as an export or a screenshot gives it; `likes` 0 when unknown."""

    text: str
    likes: int = 0
    time: str = ""
    author: str = ""


@dataclass(frozen=True, slots=True)
class CommentResult:
    """What one comment is: its sentiment (score in -1..1, `source` lexicon or model), and
    whether it asks, requests, complains about the video (`complaint` names the aspect), or is
    spam / a repeat of an earlier one (`duplicate_of` its index)."""

    text: str
    likes: int
    language: Lang
    sentiment: Sentiment
    score: float
    confident: bool
    source: Literal["lexicon", "model"]
    question: bool
    request: bool
    complaint: Aspect
    spam: bool
    duplicate_of: int | None
    theme: int | None  # index into FeedbackReport.themes


@dataclass(frozen=True, slots=True)
class Theme:
    """Comments grouped by meaning: a few-word name, its share of the (like-weighted) comments,
    its mean sentiment and two representative comments."""

    name: str
    keywords: tuple[str, ...]
    size: int
    share: float
    sentiment: Sentiment
    score: float
    examples: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Ranked:
    """A question, request, praise or criticism with how many said it and their likes."""

    text: str
    count: int
    likes: int


@dataclass(frozen=True, slots=True)
class Idea:
    """A next video: topic, one of the script styles, the points to make, and the comments
    it answers (`why`)."""

    topic: str
    style: str
    points: tuple[str, ...]
    why: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class FeedbackReport:
    """Everything the analysis found. Shares are fractions of the counted (non-spam,
    non-duplicate) comments, weighted by likes when the export had them (`weighted`)."""

    language: Lang
    total: int
    counted: int
    weighted: bool
    shares: dict[str, float]
    comments: tuple[CommentResult, ...]
    themes: tuple[Theme, ...]
    questions: tuple[Ranked, ...]
    requests: tuple[Ranked, ...]
    praise: tuple[Ranked, ...]
    criticism: tuple[Ranked, ...]
    complaints: dict[str, int]
    ideas: tuple[Idea, ...]
    model_used: bool = False
    notes: tuple[str, ...] = ()


def save_report(path: StrPath, report: FeedbackReport) -> None:
    """Write `report` as JSON, atomically."""
    save_json(path, report)


def load_report(path: StrPath) -> FeedbackReport:
    """A report saved by `save_report`; raises `DataError` / `JsonFileError` when it is not one."""
    return from_dict(FeedbackReport, load_json(path), what="feedback report")
