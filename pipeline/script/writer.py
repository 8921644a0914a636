"""Choosing a script writer: the configured language model, or the offline writer."""

from __future__ import annotations

import logging
from typing import Protocol

from pipeline.script.model import Script
from pipeline.script.offline import OfflineWriter
from pipeline.script.request import ScriptRequest
from pipeline.settings import Settings, settings

log = logging.getLogger(__name__)

_OFFLINE_NAMES = frozenset({"", "offline", "none", "builtin"})


class ScriptWriter(Protocol):
    """Anything that turns a `ScriptRequest` into a `Script`."""

    name: str

    def write(self, request: ScriptRequest) -> Script: ...


_WRITERS: dict[tuple[str, str, float], ScriptWriter] = {}


def get_writer(model: str | None = None, config: Settings | None = None) -> ScriptWriter:
    """The writer for `model` (a hub id, a local path or "offline"), else `$REELBOT_SCRIPT_MODEL`.

    Writers for a model are kept per process, so its weights load once however often this is
    called. `$REELBOT_SCRIPT_DEVICE` (auto, cpu, cuda, cuda:1) and `$REELBOT_SCRIPT_TIMEOUT`
    (seconds) tune the model writer; `config` replaces the process's settings.
    """
    config = config or settings()
    chosen = (model if model is not None else config.script_model).strip()
    if chosen.lower() in _OFFLINE_NAMES:
        return OfflineWriter()
    device = config.script_device
    timeout = config.script_timeout
    key = (chosen, device, timeout)
    if key not in _WRITERS:
        from pipeline.script.llm import TransformersWriter

        _WRITERS[key] = TransformersWriter(chosen, device=device, timeout_s=timeout)
    return _WRITERS[key]
