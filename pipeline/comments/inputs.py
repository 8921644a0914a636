"""Comments from what people actually have: pasted text (one comment per line, or forwarded
chat messages with their "[date] Name:" headers), platform exports (TXT, CSV, JSON, XLSX) and
screenshots of a comment section (`screenshot`).

Exports name their columns differently (YouTube `textOriginal` / `likeCount`, TikTok `text` /
`diggCount`, Douyin `评论内容` / `点赞数`, Bilibili `content.message` / `like`, Xiaohongshu
`评论` / `点赞`): the text, likes, time and author columns are found by header names in zh and
en, and, where no header matches, by content (the text column is the one with the longest
non-numeric values; likes a column of whole numbers).

Every problem is a `CommentsError` with a reason (empty, not text, too big, no text column, no
text in an image); `load_files` reads each file on its own, so one bad file costs nothing else.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pipeline.comments.model import Comment, CommentsError

log = logging.getLogger(__name__)

MAX_BYTES = 20 * 2**20  # larger than any comment export people paste; a 50 MB file is refused
MAX_COMMENTS = 20_000
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp"})

# Header names, compared after lower-casing and removing spaces, "_" and "-".
TEXT_HEADERS = (
    "comment", "comments", "commenttext", "content", "text", "textoriginal", "textdisplay",
    "message", "body", "reply", "评论", "评论内容", "内容", "留言", "弹幕", "评论文本", "正文",
    "contentmessage",
)  # fmt: skip
LIKE_HEADERS = (
    "likes", "like", "likecount", "likescount", "diggcount", "digg", "thumbsup", "upvotes",
    "votes", "hearts", "点赞", "点赞数", "赞", "赞数", "获赞", "喜欢", "likenum",
)  # fmt: skip
TIME_HEADERS = (
    "time", "date", "publishedat", "createtime", "createdat", "ctime", "timestamp", "updatedat",
    "时间", "评论时间", "发布时间", "日期", "创建时间",
)  # fmt: skip
AUTHOR_HEADERS = (
    "author", "authordisplayname", "user", "username", "nickname", "uname", "name",
    "用户", "用户名", "昵称", "作者", "评论者",
)  # fmt: skip

# "[12.03.24 14:05] Anna: text", "Anna, [12.03.2024 14:05]", "2024-03-12 14:05 Anna: text"
_FORWARD = re.compile(
    r"^\s*\[?(?P<time>\d{1,4}[./-]\d{1,2}[./-]\d{1,4}[ ,T]+\d{1,2}:\d{2}(?::\d{2})?)\]?\s*"
    r"(?P<name>[^:：\n]{1,40})[:：]\s*(?P<text>.*)$"
)
_NAME_HEADER = re.compile(r"^\s*(?P<name>[^,\[\n]{1,40}),\s*\[(?P<time>[^\]]{4,30})\]\s*:?\s*$")
_NUMBER = re.compile(r"^\s*\d+(?:[.,]\d+)?\s*([kKwW万千]|mil)?\s*$")


def _key(header: object) -> str:
    return re.sub(r"[\s_\-.]+", "", str(header or "")).casefold()


def parse_count(value: object) -> int:
    """A like count as exports and screens write it: 12, "1,204", "1.2k", "3.4w", "2万"."""
    if isinstance(value, bool) or value is None:
        return 0
    if isinstance(value, int | float):
        return max(0, int(value))
    text = str(value).strip().replace(",", "")
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kKwW万千]?)", text)
    if not m:
        return 0
    number = float(m.group(1))
    unit = {"k": 1e3, "K": 1e3, "千": 1e3, "w": 1e4, "W": 1e4, "万": 1e4}.get(m.group(2), 1)
    return int(number * unit)


def parse_text(text: str) -> list[Comment]:
    """Pasted comments: one a line, or forwarded messages ("[date] Name: text" lines, or a
    "Name, [date]" line before the message). Blank lines are skipped."""
    out: list[Comment] = []
    pending: tuple[str, str] | None = None  # a "Name, [date]" header waiting for its message
    for line in text.splitlines():
        if not line.strip():
            continue
        forwarded = _FORWARD.match(line)
        header = _NAME_HEADER.match(line)
        if header:
            pending = (header["name"].strip(), header["time"].strip())
            continue
        if forwarded and forwarded["text"].strip():
            out.append(
                Comment(
                    forwarded["text"].strip(),
                    time=forwarded["time"],
                    author=forwarded["name"].strip(),
                )
            )
        elif pending is not None:
            out.append(Comment(line.strip(), author=pending[0], time=pending[1]))
        else:
            out.append(Comment(line.strip()))
        pending = None
    return out[:MAX_COMMENTS]


def _find(headers: Sequence[str], names: Sequence[str]) -> int | None:
    keys = [_key(h) for h in headers]
    for name in names:  # the list's order is the preference
        if name in keys:
            return keys.index(name)
    # "评论内容(含表情)", "Comment Text": a header that contains a name
    for name in names:
        if len(name) >= 2:
            for index, key in enumerate(keys):
                if name in key:
                    return index
    return None


def _text_like(values: Iterable[object]) -> float:
    """Mean length of a column's values that are neither numbers nor dates (0 when none)."""
    lengths = [
        len(s)
        for v in values
        if (s := str(v or "").strip()) and not _NUMBER.match(s) and not re.match(r"^\d{2,4}[-/]", s)
    ]
    return sum(lengths) / len(lengths) if lengths else 0.0


