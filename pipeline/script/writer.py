"""Choosing a script writer: a named transformers model, the configured language model
(`pipeline.lm`, the embedded one by default), or the offline writer."""

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
    """The writer for `model` (a hub id, a local path or "offline"), else `$REELBOT_SCRIPT_MODEL`,
    else the language model configured by `$REELBOT_LM` (`pipeline.lm`; the embedded model when
    installed), else the offline writer.

    Writers for a model are kept per process, so its weights load once however often this is
    called. `$REELBOT_SCRIPT_DEVICE` (auto, cpu, cuda, cuda:1) and `$REELBOT_SCRIPT_TIMEOUT`
    (seconds) tune the model writer; `config` replaces the process's settings.
    """
    config = config or settings()
    chosen = (model if model is not None else config.script_model).strip()
    if not chosen:
        return _configured_writer(config.script_timeout)
    if chosen.lower() in _OFFLINE_NAMES:
        return OfflineWriter()
    device = config.script_device
    timeout = config.script_timeout
    key = (chosen, device, timeout)
    if key not in _WRITERS:
        from pipeline.script.llm import TransformersWriter

        _WRITERS[key] = TransformersWriter(chosen, device=device, timeout_s=timeout)
    return _WRITERS[key]


def _configured_writer(timeout_s: float) -> ScriptWriter:
    """The writer on `pipeline.lm`'s configured model; offline when it is off or unusable."""
    from pipeline.lm import LMConfig, LMUnavailable, get_model
    from pipeline.script.lmwriter import LMWriter

    try:
        lm = get_model(LMConfig.from_env())
    except LMUnavailable as exc:  # a setting that names no usable model: say so in the script
        log.warning("language model settings unusable: %s", exc.message)
        return LMWriter(None, unavailable=f"LMUnavailable: {exc.message}")
    if lm is None:
        return OfflineWriter()
    return LMWriter(lm, timeout_s=timeout_s)


def warm_writer(config: Settings | None = None) -> str:
    """Load the configured writer's model now, once per process, and return the writer's name.

    A long-running process (the bot, a worker) calls this as it starts, and a benchmark before
    its clock, so the first script does not pay the load. A model that cannot load is left to
    the writer, which falls back to the offline writer and says why when it is asked.
    """
    from pipeline.lm import LMError
    from pipeline.script.lmwriter import LMWriter

    writer = get_writer(config=config)
    load = getattr(getattr(writer, "model", None), "load", None)
    if callable(load):
        try:
            load()
        except LMError as exc:
            log.warning("the writer's model did not load: %s", exc.message)
            return writer.name
    if isinstance(writer, LMWriter):
        writer.prime()
    return writer.name
