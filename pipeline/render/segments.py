"""The segment cache: each segment's encoded picture (captions burned in), kept so that a new
plan re-encodes only the segments whose pixels changed.

A segment's key is everything that decides its pixels: the source's content fingerprint and
facts, in/out, the crop windows, the frame count, the output spec's picture fields, the encoder
and its parameters, the scaler and colour settings, the HDR table, and the caption events that
fall in it (times relative to the segment's first frame) with the ASS header (styles, fonts).
Sound is not in it: it is mixed and encoded anew each time, which is cheap.

The first render of a plan is the renderer's one pass, with an IDR frame forced at every
segment start (`-force_key_frames` + `-forced-idr`), so its picture can be cut at those frames
without re-encoding (the segment muxer, stream copy) into one file per segment. A later plan
whose segments are partly known encodes only the unknown ones, each on its own with the same
encoder settings and the captions of the whole timeline (the segment's frames are shifted to
their place before libass draws them), and joins all of them with the concat demuxer without
re-encoding; the new sound is mixed, normalised and encoded into the same file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

from pipeline.ffmpeg import render_nice, run_ffmpeg
from pipeline.plan import EditPlan, OutputSpec
from pipeline.render.audiomix import Loudness

log = logging.getLogger(__name__)

# Bump when a change in the renderer changes the pixels of a segment for the same key parts.
SEGMENT_VERSION = "segment-1"

_TIME = r"(\d+):(\d+):(\d+)\.(\d+)"
_DIALOGUE = re.compile(rf"^Dialogue:\s*(\d+),{_TIME},{_TIME},(.*)$")


@dataclass(frozen=True, slots=True)
class CacheStats:
    """What a render found in the segment cache (hits reused, misses encoded)."""

    hits: int
    misses: int
    full: bool  # the whole picture in one pass (no segment known beforehand)


def _seconds(h: str, m: str, s: str, cs: str) -> Fraction:
    return Fraction(int(h) * 3600 + int(m) * 60 + int(s)) + Fraction(int(cs), 100)


def split_ass(ass_text: str | None) -> tuple[str, list[tuple[Fraction, Fraction, str]]]:
    """(header, [(start, end, rest of the Dialogue line)]) of an ASS script from `build_ass`."""
    if not ass_text:
        return "", []
    header: list[str] = []
    events: list[tuple[Fraction, Fraction, str]] = []
    for line in ass_text.splitlines():
        m = _DIALOGUE.match(line)
        if m is None:
            header.append(line)
            continue
        g = m.groups()
        events.append((_seconds(*g[1:5]), _seconds(*g[5:9]), f"{g[0]},{g[9]}"))
    return "\n".join(header), events


def segment_starts(counts: Sequence[int]) -> list[int]:
    """Each segment's first output frame."""
    starts, acc = [], 0
    for n in counts:
        starts.append(acc)
        acc += n
    return starts


def _picture_spec(out: OutputSpec) -> dict[str, object]:
    """The output fields that decide the picture (not the sound's)."""
    spec = asdict(out)
    for sound in ("audio_bitrate_k", "loudness_lufs", "true_peak_db", "tail"):
        spec.pop(sound, None)
    return spec


