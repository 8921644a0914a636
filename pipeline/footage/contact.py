"""The contact sheet: every shot's keyframe in a grid with its time, score, 9:16 window and sound.

It is the picture a user looks at to see what the bot saw, so labels are drawn with a CJK font
(file names and captions are often Chinese) and the chosen vertical crop is outlined.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

from pipeline.cjk import font_file
from pipeline.footage.frames import frame_at
from pipeline.footage.heard import short_label
from pipeline.footage.model import Analysis
from pipeline.media import MediaInfo

log = logging.getLogger(__name__)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def _font(size: int) -> Font:
    path = font_file()  # the captions' CJK font (pipeline.cjk), as a file Pillow can open
    if path:
        try:
            return ImageFont.truetype(path, size)
        except OSError:
            pass
    log.warning("no CJK font found; contact sheet labels use Pillow's default font")
    return ImageFont.load_default()


def contact_sheet(
    analysis: Analysis,
    media: Sequence[MediaInfo],
    out_path: str,
    *,
    columns: int = 4,
    thumb_width: int = 256,
) -> str:
    """Draw the sheet as a JPEG at `out_path` and return the path."""
    shots = analysis.shots
    rows = max(1, -(-len(shots) // columns))
    thumb_h = thumb_width * 9 // 16
    label_h = 74  # four lines: time and score, parts, what was seen, what was heard
    cell_w, cell_h = thumb_width + 8, thumb_h + label_h + 8
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    font = _font(15)
    small = _font(13)
    for k, shot in enumerate(shots):
        x0 = (k % columns) * cell_w + 4
        y0 = (k // columns) * cell_h + 4
        img = _keyframe(analysis, k, media[shot.source], thumb_width, thumb_h)
        img.thumbnail((thumb_width, thumb_h))
        ox = x0 + (thumb_width - img.width) // 2
        oy = y0 + (thumb_h - img.height) // 2
        sheet.paste(img, (ox, oy))
        r = shot.crop("9:16")
        left, top = ox + r.x * img.width, oy + r.y * img.height
        # A thin strip (4096x16) thumbnails to a picture a pixel high: the window's far edge
        # must not come before its near one (Pillow raises ValueError).
        right = max(left, ox + (r.x + r.w) * img.width - 1)
        bottom = max(top, oy + (r.y + r.h) * img.height - 1)
        draw.rectangle((left, top, right, bottom), outline=(255, 212, 0), width=2)
        colour = (120, 220, 120) if shot.score >= 0.6 else (230, 190, 90)
        if shot.score < 0.3:
            colour = (230, 100, 100)
        name = os.path.basename(shot.path)
        when = "photo" if shot.kind == "photo" else f"{shot.start:.1f}-{shot.end:.1f}s"
        draw.text((x0, y0 + thumb_h + 2), f"#{k} {when}  score {shot.score:.2f}", colour, font)
        detail = name if not shot.text else f"{name} · {shot.text}"
        draw.text((x0, y0 + thumb_h + 22), _fit(draw, detail, small, thumb_width), "white", small)
        # What was seen: the subjects in both languages, people and screen text.
        seen = " · ".join(t for t in (shot.seen.summary("zh"), shot.seen.summary("en")) if t)
        if shot.faces and not shot.seen.people:
            seen = f"faces {shot.faces}" + (f" · {seen}" if seen else "")
        if seen:
            draw.text((x0, y0 + thumb_h + 40), _fit(draw, seen, small, thumb_width),
                      (180, 180, 255), small)  # fmt: skip
        heard = short_label(shot.heard)
        if heard:
            # What the shot sounds like, on a line of its own (the planner keeps or mutes it).
            line = _fit(draw, f"sound: {heard}", small, thumb_width)
            draw.text((x0, y0 + thumb_h + 56), line, (150, 220, 230), small)
    sheet.save(out_path, "JPEG", quality=88)
    return out_path


def _keyframe(analysis: Analysis, k: int, info: MediaInfo, width: int, height: int) -> Image.Image:
    """Shot k's keyframe: the one analysis kept when it is big enough, else decoded again."""
    shot = analysis.shots[k]
    kept = analysis.keyframes[k] if k < len(analysis.keyframes) else b""
    if kept:
        try:
            with Image.open(io.BytesIO(kept)) as im:
                if im.width >= width or im.width >= info.width:
                    rgb: Image.Image = im.convert("RGB")
                    return rgb
        except OSError as exc:
            log.warning("unreadable kept keyframe of shot %d: %s", k, exc)
    try:
        bgr = frame_at(info, shot.keyframe_time, width)
        return Image.fromarray(bgr[:, :, ::-1].copy())
    except Exception as exc:  # a sheet with one grey cell beats no sheet at all
        log.warning("no keyframe for %s at %.2fs: %s", info.path, shot.keyframe_time, exc)
        return Image.new("RGB", (width, height), (80, 80, 80))


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Font, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"