def rows_to_comments(
    headers: Sequence[object], rows: Sequence[Sequence[object]], name: str
) -> list[Comment]:
    """Comments from a table: columns found by header names, then by content."""
    heads = [str(h or "") for h in headers]
    width = max([len(heads), *(len(r) for r in rows)], default=0)
    heads += [""] * (width - len(heads))

    def column(i: int) -> list[object]:
        return [r[i] if i < len(r) else None for r in rows]

    text_i = _find(heads, TEXT_HEADERS)
    if text_i is None:
        scored = [(i, _text_like(column(i))) for i in range(width)]
        named = {_find(heads, LIKE_HEADERS), _find(heads, TIME_HEADERS)}
        scored = [(i, s) for i, s in scored if i not in named and s >= 4.0]
        if not scored:
            raise CommentsError(name, "no_text_column", ", ".join(h for h in heads if h)[:120])
        text_i = max(scored, key=lambda kv: kv[1])[0]
    likes_i = _find(heads, LIKE_HEADERS)
    time_i = _find(heads, TIME_HEADERS)
    author_i = _find(heads, AUTHOR_HEADERS)
    if author_i == text_i:
        author_i = None

    def cell(row: Sequence[object], i: int | None) -> object:
        return row[i] if i is not None and i < len(row) else None

    out = []
    for row in rows:
        text = str(cell(row, text_i) or "").strip()
        if not text:
            continue
        out.append(
            Comment(
                text=text,
                likes=parse_count(cell(row, likes_i)),
                time=str(cell(row, time_i) or ""),
                author=str(cell(row, author_i) or ""),
            )
        )
    return out[:MAX_COMMENTS]


def _decode(raw: bytes, name: str) -> str:
    if b"\x00" in raw[:4096] and not raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CommentsError(name, "not_text")
    for encoding in ("utf-8-sig", "utf-16", "gb18030"):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        if (
            encoding != "utf-8-sig"
            and sum(not c.isprintable() and c not in "\r\n\t" for c in text) > len(text) * 0.05
        ):
            continue  # decoded, but to garbage
        return text
    raise CommentsError(name, "not_text")


def parse_csv(text: str, name: str) -> list[Comment]:
    sample = text[:8192]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(io.StringIO(text), dialect))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if not rows:
        raise CommentsError(name, "empty")
    known = TEXT_HEADERS + LIKE_HEADERS + TIME_HEADERS + AUTHOR_HEADERS
    header = any(_find([h], known) is not None for h in rows[0])
    if not header and len(rows) > 1:
        try:
            header = csv.Sniffer().has_header(sample)
        except csv.Error:
            header = False
    if header:
        return rows_to_comments(rows[0], rows[1:], name)
    return rows_to_comments([""] * len(rows[0]), rows, name)


