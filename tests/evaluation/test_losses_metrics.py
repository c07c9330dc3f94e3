"""Losses and metrics against brute force and scikit-learn."""

import itertools

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from siamese_core.training import losses
from siamese_core.evaluation.metrics import (calibrate_threshold, equal_error_rate, kfold_threshold, operating_points,
                                             medians_threshold, rates, roc_points, tar_at_far, validation_figures,
                                             verification_metrics)
from siamese_core.evaluation.retrieval import map_at_r, one_shot_accuracy, precision_at_1


def test_verification_metrics_match_scikit_learn():
    rng = np.random.default_rng(0)
    same = rng.random(500) < 0.3
    scores = np.clip(same * 0.3 + rng.random(500) * 0.7, 0, 1)
    result = verification_metrics(scores, same, 0.5)
    said = scores >= 0.5
    assert result["accuracy"] == pytest.approx(skm.accuracy_score(same, said))
    assert result["precision"] == pytest.approx(skm.precision_score(same, said))
    assert result["recall"] == pytest.approx(skm.recall_score(same, said))
    assert result["f1"] == pytest.approx(skm.f1_score(same, said))
    assert result["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(same, said))
    assert result["roc_auc"] == pytest.approx(skm.roc_auc_score(same, scores))
    assert result["tp"] + result["fp"] + result["fn"] + result["tn"] == 500


def test_calibrated_threshold_is_as_good_as_any():
    rng = np.random.default_rng(1)
    same = rng.random(1000) < 0.5
    scores = np.round(np.clip(same * 0.25 + rng.random(1000) * 0.75, 0, 1), 2)  # ties included
    brute = max(((scores >= t) == same).mean() for t in np.linspace(-0.01, 1.01, 2000))
    exact = calibrate_threshold(scores, same, tolerance=0.0)
    assert ((scores >= exact) == same).mean() == pytest.approx(brute)
    default = calibrate_threshold(scores, same)
    assert ((scores >= default) == same).mean() >= brute - 0.002


def test_calibrated_threshold_sits_in_the_middle_of_a_flat_optimum():
    # 'different' pairs score 0-0.05, 'same' pairs 0.6-1: one pair at 0.3 should not pull the threshold
    different = np.linspace(0.0, 0.05, 499).tolist() + [0.3]
    scores = np.array(different + np.linspace(0.6, 1.0, 500).tolist())
    same = np.array([0] * 500 + [1] * 500)
    assert calibrate_threshold(scores, same, tolerance=0.0) == pytest.approx(0.45, abs=1e-6)
    assert 0.2 < calibrate_threshold(scores, same) < 0.45


def test_perfectly_separable_scores_get_a_threshold_between_them():
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.8])
    same = np.array([0, 0, 0, 1, 1])
    t = calibrate_threshold(scores, same)
    assert 0.3 < t < 0.7


def test_the_verdict_threshold_is_halfway_between_the_two_medians():
    # skewed scores: same pairs pile up near 0.9 with a long tail down, different pairs near 0.2; 1 in 5 is same
    rng = np.random.default_rng(3)
    same_scores = np.clip(0.95 - rng.exponential(0.12, 200), 0, 1)
    diff_scores = np.clip(0.15 + rng.exponential(0.05, 800), 0, 1)
    scores, same = np.concatenate([same_scores, diff_scores]), np.repeat([True, False], [200, 800])
    points = operating_points(scores, same)
    middle = (np.median(same_scores) + np.median(diff_scores)) / 2
    assert points["threshold"] == points["medians_threshold"] == pytest.approx(middle)
    assert np.median(diff_scores) < points["threshold"] < np.median(same_scores)
    assert points["threshold_policy"] == "medians" and points["same_share"] == 0.1
    # the rare-same point is calibrate_threshold's for that share; asking for the share makes it the verdict's
    assert points["rare_same_threshold"] == calibrate_threshold(scores, same, same_share=0.1)
    asked = operating_points(scores, same, same_share=0.06, policy="same-share")
    assert asked["threshold"] == asked["rare_same_threshold"] == calibrate_threshold(scores, same, same_share=0.06)
    assert asked["medians_threshold"] == points["medians_threshold"]
    # the figures of one validation are at the verdict's threshold, with both points beside them
    figures = validation_figures(scores, same)
    assert figures["accuracy"] == verification_metrics(scores, same, middle)["accuracy"]
    assert figures["rare_same_threshold"] == points["rare_same_threshold"]
    with pytest.raises(ValueError):
        operating_points(scores, same, policy="best")


