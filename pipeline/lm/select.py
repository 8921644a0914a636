"""Which language model to use, from settings: `REELBOT_LM` and its companions.

- `REELBOT_LM`: embedded, openai, transformers or off; unset: embedded when installed, else off.
- `REELBOT_LM_MODEL`: openai: the model name; transformers: a hub id, folder or .gguf file;
  embedded: another chat GGUF file instead of the packaged one.
- `REELBOT_LM_URL`: openai: the server's base URL (http://127.0.0.1:11434/v1 for Ollama).
- `REELBOT_LM_KEY`: openai: the API key, sent as a Bearer token (empty for local servers).
- `REELBOT_LM_JSON`: openai: json_schema (default), json_object or plain, what the server takes.
- `REELBOT_LM_THREADS`: embedded: CPU threads (default: the cores, at most 4).
- `REELBOT_LM_DEVICE`: transformers: auto, cpu, cuda, cuda:1.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.lm.base import LanguageModel, LMUnavailable
from pipeline.settings import LM_BACKENDS, Settings, settings

log = logging.getLogger(__name__)

BACKENDS = LM_BACKENDS


@dataclass(frozen=True, slots=True)
class LMConfig:
    """The language model settings; `backend` "" means embedded when installed, else off."""

    backend: str = ""
    model: str = ""
    url: str = ""
    key: str = field(default="", repr=False)  # a secret: never in a log line
    json_mode: str = "json_schema"
    threads: int = 0
    device: str = "auto"

    @staticmethod
    def from_env(env: Mapping[str, str] | None = None) -> LMConfig:
        """The settings from `env`, or the process's settings snapshot when None."""
        return LMConfig.from_settings(settings() if env is None else Settings.from_env(env))

    @staticmethod
    def from_settings(s: Settings) -> LMConfig:
        """The language model fields of a settings snapshot."""
        return LMConfig(
            backend=s.lm,
            model=s.lm_model,
            url=s.lm_url,
            key=s.lm_key,
            json_mode=s.lm_json,
            threads=s.lm_threads,
            device=s.lm_device,
        )

    def resolved_backend(self) -> str:
        """The backend in force: the configured one, else embedded when installed, else off."""
        if self.backend:
            return self.backend
        from pipeline.lm import embedded

        return "embedded" if embedded.installed() else "off"


_MODELS: dict[LMConfig, LanguageModel] = {}
_MODELS_LOCK = threading.Lock()


def get_model(config: LMConfig | None = None) -> LanguageModel | None:
    """The configured model (one object per configuration per process), or None when off.

    Nothing is loaded here: the embedded model joins and loads on its first `generate()`, so
    choosing a model is cheap and its failures reach the caller as typed errors at that call.
    """
    config = config or LMConfig.from_env()
    backend = config.resolved_backend()
    if backend == "off":
        return None
    with _MODELS_LOCK:
        if config not in _MODELS:
            _MODELS[config] = _build(backend, config)
        return _MODELS[config]


def _build(backend: str, config: LMConfig) -> LanguageModel:
    if backend == "embedded":
        from pipeline.lm.embedded import EmbeddedModel

        path = Path(config.model).expanduser() if config.model else None
        return EmbeddedModel(path, threads=config.threads)
    if backend == "openai":
        from pipeline.lm.openai_compat import OpenAICompatible

        if not config.model:
            raise LMUnavailable("REELBOT_LM=openai needs REELBOT_LM_MODEL (the model name)")
        return OpenAICompatible(config.url, config.model, config.key, json_mode=config.json_mode)
    from pipeline.lm.hf import TransformersModel

    return TransformersModel(config.model, config.device)