def segment_keys(plan: EditPlan, ass_text: str | None, encoder: str) -> list[str]:
    """One key per segment of `plan`: equal keys mean equal encoded pictures."""
    from pipeline.cjk import resolve_font
    from pipeline.ffmpeg import ffmpeg_exe
    from pipeline.footage.cache import content_hash
    from pipeline.render import filters, renderer

    counts = filters.frame_counts(plan)
    fps = Fraction(plan.output.fps).limit_denominator(1001)
    header, events = split_ass(ass_text)
    fonts = sorted({str(resolve_font(st.font)) for st in plan.styles}) if events else []
    fingerprints: dict[str, str] = {}
    common = {
        "version": SEGMENT_VERSION,
        "ffmpeg": os.path.basename(ffmpeg_exe()),
        "output": _picture_spec(plan.output),
        "encoder": encoder,
        "x264": renderer.X264_PARAMS,
        "scale": filters.SCALE_FLAGS,
        "colour": filters.COLOUR,
        "ass_header": header,
        "fonts": fonts,
    }
    keys = []
    for seg, first, n in zip(plan.segments, segment_starts(counts), counts, strict=True):
        src = plan.sources[seg.source]
        if src.path not in fingerprints:
            fingerprints[src.path] = content_hash(src.path)
        t0, t1 = first / fps, (first + n) / fps
        inside = [(str(a - t0), str(b - t0), rest) for a, b, rest in events if a < t1 and b > t0]
        facts = {k: v for k, v in asdict(src).items() if k != "path"}
        cut = {k: v for k, v in asdict(seg).items() if k not in ("source", "volume")}
        hdr = src.hdr if src.kind == "video" else None
        raw = json.dumps(
            [common, fingerprints[src.path], facts, cut, n, hdr, inside],
            sort_keys=True,
            default=str,
            ensure_ascii=False,
        )
        keys.append(hashlib.sha256(raw.encode()).hexdigest()[:32])
    return keys


class SegmentCache:
    """Encoded segments on disk, one MP4 (picture only) per key; counts its hits and misses."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.dir = Path(directory)

    def path(self, key: str) -> Path:
        return self.dir / f"{key}.mp4"

    def has(self, key: str) -> bool:
        return self.path(key).is_file()

    def store_split(
        self, video: str, keys: Sequence[str], counts: Sequence[int], cancel: threading.Event | None
    ) -> None:
        """Cut a one-pass render (IDR frames at every segment start) into the cache, by stream
        copy. A failure only costs the next edit a full render: it is logged, not raised."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix=".split-", dir=self.dir) as tmp:
                cuts = ",".join(str(f) for f in segment_starts(counts)[1:])
                pattern = os.path.join(tmp, "%04d.mp4")
                args = ["-i", video, "-map", "0:v", "-c", "copy", "-f", "segment",
                        "-segment_format", "mp4", "-reset_timestamps", "1"]  # fmt: skip
                if cuts:
                    args += ["-segment_frames", cuts]
                run_ffmpeg(
                    [*args, pattern], cancel=cancel, what="segment split", nice=render_nice()
                )
                pieces = sorted(Path(tmp).glob("*.mp4"))
                if len(pieces) != len(keys):
                    log.warning("segment split gave %d pieces for %d segments; not cached",
                                len(pieces), len(keys))  # fmt: skip
                    return
                for piece, key in zip(pieces, keys, strict=True):
                    os.replace(piece, self.path(key))
        except OSError as exc:
            log.warning("segment cache not written in %s: %s", self.dir, exc)
        except Exception as exc:  # a RenderError from the split: the video itself is fine
            from pipeline.errors import Cancelled

            if isinstance(exc, Cancelled):
                raise
            log.warning("segment split failed: %s", exc)


def keyframe_args(counts: Sequence[int]) -> list[str]:
    """ffmpeg output options forcing an IDR frame at every segment's first frame."""
    expr = "+".join(f"eq(n,{f})" for f in segment_starts(counts))
    return ["-force_key_frames", f"expr:{expr}", "-forced-idr", "1"]


def _audio_norm(out: OutputSpec, ln: Loudness) -> str:
    """The main pass's linear loudness normalisation (as `renderer.build_command` does it)."""
    if ln.i <= -70.0:
        return "anull"
    return (
        f"loudnorm=I={out.loudness_lufs}:TP={out.true_peak_db}:LRA=11:"
        f"measured_I={ln.i}:measured_TP={ln.tp}:measured_LRA={ln.lra}:"
        f"measured_thresh={ln.thresh}:offset={ln.offset}:linear=true"
    )


