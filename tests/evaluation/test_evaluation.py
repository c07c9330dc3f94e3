"""evaluate(): figures, the honest threshold, and pictures of pairs."""

import json

import numpy as np
import pytest
from PIL import Image

from siamese_core.data.sources import load_image_folder
from siamese_core.config import TrainConfig
from siamese_core.evaluation.evaluate import evaluate, evaluation_set, score_evaluation
from siamese_core.evaluation.metrics import verification_metrics
from siamese_core.evaluation.retrieval import map_at_r, precision_at_1
from siamese_core.inference.model import SiameseModel
from siamese_core.training.loop import train


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


@pytest.mark.slow
def test_embedding_checkpoints_verify_by_distance(tmp_path, digit_folders):
    config = TrainConfig(dataset="digits", backbone="convnet", mode="contrastive", epochs=1, embedding_dim=32,
                         pairs_per_epoch=4000)
    train(config, tmp_path / "run")
    model = SiameseModel.load(tmp_path / "run" / "checkpoints" / "best.pt")
    files = sorted((digit_folders / "digit_7").iterdir())
    verdict = model.verify(files[0], files[1])
    assert verdict.distance == pytest.approx(2 * (1 - verdict.score), abs=1e-5)
    assert verdict.same == (verdict.distance <= model.distance_threshold + 1e-9)

    # retrieval ranks by embedding distance: the same figures as from the embeddings themselves
    image_set = evaluation_set(model, str(digit_folders))
    ev = score_evaluation(model, image_set, n_pairs=200)
    vectors = model.embed(image_set.batch(np.arange(len(image_set))).numpy())
    distances = np.linalg.norm(vectors[:, None] - vectors[None], axis=2)
    off_diagonal = ~np.eye(len(image_set), dtype=bool)  # an image against itself is never asked
    assert ev.similarity[off_diagonal] == pytest.approx((1 - distances / 2)[off_diagonal], abs=1e-3)
    assert ev.retrieval()["precision_at_1"] == pytest.approx(precision_at_1(-distances, image_set.labels))
    assert ev.retrieval()["map_at_r"] == pytest.approx(map_at_r(-distances, image_set.labels), abs=1e-6)
    assert ev.retrieval()["precision_at_1"] > 0.5  # ten digits: chance is about 10%


def test_a_flat_folder_embeds_without_labels(tmp_path, digits_checkpoint, digit_folders):
    for n, path in enumerate(sorted((digit_folders / "digit_5").iterdir())[:4]):
        Image.open(path).save(tmp_path / f"{n}.png")
    image_set = load_image_folder(tmp_path, 28, 1)
    assert len(image_set) == 4 and not image_set.has_labels
    vectors = SiameseModel.load(digits_checkpoint).embed(image_set.batch(np.arange(4)).numpy())
    assert vectors.shape == (4, 500)


# ---------------------------------------------------------------- the evaluation behind the page and `eval` (issue 6)

@pytest.fixture(scope="module")
def scored_digits(digits_checkpoint):
    model = SiameseModel.load(digits_checkpoint)
    return model, score_evaluation(model, evaluation_set(model), n_pairs=600, own_validation_split=True)


def test_one_scoring_gives_every_figure_at_any_threshold(scored_digits):
    model, ev = scored_digits
    assert len(ev.scores) == 600 and ev.positives == 300
    for threshold in (0.05, model.threshold, 0.5, 0.95):
        at = ev.at(threshold)
        assert at == {**verification_metrics(ev.scores, ev.same, threshold), "far": at["fp"] / 300, "frr": at["fn"] / 300}
        assert ev.point(threshold) == pytest.approx((at["fp"] / 300, at["tp"] / 300))
    assert ev.at(0.95)["recall"] < ev.at(0.05)["recall"]
    assert "these very pairs" not in ev.model_threshold_note  # 600 pairs: not the 1000 that chose it
    assert "validation split" in ev.model_threshold_note
    hist = ev.histogram(20)
    assert sum(hist["same"]) == 300 and sum(hist["different"]) == 300 and len(hist["edges"]) == 21
    assert ev.retrieval_classes() == len(np.unique(ev.image_set.labels)) and ev.has_retrieval


def test_mistakes_come_most_confident_first(scored_digits):
    _, ev = scored_digits
    threshold = 0.02  # low: plenty of false accepts
    accepts = ev.pairs_shown(threshold, "false accepts")
    assert len(accepts) and (ev.scores[accepts] >= threshold).all() and not ev.same[accepts].any()
    assert (np.diff(ev.scores[accepts]) <= 0).all()  # highest-scoring different pairs first
    rejects = ev.pairs_shown(0.98, "false rejects")
    assert (np.diff(ev.scores[rejects]) >= 0).all() and ev.same[rejects].all()
    everything = ev.pairs_shown(threshold, "all")
    mistakes = ev.pairs_shown(threshold, "mistakes")
    assert len(everything) == 600 and list(everything[:len(mistakes)]) == list(mistakes)


def test_the_report_says_which_set_chose_the_threshold(scored_digits):
    model, ev = scored_digits
    report = ev.report()
    assert report["threshold"] == model.threshold and report["threshold_source"].startswith("the checkpoint")
    assert report["kfold"]["folds"] == 10 and 0.8 < report["kfold"]["accuracy_mean"] <= 1
    assert report["confusion_matrix"]["counts"] == [[report["tp"], report["fn"]], [report["fp"], report["tn"]]]
    assert [t["far"] for t in report["tar_at_far"]] == [0.001, 0.01, 0.1]
    assert report["retrieval"]["one_shot"]["n_way"] == 5
    by_hand = ev.report(0.5, "given by a test")
    assert by_hand["threshold"] == 0.5 and by_hand["threshold_source"] == "given by a test"
    # both of the checkpoint's thresholds, the verdict's first, each with its figures on these pairs
    verdict, rare = by_hand["operating_points"]
    assert (verdict["name"], verdict["verdict"], rare["name"], rare["verdict"]) == ("medians", True, "rare-same", False)
    assert verdict["threshold"] == model.threshold and rare["threshold"] == model.operating_points["rare_same_threshold"]
    for point in (verdict, rare):
        at = ev.at(point["threshold"])
        assert [point[k] for k in ("accuracy", "precision", "recall")] == [at[k] for k in ("accuracy", "precision", "recall")]


def test_evaluate_writes_figures_and_plots(digits_checkpoint, tmp_path, digit_folders):
    result = evaluate(digits_checkpoint, tmp_path, val_path=str(digit_folders), n_pairs=200, n_images=2, n_way=10)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["threshold_source"] == "the checkpoint (chosen on the model's own validation pairs, not on this set)"
    assert saved["retrieval"]["one_shot"]["n_way"] == 10 and saved["eer"]["eer"] == result["eer"]["eer"]
    for name in ("roc.png", "scores.png"):
        with Image.open(tmp_path / name) as picture:
            assert picture.size == (640, 480)
            assert len(picture.convert("RGB").getcolors(1 << 24)) > 5  # drawn on, not blank
