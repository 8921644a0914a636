"""The job folder's bookkeeping: the brief on disk, and which stages are still up to date.

Each stage is keyed on a hash of its inputs (the brief fields it reads, the content of the files
it reads, the keys of the stages before it). `stages.json` keeps, per stage, that key and a hash
of every file the stage wrote, so a stage is redone when its inputs changed *or* one of its
outputs was edited or removed by hand, and skipped otherwise. It also keeps a log of what the
last run did with each stage ("ran" / "reused"), which `--resume` prints and the tests check.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from pipeline.brief import Brief
from pipeline.errors import ReelbotError
from pipeline.jsonfiles import DataError, JsonFileError, from_dict, load_json, save_json

STAGES_FILE = "stages.json"
BRIEF_FILE = "brief.json"
# Bump when a change in the code changes what a stage writes for the same inputs (make-2: piper
# words timed by its phoneme alignments; the footage analysis has its own version as well).
# make-3: shots.json and words.json are written by pipeline.jsonfiles (field names, not lists).
MAKE_VERSION = "make-3"


class JobError(ReelbotError):
    """A job folder is missing or unreadable (e.g. `--resume` on a folder that is not a job)."""

    key = "job_unreadable"


def digest(*parts: Any) -> str:
    """A short stable hash of JSON-able parts."""
    raw = json.dumps([MAKE_VERSION, *parts], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def file_hash(path: str | os.PathLike[str]) -> str:
    """Hash of a file's whole content (job files are small, except the video: sampled)."""
    p = os.fspath(path)
    if os.path.getsize(p) > 64 << 20:
        from pipeline.footage.cache import content_hash

        return content_hash(p)
    h = hashlib.sha256()
    with open(p, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:32]


class StageLog:
    """stages.json: per stage its input key and its outputs' hashes; and what this run did."""

    def __init__(self, job_dir: str | os.PathLike[str]) -> None:
        self.dir = Path(job_dir)
        self.path = self.dir / STAGES_FILE
        self.data: dict[str, Any] = {"stages": {}, "last_run": {}}
        if self.path.is_file():
            try:
                self.data = load_json(self.path)
                self.data.setdefault("stages", {})
                self.data["last_run"] = {}
            except JsonFileError:
                pass  # an unreadable log only costs redoing the stages

    def entry(self, name: str) -> dict[str, Any]:
        value: dict[str, Any] = self.data["stages"].get(name, {})
        return value

    def fresh(self, name: str, key: str) -> bool:
        """Whether stage `name` already ran on these inputs and its outputs are untouched."""
        entry = self.entry(name)
        if entry.get("key") != key:
            return False
        for fname, h in entry.get("outputs", {}).items():
            p = self.dir / fname
            if not p.is_file() or file_hash(p) != h:
                return False
        return True

    def edited(self, name: str, fname: str) -> bool:
        """Whether `fname`, written by stage `name`, was changed by someone since."""
        h = self.entry(name).get("outputs", {}).get(fname)
        p = self.dir / fname
        return h is not None and p.is_file() and file_hash(p) != h

    def record(self, name: str, key: str, outputs: list[str], ran: bool, **extra: Any) -> None:
        """Stage `name` is done for `key`; remember its outputs' hashes and save."""
        hashes = {f: file_hash(self.dir / f) for f in outputs}
        self.data["stages"][name] = {"key": key, "outputs": hashes, **extra}
        self.data["last_run"][name] = "ran" if ran else "reused"
        self.save()

    def reused(self, name: str) -> None:
        self.data["last_run"][name] = "reused"
        self.save()

    def last_run(self) -> dict[str, str]:
        value: dict[str, str] = self.data["last_run"]
        return dict(value)

    def save(self) -> None:
        save_json(self.path, self.data)


def brief_from_dict(data: dict[str, Any]) -> Brief:
    """Rebuild a saved brief; unknown keys (added by newer versions) are ignored."""
    try:
        return from_dict(Brief, data, what="brief.json")
    except (DataError, TypeError, ValueError) as exc:  # Brief's own checks raise ValueError
        raise JobError(f"brief.json is malformed: {exc}") from exc
