"""A comment-section screenshot drawn with Pillow and the Noto CJK font, with known content:
avatars, names, times, like counts and the comments (some wrapped on two lines)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from pipeline.cjk import font_file

SHOT_COMMENTS = (
    ("小鹿乱撞", "声音太小了，完全听不清讲解", "3小时前", 1204),
    ("Momo", "求一期剪辑教程！新手完全不会", "5小时前", 356),
    ("阿杰在路上", "讲得太清楚了，终于看懂了，已经收藏", "昨天 21:07", 88),
    ("Kate", "The subtitles are too small to read", "1天前", 42),
    ("饭团", "用的什么相机？画面好清晰", "2天前", 17),
    ("路人甲", "背景音乐太吵了，盖住了人声，希望下期改进", "03-12", 5),
)


def draw_comment_section(path: Path, comments=SHOT_COMMENTS, width: int = 1080) -> Path:
    font = font_file()
    assert font is not None, "the Noto CJK font (fonts-noto-cjk) is needed"
    name_f = ImageFont.truetype(font, 34)
    text_f = ImageFont.truetype(font, 42)
    meta_f = ImageFont.truetype(font, 30)
    height = 140 + 250 * len(comments)
    img = Image.new("RGB", (width, height), "white")
    d = ImageDraw.Draw(img)
    d.text((40, 40), f"{len(comments)}条评论", font=name_f, fill=(30, 30, 30))
    y = 130
    colours = [(230, 120, 90), (90, 160, 220), (120, 200, 120), (200, 150, 220)]
    for i, (name, text, when, likes) in enumerate(comments):
        d.ellipse((40, y, 130, y + 90), fill=colours[i % len(colours)])
        d.text((160, y), name, font=name_f, fill=(128, 128, 128))
        # Wrap at the right margin, leaving room for the like count.
        lines, line = [], ""
        for ch in text:
            if d.textlength(line + ch, font=text_f) > width - 160 - 170:
                cut = line.rfind(" ")
                if cut > 0 and text.isascii():
                    lines.append(line[:cut])
                    line = line[cut + 1 :]
                else:
                    lines.append(line)
                    line = ""
            line += ch
        lines.append(line)
        ty = y + 50
        for part in lines:
            d.text((160, ty), part, font=text_f, fill=(20, 20, 20))
            ty += 56
        d.text((160, ty + 6), f"{when} · 回复", font=meta_f, fill=(150, 150, 150))
        # heart and count at the right edge
        hx, hy = width - 110, y + 55
        d.polygon(
            [(hx, hy + 8), (hx + 15, hy + 28), (hx + 30, hy + 8), (hx + 15, hy)],
            outline=(150, 150, 150),
            width=3,
        )
        d.text((width - 120, hy + 40), str(likes), font=meta_f, fill=(150, 150, 150))
        y = ty + 80
    img = img.crop((0, 0, width, y + 20))
    img.save(path)
    return path
