"""Bot settings: read once at startup from the environment (and a `.env` file) into Settings.

The pipeline's own variables (REELBOT_CACHE_DIR, REELBOT_TTS_OFFLINE, ...) are parsed by
`pipeline.settings`; the bot's Settings holds that snapshot (`pipeline`) and passes it down.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import settings as pipeline_settings
from pipeline.settings import SettingsError

MB = 1024 * 1024

# REELBOT_VISIBILITY_TIMEOUT's default: how long a job handed to a worker that then vanished
# (killed, its machine lost) waits before another worker takes it. Longer than most jobs, so a
# live worker's job is rarely delivered a second time (that copy would only wait for it).
VISIBILITY_TIMEOUT = 600.0

# A setting is missing or malformed; `name` is the environment variable. One class for the bot's
# variables and the pipeline's, so a caller catches both.
ConfigError = SettingsError


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the bot is configured with. The token is kept out of repr so it never logs."""

    token: str
    data_dir: str
    base_url: str | None = None
    base_file_url: str | None = None
    local_mode: bool = False
    allowed_ids: frozenset[int] = frozenset()
    workers: int = 1
    max_footage: int = 20
    max_footage_seconds: float = 600.0
    jobs_per_hour: int = 6
    keep_days: float = 7.0
    keep_total_mb: int = 5000
    webhook_url: str | None = None
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = 8443
    webhook_secret: str | None = None
    max_upload_mb: float | None = None  # a lower cap than the Bot API's upload limit
    album_wait: float = 1.5  # seconds of quiet that close a media group into one batch
    status_interval: float = 3.0  # at most one edit of the status message per this many seconds
    group_rate: int = 20  # messages per minute the bot allows itself in one group (Bot API FAQ)
    pipeline: pipeline_settings.Settings = field(default_factory=pipeline_settings.Settings)
    max_voice_seconds: float = 300.0  # longest voice note transcribed (also its time limit)
    min_free_mb: int = 500  # disk space kept free under the data dir, beyond what a step needs
    # The distributed engine (Celery on Redis) when REELBOT_BROKER_URL is set; None: the jobs run
    # on this process's own threads (REELBOT_WORKERS).
    engine: EngineSettings | None = None

    def __repr__(self) -> str:
        return f"Settings(data_dir={self.data_dir!r}, local_mode={self.local_mode}, ...)"

    __str__ = __repr__

    @property
    def download_limit(self) -> int:
        """Largest file the Bot API lets a bot download (getFile): 20 MB, 2000 MB locally."""
        return 2000 * MB if self.local_mode else 20 * MB

    @property
    def upload_limit(self) -> int:
        """Largest file a bot may send: 50 MB, 2000 MB through a local Bot API server."""
        api = 2000 * MB if self.local_mode else 50 * MB
        if self.max_upload_mb is None:
            return api
        return min(api, int(self.max_upload_mb * MB))

    def allowed(self, *ids: int | None) -> bool:
        """Whether any of these user/chat ids may use the bot (an empty list allows everyone)."""
        return not self.allowed_ids or any(i in self.allowed_ids for i in ids if i is not None)


@dataclass(frozen=True, slots=True)
class EngineSettings:
    """How the bot and `reelbot worker` reach the distributed engine (Celery on Redis)."""

    broker_url: str  # redis://host:6379/0: the broker and the result store
    visibility_timeout: float = VISIBILITY_TIMEOUT  # seconds before a lost worker's job moves on
    timeout: float = 3.0  # seconds any one Redis call may take (connect, read, write)

    def __repr__(self) -> str:
        # The URL may carry a password.
        return f"EngineSettings(visibility_timeout={self.visibility_timeout}, ...)"


def load_engine_settings(env: Mapping[str, str]) -> EngineSettings | None:
    """REELBOT_BROKER_URL and its companions; None when the URL is not set."""
    url = env.get("REELBOT_BROKER_URL", "").strip()
    if not url:
        return None
    if not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("REELBOT_BROKER_URL", "expected a Redis URL, e.g. redis://redis:6379/0")
    return EngineSettings(
        broker_url=url,
        visibility_timeout=_float(env, "REELBOT_VISIBILITY_TIMEOUT", VISIBILITY_TIMEOUT),
        timeout=_float(env, "REELBOT_REDIS_TIMEOUT", 3.0),
    )


