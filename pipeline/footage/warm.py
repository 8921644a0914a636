"""One footage file analysed into the caches before the job asks for it.

The bot calls `warm(path)` for each file as soon as it has been downloaded, in the background,
while the user keeps sending; `make.prepare` then finds the file's analysis (and the words said
in it) in the caches and only the files not done yet are analysed at /done. The work is a
function of the file's path (and the settings), so any worker can run it: the bot's embedded
pool or a worker of a scale-out engine that sees the same files and cache folder.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from pipeline.errors import ReelbotError
from pipeline.media import probe
from pipeline.settings import Settings, settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Warmed:
    """What warming one file did."""

    path: str
    analysed: bool  # the analysis ran now (False: already cached, or the cache is off)
    transcribed: bool  # the sound was transcribed (or found transcribed)
    seconds: float


def warm(
    path: str, config: Settings | None = None, cancel: threading.Event | None = None
) -> Warmed:
    """Probe, analyse and transcribe `path` into the caches the analysis stage reads.

    Setting `cancel` stops it within a few frames (`Cancelled`). A file the job will refuse
    (a `MediaError`) is left for the job to report; nothing is raised for it here."""
    from pipeline.footage import analyze
    from pipeline.footage.transcripts import cached_transcriber

    cfg = config or settings()
    began = time.monotonic()
    if not cfg.analysis_cache:
        return Warmed(path, False, False, 0.0)  # nothing to hand over without the cache
    try:
        info = probe(path)
    except ReelbotError as exc:
        log.info("not warming %s: %s", path, exc.message)
        return Warmed(path, False, False, time.monotonic() - began)
    result = analyze(
        [info],
        use_cache=True,
        cache_dir=cfg.cache_dir / "analysis",
        cancel=cancel,
        max_workers=1,
    )
    transcribed = False
    if info.kind == "video" and info.has_audio and not (cancel is not None and cancel.is_set()):
        try:
            cached_transcriber(cfg)(path)
            transcribed = True
        except ReelbotError as exc:
            log.warning("no transcript for %s: %s", path, exc.message)
    analysed = any(not f.from_cache for f in result.files)
    seconds = time.monotonic() - began
    log.info("warmed %s in %.1fs (analysed=%s)", path, seconds, analysed)
    return Warmed(path, analysed, transcribed, seconds)
