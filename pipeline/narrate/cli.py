"""`reelbot narrate`: speak sentences to a WAV and print engine, voice and word timings as JSON."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `narrate` subcommand to the `reelbot` CLI."""
    p = subparsers.add_parser(
        "narrate",
        help="speak sentences (edge-tts, offline fallback) and print word timings as JSON",
        description=(
            "Narrate SENTENCE... in order into a 48 kHz mono WAV. edge-tts speaks when reachable; "
            "otherwise piper (English, optional extra) or espeak-ng. Prints engine, voice, "
            "duration, fallback reason, sentence spans, word timings and caption cues as JSON."
        ),
    )
    p.add_argument("sentences", nargs="+", metavar="SENTENCE")
    p.add_argument("--lang", choices=("zh", "en"), required=True, help="language of the text")
    p.add_argument("--voice", help="edge-tts voice, e.g. zh-CN-YunxiNeural (default: by style)")
    p.add_argument("--style", help="video style, used to pick a voice (e.g. knowledge, story)")
    p.add_argument("--rate", default="+0%", help="speaking rate, e.g. +10%% or -5%%")
    p.add_argument("--pitch", default="+0Hz", help="pitch offset, e.g. +5Hz")
    p.add_argument("--offline", action="store_true", help="do not try edge-tts")
    p.add_argument("--edge-url", help="websocket URL replacing edge-tts's service (relay, tests)")
    p.add_argument("--captions", default="bold", help="caption preset for the cues printed")
    p.add_argument("-o", "--output", required=True, metavar="OUT.wav", help="WAV file to write")
    p.set_defaults(handler=_narrate_cmd)

    v = subparsers.add_parser("voices", help="list the narration voices by language and style")
    v.add_argument("--lang", choices=("zh", "en"), help="only this language")
    v.add_argument("--json", action="store_true", help="print JSON")
    v.set_defaults(handler=_voices_cmd)


