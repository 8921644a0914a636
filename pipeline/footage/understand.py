"""What each moment shows: subjects, people and on-screen text, from the keyframes analysis kept.

Runs once per file after its moments are found, on the keyframe JPEGs analysis already decoded
(about 256 px wide): no second decode of the footage. The recognisers are `pipeline.see`'s:
EfficientNet-Lite0 gives everyday words (and the image features the summary clusters on), YuNet
(the face detector analysis already ran) gives the people count, RapidOCR the text, within a
time budget per file. Moments that look alike (a long shot split in pieces, a static camera) are
classified once: the subjects of a near-duplicate are its look-alike's.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import cv2
import numpy as np

from pipeline.footage.model import Seen, SeenSubject

if TYPE_CHECKING:
    from pipeline.footage.moments import Moment

log = logging.getLogger(__name__)

# Moments more alike than this (analysis's look similarity, 0..1) share one classification.
SAME_VIEW = 0.9
# Subjects below this summed probability are not claimed (the classifier's own default).
MIN_CONFIDENCE = 0.15
# A vision-language model gets this long per file for its sentences (one per distinct view).
DESCRIBE_BUDGET_S = 30.0
DESCRIBE_PROMPT = (
    "Describe what this video frame shows in one plain sentence of at most 20 words, as a "
    "viewer would say it. Only the sentence."
)


def understand(moments: Sequence[Moment], ocr_budget: float) -> tuple[Moment, ...]:
    """The moments with `Shot.seen` and their image features filled in.

    The recognisers ship in wheels; if one cannot load (a broken install), the moments come
    back as they were, with a warning: understanding adds to analysis, it never sinks it.
    """
    try:
        seen, features = see_keyframes(
            [m.keyframe for m in moments],
            [m.signature for m in moments],
            [m.shot.faces for m in moments],
            ocr_budget,
        )
    except (ImportError, OSError, RuntimeError) as exc:
        log.warning("footage understanding unavailable (%s): shots carry no subjects", exc)
        return tuple(moments)
    return tuple(
        dataclasses.replace(m, shot=dataclasses.replace(m.shot, seen=s), features=f)
        for m, s, f in zip(moments, seen, features, strict=True)
    )


def warm() -> None:
    """Load the recognisers now and run each once (each loads once per process): a long-lived
    process (the bot, a worker) pays this once; a benchmark does it before it starts its clock."""
    from pipeline.footage.faces import default_detector
    from pipeline.see import ocr, subjects

    # One inference each on a blank frame: the first run of a graph allocates and plans
    # (~1 s together here), and belongs to the load, not to the user's first video.
    blank = np.full((256, 256, 3), 127, np.uint8)
    default_detector().detect(blank)
    subjects._vocabulary()
    subjects.probabilities_and_features([blank])
    ocr._engine()(blank)


def decode(jpeg_bytes: bytes) -> np.ndarray:
    img = cv2.imdecode(np.frombuffer(jpeg_bytes, np.uint8), cv2.IMREAD_COLOR)
    return np.asarray(img)


def representatives(signatures: Sequence[Sequence[float]]) -> list[int]:
    """For each moment, the index of the first earlier moment that looks the same (or itself)."""
    from pipeline.footage.analyze import similarity

    reps: list[int] = []
    heads: list[int] = []
    for i, sig in enumerate(signatures):
        same = next((h for h in heads if similarity(sig, signatures[h]) >= SAME_VIEW), None)
        if same is None:
            heads.append(i)
            same = i
        reps.append(same)
    return reps


def see_keyframes(
    keyframes: Sequence[bytes],
    signatures: Sequence[Sequence[float]],
    people: Sequence[int],
    ocr_budget: float,
) -> tuple[list[Seen], list[bytes]]:
    """`Seen` and the image features (float16 bytes) for each keyframe JPEG."""
    from pipeline.see import ocr, subjects

    if not keyframes:
        return [], []
    reps = representatives(signatures)
    heads = sorted(set(reps))
    images = {i: decode(keyframes[i]) for i in heads}
    started = time.monotonic()
    probs, feats = subjects.probabilities_and_features([images[i] for i in heads])
    vocab = subjects._vocabulary()
    found = {
        i: subjects.to_subjects(row, vocab, threshold=MIN_CONFIDENCE)
        for i, row in zip(heads, probs, strict=True)
    }
    features = {i: f.astype(np.float16).tobytes() for i, f in zip(heads, feats, strict=True)}
    classified = time.monotonic() - started
    texts = ocr.read_keyframes([images[i] for i in heads], budget_s=ocr_budget)
    screen = {
        i: " / ".join(line.text for line in t.lines) for i, t in zip(heads, texts, strict=True)
    }
    log.debug(
        "understood %d keyframes (%d distinct): subjects %.2fs, OCR %.2fs",
        len(keyframes),
        len(heads),
        classified,
        time.monotonic() - started - classified,
    )
    sentences = describe([keyframes[i] for i in heads], DESCRIBE_BUDGET_S)
    described = dict(zip(heads, sentences, strict=True))
    seen = [
        Seen(
            subjects=tuple(SeenSubject(s.en, s.zh, s.confidence) for s in found[reps[i]]),
            people=people[i],
            text=screen[reps[i]],
            description=described[reps[i]],
        )
        for i in range(len(keyframes))
    ]
    return seen, [features[reps[i]] for i in range(len(keyframes))]


def describe(keyframes: Sequence[bytes], budget_s: float) -> list[str]:
    """One sentence per keyframe JPEG from the configured vision-language model (empty strings
    when none is configured). Bounded: each request gets what is left of `budget_s`; after a
    failure or once the budget is spent the rest stay empty, and the analysis goes on."""
    from pipeline.lm.base import LMError, image_part
    from pipeline.lm.openai_compat import OpenAICompatible
    from pipeline.settings import settings

    config = settings()
    out = [""] * len(keyframes)
    if not config.vision_model or not keyframes:
        return out
    try:
        model = OpenAICompatible(
            config.vision_url or config.lm_url, config.vision_model, config.lm_key, max_attempts=1
        )
    except LMError as exc:
        log.warning("no shot descriptions: %s", exc)
        return out
    deadline = time.monotonic() + budget_s
    for i, jpeg in enumerate(keyframes):
        left = deadline - time.monotonic()
        if left < 1.0:
            log.warning("shot descriptions stopped after %d of %d: time budget", i, len(out))
            break
        content = [{"type": "text", "text": DESCRIBE_PROMPT}, image_part(jpeg)]
        try:
            answer = model.generate(
                [{"role": "user", "content": content}], max_tokens=60, timeout_s=left
            )
        except LMError as exc:
            log.warning("shot descriptions stopped: %s", exc)
            break
        out[i] = " ".join(answer.text.split())[:200]
    return out


def features_of(blob: bytes) -> tuple[float, ...]:
    """Image features stored as float16 bytes, back as floats (empty when none were stored)."""
    return tuple(float(v) for v in np.frombuffer(blob, dtype=np.float16))
