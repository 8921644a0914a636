"""Speech in the footage, transcribed once per file content and whisper setting.

The analysis stage adds the words said inside each shot to its text; the background analysis
of footage as it arrives (`pipeline.footage.warm`) transcribes too. Both go through this cache,
keyed like the analysis cache by the file's sampled content hash, so a file transcribed while
the user was still sending footage is not transcribed again at /done.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

from pipeline.errors import ReelbotError
from pipeline.footage.cache import content_hash
from pipeline.jsonfiles import from_dict, load_json, save_json, to_dict
from pipeline.settings import Settings, settings

log = logging.getLogger(__name__)

VERSION = "transcript-1"


def _key(path: str, config: Settings) -> str:
    raw = f"{VERSION}|{content_hash(path)}|{config.whisper_model}|{config.whisper_compute}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def cached_transcriber(config: Settings | None = None) -> Callable[[str], object]:
    """`path -> Transcript` through the cache in `$REELBOT_CACHE_DIR/transcripts` (the
    process-wide whisper model on a miss); with the analysis cache turned off, no cache."""
    cfg = config or settings()
    folder = Path(cfg.cache_dir) / "transcripts"

    def transcribe(path: str) -> object:
        from pipeline.speech import Transcript, default_transcriber

        if not cfg.analysis_cache:
            return default_transcriber().transcribe(path)
        entry = folder / f"{_key(path, cfg)}.json"
        if entry.is_file():
            try:
                return from_dict(Transcript, load_json(entry), what="transcript cache entry")
            except (OSError, ValueError, ReelbotError) as exc:
                log.warning("ignoring unreadable transcript cache entry %s: %s", entry, exc)
        heard = default_transcriber().transcribe(path)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            save_json(entry, to_dict(heard), indent=None)
        except OSError as exc:
            log.warning("could not write transcript cache in %s: %s", folder, exc)
        return heard

    return transcribe