def _voices_cmd(args: argparse.Namespace) -> int:
    from pipeline.narrate.offline import ESPEAK_VOICES
    from pipeline.narrate.voices import STYLE_VOICES, VOICES

    rows = [
        {
            "voice": v.name,
            "language": v.language,
            "gender": v.gender,
            "sounds": v.character,
            "styles": sorted(k for k, by in STYLE_VOICES.items() if by[v.language] == v.name),
        }
        for v in VOICES
        if args.lang in (None, v.language)
    ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    for r in rows:
        styles = ", ".join(r["styles"]) or "-"
        print(f"{r['voice']:26s} {r['language']} {r['gender']:6s} {r['sounds']:24s} {styles}")
    offline = ", ".join(f"{lang}: {name}" for lang, (name, _) in ESPEAK_VOICES.items())
    print(f"offline fallback: piper en_US-joe-medium (en, optional), espeak-ng ({offline})")
    return 0


def _narrate_cmd(args: argparse.Namespace) -> int:
    from pipeline.narrate.captions import build_cues, caption_style
    from pipeline.narrate.narrator import Narrator

    out = Path(args.output)
    style = caption_style(args.captions)
    narrator = Narrator(offline=args.offline, edge_endpoint=args.edge_url)
    result = narrator.narrate(
        args.sentences,
        args.lang,
        out.parent if str(out.parent) else Path("."),
        voice=args.voice,
        style=args.style,
        rate=args.rate,
        pitch=args.pitch,
        filename=out.name,
    )
    cues = build_cues(result.words, result.line_spans, result.language, style=style.name)
    report: dict[str, Any] = {
        "audio": result.audio_path,
        "engine": result.engine,
        "voice": result.voice,
        "language": result.language,
        "duration": round(result.duration, 3),
        "fallback_reason": result.fallback_reason,
        "fallback_code": result.fallback_code,
        "timing": result.timing,
        "line_spans": [[round(a, 3), round(b, 3)] for a, b in result.line_spans],
        "words": [[w.text, round(w.start, 3), round(w.end, 3)] for w in result.words],
        "captions": [
            {"text": c.text, "start": round(c.start, 3), "end": round(c.end, 3)} for c in cues
        ],
    }
    print(json.dumps(report, ensure_ascii=False, indent=2))
    return 0


# A calm explainer paragraph per language: what the script writer produces.
_BENCH_TEXT = {
    "zh": [
        "你知道为什么咖啡一定要现磨吗？",
        "咖啡豆磨成粉以后，香气在几分钟之内就会大量散失。",
        "所以最好的办法，是在冲煮之前再研磨。",
        "关注我，下次教你挑选新鲜的豆子。",
    ],
    "en": [
        "Do you know why coffee should be ground fresh?",
        "Once beans are ground, most of the aroma escapes within minutes.",
        "So the best habit is to grind right before you brew.",
        "Follow for more, and next time I will show you how to pick fresh beans.",
    ],
}


def register_bench(bench_subparsers: Any) -> None:
    """Add `reelbot bench narrate`: offline voices' speaking rates and synthesis speed."""
    p = bench_subparsers.add_parser(
        "narrate",
        help="speaking rate (zh chars/s, en words/s) and real-time factor of the offline voices",
    )
    p.add_argument("--workdir", help="where to write the WAVs (default: a temporary folder)")
    p.set_defaults(handler=_bench_cmd)


def _bench_cmd(args: argparse.Namespace) -> int:
    import tempfile
    import time

    from pipeline.narrate.align import is_cjk
    from pipeline.narrate.narrator import Narrator

    runs = [("zh", True), ("en", False), ("en", True)]  # (language, prefer_piper)
    summary: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.workdir or tmp)
        for lang, piper in runs:
            text = _BENCH_TEXT[lang]
            narrator = Narrator(offline=True, prefer_piper=piper)
            narrator.narrate(text[:1], lang, work / "warm")  # load voices outside the timing
            t0 = time.perf_counter()
            n = narrator.narrate(text, lang, work / f"{lang}-{n_engine(piper)}")
            took = time.perf_counter() - t0
            speaking = sum(b - a for a, b in n.line_spans)
            if lang == "zh":
                units = sum(1 for s in text for ch in s if is_cjk(ch))
                unit = "chars"
            else:
                units = sum(len(s.split()) for s in text)
                unit = "words"
            key = f"{n.engine.replace('-', '')}_{lang}"
            print(
                f"{n.engine:9s} {n.voice:16s} {lang}: {units / speaking:.2f} {unit}/s speaking, "
                f"{units / n.duration:.2f} {unit}/s with pauses, audio {n.duration:.2f}s, "
                f"synthesis+timing {took:.2f}s (real-time factor {took / n.duration:.2f}, "
                f"timing from {n.timing})"
            )
            summary.append(f"{key}_{unit}_per_s={units / speaking:.2f}")
            summary.append(f"{key}_rtf={took / n.duration:.2f}")
            sync = _sync_p95_ms(n)
            if sync is not None:
                print(f"{'':9s} caption sync against whisper: p95 {sync:.0f} ms")
                summary.append(f"{key}_caption_sync_ms_p95={sync:.0f}")
    print(" ".join(summary))
    return 0


def _sync_p95_ms(n: Any) -> float | None:
    """p95 of |cue start - where whisper hears its first word|, in ms (None without whisper)."""
    import numpy as np

    from pipeline.narrate.captions import build_cues
    from pipeline.narrate.sync import caption_sync_errors
    from pipeline.speech import SpeechModelError, default_transcriber

    cues = build_cues(n.words, n.line_spans, n.language)
    try:
        heard = default_transcriber().transcribe(
            n.audio_path, language=n.language, vad=False, retry_temperatures=False
        )
    except SpeechModelError:
        return None
    errors = caption_sync_errors(cues, heard.words)
    return float(np.percentile(np.abs(errors), 95)) * 1000 if errors else None


def n_engine(piper: bool) -> str:
    return "piper" if piper else "espeak"
