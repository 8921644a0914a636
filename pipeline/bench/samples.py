"""Generated footage and sound with known content, for the demo, the benchmarks and the tests.

Everything here is made by ffmpeg's lavfi sources, so it needs no file from outside and every
property (colour, cut time, duration, rotation) is known exactly.
"""

from __future__ import annotations

import math
import os
import subprocess
from collections.abc import Sequence

import numpy as np

from pipeline.ffmpeg import ffmpeg_exe
from pipeline.narrate.model import write_wav


def _run(args: Sequence[str]) -> None:
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-nostdin", "-y", *args]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"sample generation failed: {done.stderr[-2000:]}")


def colour_clip(
    path: str,
    colour: str,
    seconds: float,
    size: tuple[int, int] = (320, 180),
    fps: int = 30,
    audio: bool = False,
    rotate: int = 0,
    label: str | None = None,
) -> str:
    """A flat-colour H.264 clip; with `rotate` the frames are stored turned, with a display flag.

    `rotate=90` makes what a phone records in portrait: landscape frames of `size` stored with a
    rotation flag, displayed as `size` turned upright.
    """
    w, h = size
    vf = []
    if label:
        vf.append(f"drawbox=x=0:y=0:w={w // 4}:h={h // 4}:color=white:t=fill")
    src = f"color=c={colour}:s={w}x{h}:r={fps}:d={seconds}"
    args = ["-f", "lavfi", "-i", src]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=330:sample_rate=48000:duration={seconds}"]
    if vf:
        args += ["-vf", ",".join(vf)]
    args += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", str(fps)]
    if audio:
        args += ["-c:a", "aac", "-shortest"]
    if rotate:
        tmp = path + ".norot.mp4"
        _run([*args, tmp])
        # -display_rotation takes degrees counter-clockwise; a phone held upright stores -90.
        _run(["-display_rotation", str(-rotate), "-i", tmp, "-c", "copy", path])
        os.remove(tmp)
    else:
        _run([*args, path])
    return path


def pattern_clip(
    path: str,
    seconds: float,
    size: tuple[int, int] = (1920, 1080),
    fps: int = 30,
    source: str = "testsrc2",
    noise: int = 12,
    gop: int = 60,
    crf: int = 20,
) -> str:
    """A realistic-to-encode clip: a moving test pattern with temporal grain, like phone video.

    Flat colour or zeros would make every encoder look fast; grain and motion do not.
    """
    w, h = size
    src = f"{source}=s={w}x{h}:r={fps}:d={seconds}"
    if source == "mandelbrot":
        src = f"mandelbrot=s={w}x{h}:r={fps}:end_scale=0.02,trim=duration={seconds}"
    vf = f"noise=alls={noise}:allf=t+u,format=yuv420p" if noise else "format=yuv420p"
    _run(["-f", "lavfi", "-i", src, "-vf", vf, "-c:v", "libx264", "-preset", "veryfast",
          "-crf", str(crf), "-g", str(gop), path])  # fmt: skip
    return path


# The SDR colours of `hdr_clip`'s three vertical bars (RGB): a skin tone, a saturated green and
# mid grey, the things a washed-out HDR conversion gets visibly wrong.
HDR_BARS: tuple[tuple[int, int, int], ...] = ((205, 135, 95), (40, 170, 60), (128, 128, 128))


