"""Losses and metrics against brute force and scikit-learn."""

import itertools

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from siamese_core import losses
from siamese_core.metrics import calibrate_threshold, roc_points, verification_metrics


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
