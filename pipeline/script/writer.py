"""Choosing a script writer: a named transformers model, the configured language model
(`pipeline.lm`, the embedded one by default), or the offline writer."""

from __future__ import annotations

import logging
import os
from typing import Protocol

from pipeline.script.model import Script
from pipeline.script.offline import OfflineWriter
from pipeline.script.request import ScriptRequest

log = logging.getLogger(__name__)

ENV_MODEL = "REELBOT_SCRIPT_MODEL"
ENV_DEVICE = "REELBOT_SCRIPT_DEVICE"
ENV_TIMEOUT = "REELBOT_SCRIPT_TIMEOUT"
_OFFLINE_NAMES = frozenset({"", "offline", "none", "builtin"})


class ScriptWriter(Protocol):
    """Anything that turns a `ScriptRequest` into a `Script`."""

    name: str

    def write(self, request: ScriptRequest) -> Script: ...


_WRITERS: dict[tuple[str, str, float], ScriptWriter] = {}


def _timeout() -> float:
    try:
        return float(os.environ.get(ENV_TIMEOUT, "180"))
    except ValueError:
        log.warning("%s is not a number; using 180 s", ENV_TIMEOUT)
        return 180.0


def get_writer(model: str | None = None) -> ScriptWriter:
    """The writer for `model` (a hub id, a local path or "offline"), else `$REELBOT_SCRIPT_MODEL`,
    else the language model configured by `$REELBOT_LM` (`pipeline.lm`; the embedded model when
    installed), else the offline writer.

    Writers for a model are kept per process, so its weights load once however often this is
    called. `$REELBOT_SCRIPT_DEVICE` (auto, cpu, cuda, cuda:1) tunes the transformers writer and
    `$REELBOT_SCRIPT_TIMEOUT` (seconds) limits both model writers.
    """
    chosen = (model if model is not None else os.environ.get(ENV_MODEL, "")).strip()
    if not chosen:
        return _configured_writer()
    if chosen.lower() in _OFFLINE_NAMES:
        return OfflineWriter()
    device = os.environ.get(ENV_DEVICE, "auto").strip() or "auto"
    timeout = _timeout()
    key = (chosen, device, timeout)
    if key not in _WRITERS:
        from pipeline.script.llm import TransformersWriter

        _WRITERS[key] = TransformersWriter(chosen, device=device, timeout_s=timeout)
    return _WRITERS[key]


def _configured_writer() -> ScriptWriter:
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
    return LMWriter(lm, timeout_s=_timeout())