def _int(env: Mapping[str, str], name: str, default: int, low: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, f"not a whole number: {raw!r}") from None
    if value < low:
        raise ConfigError(name, f"must be at least {low}")
    return value


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(name, f"not a number: {raw!r}") from None
    if value <= 0:
        raise ConfigError(name, "must be positive")
    return value


def _bool(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(name, f"expected true/false, got {raw!r}")


def _ids(env: Mapping[str, str], name: str) -> frozenset[int]:
    out = set()
    for part in env.get(name, "").replace(";", ",").replace(" ", ",").split(","):
        if part:
            try:
                out.add(int(part))
            except ValueError:
                raise ConfigError(name, f"not a user or chat id: {part!r}") from None
    return frozenset(out)


_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what setWebhook's secret_token allows


def _webhook_secret(env: Mapping[str, str]) -> str | None:
    """REELBOT_WEBHOOK_SECRET; in webhook mode without one, a fresh random secret.

    Without a secret anyone who can reach the listening port (0.0.0.0 by default) could POST
    an update claiming to be an allowed user. The bot registers the secret with setWebhook at
    every start, so Telegram sends it back in each call and a generated one needs no setup;
    set one yourself only when something in front of the bot checks it too."""
    raw = env.get("REELBOT_WEBHOOK_SECRET", "").strip()
    if raw:
        if not _SECRET.fullmatch(raw):
            raise ConfigError(
                "REELBOT_WEBHOOK_SECRET", "1-256 characters of A-Z, a-z, 0-9, _ and - only"
            )
        return raw
    if env.get("REELBOT_WEBHOOK_URL", "").strip():
        return secrets.token_urlsafe(32)  # 256 random bits
    return None


def load_settings(env: Mapping[str, str] | None = None, dotenv: str | None = ".env") -> Settings:
    """Settings from `env` (default: os.environ after loading `dotenv`, which never overrides).

    Read from the process's environment, the pipeline snapshot is also installed as the process's
    `pipeline.settings.settings()`, so the `.env` file's pipeline variables reach every stage.
    """
    if env is None:
        if dotenv:
            from dotenv import load_dotenv

            load_dotenv(dotenv, override=False)
        env = os.environ
        pipeline = pipeline_settings.Settings.from_env(env)
        pipeline_settings.install(pipeline)
    else:
        pipeline = pipeline_settings.Settings.from_env(env)
    token = env.get("TELEGRAM_BOT_TOKEN", "").strip()
    if not token:
        raise ConfigError("TELEGRAM_BOT_TOKEN", "not set (get one from @BotFather)")
    data_dir = env.get("REELBOT_DATA_DIR", "").strip() or str(Path("~/.reelbot").expanduser())
    return Settings(
        token=token,
        data_dir=str(Path(data_dir).expanduser().resolve()),
        base_url=env.get("TELEGRAM_API_BASE_URL", "").strip() or None,
        base_file_url=env.get("TELEGRAM_API_BASE_FILE_URL", "").strip() or None,
        local_mode=_bool(env, "TELEGRAM_LOCAL_MODE"),
        allowed_ids=_ids(env, "REELBOT_ALLOWED_IDS"),
        workers=_int(env, "REELBOT_WORKERS", 1, low=1),
        max_footage=_int(env, "REELBOT_MAX_FOOTAGE", 20, low=1),
        max_footage_seconds=_float(env, "REELBOT_MAX_FOOTAGE_SECONDS", 600.0),
        jobs_per_hour=_int(env, "REELBOT_JOBS_PER_HOUR", 6, low=1),
        keep_days=_float(env, "REELBOT_KEEP_DAYS", 7.0),
        keep_total_mb=_int(env, "REELBOT_KEEP_TOTAL_MB", 5000, low=1),
        webhook_url=env.get("REELBOT_WEBHOOK_URL", "").strip() or None,
        webhook_listen=env.get("REELBOT_WEBHOOK_LISTEN", "").strip() or "0.0.0.0",
        webhook_port=_int(env, "REELBOT_WEBHOOK_PORT", 8443, low=1),
        webhook_secret=_webhook_secret(env),
        max_upload_mb=_float(env, "REELBOT_MAX_UPLOAD_MB", 0.0) or None,
        pipeline=pipeline,
        max_voice_seconds=_float(env, "REELBOT_MAX_VOICE_SECONDS", 300.0),
        min_free_mb=_int(env, "REELBOT_MIN_FREE_MB", 500),
        engine=load_engine_settings(env),
    )
