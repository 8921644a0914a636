"""The analysis cache: one JSON file per (file content, parameters, code version).

The key hashes the file's size plus three 1 MiB samples (start, middle, end) instead of the whole
file: phone videos run to gigabytes, and reading them whole would cost more than a cached result
saves. Size + sampled bytes still changes whenever a file is re-encoded, trimmed or replaced;
the rare edit that keeps the size and leaves all three samples alone is the accepted risk.
Unlike a path + mtime key, the same footage sent twice through Telegram (a new download path each
time) hits the cache.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from pipeline.errors import ReelbotError
from pipeline.footage.moments import AnalysisParams, FileResult
from pipeline.jsonfiles import from_dict, save_json, to_dict
from pipeline.settings import settings

log = logging.getLogger(__name__)

# Bump when a change in the code changes what analysis produces for the same file.
CODE_VERSION = (
    "footage-6"  # footage-6: Shot.seen (what it shows, YuNet faces), Shot.heard (sound tags)
)
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
    # The vision-language model writes `Seen.description`: another one, another result.
    vision = settings().vision_model if params.understand else ""
    raw = f"{CODE_VERSION}|{content_hash(path)}|{p}|{detector_name}|{vision}"
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
        except (OSError, ValueError, KeyError, TypeError, AttributeError, ReelbotError) as exc:
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
            save_json(self.dir / f"{key}.json", _to_dict(result), indent=None)
        except OSError as exc:
            # The cache only saves time; a read-only home must not fail the video.
            log.warning("could not write analysis cache in %s: %s", self.dir, exc)


def _to_dict(r: FileResult) -> dict[str, Any]:
    # Signatures to 5 decimals, as the entries always had them: a smaller file.
    moments = tuple(
        dataclasses.replace(m, signature=tuple(round(v, 5) for v in m.signature)) for m in r.moments
    )
    return to_dict(dataclasses.replace(r, moments=moments))


def _from_dict(d: dict[str, Any]) -> FileResult:
    return from_dict(FileResult, d, what="analysis cache entry")