def hdr_clip(
    path: str,
    seconds: float,
    transfer: str = "hlg",
    size: tuple[int, int] = (384, 216),
    fps: int = 30,
) -> str:
    """10-bit HDR video (`transfer` "hlg" as phones record, or "pq") of `HDR_BARS`: SDR colours
    carried into BT.2020 HLG/PQ by zimg with 100 nits as SDR white, so a correct tone-map
    brings back the SDR colours and a naive conversion visibly does not."""
    w, h = size
    img = np.zeros((h, w, 3), np.uint8)
    for i, rgb in enumerate(HDR_BARS):
        img[:, i * w // 3 : (i + 1) * w // 3] = rgb
    still = path + ".bars.png"
    from PIL import Image

    Image.fromarray(img).save(still)
    trc = {"hlg": "arib-std-b67", "pq": "smpte2084"}[transfer]
    vf = (
        f"format=gbrp,zscale=tin=bt709:min=gbr:pin=bt709:rin=pc:t={trc}:m=bt2020nc:p=bt2020:"
        f"r=tv:npl=100,format=yuv420p10le,"
        f"setparams=color_trc={trc}:color_primaries=bt2020:colorspace=bt2020nc:range=tv"
    )
    try:
        _run(["-loop", "1", "-framerate", str(fps), "-t", f"{seconds}", "-i", still, "-vf", vf,
              "-c:v", "libx264", "-preset", "ultrafast", "-crf", "12", "-pix_fmt", "yuv420p10le",
              "-color_trc", trc, "-color_primaries", "bt2020", "-colorspace", "bt2020nc",
              "-color_range", "tv", path])  # fmt: skip
    finally:
        os.remove(still)
    return path


def photo(path: str, colour: tuple[int, int, int], size: tuple[int, int] = (800, 600)) -> str:
    """A still image (PNG or JPEG by extension): a colour field with a white square top-left."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", size, colour)
    ImageDraw.Draw(img).rectangle((0, 0, size[0] // 4, size[1] // 4), fill=(255, 255, 255))
    img.save(path)
    return path


def animated_gif(path: str, colours: Sequence[tuple[int, int, int]], seconds: float = 1.0) -> str:
    """An animated GIF cycling through `colours` over `seconds`."""
    from PIL import Image

    frames = [Image.new("RGB", (160, 120), c) for c in colours]
    per = int(1000 * seconds / len(frames))
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=per, loop=0)
    return path


def speech_like_wav(path: str, seconds: float, rate: int = 48000, seed: int = 0) -> str:
    """A narration stand-in: voiced syllables (harmonics under an envelope) with pauses.

    It has speech's loudness profile (bursts and gaps), so loudness normalisation and ducking
    behave as they would with a voice.
    """
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    t = np.arange(n) / rate
    sig = np.zeros(n)
    pos = 0.0
    while pos < seconds:
        syl = rng.uniform(0.12, 0.3)
        f0 = rng.uniform(110, 220)
        a, b = int(pos * rate), min(int((pos + syl) * rate), n)
        tt = t[a:b] - pos
        env = np.sin(np.pi * tt / syl) ** 2
        voice = sum(np.sin(2 * math.pi * f0 * k * tt) / k for k in range(1, 6))
        sig[a:b] += env * voice
        pos += syl + (rng.uniform(0.25, 0.5) if rng.random() < 0.2 else rng.uniform(0.02, 0.08))
    sig = 0.25 * sig / (np.abs(sig).max() or 1.0)
    write_wav(path, sig, rate)
    return path


def tone_wav(path: str, seconds: float, freq: float = 440.0, level: float = 0.3,
             rate: int = 48000) -> str:  # fmt: skip
    """A steady sine tone (music stand-in for ducking tests)."""
    t = np.arange(int(seconds * rate)) / rate
    write_wav(path, level * np.sin(2 * math.pi * freq * t), rate)
    return path


def clip_with_sound(
    path: str, audio: str, colour: str = "gray", size: tuple[int, int] = (320, 180), fps: int = 30
) -> str:
    """A flat-colour H.264 clip as long as the sound file `audio`, which becomes its AAC track
    (footage whose sound is known: espeak-ng speech, a melody, noise)."""
    w, h = size
    _run(["-f", "lavfi", "-i", f"color=c={colour}:s={w}x{h}:r={fps}", "-i", audio,
          "-map", "0:v", "-map", "1:a", "-shortest", "-c:v", "libx264", "-preset", "ultrafast",
          "-pix_fmt", "yuv420p", "-g", str(fps), "-c:a", "aac", "-b:a", "128k", path])  # fmt: skip
    return path


def melody_wav(path: str, seconds: float, rate: int = 48000, level: float = 0.3) -> str:
    """A sine melody (a C major scale, half a second a note, each note faded in and out)."""
    notes = [261.6, 293.7, 329.6, 349.2, 392.0, 440.0, 493.9, 523.3]
    n = rate // 2
    env = np.hanning(n)
    count = max(1, round(seconds * 2))
    sig = np.concatenate(
        [
            level * env * np.sin(2 * math.pi * notes[i % 8] * np.arange(n) / rate)
            for i in range(count)
        ]
    )
    write_wav(path, sig, rate)
    return path


def noise_wav(
    path: str, seconds: float, rate: int = 48000, level: float = 0.4, seed: int = 0
) -> str:
    """White noise (what YAMNet hears as wind / noise)."""
    rng = np.random.default_rng(seed)
    write_wav(path, rng.uniform(-level, level, int(seconds * rate)), rate)
    return path
