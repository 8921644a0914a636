"""Footage and voice notes coming in from chat: what a message carries, fetching it into the
job's own folder, and reading a spoken request ("a 30-second funny video about my cat")."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from telegram import Bot, Message

from bot.texts import STYLE_WORDS

log = logging.getLogger(__name__)

_EXT = {"video": ".mp4", "photo": ".jpg", "video_note": ".mp4", "animation": ".mp4"}


@dataclass(frozen=True, slots=True)
class Incoming:
    """A file a message carries, as Telegram describes it (nothing downloaded yet)."""

    file_id: str
    name: str
    size: int | None
    kind: str  # video | photo | video_note | animation | document
    caption: str
    media_group_id: str | None


def incoming_media(message: Message) -> Incoming | None:
    """The video or picture in `message` (largest photo size; documents only if video/image)."""
    caption = message.caption or ""
    group = message.media_group_id
    if message.video:
        v = message.video
        return Incoming(v.file_id, v.file_name or "video.mp4", v.file_size, "video", caption, group)
    if message.photo:
        p = message.photo[-1]
        return Incoming(p.file_id, "photo.jpg", p.file_size, "photo", caption, group)
    if message.video_note:
        n = message.video_note
        return Incoming(n.file_id, "video_note.mp4", n.file_size, "video_note", caption, group)
    if message.animation:
        a = message.animation
        name = a.file_name or "animation.mp4"
        return Incoming(a.file_id, name, a.file_size, "animation", caption, group)
    doc = message.document
    if doc and (doc.mime_type or "").split("/")[0] in ("video", "image"):
        name = doc.file_name or "file"
        return Incoming(doc.file_id, name, doc.file_size, "document", caption, group)
    return None


def safe_name(name: str) -> str:
    """A file name that cannot climb out of the job folder or upset a shell."""
    stem = re.sub(r"[^\w.-]+", "_", Path(name).name, flags=re.UNICODE).strip("._") or "file"
    return stem[-80:]


async def download(bot: Bot, file_id: str, folder: str, name: str) -> str:
    """Fetch a Telegram file into `folder` (created) under a numbered, sanitised name."""
    dest = Path(folder)
    dest.mkdir(parents=True, exist_ok=True)
    index = len(list(dest.iterdir())) + 1
    while True:
        path = dest / f"{index:02d}_{safe_name(name)}"
        try:
            # Claim the name before the download: downloads for one job can run concurrently.
            path.open("x").close()
            break
        except FileExistsError:
            index += 1
    try:
        tg_file = await bot.get_file(file_id)
        await tg_file.download_to_drive(path)
    except BaseException:
        # Neither the claimed name nor a partial file may stay behind as if it were footage.
        path.unlink(missing_ok=True)
        raise
    return str(path)


@dataclass(frozen=True, slots=True)
class Request:
    """What a spoken request asked for; None where it did not say."""

    topic: str
    style: str | None
    seconds: int | None


MIN_SECONDS, MAX_SECONDS = 5, 180
_ZH_NUM = {"十五": 15, "三十": 30, "六十": 60, "二十": 20, "四十五": 45, "十": 10, "一分钟": 60}
_SECONDS = re.compile(
    r"(\d+)\s*(?:-|\s)?\s*(s\b|sec\b|secs\b|second|seconds|秒)", re.IGNORECASE | re.UNICODE
)
_MINUTES = re.compile(r"(\d+|one|a|一|两)\s*(?:-|\s)?\s*(minute|min\b|分钟)", re.IGNORECASE)
_ABOUT = (
    re.compile(r"\babout\s+(.+)$", re.IGNORECASE),
    re.compile(r"\b(?:video|short|clip|reel)s?\s+(?:on|of)\s+(.+)$", re.IGNORECASE),
    re.compile(r"(?:关于|讲讲|讲|介绍|说说)(.+)$"),
)


def parse_request(text: str) -> Request:
    """Topic, style and length from a spoken or typed request, as far as it says them."""
    lowered = text.lower()
    seconds: int | None = None
    if m := _SECONDS.search(text):
        seconds = int(m.group(1))
    elif m := _MINUTES.search(text):
        count = m.group(1).lower()
        seconds = 60 * (int(count) if count.isdigit() else 2 if count == "两" else 1)
    else:
        for word, value in _ZH_NUM.items():
            if word + "秒" in text or (word == "一分钟" and word in text):
                seconds = value
                break
    if seconds is not None:
        seconds = max(MIN_SECONDS, min(seconds, MAX_SECONDS)) if seconds > 0 else None
    style = next(
        (sid for sid, words in STYLE_WORDS.items() if any(w in lowered for w in words)), None
    )
    topic = text.strip()
    for pattern in _ABOUT:
        if m := pattern.search(topic):
            topic = m.group(1)
            break
    topic = topic.strip(" .。!！?？,，、\"'“”")
    return Request(topic=topic or text.strip(), style=style, seconds=seconds)
