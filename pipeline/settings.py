"""Every `REELBOT_*` variable the pipeline reads, parsed once per process into a frozen `Settings`.

`settings()` reads `os.environ` on its first call and returns the same snapshot afterwards, so a
variable changed while the process runs does not half-apply (one stage seeing the old value, the
next the new). A `.env` file must therefore be loaded before the first call: the bot's
`bot.config.load_settings` does that and installs the snapshot it took. Callers that need other
values (the benchmarks force the offline voice, tests point the cache elsewhere) build their own
with `Settings.from_env(mapping)` or `dataclasses.replace` and pass it down, or install one with
`override(...)`. A value that cannot be parsed raises `SettingsError` naming the variable.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from pipeline.errors import ReelbotError


class SettingsError(ReelbotError):
    """A `REELBOT_*` variable holds a value the pipeline cannot use; `name` is the variable."""

    key = "config_invalid"

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}", name=name, problem=problem)
        self.name = name
        self.problem = problem


OFFLINE_VOICES = ("", "piper", "espeak-ng")


@dataclass(frozen=True, slots=True)
class Settings:
    """The pipeline's configuration. Field names are the variables' names without `REELBOT_`,
    lower-cased (`cache_root` is `REELBOT_CACHE_DIR`); empty strings mean "not set"."""

    cache_root: str = ""  # REELBOT_CACHE_DIR as given; use `cache_dir`
    ffmpeg: str = ""
    tts_offline: bool = False
    edge_tts_url: str = ""
    offline_voice: str = ""  # "espeak-ng": the fallback is espeak-ng, not piper (en) / Kokoro (zh)
    piper_voice: str = ""
    analysis_cache: bool = True
    analysis_workers: int | None = None  # None: up to 3
    face_model: str = ""
    image_text_model: str = ""
    text_embed_model: str = ""
    whisper_model: str = ""
    whisper_compute: str = "int8"
    script_model: str = ""
    script_device: str = "auto"
    script_timeout: float = 180.0
    # Resource caps on what a user sends, checked from a file's headers before decoding it.
    max_frame_pixels: int = 3840 * 2160  # per video/animation frame: 4K UHD
    max_photo_pixels: int = 50_000_000  # per photo: a 48 Mpx phone camera fits
    # How far below the process's priority a render's ffmpeg runs (0-19): a render is a batch
    # job, while a script, a storyboard or an edit reply is waited for in the chat.
    render_nice: int = 10
    # The language model (`pipeline.lm`): REELBOT_LM picks the backend ("" = embedded when
    # installed, else off), the rest configure it.
    lm: str = ""
    lm_model: str = ""
    lm_url: str = ""
    lm_key: str = field(default="", repr=False)  # a secret: never in a log line
    lm_json: str = "json_schema"
    lm_threads: int = 0  # 0: llama.cpp's choice, at most 4
    lm_device: str = "auto"
    # A vision-language model on an OpenAI-compatible server (Ollama + qwen2.5vl, vLLM, ...):
    # one sentence per distinct shot. Its URL defaults to REELBOT_LM_URL, its key to REELBOT_LM_KEY.
    vision_model: str = ""
    vision_url: str = ""

    @property
    def cache_dir(self) -> Path:
        """The cache root: `$REELBOT_CACHE_DIR` with `~` expanded, else `~/.cache/reelbot`."""
        if self.cache_root:
            return Path(self.cache_root).expanduser()
        return Path.home() / ".cache" / "reelbot"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        """The settings `env` (a mapping like `os.environ`) describes; raises `SettingsError`."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = env_name(f.name)
            raw = env.get(name, "").strip()
            if not raw:
                continue  # the field's default
            values[f.name] = _PARSERS.get(f.name, _text)(name, raw)
        return cls(**values)


def env_name(field_name: str) -> str:
    """The environment variable a `Settings` field comes from."""
    return "REELBOT_CACHE_DIR" if field_name == "cache_root" else f"REELBOT_{field_name.upper()}"


def _text(name: str, raw: str) -> str:
    return raw


def _bool(name: str, raw: str) -> bool:
    low = raw.lower()
    if low in ("0", "false", "no", "off"):
        return False
    if low in ("1", "true", "yes", "on"):
        return True
    raise SettingsError(name, f"expected 1 or 0, got {raw!r}")


def _whole(least: int, unit: str = "", most: int | None = None) -> Any:
    """A parser of whole numbers of `unit` (pixels, ...) from `least` to `most`."""
    of = f" of {unit}" if unit else ""

    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(name, f"not a whole number{of}: {raw!r}") from None
        if value < least:
            raise SettingsError(name, f"must be at least {least}")
        if most is not None and value > most:
            raise SettingsError(name, f"must be at most {most}")
        return value

    return parse


def _seconds(name: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(name, f"not a number of seconds: {raw!r}") from None
    if not value > 0 or value == float("inf"):
        raise SettingsError(name, "must be a positive number of seconds")
    return value


def _offline_voice(name: str, raw: str) -> str:
    if raw not in OFFLINE_VOICES:
        raise SettingsError(name, f"expected piper or espeak-ng, got {raw!r}")
    return raw


LM_BACKENDS = ("embedded", "openai", "transformers", "off")
LM_JSON_MODES = ("json_schema", "json_object", "plain")


def _choice(options: tuple[str, ...]) -> Any:
    def parse(name: str, raw: str) -> str:
        value = raw.lower()
        if value not in options:
            raise SettingsError(name, f"expected one of {', '.join(options)}, got {raw!r}")
        return value

    return parse


_PARSERS = {
    "lm": _choice(LM_BACKENDS),
    "lm_json": _choice(LM_JSON_MODES),
    "lm_threads": _whole(0),
    "tts_offline": _bool,
    "analysis_cache": _bool,
    "analysis_workers": _whole(1),
    "script_timeout": _seconds,
    "offline_voice": _offline_voice,
    "max_frame_pixels": _whole(1, "pixels"),
    "max_photo_pixels": _whole(1, "pixels"),
    "render_nice": _whole(0, most=19),
}

_lock = threading.Lock()
_current: Settings | None = None


def settings() -> Settings:
    """The process's snapshot, read from `os.environ` on the first call (thread-safe)."""
    global _current
    found = _current
    if found is not None:
        return found
    with _lock:
        if _current is None:
            _current = Settings.from_env(os.environ)
        return _current


def install(snapshot: Settings) -> None:
    """Make `snapshot` the process's settings (the bot, after loading its `.env` file)."""
    global _current
    with _lock:
        _current = snapshot


def reset() -> None:
    """Forget the snapshot: the next `settings()` reads the environment again (tests)."""
    global _current
    with _lock:
        _current = None


@contextmanager
def override(**changes: Any) -> Iterator[Settings]:
    """Within the block, `settings()` returns the current snapshot with `changes` (tests)."""
    global _current
    before = _current
    changed = replace(settings(), **changes)
    install(changed)
    try:
        yield changed
    finally:
        with _lock:
            _current = before
