"""Writing a file so that it is either the old content or the new, never a torn one.

Minimal on purpose: `pipeline/jsonfiles.py` (atomic writes for the whole project) is being added
on another branch; when it lands, `write_atomic` here gives way to it.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` to `path` through a temporary file beside it: written, fsynced, then
    renamed over `path` (and the folder fsynced, so the rename survives a power cut).

    On any failure (a full disk, above all) the temporary file is removed, `path` keeps its old
    content and the OSError is raised for the caller to report."""
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fd = os.open(target.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_leftovers(path: str | os.PathLike[str]) -> None:
    """Remove temporary files a killed process left beside `path`."""
    target = Path(path)
    for tmp in target.parent.glob(f".{target.name}.*.tmp"):
        with contextlib.suppress(OSError):
            tmp.unlink()
