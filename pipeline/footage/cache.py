"""The analysis cache: one JSON file per (file content, parameters, code version).

The key hashes the file's size plus three 1 MiB samples (start, middle, end) instead of the whole
file: phone videos run to gigabytes, and reading them whole would cost more than a cached result
saves. Size + sampled bytes still changes whenever a file is re-encoded, trimmed or replaced;
the rare edit that keeps the size and leaves all three samples alone is the accepted risk.
Unlike a path + mtime key, the same footage sent twice through Telegram (a new download path each
time) hits the cache.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from pipeline.footage.model import shot_from_dict, shot_to_dict
from pipeline.footage.moments import AnalysisParams, FileResult, Moment
from pipeline.settings import settings

log = logging.getLogger(__name__)

# Bump when a change in the code changes what analysis produces for the same file.
CODE_VERSION = "footage-3"
SAMPLE = 1 << 20


def default_dir() -> Path:
    """`$REELBOT_CACHE_DIR/analysis`, else `~/.cache/reelbot/analysis`."""
    return settings().cache_dir / "analysis"


def content_hash(path: str) -> str:
    """A fingerprint of a file's content from its size and three 1 MiB samples."""
    size = os.path.getsize(path)
    h = hashlib.sha256(str(size).encode())
    with open(path, "rb") as fh:
        offsets = [0] if size <= 3 * SAMPLE else [0, size // 2 - SAMPLE // 2, size - SAMPLE]
        for off in offsets:
            fh.seek(off)
            h.update(fh.read(SAMPLE if size > 3 * SAMPLE else size))
    return h.hexdigest()


def cache_key(path: str, params: AnalysisParams, detector_name: str) -> str:
    p = json.dumps(dataclasses.asdict(params), sort_keys=True)
    raw = f"{CODE_VERSION}|{content_hash(path)}|{p}|{detector_name}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


@dataclasses.dataclass(frozen=True, slots=True)
class CacheEntry:
    """One file of the cache: where, when last written or hit (epoch seconds), how big."""

    path: Path
    used: float
    size: int


class AnalysisCache:
    """Per-file analysis results on disk; counts its hits and misses (asserted by tests)."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.dir = Path(directory) if directory is not None else default_dir()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> FileResult | None:
        path = self.dir / f"{key}.json"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            result = _from_dict(data)
        except FileNotFoundError:
            self.misses += 1
            return None
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            # A damaged entry (disk full, killed mid-write on another system) or one another
            # version wrote in another shape (a shared cache folder) is just a miss.
            log.warning("ignoring unreadable cache entry %s: %s", path, exc)
            self.misses += 1
            return None
        self.hits += 1
        with contextlib.suppress(OSError):
            os.utime(path)  # a hit is use: eviction goes by last use, oldest first
        return result

    def entries(self) -> list[CacheEntry]:
        """Every entry (and stray temporary file), with its last use and size."""
        found = []
        try:
            names = list(self.dir.iterdir())
        except OSError:
            return []
        for p in names:
            try:
                st = p.stat()
            except OSError:
                continue  # removed meanwhile
            if p.is_file() and p.suffix in (".json", ".tmp"):
                found.append(CacheEntry(p, st.st_mtime, st.st_size))
        return found

    def put(self, key: str, result: FileResult) -> None:
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            path = self.dir / f"{key}.json"
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(_to_dict(result), ensure_ascii=False), encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            # The cache only saves time; a read-only home must not fail the video.
            log.warning("could not write analysis cache in %s: %s", self.dir, exc)


def _to_dict(r: FileResult) -> dict[str, Any]:
    return {
        "moments": [
            {
                "shot": shot_to_dict(m.shot),
                "signature": [round(v, 5) for v in m.signature],
                "keyframe": base64.b64encode(m.keyframe).decode("ascii"),
            }
            for m in r.moments
        ],
        "cuts": list(r.cuts),
        "dissolves": list(r.dissolves),
        "seconds": r.seconds,
    }


def _from_dict(d: dict[str, Any]) -> FileResult:
    return FileResult(
        moments=tuple(
            Moment(
                shot_from_dict(m["shot"]),
                tuple(float(v) for v in m["signature"]),
                base64.b64decode(m.get("keyframe", "")),
            )
            for m in d["moments"]
        ),
        cuts=tuple(float(c) for c in d["cuts"]),
        dissolves=tuple(float(c) for c in d["dissolves"]),
        seconds=float(d["seconds"]),
    )