def encode_segment(
    plan: EditPlan,
    k: int,
    first: int,
    n: int,
    ass_path: str | None,
    encoder: str,
    dest: str,
    cancel: threading.Event | None,
) -> None:
    """Segment `k` alone, as the one pass would have drawn it: its frames are moved to their
    place on the timeline for libass (the captions of the whole plan), then back to 0."""
    from pipeline.render import filters, renderer

    out = plan.output
    seg = plan.segments[k]
    src = plan.sources[seg.source]
    fps = Fraction(out.fps).limit_denominator(1001)
    chain = filters.segment_chain(0, seg, src, out, n)
    # The one pass's concat filter hands libass microsecond timestamps, and libass truncates
    # them to milliseconds: the same time base and offset put a caption's first frame exactly
    # where the one pass puts it (1/fps ticks can land it a frame earlier).
    shift = round(Fraction(first) / fps * 1_000_000)
    video = f"[v0]settb=AVTB,setpts=PTS+{shift}"
    if ass_path is not None:
        video += f",ass=filename={filters.filter_arg(ass_path)}:shaping=complex"
    video += ",setpts=PTS-STARTPTS[vout]"
    args = [
        "-reinit_filter", "0", *filters.segment_input(seg, src, n, out.fps),
        "-filter_complex", f"{chain};{video}", "-filter_complex_threads", "2",
        "-map", "[vout]", *renderer._video_codec_args(out, encoder), *keyframe_args([n]),
        "-r", f"{out.fps}", "-frames:v", str(n), "-an", dest,
    ]  # fmt: skip
    run_ffmpeg(args, duration=n / out.fps, cancel=cancel, what="segment render", nice=render_nice())


def render_from_cache(
    plan: EditPlan,
    cache: SegmentCache,
    keys: Sequence[str],
    ass_path: str | None,
    audio: tuple[str, Loudness] | None,
    encoder: str,
    out_path: str,
    tmp: str,
    report: Callable[[float], None],
    cancel: threading.Event | None,
) -> CacheStats:
    """Encode the segments the cache lacks, then join all by stream copy with the new sound."""
    from pipeline.render.filters import frame_counts

    out = plan.output
    counts = frame_counts(plan)
    starts = segment_starts(counts)
    missing = [k for k, key in enumerate(keys) if not cache.has(key)]
    work = sum(counts[k] for k in missing) or 1
    done = 0
    for k in missing:
        dest = os.path.join(tmp, f"seg{k:03d}.mp4")
        encode_segment(plan, k, starts[k], counts[k], ass_path, encoder, dest, cancel)
        with contextlib.suppress(OSError):
            cache.dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(dest, os.path.join(tmp, f"seg{k:03d}.keep"))
            os.replace(os.path.join(tmp, f"seg{k:03d}.keep"), cache.path(keys[k]))
        done += counts[k]
        report(0.9 * done / work)
    listing = os.path.join(tmp, "segments.txt")
    with open(listing, "w", encoding="utf-8") as fh:
        for k, key in enumerate(keys):
            local = os.path.join(tmp, f"seg{k:03d}.mp4")
            path = local if os.path.isfile(local) else str(cache.path(key))
            fh.write("file '" + path.replace("'", "'\\''") + "'\n")
    total = sum(counts)
    args = ["-f", "concat", "-safe", "0", "-i", listing]
    if audio is not None:
        wav, ln = audio
        args += ["-i", wav, "-filter_complex",
                 f"[1:a]{_audio_norm(out, ln)},aresample=48000[aout]"]  # fmt: skip
    else:
        args += ["-f", "lavfi", "-i", "anullsrc=channel_layout=stereo:sample_rate=48000",
                 "-filter_complex", "[1:a]anull[aout]"]  # fmt: skip
    args += [
        "-map", "0:v", "-map", "[aout]", "-c:v", "copy",
        "-c:a", "aac", "-b:a", f"{out.audio_bitrate_k}k", "-ar", "48000", "-ac", "2",
        "-frames:v", str(total), "-t", f"{total / out.fps:.4f}", "-movflags", "+faststart",
        "-metadata", "comment=made with reelbot", out_path,
    ]  # fmt: skip
    run_ffmpeg(
        args, duration=total / out.fps, cancel=cancel, what="segment join", nice=render_nice()
    )
    report(1.0)
    return CacheStats(hits=len(keys) - len(missing), misses=len(missing), full=False)
