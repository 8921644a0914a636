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
    from pipeline.narrate.cues import build_cues, caption_style
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
