"""Using a trained checkpoint: verify, embed, nearest; and refusing files that are not checkpoints."""

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from siamese_core.data import sources as D
from siamese_core.config import TrainConfig
from siamese_core.errors import UserError
from siamese_core.data.images import pixels_to_image
from siamese_core.inference.model import SiameseModel, nearest_vectors
from siamese_core.data.prepare import prepare_data


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


# ---------------------------------------------------------------- what the Verify page builds on (demo model: no training)

DEMO = Path(__file__).resolve().parents[2] / "assets" / "demo" / "digits-convnet.pt"
SAMPLES = DEMO.parents[1] / "samples" / "digits"


@pytest.fixture(scope="module")
def demo():
    return SiameseModel.load(DEMO)


def sample(digit: int, n: int = 0) -> Path:
    return sorted((SAMPLES / str(digit)).glob("*.png"))[n]


def test_a_verdict_moves_with_the_threshold_without_the_model(demo):
    verdict = demo.verify(sample(4, 0), sample(4, 1))
    assert verdict.same and verdict.threshold == demo.threshold
    stricter = verdict.at(min(1.0, verdict.score + 0.01))
    assert not stricter.same and stricter.score == verdict.score and stricter.distance == verdict.distance
    # Prepared pixels are taken as they are, and give the very same verdict as the files.
    again = demo.verify(demo.prepare(sample(4, 0)), demo.prepare(sample(4, 1)))
    assert again.score == pytest.approx(verdict.score, abs=1e-6)


def test_pairs_csv_with_other_column_names_or_no_header(demo, tmp_path):
    from siamese_core.inference.model import verify_csv

    for n, digit in enumerate((1, 1, 7)):
        (tmp_path / f"{n}.png").write_bytes(sample(digit, n % 2).read_bytes())
    (tmp_path / "named.csv").write_text("left,right\n0.png,1.png\n0.png,2.png\n")
    (tmp_path / "bare.csv").write_text("0.png,1.png\n0.png,2.png\n")
    for name in ("named.csv", "bare.csv"):
        table, accuracy = verify_csv(demo, tmp_path / name)
        assert table["verdict"].tolist() == ["same", "different"] and accuracy is None
    (tmp_path / "one.csv").write_text("only\n0.png\n")
    (tmp_path / "three.csv").write_text("Anchor,Negative,Positive\n0.png,2.png,1.png\n")
    for name in ("one.csv", "three.csv"):
        with pytest.raises(UserError, match="two columns naming the two images"):
            verify_csv(demo, tmp_path / name)


def test_uploaded_pairs_cannot_name_files_outside_the_upload(demo, tmp_path):
    from siamese_core.inference.model import verify_pairs

    inside_dir = tmp_path / "upload"
    inside_dir.mkdir()
    (inside_dir / "a.png").write_bytes(sample(2).read_bytes())
    (tmp_path / "secret.png").write_bytes(sample(2).read_bytes())
    rows = verify_pairs(demo, [("a.png", "../secret.png", None), ("a.png", "a.png", "yes")], inside_dir, confine=True)
    assert rows[0]["score"] is None and rows[0]["error"] == "'../secret.png' is not among the uploaded images."
    assert rows[1]["verdict"] == "same" and str(inside_dir) not in str(rows)


def test_an_uploaded_checkpoint_is_kept_only_when_it_is_ours(runs_dir):
    from siamese_core.inference.verification import store_checkpoint

    kept = store_checkpoint(DEMO.read_bytes())
    assert kept.parent == runs_dir / ".uploads" / "checkpoints" and kept.read_bytes() == DEMO.read_bytes()
    assert store_checkpoint(DEMO.read_bytes()) == kept  # the same file twice: one copy
    buffer = io.BytesIO()
    torch.save({"fc.weight": torch.zeros(2)}, buffer)
    for data in (b"hello", pickle.dumps(Exception("arbitrary object")), buffer.getvalue()):
        with pytest.raises(UserError, match="'model.pt' is not a Siamese Studio checkpoint"):
            store_checkpoint(data, "'model.pt'")
    with pytest.raises(UserError, match="'model.pt' is damaged or incomplete"):  # one of ours, cut off (issue 13)
        store_checkpoint(DEMO.read_bytes()[:5000], "'model.pt'")
    assert sorted(p.name for p in kept.parent.iterdir()) == [kept.name]  # nothing left of the refused files
    with pytest.raises(UserError, match="empty"):
        store_checkpoint(b"", "'model.pt'")


def test_pair_folders_need_exactly_two_images(tmp_path):
    from siamese_core.inference.verification import pair_folders

    for folder, count in (("wrap/p1", 2), ("wrap/p2", 2), ("wrap/p3", 1), ("wrap/p4", 3)):
        (tmp_path / folder).mkdir(parents=True)
        for n in range(count):
            (tmp_path / folder / f"{n}.png").write_bytes(sample(n).read_bytes())
    (tmp_path / "wrap" / "p1" / "readme.txt").write_text("not an image")
    found = {name: (a, b, problem) for name, a, b, problem in pair_folders(tmp_path)}
    assert found["wrap/p1"] == ("wrap/p1/0.png", "wrap/p1/1.png", "")
    assert "holds 1 images" in found["wrap/p3"][2] and "holds 3 images" in found["wrap/p4"][2]


def test_find_similar_ranks_the_same_digit_first_and_leaves_the_query_out(demo, tmp_path):
    from siamese_core.inference.gallery import digits_gallery, find_similar, folder_gallery

    gallery = digits_gallery(demo.image_size, demo.channels, demo.input_pipeline)
    vectors = demo.embed(gallery.pixels)
    hits = 0
    for digit in range(10):
        query = demo.prepare(sample(digit))
        matches, left_out = find_similar(demo, query, gallery, vectors, k=5)
        assert left_out == 1  # the samples are built-in digits, found in the gallery and left out
        assert [m.distance for m in matches] == sorted(m.distance for m in matches) and matches[0].distance > 0
        hits += sum(m.label == str(digit) for m in matches)
    assert hits >= 45  # at least 90% of the 50 nearest are the query's digit
    # A gallery from a folder of class folders, with a file that is not an image.
    for digit in (3, 8):
        (tmp_path / "wrap" / f"d{digit}").mkdir(parents=True)
        for n in range(3):
            (tmp_path / "wrap" / f"d{digit}" / f"{n}.png").write_bytes(sample(digit, n).read_bytes())
    (tmp_path / "wrap" / "d3" / "bad.png").write_bytes(b"no")
    small = folder_gallery(tmp_path, demo.image_size, demo.channels, demo.input_pipeline)
    assert len(small) == 6 and len(small.skipped) == 1 and set(small.labels) == {"d3", "d8"}
    matches, left_out = find_similar(demo, demo.prepare(sample(3, 0)), small, demo.embed(small.pixels), k=2)
    assert left_out == 1 and [m.label for m in matches] == ["d3", "d3"]
