"""Optional models for matching: image-text scores (CLIP / Chinese-CLIP) and text embeddings.

Neither is needed: without them matching uses captions and transcripts through character
n-grams. A model is used only when configured, by hub id or local path (the hub itself is not
reachable here, so in practice a local folder): `REELBOT_IMAGE_TEXT_MODEL` for a CLIP-style
model, `REELBOT_TEXT_EMBED_MODEL` for a sentence encoder such as all-MiniLM-L6-v2 (English).
Each loads once per process and name (`pipeline.loadonce`), on first use, never at import.
"""

from __future__ import annotations

import logging
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


# Keyed by model name; a failed load (ModelLoadError) is tried again on the next call.
SCORERS: Loader[str, ImageTextScorer] = Loader("image-text model", ImageTextScorer)
EMBEDDERS: Loader[str, TextEmbedder] = Loader("text embedding model", TextEmbedder)


def image_text_scorer(model: str | None = None) -> ImageTextScorer | None:
    """The process-wide image-text scorer (`model` or $REELBOT_IMAGE_TEXT_MODEL), or None."""
    name = model or settings().image_text_model
    return SCORERS.get(name) if name else None


def text_embedder(model: str | None = None) -> TextEmbedder | None:
    """The process-wide text embedder (`model` or $REELBOT_TEXT_EMBED_MODEL), or None."""
    name = model or settings().text_embed_model
    return EMBEDDERS.get(name) if name else None


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