def _flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested export records ({"content": {"message": ...}}) as dotted keys."""
    out: dict[str, Any] = {}
    for k, v in record.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{key}."))
        else:
            out[key] = v
    return out


def _records(data: Any) -> list[Any]:
    """The list of comments inside a JSON export: the top-level list, or the longest list
    under a key like "comments", "data", "replies", "items"."""
    if isinstance(data, list):
        return data
    if isinstance(data, Mapping):
        lists = [v for v in data.values() if isinstance(v, list)]
        nested = [_records(v) for v in data.values() if isinstance(v, Mapping)]
        candidates = [c for c in lists + nested if c]
        if candidates:
            return max(candidates, key=len)
    return []


def parse_json(text: str, name: str) -> list[Comment]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        # JSON Lines: one record a line
        try:
            data = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            raise CommentsError(name, "unreadable", f"not JSON: {exc.msg}") from exc
    records = _records(data)
    if records and all(isinstance(r, str) for r in records):
        return [Comment(r.strip()) for r in records if r.strip()][:MAX_COMMENTS]
    flat = [_flatten(r) for r in records if isinstance(r, Mapping)]
    if not flat:
        raise CommentsError(name, "no_text_column", "no list of comments in it")
    headers = list(dict.fromkeys(k for r in flat for k in r))
    # "content.message" (Bilibili) should match "content" / "message": try the last part too.
    short = [
        h.rsplit(".", 1)[-1] if _find([h], TEXT_HEADERS + LIKE_HEADERS) is None else h
        for h in headers
    ]
    rows = [[r.get(h) for h in headers] for r in flat]
    return rows_to_comments(short, rows, name)


def parse_xlsx(path: Path, name: str) -> list[Comment]:
    import zipfile

    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise CommentsError(name, "unreadable", str(exc)[:120]) from exc
    try:
        sheet = book.worksheets[0]
        rows = [list(r) for r in sheet.iter_rows(values_only=True) if any(c is not None for c in r)]
    finally:
        book.close()
    if not rows:
        raise CommentsError(name, "empty")
    return rows_to_comments(rows[0], rows[1:], name)


def load_file(path: str | Path, *, ocr_budget_s: float = 30.0) -> list[Comment]:
    """The comments in one file; raises `CommentsError` saying why there are none."""
    p = Path(path)
    name = p.name
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise CommentsError(name, "unreadable", exc.strerror or str(exc)) from exc
    if size == 0:
        raise CommentsError(name, "empty")
    if size > MAX_BYTES:
        raise CommentsError(
            name, "too_big", f"{size / 2**20:.0f} MB, at most {MAX_BYTES // 2**20} MB"
        )
    suffix = p.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        from pipeline.comments.screenshot import read_screenshot

        return read_screenshot(p, budget_s=ocr_budget_s)
    if suffix in (".xlsx", ".xlsm"):
        found = parse_xlsx(p, name)
    else:
        raw = p.read_bytes()
        if raw[:4] == b"PK\x03\x04":  # an XLSX without its extension
            found = parse_xlsx(p, name)
        else:
            text = _decode(raw, name)
            if not text.strip():
                raise CommentsError(name, "empty")
            stripped = text.lstrip()
            if suffix in (".json", ".jsonl") or stripped[:1] in "[{":
                found = parse_json(text, name)
            elif suffix in (".csv", ".tsv"):
                found = parse_csv(text, name)
            else:
                found = parse_text(text)
    if not found:
        raise CommentsError(name, "no_comments")
    return found


def load_files(paths: Sequence[str | Path]) -> tuple[list[Comment], list[CommentsError]]:
    """The comments of every file that has some, and the problem with each one that has none."""
    comments: list[Comment] = []
    problems: list[CommentsError] = []
    for path in paths:
        try:
            comments.extend(load_file(path))
        except CommentsError as exc:
            log.info("no comments from %s: %s", path, exc)
            problems.append(exc)
    return comments[:MAX_COMMENTS], problems
