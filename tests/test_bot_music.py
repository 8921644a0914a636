"""Music from the chat, end to end over the fake Bot API with the real (small) pipeline: an audio
file sent with the footage becomes the video's music; 🔇 No music leaves it out; a file that is
not sound is refused by name and nothing else is lost. The delivered MP4's sound is decoded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.bench import samples
from pipeline.see import sound
from tests.bot_harness import (
    ALICE,
    bot_running,
    fake_server,
    make_pipeline,
    media,
    new_video,
    render_from_storyboard,
    run,
    settings_for,
)

pytestmark = pytest.mark.slow  # renders or runs models end to end

__all__ = ["media"]  # the fixture

TONE = 2500.0  # Hz: the "music", far from espeak's voice pitch, measured in a narrow band


def _music(path: Path) -> Path:
    wav = samples.tone_wav(str(path.with_suffix(".wav")), 3.0, freq=TONE, level=0.3)
    samples._run(["-i", wav, "-c:a", "aac", "-b:a", "96k", str(path)])
    return path


def _tone_in_tail(video: bytes, tmp: Path) -> float:
    """The tone's level (dB, FFT band around TONE) in the video's last 0.4 s: after the last
    word, where only the music can sound."""
    path = tmp / "delivered.mp4"
    path.write_bytes(video)
    pcm = sound.read_audio(str(path))
    tail = pcm[-int(0.4 * sound.SAMPLE_RATE) :]
    spec = np.abs(np.fft.rfft(tail * np.hanning(len(tail))))
    freqs = np.fft.rfftfreq(len(tail), 1 / sound.SAMPLE_RATE)
    band = spec[(freqs > TONE - 40) & (freqs < TONE + 40)]
    return float(20 * np.log10(max(float(band.max()) / len(tail), 1e-9)))


def test_music_sent_with_the_footage_is_the_videos_music(
    tmp_path: Path, media: dict[str, Path]
) -> None:
    song = _music(tmp_path / "song.m4a")
    bad = tmp_path / "broken.mp3"
    bad.write_bytes(b"ID3 not really an mp3 " * 50)

    async def scenario() -> None:
        async with fake_server() as server:
            async with bot_running(
                server, settings_for(server, tmp_path / "data"), make_pipeline()
            ):
                await new_video(server, ALICE, ALICE["id"], "Why cats love boxes")
                await server.video(ALICE, ALICE["id"], media["red"], caption="cat in a box")
                await server.wait_for("sendMessage", lambda c: "1 video" in c.text)
                # A file that is no sound: refused by name, the footage stays.
                await server.audio(ALICE, ALICE["id"], bad)
                refusal = await server.wait_for("sendMessage", lambda c: "broken.mp3" in c.text)
                assert "not music" in refusal.text and "footage is kept" in refusal.text
                await server.audio(ALICE, ALICE["id"], song, as_document=True,
                                   mime_type="audio/mp4")  # fmt: skip
                ok = await server.wait_for("sendMessage", lambda c: "will be the music" in c.text)
                assert "song.m4a" in ok.text
                await server.text(ALICE, ALICE["id"], "/done")
                video = await render_from_storyboard(server, ALICE, ALICE["id"])
                level = _tone_in_tail(video.upload("video") or b"", tmp_path)
                assert level > -45, level
            (plan_file,) = (tmp_path / "data" / "jobs").glob("*/plan.json")
            assert '"role": "music"' in plan_file.read_text()

    run(scenario())


def test_no_music_button_leaves_the_music_out(tmp_path: Path, media: dict[str, Path]) -> None:
    song = _music(tmp_path / "song.m4a")

    async def scenario() -> None:
        async with fake_server() as server:
            async with bot_running(
                server, settings_for(server, tmp_path / "data"), make_pipeline()
            ):
                await new_video(server, ALICE, ALICE["id"], "Why cats love boxes")
                await server.video(ALICE, ALICE["id"], media["red"], caption="cat in a box")
                await server.audio(ALICE, ALICE["id"], song)
                await server.wait_for("sendMessage", lambda c: "will be the music" in c.text)
                msg, data = server.button_message(ALICE["id"], f"c|{ALICE['id']}|music|off")
                await server.press(ALICE, msg, data)
                await server.wait_for("sendMessage", lambda c: "No music" in c.text)
                await server.text(ALICE, ALICE["id"], "/done")
                video = await render_from_storyboard(server, ALICE, ALICE["id"])
                level = _tone_in_tail(video.upload("video") or b"", tmp_path)
                assert level < -70, level
            (plan_file,) = (tmp_path / "data" / "jobs").glob("*/plan.json")
            assert '"role": "music"' not in plan_file.read_text()

    run(scenario())


def test_no_music_button_data_is_validated() -> None:
    from bot import callbacks
    from bot.callbacks import Choice

    data = callbacks.encode(Choice(42, "music", "off"))
    assert callbacks.decode(data) == Choice(42, "music", "off")
    assert callbacks.choice_pattern("music")(data)
    # Only "off" is a music choice a button makes: anything else is forged.
    assert callbacks.decode("c|42|music|on") is None
    assert callbacks.decode("c|42|music|/etc/passwd") is None


def test_storyboard_sound_line_in_both_languages() -> None:
    from bot.texts import sound_text

    notes = ((0, "music_left_out"), (2, "laughter_kept"), (3, "noise_muted"), (4, "newer_code"))
    en = sound_text("en", notes)
    assert en.startswith("🔊 Sound:") and "line 2: laughter kept" in en
    assert "line 3: wind/noise muted" in en and "newer" not in en
    zh = sound_text("zh", notes)
    assert "第 2 句保留笑声" in zh and "素材自带音乐" in zh
    assert sound_text("en", ()) == ""