def test_different_pairs_beyond_the_few_held_out_people_move_the_medians_threshold():
    # three held-out people, two of whom look alike: their different pairs score high; pairs of a held-out person
    # and a trained one of another class (the trainer's cohort) say where different pairs usually fall
    scores = np.array([0.90, 0.85, 0.80, 0.70, 0.66, 0.64])
    same = np.array([1, 1, 1, 0, 0, 0])
    others = np.full(50, 0.30)
    alone = operating_points(scores, same)["threshold"]
    assert alone == pytest.approx((0.85 + 0.66) / 2)
    points = operating_points(scores, same, other_different=others)
    assert points["threshold"] == points["medians_threshold"] == pytest.approx((0.85 + 0.30) / 2)
    assert validation_figures(scores, same, other_different=others)["threshold"] == points["threshold"]
    # the rare-same point reads the validation pairs only; validation of one kind gets its other kind from them
    assert points["rare_same_threshold"] == operating_points(scores, same)["rare_same_threshold"]
    assert medians_threshold(scores[:3], same[:3], others) == pytest.approx((0.85 + 0.30) / 2)


def test_one_kind_of_pair_has_no_two_medians_and_still_gets_a_threshold():
    scores = np.array([0.2, 0.4, 0.9])
    for same in (np.ones(3), np.zeros(3)):
        t = operating_points(scores, same)["threshold"]
        assert 0.0 <= t <= 1.0 and t == calibrate_threshold(scores, same)


def test_roc_points_and_one_sided_sets():
    scores, same = np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])
    roc = roc_points(scores, same)
    assert roc["fpr"][0] == 0 and roc["tpr"][-1] == 1
    assert np.isnan(verification_metrics(scores, np.ones(4), 0.5)["roc_auc"])


def test_contrastive_loss_known_values():
    d = torch.tensor([0.5, 0.2, 1.5])
    same = torch.tensor([1.0, 0.0, 0.0])
    # 0.25 (pull) + (1 - 0.2)^2 = 0.64 (push) + 0 (already beyond the margin)
    assert losses.contrastive(d, same, margin=1.0).item() == pytest.approx((0.25 + 0.64) / 3)


def brute_force_batch_hard(emb, labels, margin):
    out = []
    for i in range(len(labels)):
        pos = [j for j in range(len(labels)) if labels[j] == labels[i] and j != i]
        neg = [j for j in range(len(labels)) if labels[j] != labels[i]]
        hp = max((emb[i] - emb[j]).norm() for j in pos)
        hn = min((emb[i] - emb[j]).norm() for j in neg)
        out.append(max(hp - hn + margin, 0.0))
    return float(np.mean(out))


def brute_force_semi_hard(emb, labels, margin):
    out = []
    n = len(labels)
    for i, j in itertools.permutations(range(n), 2):
        if labels[i] != labels[j]:
            continue
        d_ap = (emb[i] - emb[j]).norm()
        negs = [(emb[i] - emb[k]).norm() for k in range(n) if labels[k] != labels[i]]
        semi = [d for d in negs if d_ap < d < d_ap + margin]
        d_an = min(semi) if semi else min(negs)
        out.append(max(d_ap - d_an + margin, 0.0))
    return float(np.mean(out))


@pytest.mark.parametrize("strategy, brute", [("batch-hard", brute_force_batch_hard), ("semi-hard", brute_force_semi_hard)])
def test_mined_triplet_loss_matches_brute_force(strategy, brute):
    torch.manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(12, 8), dim=1)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3])
    got = losses.mined_triplet(emb, labels, 0.3, strategy).item()
    assert got == pytest.approx(brute(emb, labels.tolist(), 0.3), abs=1e-5)


def test_triplet_loss_is_zero_when_negatives_are_far_enough():
    a = torch.tensor([[1.0, 0.0]])
    assert losses.triplet(a, a, -a, margin=0.5).item() == 0.0
    assert losses.triplet(a, -a, a, margin=0.5).item() == pytest.approx(2.5)


# ---------------------------------------------------------------- evaluation figures (issue 6)

