"""Comments from a screenshot of a comment section: the packaged OCR (`pipeline.see.ocr`,
PP-OCRv4 zh/en) reads the lines and their boxes; layout rules separate each commenter's name,
the time, the like count and the comment itself.

The rules follow how comment sections are drawn (Douyin, TikTok, Bilibili, Xiaohongshu,
YouTube): a comment is a block of lines ending in a meta line (a time such as "3小时前",
"2 hours ago", "03-12", often with 回复 / Reply); the first line of a block is the name when
the block has more than one line; a bare number near the right edge is a like count and
belongs to the block beside it. YouTube's "@name · 2 hours ago" header line starts a block
and gives both the name and the time.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.cjk import is_spaceless
from pipeline.comments.inputs import parse_count
from pipeline.comments.model import Comment, CommentsError

log = logging.getLogger(__name__)

MAX_SIDE = 1600  # phone screenshots: comment text stays well above the detector's minimum
_TIME = re.compile(
    r"(\d+\s*(?:秒|分钟|小时|天|周|个月|月|年)前|刚刚|昨天(?:\s*\d{1,2}:\d{2})?|前天|"
    r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/]\d{1,2}(?:\s+\d{1,2}:\d{2})?|"
    r"\d+\s*(?:seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?|[smhdwy])\s+ago|"
    r"yesterday|just now|\d+\s*[hdwmy]\b)",
    re.IGNORECASE,
)
_REPLY = re.compile(r"(回复|回覆|reply|replies|展开|查看\d*条|view \d+ repl)", re.IGNORECASE)
_LIKES = re.compile(r"^[♡♥❤👍赞\s]*(\d+(?:[.,]\d+)?\s*[kKwW万千]?)[\s♡♥❤👍]*$")
_HEADER = re.compile(r"^(共?\s*\d+\s*条评论|\d+\s*comments?|评论|comments)$", re.IGNORECASE)
_SEPARATORS = " ·•・|-—"


@dataclass
class _Line:
    text: str
    x: float
    y: float
    h: float


@dataclass
class _Block:
    lines: list[_Line] = field(default_factory=list)
    name: str = ""
    time: str = ""
    likes: int = 0
    top: float = 1.0
    bottom: float = 0.0

    def cover(self, line: _Line) -> None:
        self.top = min(self.top, line.y)
        self.bottom = max(self.bottom, line.y + line.h)


def join_lines(parts: list[str]) -> str:
    """Wrapped lines back into one comment: no space between Chinese lines, one between Latin."""
    out = ""
    for part in parts:
        if out and not (is_spaceless(out[-1]) or is_spaceless(part[0])):
            out += " "
        out += part
    return out


def comments_from_lines(lines: list[_Line]) -> list[Comment]:
    """Comments from OCR lines (top to bottom) by the layout rules in the module docstring."""
    blocks: list[_Block] = []
    likes: list[_Line] = []
    cur: _Block | None = None

    def close() -> None:
        nonlocal cur
        if cur is not None and cur.lines:
            blocks.append(cur)
        cur = None

    for line in lines:
        text = line.text.strip()
        if _HEADER.match(text.replace(" ", "")):
            continue  # "128条评论" above the list
        if _LIKES.match(text) and line.x > 0.6:
            likes.append(line)
            continue
        when = _TIME.search(text)
        reply = _REPLY.search(text)
        if when and not reply:
            prefix = text[: when.start()].strip(_SEPARATORS)
            rest = text[when.end() :].strip(_SEPARATORS)
            if len(prefix) >= 2 and not rest:
                close()  # "@name · 2 hours ago": a new comment's header
                cur = _Block(name=prefix.lstrip("@"), time=when.group(0))
                cur.cover(line)
                continue
        if when or reply:
            meta_len = len(_TIME.sub("", _REPLY.sub("", text)).strip(_SEPARATORS + " "))
            if meta_len <= 8:  # a meta line: time, reply, maybe a count; it ends the comment
                if cur is not None:
                    cur.time = cur.time or (when.group(0) if when else "")
                    cur.cover(line)
                    digits = re.findall(r"\d+(?:\.\d+)?[kKwW万]?", _TIME.sub("", text))
                    if digits and not cur.likes:
                        cur.likes = parse_count(digits[-1])
                close()
                continue
        if cur is None:
            cur = _Block()
        cur.lines.append(line)
        cur.cover(line)
    close()

    for like in likes:
        centre = like.y + like.h / 2
        inside = [b for b in blocks if b.top - 0.01 <= centre <= b.bottom + 0.01]
        if not inside and blocks:
            inside = [min(blocks, key=lambda b: abs((b.top + b.bottom) / 2 - centre))]
        for b in inside[:1]:
            b.likes = b.likes or parse_count(_LIKES.match(like.text.strip()).group(1))  # type: ignore[union-attr]

    out = []
    for b in blocks:
        texts = [ln.text.strip() for ln in b.lines]
        if not b.name and len(texts) >= 2 and len(texts[0]) <= 24:
            b.name, texts = texts[0].lstrip("@"), texts[1:]
        text = join_lines(texts)
        if not text or _HEADER.match(text):
            continue
        out.append(Comment(text=text, likes=b.likes, time=b.time, author=b.name))
    return out


def read_screenshot(path: str | Path, *, budget_s: float = 30.0) -> list[Comment]:
    """The comments in a screenshot; raises `CommentsError` when it is no image or has no text."""
    import cv2

    from pipeline.see.ocr import read_keyframes

    name = Path(path).name
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise CommentsError(name, "unreadable", "not an image")
    frames = read_keyframes([image], budget_s=budget_s, max_side=MAX_SIDE)
    found = [_Line(t.text, t.x, t.y, t.h) for t in frames[0].lines]
    comments = comments_from_lines(found)
    if not comments:
        raise CommentsError(name, "no_text_in_image")
    log.info("%s: %d OCR lines, %d comments", name, len(found), len(comments))
    return comments
