"""Disk cleanup: job folders aged by their last activity, the analysis cache counted and evicted."""

from __future__ import annotations

import os
import time
from pathlib import Path

from bot.jobs import JobStore
from pipeline.footage.cache import AnalysisCache, cache_key
from pipeline.footage.moments import AnalysisParams, FileResult


def _age(path: Path, seconds: float) -> None:
    when = time.time() - seconds
    os.utime(path, (when, when))


def test_a_draft_with_a_new_upload_is_not_old(tmp_path: Path) -> None:
    """The folder's own mtime does not change when a file inside is rewritten; its age must."""
    store = JobStore(str(tmp_path / "jobs.sqlite3"))
    root = tmp_path / "jobs"
    draft = root / "draft"
    (draft / "footage").mkdir(parents=True)
    upload = draft / "footage" / "clip.mp4"
    upload.write_bytes(b"v" * 100)
    for p in (draft, draft / "footage"):
        _age(p, 8 * 86400)  # folders untouched for 8 days, the upload just arrived
    assert store.cleanup(str(root), keep_days=7, keep_total_bytes=10**9) == []
    assert upload.is_file()
    _age(upload, 8 * 86400)
    assert store.cleanup(str(root), keep_days=7, keep_total_bytes=10**9) == ["draft"]


def test_analysis_cache_is_counted_and_evicted_oldest_first(tmp_path: Path) -> None:
    store = JobStore(str(tmp_path / "jobs.sqlite3"))
    root = tmp_path / "jobs"
    job = root / "finished"
    job.mkdir(parents=True)
    (job / "out.mp4").write_bytes(b"x" * 3000)
    for p in (job, job / "out.mp4"):
        _age(p, 7200)  # two hours: older than a draft being filled, younger than keep_days
    cache = AnalysisCache(tmp_path / "cache")
    empty = FileResult(moments=(), cuts=(), dissolves=(), seconds=0.0)
    keys = []
    for n, age in enumerate((5 * 3600, 3 * 3600, 60)):  # oldest, older than the job, fresh
        src = tmp_path / f"f{n}.bin"
        src.write_bytes(bytes([n]) * 10)
        key = cache_key(str(src), AnalysisParams(), "none")
        cache.put(key, empty)
        _age(cache.dir / f"{key}.json", age)
        keys.append(key)
    sizes = sum(e.size for e in cache.entries())
    # A hit is use: the oldest entry, read now, becomes the newest.
    assert cache.get(keys[0]) == empty
    # Over budget by less than the job folder: the two least recently used entries go first
    # (counted in the total), then the job folder, which alone brings it under.
    budget = 3000 + sizes - 1
    removed = store.cleanup(str(root), keep_days=7, keep_total_bytes=budget,
                            cache_dir=cache.dir)  # fmt: skip
    left = {e.path.stem for e in cache.entries()}
    assert left == {keys[0], keys[2]}
    assert removed == []  # the cache eviction alone brought the total under the budget
    assert job.is_dir()
    removed = store.cleanup(str(root), keep_days=7, keep_total_bytes=1, cache_dir=cache.dir)
    assert removed == ["finished"]
    assert cache.entries() == []  # all evicted: nothing a job uses, only time saved
