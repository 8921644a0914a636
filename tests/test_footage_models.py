"""The optional model paths, with tiny randomly initialised models built here (no download)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.footage.match import rank_shots
from pipeline.footage.model import ScoreParts, Shot
from pipeline.footage.reframe import frame_shot
from pipeline.footage.scorers import (
    ImageTextScorer,
    ModelLoadError,
    TextEmbedder,
    keyframe_scores,
)
from pipeline.media import probe

pytestmark = pytest.mark.slow

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"猫狗海边城市咖啡", "cat", "dog", "beach",
         "city", "coffee", "the", "a", "on"]  # fmt: skip


def _vocab(folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory: pytest.TempPathFactory) -> str:
    import torch
    from transformers import (
        BertTokenizer,
        ChineseCLIPConfig,
        ChineseCLIPModel,
        ChineseCLIPProcessor,
    )
    from transformers.models.chinese_clip import ChineseCLIPImageProcessorPil

    folder = tmp_path_factory.mktemp("tiny-cn-clip")
    torch.manual_seed(0)
    small = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
             "intermediate_size": 37}  # fmt: skip
    config = ChineseCLIPConfig(
        text_config={**small, "vocab_size": len(VOCAB)},
        vision_config={**small, "image_size": 32, "patch_size": 8},
        projection_dim=16,
    )
    ChineseCLIPModel(config).save_pretrained(folder)
    tokenizer = BertTokenizer(_vocab(folder / "tok"))
    images = ChineseCLIPImageProcessorPil(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    )
    ChineseCLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    return str(folder)


def test_image_text_scores_from_a_clip_model(tiny_clip: str, tmp_path: Path) -> None:
    from PIL import Image

    scorer = ImageTextScorer(tiny_clip)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(3)]
    raw = scorer.similarity(["猫在海边", "a dog on the beach"], images)
    assert raw.shape == (2, 3)
    assert np.all(np.abs(raw) <= 1.0 + 1e-5)
    again = scorer.similarity(["猫在海边", "a dog on the beach"], images)
    assert np.allclose(raw, again)  # inference mode: no dropout, deterministic

    # Through keyframes of real files, into ranking.
    paths = []
    for i, img in enumerate(images):
        p = tmp_path / f"p{i}.png"
        Image.fromarray(img).resize((320, 240)).save(p)
        paths.append(p)
    media = [probe(p) for p in paths]
    parts = ScoreParts(1, 1, 1, 0.5, 0.5, 0, 0)
    crops = frame_shot(320, 240, None, (0.5, 0.5), photo=True)
    shots = [Shot(i, str(p), 0, 3, 0, 0.5, parts, crops, kind="photo") for i, p in
             enumerate(paths)]  # fmt: skip
    scores = keyframe_scores(scorer, ["猫", "dog"], shots, media)
    assert scores.shape == (2, 3) and np.all((scores >= 0) & (scores <= 1))
    fake = np.array([[0.0, 0.9, 0.1], [0.8, 0.0, 0.0]])
    ranked = rank_shots(["猫", "dog"], shots, image_scores=fake)
    assert ranked[0][0][0] == 1 and ranked[1][0][0] == 0


def test_text_embedder_mean_pools_a_bert(tmp_path: Path) -> None:
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    torch.manual_seed(0)
    folder = tmp_path / "tiny-bert"
    config = BertConfig(
        vocab_size=len(VOCAB),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=37,
    )
    BertModel(config).save_pretrained(folder)
    BertTokenizer(_vocab(folder)).save_pretrained(folder)
    embed = TextEmbedder(str(folder))
    vecs = embed(["猫 cat", "猫 cat", "city coffee"])
    assert vecs.shape == (3, 32)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vecs[0], vecs[1])


def test_missing_model_is_a_typed_error(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as err:
        ImageTextScorer(str(tmp_path / "nowhere"))
    assert err.value.key == "model_load_failed"
