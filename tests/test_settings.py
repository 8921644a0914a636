"""The pipeline's settings: parsed once per process from REELBOT_* variables, typed, validated."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from pipeline import settings as pipeline_settings
from pipeline.settings import Settings, SettingsError, env_name, settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("REELBOT_CACHE_DIR", raising=False)
    return tmp_path


def test_defaults(home: Path) -> None:
    s = Settings.from_env({})
    assert s == Settings()
    assert s.cache_dir == home / ".cache" / "reelbot"
    assert (s.tts_offline, s.analysis_cache, s.analysis_workers) == (False, True, None)
    assert (s.whisper_compute, s.script_device, s.script_timeout) == ("int8", "auto", 180.0)
    assert s.edge_tts_url == s.script_model == s.ffmpeg == s.offline_voice == ""


CASES: list[tuple[str, str, Any]] = [
    ("cache_root", "/srv/cache", "/srv/cache"),
    ("ffmpeg", "/usr/bin/ffmpeg", "/usr/bin/ffmpeg"),
    ("tts_offline", "1", True),
    ("tts_offline", "0", False),
    ("edge_tts_url", "ws://relay:8080/tts", "ws://relay:8080/tts"),
    ("offline_voice", "espeak-ng", "espeak-ng"),
    ("piper_voice", "/voices/en.onnx", "/voices/en.onnx"),
    ("analysis_cache", "0", False),
    ("analysis_workers", " 2 ", 2),
    ("face_model", "/m/yunet.onnx", "/m/yunet.onnx"),
    ("image_text_model", "openai/clip-vit-base-patch32", "openai/clip-vit-base-patch32"),
    ("text_embed_model", "/m/minilm", "/m/minilm"),
    ("whisper_model", "small", "small"),
    ("whisper_compute", "float32", "float32"),
    ("script_model", "Qwen/Qwen2.5-3B-Instruct", "Qwen/Qwen2.5-3B-Instruct"),
    ("script_device", "cuda:1", "cuda:1"),
    ("script_timeout", "60", 60.0),
    ("max_frame_pixels", "2073600", 1920 * 1080),
    ("max_photo_pixels", "12000000", 12_000_000),
    ("render_nice", "0", 0),
    ("lm", "OpenAI", "openai"),
    ("lm_model", "qwen2.5:7b", "qwen2.5:7b"),
    ("lm_url", "http://127.0.0.1:11434/v1", "http://127.0.0.1:11434/v1"),
    ("lm_key", "sk-test", "sk-test"),
    ("lm_json", "json_object", "json_object"),
    ("lm_threads", "2", 2),
    ("lm_device", "cpu", "cpu"),
    ("vision_model", "qwen2.5vl:7b", "qwen2.5vl:7b"),
    ("vision_url", "http://127.0.0.1:11434/v1", "http://127.0.0.1:11434/v1"),
]


@pytest.mark.parametrize(("field", "raw", "value"), CASES)
def test_each_variable_is_parsed(field: str, raw: str, value: Any) -> None:
    s = Settings.from_env({env_name(field): raw})
    assert getattr(s, field) == value
    # ...and only that field moved off its default.
    others = {f: getattr(s, f) for f in Settings.__dataclass_fields__ if f != field}
    assert others == {f: getattr(Settings(), f) for f in others}


def test_every_field_has_a_case_above() -> None:
    cased = {c[0] for c in CASES}
    assert cased == set(Settings.__dataclass_fields__)


def test_tilde_in_the_cache_dir_is_expanded_for_every_cache(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeline import hdr, speech
    from pipeline.bench import render as bench_render
    from pipeline.footage import cache

    monkeypatch.setenv("REELBOT_CACHE_DIR", "~/c")
    assert settings().cache_dir == home / "c"
    # One root for all of them (the analysis cache used to keep a literal "~" folder).
    assert cache.default_dir() == home / "c" / "analysis"
    assert hdr._cache_dir() == home / "c" / "hdr"
    assert speech.cache_dir() == home / "c"
    assert bench_render._cache_dir() == home / "c" / "bench-render-v1"


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("REELBOT_TTS_OFFLINE", "maybe"),
        ("REELBOT_ANALYSIS_CACHE", "off-ish"),
        ("REELBOT_ANALYSIS_WORKERS", "three"),
        ("REELBOT_ANALYSIS_WORKERS", "0"),
        ("REELBOT_SCRIPT_TIMEOUT", "soon"),
        ("REELBOT_SCRIPT_TIMEOUT", "-5"),
        ("REELBOT_SCRIPT_TIMEOUT", "nan"),
        ("REELBOT_OFFLINE_VOICE", "espeak"),
        ("REELBOT_MAX_FRAME_PIXELS", "4K"),
        ("REELBOT_MAX_PHOTO_PIXELS", "0"),
        ("REELBOT_RENDER_NICE", "20"),
        ("REELBOT_RENDER_NICE", "-5"),
    ],
)
def test_a_bad_value_names_its_variable(name: str, raw: str) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.from_env({name: raw})
    assert err.value.name == name and err.value.params["name"] == name
    assert err.value.key == "config_invalid" and name in str(err.value)


def test_read_once_until_reset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REELBOT_SCRIPT_TIMEOUT", "60")
    first = settings()
    monkeypatch.setenv("REELBOT_SCRIPT_TIMEOUT", "90")
    assert settings() is first and settings().script_timeout == 60.0
    pipeline_settings.reset()
    assert settings().script_timeout == 90.0


def test_threads_share_one_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline_settings.Settings, "from_env", _slow_from_env)
    seen: list[Settings] = []
    threads = [threading.Thread(target=lambda: seen.append(settings())) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert len(seen) == 8 and all(s is seen[0] for s in seen)


def _slow_from_env(env: Any) -> Settings:
    # A slow parse gives the other threads time to ask too; each would take its own snapshot
    # without the lock.
    import time

    time.sleep(0.05)
    return Settings()


def test_override_restores_the_snapshot() -> None:
    before = settings()
    with pipeline_settings.override(tts_offline=True) as changed:
        assert settings() is changed and changed.tts_offline
    assert settings() is before


def test_the_bot_config_loads_dotenv_before_the_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.config import ConfigError, load_settings

    monkeypatch.delenv("REELBOT_CACHE_DIR", raising=False)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123:abc")
    monkeypatch.setenv("REELBOT_DATA_DIR", str(tmp_path / "data"))
    env_file = tmp_path / ".env"
    env_file.write_text(f"REELBOT_CACHE_DIR={tmp_path / 'cache'}\nREELBOT_TTS_OFFLINE=1\n")
    loaded = load_settings(dotenv=str(env_file))
    assert loaded.pipeline.cache_dir == tmp_path / "cache" and loaded.pipeline.tts_offline
    assert settings() is loaded.pipeline  # what every stage reads
    # A bad pipeline value fails the bot's start like a bad bot value, naming the variable.
    with pytest.raises(ConfigError) as err:
        load_settings({"TELEGRAM_BOT_TOKEN": "x", "REELBOT_ANALYSIS_WORKERS": "many"})
    assert err.value.params["name"] == "REELBOT_ANALYSIS_WORKERS"


def test_a_run_uses_the_settings_it_was_given() -> None:
    from pipeline.make import stages

    n = stages.narrator(Settings(tts_offline=True, offline_voice="espeak-ng"))
    assert n.offline and not n.prefer_piper
    assert stages.narrator(Settings()).offline is False
    # The process's snapshot, when none is given.
    with pipeline_settings.override(tts_offline=True):
        assert stages.narrator().offline


def test_only_the_settings_module_reads_the_environment() -> None:
    readers = [
        str(p.relative_to(ROOT))
        for p in sorted((ROOT / "pipeline").rglob("*.py"))
        if p.name != "settings.py"
        and any(word in _without_native_setup(p) for word in ("os.environ", "getenv"))
    ]
    assert readers == []


def _without_native_setup(path: Path) -> str:
    """A module's text less the lines that set a variable for a native library to read (the
    embedded model sets libgomp's wait policy before loading it): a write, not a setting."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return "\n".join(line for line in lines if 'os.environ.setdefault("OMP_' not in line)
