"""The report as one PNG for a chat: the sentiment shares as a bar, then the top themes, each
bar as long as its share and coloured by its sentiment. Drawn with Pillow and the CJK font
(`pipeline.cjk.font_file`), so Chinese theme names render."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from pipeline.cjk import font_file
from pipeline.comments.model import FeedbackReport
from pipeline.jsonfiles import StrPath, write_atomic

WIDTH = 1000
COLOURS = {"positive": (76, 175, 80), "neutral": (158, 158, 158), "negative": (229, 57, 53)}
_WORDS = {
    "zh": {"title": "观众反馈", "positive": "正面", "neutral": "中性", "negative": "负面",
           "themes": "主要话题", "n": "{n} 条评论"},
    "en": {"title": "Audience feedback", "positive": "positive", "neutral": "neutral",
           "negative": "negative", "themes": "Top themes", "n": "{n} comments"},
}  # fmt: skip


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = font_file()
    return ImageFont.truetype(path, size) if path else ImageFont.load_default()


def draw(report: FeedbackReport, max_themes: int = 6) -> Image.Image:
    words = _WORDS[report.language]
    themes = report.themes[:max_themes]
    height = 300 + 90 * max(1, len(themes))
    img = Image.new("RGB", (WIDTH, height), "white")
    d = ImageDraw.Draw(img)
    big, mid, small = _font(44), _font(30), _font(26)
    d.text((40, 30), words["title"], font=big, fill=(20, 20, 20))
    d.text((WIDTH - 40, 44), words["n"].format(n=report.counted), font=small,
           fill=(110, 110, 110), anchor="ra")  # fmt: skip
    # Sentiment shares: one bar split in three.
    x, y, bar_w = 40, 110, WIDTH - 80
    for s in ("positive", "neutral", "negative"):
        w = round(bar_w * report.shares.get(s, 0.0))
        if w > 0:
            d.rectangle((x, y, x + w, y + 50), fill=COLOURS[s])
            if w > 120:
                d.text((x + 10, y + 10), f"{words[s]} {report.shares[s]:.0%}", font=small,
                       fill="white")  # fmt: skip
        x += w
    d.text((40, 200), words["themes"], font=mid, fill=(20, 20, 20))
    top = max((t.share for t in themes), default=1.0) or 1.0
    for i, t in enumerate(themes):
        ty = 260 + 90 * i
        d.text((40, ty), t.name[:24], font=small, fill=(40, 40, 40))
        w = max(6, round((WIDTH - 520) * t.share / top))
        d.rectangle((420, ty + 2, 420 + w, ty + 38), fill=COLOURS[t.sentiment])
        d.text((430 + w, ty + 4), f"{t.share:.0%}", font=small, fill=(80, 80, 80))
    return img


def png_bytes(report: FeedbackReport) -> bytes:
    buf = io.BytesIO()
    draw(report).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def save_chart(report: FeedbackReport, path: StrPath) -> Path:
    """Write the chart as PNG, atomically."""
    write_atomic(path, png_bytes(report))
    return Path(path)
