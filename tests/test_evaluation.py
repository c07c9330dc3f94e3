"""evaluate(): figures, the honest threshold, and pictures of pairs."""

import json

import numpy as np
import pytest
from PIL import Image

from siamese_core.data import load_image_folder
from siamese_core.config import TrainConfig
from siamese_core.evaluation import evaluate
from siamese_core.inference import SiameseModel
from siamese_core.training import train


def test_evaluate_on_the_checkpoints_own_validation_split(digits_checkpoint, tmp_path):
    result = evaluate(digits_checkpoint, tmp_path, n_pairs=400, n_images=3)
    assert result["pairs"] == 400 and result["positives"] == 200
    assert result["accuracy"] >= 0.93
    assert result["threshold_source"].startswith("the checkpoint")
    assert result["optimistic"]["accuracy"] >= result["accuracy"]  # the same pairs choosing their threshold
    assert json.loads((tmp_path / "metrics.json").read_text())["pairs"] == 400
    pictures = sorted((tmp_path / "pairs").glob("*.png"))
    assert len(pictures) == 3 and Image.open(pictures[0]).size == (236, 156)


def test_sequential_pairs_are_each_counted_once(digits_checkpoint, tmp_path, digit_folders):
    result = evaluate(digits_checkpoint, tmp_path, val_path=str(digit_folders), sequential=True, n_images=0)
    assert result["pairs"] == 60  # 120 images, pairs (0,1), (2,3), ...
    assert result["pairs_protocol"].startswith("sequential")
    assert not (tmp_path / "pairs").exists()


def test_embedding_checkpoints_verify_by_distance(tmp_path, digit_folders):
    config = TrainConfig(dataset="digits", backbone="convnet", mode="contrastive", epochs=1, embedding_dim=32,
                         pairs_per_epoch=4000)
    train(config, tmp_path / "run")
    model = SiameseModel.load(tmp_path / "run" / "checkpoints" / "best.pt")
    files = sorted((digit_folders / "digit_7").iterdir())
    verdict = model.verify(files[0], files[1])
    assert verdict.distance == pytest.approx(2 * (1 - verdict.score), abs=1e-5)
    assert verdict.same == (verdict.distance <= model.distance_threshold + 1e-9)


def test_a_flat_folder_embeds_without_labels(tmp_path, digits_checkpoint, digit_folders):
    for n, path in enumerate(sorted((digit_folders / "digit_5").iterdir())[:4]):
        Image.open(path).save(tmp_path / f"{n}.png")
    image_set = load_image_folder(tmp_path, 28, 1)
    assert len(image_set) == 4 and not image_set.has_labels
    vectors = SiameseModel.load(digits_checkpoint).embed(image_set.batch(np.arange(4)).numpy())
    assert vectors.shape == (4, 500)
