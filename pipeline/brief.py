"""What the user asked for: the input of `make_video`, built by the CLI or the bot."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pipeline.plan import CaptionPosition, OutputSpec

Language = Literal["zh", "en"]


@dataclass(frozen=True, slots=True)
class Footage:
    """One file the user gave, with the caption they wrote for it and who sent it (groups)."""

    path: str
    caption: str = ""
    credit: str = ""
    # The name the user knows the file by, for messages ("" = the path's own): the bot stores
    # uploads under numbered, sanitised names ("03_with_space.mp4" for "with space.mp4").
    name: str = ""


@dataclass(frozen=True, slots=True)
class Brief:
    """Topic, style, language, length, voice and footage: everything a video is made from."""

    topic: str
    style: str = "knowledge"
    language: Language = "en"
    seconds: int = 30
    footage: tuple[Footage, ...] = ()
    notes: str = ""
    voice: str | None = None
    music: str | None = None
    output: OutputSpec = field(default_factory=OutputSpec)
    seed: int = 0
    # The voice's speed in percent (edge-tts's "+10%"; the offline voices take it too), and the
    # captions' size relative to the preset and where they sit: edits after delivery set them.
    rate: int = 0
    caption_scale: float = 1.0
    caption_position: CaptionPosition = "bottom"