def known_scores(seed=0, n=400, ties=False):
    rng = np.random.default_rng(seed)
    same = rng.random(n) < 0.4
    scores = np.clip(same * 0.35 + rng.random(n) * 0.65, 0, 1)
    return (np.round(scores, 1) if ties else scores), same


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.7, 1.01])
def test_figures_at_a_threshold_match_scikit_learn(ties, threshold):
    scores, same = known_scores(2, ties=ties)
    result = {**verification_metrics(scores, same, threshold), **rates(scores, same, threshold)}
    said = scores >= threshold
    assert [[result["tp"], result["fn"]], [result["fp"], result["tn"]]] == \
        skm.confusion_matrix(same, said, labels=[True, False]).tolist()
    assert result["precision"] == pytest.approx(skm.precision_score(same, said, zero_division=0))
    assert result["recall"] == pytest.approx(skm.recall_score(same, said, zero_division=0))
    assert result["f1"] == pytest.approx(skm.f1_score(same, said, zero_division=0))
    assert result["roc_auc"] == pytest.approx(skm.roc_auc_score(same, scores))
    tn, fp, fn, tp = skm.confusion_matrix(same, said, labels=[False, True]).ravel()
    assert result["far"] == pytest.approx(fp / (fp + tn)) and result["frr"] == pytest.approx(fn / (fn + tp))


def test_one_kind_of_pair_only_gives_nan_curves_not_errors():
    scores = np.array([0.2, 0.6, 0.9])
    for same in (np.ones(3, bool), np.zeros(3, bool)):
        assert np.isnan(equal_error_rate(scores, same)["eer"])
        assert np.isnan(tar_at_far(scores, same, 0.01)["tar"])
        assert roc_points(scores, same)["fpr"] == []
    all_same = verification_metrics(scores, np.ones(3), 0.5)
    assert all_same["recall"] == pytest.approx(2 / 3) and all_same["precision"] == 1.0
    assert np.isnan(rates(scores, np.ones(3), 0.5)["far"])
    with pytest.raises(ValueError):
        kfold_threshold(scores, np.ones(3))


@pytest.mark.parametrize("ties", [False, True])
def test_equal_error_rate_is_where_false_accepts_meet_false_rejects(ties):
    scores, same = known_scores(3, n=1000, ties=ties)
    result = equal_error_rate(scores, same)
    fpr, tpr, thresholds = skm.roc_curve(same, scores, drop_intermediate=False)
    fnr = 1 - tpr
    # the EER lies between the two rates at every ROC point, and equals both where they cross
    crossing = np.argmax(fnr - fpr <= 0)
    low, high = sorted([fpr[crossing - 1], fpr[crossing]])
    assert low - 1e-9 <= result["eer"] <= high + 1e-9
    assert min(fnr[crossing], fpr[crossing]) - 1e-9 <= result["eer"] <= max(fnr[crossing - 1], fpr[crossing]) + 1e-9
    # its threshold is that of the ROC point on either side of the crossing where the rates are closer
    bracket = [crossing - 1, crossing]
    nearer = min(bracket, key=lambda i: abs(fnr[i] - fpr[i]))
    assert result["threshold"] == pytest.approx(min(thresholds[nearer], 1.0))


def test_equal_error_rate_of_separable_and_of_reversed_scores():
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    assert equal_error_rate(scores, np.array([0, 0, 0, 1, 1, 1]))["eer"] == 0.0
    assert equal_error_rate(scores, np.array([1, 1, 1, 0, 0, 0]))["eer"] == 1.0


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("far", [0.0, 0.01, 0.05, 0.2, 1.0])
def test_true_accept_rate_at_a_false_accept_rate_is_the_best_a_threshold_achieves(ties, far):
    scores, same = known_scores(4, n=600, ties=ties)
    result = tar_at_far(scores, same, far)
    candidates = np.concatenate([np.unique(scores), [np.inf]])
    best = max(((scores >= t) & same).sum() / same.sum() for t in candidates
               if ((scores >= t) & ~same).sum() / (~same).sum() <= far)
    assert result["tar"] == pytest.approx(best)
    said = scores >= result["threshold"]
    assert (said & ~same).sum() / (~same).sum() <= far + 1e-12 or far == 1.0
    assert result["measurable"] == (far * (~same).sum() >= 1)


