"""Using a trained checkpoint: verify, embed, nearest; and refusing files that are not checkpoints."""

import pickle

import numpy as np
import pytest
import torch

from siamese_core import data as D
from siamese_core.config import TrainConfig
from siamese_core.errors import UserError
from siamese_core.images import pixels_to_image
from siamese_core.inference import SiameseModel, nearest_vectors
from siamese_core.training import prepare_data


@pytest.fixture(scope="module")
def model(digits_checkpoint):
    return SiameseModel.load(digits_checkpoint)


@pytest.fixture(scope="module")
def held_out(model):
    """The validation images of the trained model: digit images it never trained on."""
    return prepare_data(TrainConfig.from_dict(model.checkpoint["config"]).resolve()).val


def test_verify_tells_same_from_different_on_unseen_images(model, held_out):
    a, b, same = D.evaluation_pairs(held_out.labels, 100, seed=7)
    images = [pixels_to_image(p) for p in held_out.pixels.numpy()]
    verdicts = [model.verify(images[i], images[j]) for i, j in zip(a, b)]
    accuracy = np.mean([v.same == bool(s) for v, s in zip(verdicts, same)])
    assert accuracy >= 0.9
    assert all(v.threshold == model.threshold and 0 <= v.score <= 1 and v.distance >= 0 for v in verdicts)


def test_verify_from_files_and_threshold_override(model, held_out, tmp_path):
    zero = np.flatnonzero(held_out.labels == 0)
    for n, i in enumerate(zero[:2]):
        pixels_to_image(held_out.pixels[i].numpy()).save(tmp_path / f"zero{n}.png")
    verdict = model.verify(tmp_path / "zero0.png", tmp_path / "zero1.png")
    assert verdict.to_dict()["verdict"] in ("same", "different")
    strict = model.verify(tmp_path / "zero0.png", tmp_path / "zero1.png", threshold=1.0)
    assert strict.score == pytest.approx(verdict.score) and (strict.same is False or strict.score >= 1.0)


def test_batch_scores_match_single_verdicts(model, held_out):
    pixels = held_out.pixels[:10].numpy()
    scores = model.score_pairs(pixels[:5], pixels[5:])
    singles = [model.verify(pixels_to_image(pixels[i]), pixels_to_image(pixels[5 + i])).score for i in range(5)]
    assert np.allclose(scores, singles, atol=1e-5)


def test_embed_and_nearest_find_the_same_digit(model, held_out):
    vectors = model.embed(held_out.pixels.numpy())
    assert vectors.shape == (len(held_out), 500)
    hits = []
    for q in range(0, len(held_out), 25):
        index, distances = model.nearest(vectors[q], vectors, k=3, exclude_self=True)
        assert q not in index and np.all(np.diff(distances) >= 0)
        hits.append(held_out.labels[index[0]] == held_out.labels[q])
    assert np.mean(hits) >= 0.9


def test_nearest_vectors_matches_brute_force():
    rng = np.random.default_rng(0)
    gallery, query = rng.normal(size=(200, 16)), rng.normal(size=16)
    index, distances = nearest_vectors(query, gallery, 5)
    brute = np.argsort(np.linalg.norm(gallery - query, axis=1))[:5]
    assert index.tolist() == brute.tolist()
    cos_index, _ = nearest_vectors(query, gallery, 5, metric="cosine")
    cos = gallery @ query / (np.linalg.norm(gallery, axis=1) * np.linalg.norm(query))
    assert cos_index.tolist() == np.argsort(-cos)[:5].tolist()


def test_files_that_are_not_our_checkpoints_are_refused(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    other = tmp_path / "weights.pt"
    torch.save({"fc.weight": torch.zeros(2, 2)}, other)
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(Exception("arbitrary object")))
    for path, message in ((text, "not a Siamese Studio checkpoint"), (other, "not a Siamese Studio checkpoint"),
                          (evil, "not a Siamese Studio checkpoint"), (tmp_path / "missing.pt", "does not exist")):
        with pytest.raises(UserError, match=message):
            SiameseModel.load(path)