def test_kfold_threshold_scores_each_fold_with_a_threshold_chosen_elsewhere():
    scores, same = known_scores(5, n=500)
    result = kfold_threshold(scores, same, folds=10, seed=1)
    assert result["folds"] == 10 and len(result["fold_accuracies"]) == 10
    assert result["accuracy_mean"] == pytest.approx(np.mean(result["fold_accuracies"]))
    assert result["accuracy_std"] == pytest.approx(np.std(result["fold_accuracies"]))
    in_sample = ((scores >= calibrate_threshold(scores, same, 0.0)) == same).mean()
    assert result["accuracy_mean"] <= in_sample + 1e-9  # held-out accuracy cannot beat the best in-sample
    assert kfold_threshold(scores, same, 10, seed=1) == result  # seeded
    assert kfold_threshold(scores[:7], same[:7], 10)["folds"] <= 3  # never more folds than pairs of a kind


# ---------------------------------------------------------------- retrieval

def brute_retrieval(similarity, labels):
    """P@1 and MAP@R written out from the definitions, one query at a time."""
    p1, aps = [], []
    for q in range(len(labels)):
        r = sum(1 for j in range(len(labels)) if j != q and labels[j] == labels[q])
        if r == 0:
            continue
        ranked = sorted((j for j in range(len(labels)) if j != q), key=lambda j: (-similarity[q, j], j))
        rel = [labels[j] == labels[q] for j in ranked[:r]]
        p1.append(rel[0])
        aps.append(sum(sum(rel[:i + 1]) / (i + 1) for i in range(r) if rel[i]) / r)
    return np.mean(p1), np.mean(aps)


def clustered_embeddings(seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(6), [2, 5, 8, 3, 6, 1])  # the last class is a lone query: left out
    centres = rng.normal(size=(6, 8))
    return (centres[labels] + rng.normal(scale=0.9, size=(len(labels), 8))).astype(np.float32), labels


def test_retrieval_figures_match_their_definitions():
    vectors, labels = clustered_embeddings()
    similarity = -np.linalg.norm(vectors[:, None] - vectors[None], axis=2)
    p1, mapr = brute_retrieval(similarity, labels)
    assert precision_at_1(similarity, labels) == pytest.approx(p1)
    assert map_at_r(similarity, labels) == pytest.approx(mapr)
    assert 0 < mapr < 1  # the clusters overlap: a test that could fail


def test_retrieval_figures_match_pytorch_metric_learning():
    pytest.importorskip("pytorch_metric_learning", reason="dev dependency: pip install pytorch-metric-learning")
    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.utils.accuracy_calculator import AccuracyCalculator
    from pytorch_metric_learning.utils.inference import CustomKNN

    for seed in range(3):
        vectors, labels = clustered_embeddings(seed)
        calculator = AccuracyCalculator(include=("precision_at_1", "mean_average_precision_at_r"),
                                        knn_func=CustomKNN(LpDistance(normalize_embeddings=False)), device=torch.device("cpu"))
        theirs = calculator.get_accuracy(torch.from_numpy(vectors), torch.from_numpy(labels))
        similarity = -np.linalg.norm(vectors[:, None] - vectors[None], axis=2)
        assert precision_at_1(similarity, labels) == pytest.approx(theirs["precision_at_1"])
        assert map_at_r(similarity, labels) == pytest.approx(theirs["mean_average_precision_at_r"])


def test_one_shot_accuracy_is_seeded_and_above_chance_on_separable_classes():
    vectors, labels = clustered_embeddings()
    similarity = -np.linalg.norm(vectors[:, None] - vectors[None], axis=2)
    result = one_shot_accuracy(similarity, labels, n_way=3, episodes=200, seed=7)
    assert result == one_shot_accuracy(similarity, labels, n_way=3, episodes=200, seed=7)
    assert result["chance"] == pytest.approx(1 / 3) and result["accuracy"] > 0.5
    assert result["low"] <= result["accuracy"] <= result["high"]
    perfect = np.where(labels[:, None] == labels[None], 1.0, 0.0)
    assert one_shot_accuracy(perfect, labels, 5, episodes=20)["accuracy"] == 1.0
    with pytest.raises(ValueError):
        one_shot_accuracy(similarity, labels, n_way=6)  # the lone class cannot give a query
