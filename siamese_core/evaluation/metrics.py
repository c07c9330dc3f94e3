"""Verification metrics on scored pairs: a score in [0, 1] where higher means 'same'.

Figures are plain dicts (they go into metrics.json and the pages index them by name), typed with
TypedDicts, so the names they hold are written down once, here.
"""

from __future__ import annotations

from typing import NotRequired, Optional, TypedDict

import numpy as np
from sklearn.metrics import roc_auc_score, roc_curve

from ..config import RARE_SAME_SHARE, THRESHOLD_POLICIES


class Figures(TypedDict):
    """verification_metrics(): the figures at one threshold, each pair counted once."""
    pairs: int
    positives: int  # same pairs
    accuracy: float
    balanced_accuracy: float
    precision: float
    recall: float
    f1: float
    roc_auc: float
    threshold: float
    tp: int  # same pairs called same
    fp: int  # different pairs called same
    fn: int  # same pairs called different
    tn: int  # different pairs called different


class Rates(TypedDict):
    """rates(): false-accept rate (different pairs called 'same'), false-reject rate (same called 'different')."""
    far: float
    frr: float


class FiguresAt(Figures, Rates):
    """ScoredEvaluation.at(): every figure at one threshold."""


class RocPoints(TypedDict):
    fpr: list
    tpr: list
    thresholds: list


class EqualErrorRate(TypedDict):
    eer: float
    threshold: float


class TarAtFar(TypedDict):
    """tar_at_far(): the true-accept rate a threshold delivers at a false-accept rate of at most `far`."""
    tar: float
    far: float
    achieved_far: NotRequired[float]  # absent when the pairs are all of one kind
    threshold: float
    measurable: bool


class KFold(TypedDict):
    """kfold_threshold(): the threshold chosen on k-1 folds and scored on the held-out one, k times."""
    folds: int
    accuracy_mean: float
    accuracy_std: float
    fold_accuracies: list
    fold_thresholds: list
    threshold: float  # the median of the fold thresholds
    seed: int


def calibrate_threshold(scores: np.ndarray, same: np.ndarray, tolerance: float = 0.002,
                        same_share: Optional[float] = None) -> float:
    """A decision threshold (verdict 'same' when score >= threshold) with near-best accuracy on these pairs.

    With `same_share`, accuracy is weighted as if same pairs were that share of all pairs, whatever
    their share here: 0.3 is the mean of balanced accuracy and accuracy where one pair in ten is
    the same, a threshold that stays precise when same pairs are rare (sequential digit pairs,
    a gallery search) at a small cost on balanced pairs.

    The best accuracy is often reached only in a narrow band that a handful of pairs decides, so
    the threshold is taken from the middle of all thresholds whose accuracy is within `tolerance`
    (0.2%, two pairs in a thousand) of the best: it moves less from one epoch to the next and
    generalises better. Candidates are midpoints between neighbouring distinct scores, all tried at once.
    """
    scores = np.asarray(scores, dtype=np.float64)
    same = np.asarray(same).astype(bool)
    if len(scores) == 0:
        return 0.5
    distinct = np.unique(scores)
    candidates = np.concatenate([[distinct[0] - 1e-6], (distinct[:-1] + distinct[1:]) / 2, [distinct[-1] + 1e-6]])
    order = np.argsort(scores)
    sorted_same = same[order]
    # pairs below a candidate are called 'different': correct when truly different
    below = np.searchsorted(scores[order], candidates, side="left")
    diff_below = np.concatenate([[0], np.cumsum(~sorted_same)])[below]
    same_above = same.sum() - np.concatenate([[0], np.cumsum(sorted_same)])[below]
    if same_share is None:
        correct = (diff_below + same_above) / len(scores)
    else:
        correct = (same_share * same_above / max(1, same.sum())
                   + (1 - same_share) * diff_below / max(1, (~same).sum()))
    near_best = candidates[correct >= correct.max() - np.floor(tolerance * len(scores)) / len(scores)]
    middle = (near_best.min() + near_best.max()) / 2
    return float(np.clip(near_best[np.argmin(np.abs(near_best - middle))], 0.0, 1.0))


class OperatingPoints(TypedDict):
    """operating_points(): the verdict's threshold and the two points it is taken from."""
    threshold: float  # the verdict's: medians_threshold or rare_same_threshold, as threshold_policy says
    threshold_policy: str  # one of THRESHOLD_POLICIES
    medians_threshold: float  # the middle of the median same score and the median different score
    rare_same_threshold: float  # tuned as if same pairs were `same_share` of all pairs
    same_share: float


def medians_threshold(scores: np.ndarray, same: np.ndarray, other_different: Optional[np.ndarray] = None) -> float:
    """The middle of the median score of the same pairs and the median score of the different pairs.

    A verdict on one pair has no known share of same pairs, so this threshold leans on neither kind. Validation
    holds out only a few identities (three of the Quick preset's ten people), so its different pairs come from a
    handful of pairs of people and their median follows whichever happen to look alike: `other_different` adds
    the scores of pairs known to be different beyond those (validation images against training images of other
    classes: cohort_pairs in the trainer), which measured within 2 points of the best threshold where the
    validation pairs alone cost up to 11 (benchmarks/threshold_cost.py). With no same pair, or no different
    pair at all, there are no two medians: calibrate_threshold's answer then.
    """
    scores = np.asarray(scores, dtype=np.float64)
    same = np.asarray(same).astype(bool)
    different = scores[~same]
    if other_different is not None:
        different = np.concatenate([different, np.asarray(other_different, dtype=np.float64).ravel()])
    if not same.any() or not len(different):
        return calibrate_threshold(scores, same)
    return float(np.clip(0.5 * (np.median(scores[same]) + np.median(different)), 0.0, 1.0))


def operating_points(scores: np.ndarray, same: np.ndarray, same_share: float = RARE_SAME_SHARE,
                     policy: str = "medians", other_different: Optional[np.ndarray] = None) -> OperatingPoints:
    """Both thresholds a checkpoint carries, chosen on its validation pairs, and which one gives the verdict.

    The middle of the medians (with `other_different`, see medians_threshold) suits a verdict on one pair of
    unknown prior; the rare-same point (calibrate_threshold weighted as if same pairs were `same_share` of all)
    stays precise where same pairs are rare, as in sequential digit pairs (about 6% same). `policy` "same-share"
    makes the rare-same point the verdict's (a person who asked for a share gets it), "medians" the middle of the
    medians. Every validation of the trainer uses this.
    """
    if policy not in THRESHOLD_POLICIES:
        raise ValueError(f"unknown threshold policy {policy!r}")
    middle = medians_threshold(scores, same, other_different)
    rare = calibrate_threshold(scores, same, same_share=same_share)
    return {"threshold": rare if policy == "same-share" else middle, "threshold_policy": policy,
            "medians_threshold": middle, "rare_same_threshold": rare, "same_share": float(same_share)}


def validation_figures(scores: np.ndarray, same: np.ndarray, same_share: float = RARE_SAME_SHARE,
                       policy: str = "medians", other_different: Optional[np.ndarray] = None) -> dict:
    """verification_metrics() at the verdict's threshold from operating_points(), with both points beside them:
    one validation's figures (the best epoch is the one with the highest accuracy here)."""
    points = operating_points(scores, same, same_share, policy, other_different)
    return {**verification_metrics(scores, same, points["threshold"]), **points}


def verification_metrics(scores: np.ndarray, same: np.ndarray, threshold: float) -> Figures:
    """Accuracy, precision, recall, F1 at `threshold`, and ROC AUC; each pair counted once."""
    scores = np.asarray(scores, dtype=np.float64)
    truth = np.asarray(same).astype(bool)
    said_same = scores >= threshold
    tp = int((said_same & truth).sum())
    fp = int((said_same & ~truth).sum())
    fn = int((~said_same & truth).sum())
    tn = int((~said_same & ~truth).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "pairs": int(len(scores)),
        "positives": int(truth.sum()),
        "accuracy": (tp + tn) / len(scores) if len(scores) else 0.0,
        "balanced_accuracy": 0.5 * (recall + (tn / (tn + fp) if tn + fp else 0.0)),
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "roc_auc": roc_auc(scores, truth),
        "threshold": float(threshold),
        "tp": tp, "fp": fp, "fn": fn, "tn": tn,
    }


def roc_auc(scores: np.ndarray, same: np.ndarray) -> float:
    """Area under the ROC curve (NaN when only one kind of pair is present)."""
    same = np.asarray(same).astype(bool)
    if same.all() or not same.any():
        return float("nan")
    return float(roc_auc_score(same, scores))


def roc_points(scores: np.ndarray, same: np.ndarray, max_points: int = 200) -> RocPoints:
    """False- and true-positive rates along the ROC curve, thinned to at most `max_points`."""
    same = np.asarray(same).astype(bool)
    if same.all() or not same.any():
        return {"fpr": [], "tpr": [], "thresholds": []}
    fpr, tpr, thresholds = roc_curve(same, scores)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(max_points, len(fpr))).round().astype(int))
    return {
        "fpr": fpr[keep].tolist(),
        "tpr": tpr[keep].tolist(),
        "thresholds": np.clip(thresholds[keep], 0.0, 1.0).tolist(),
    }


def rates(scores: np.ndarray, same: np.ndarray, threshold: float) -> Rates:
    """False-accept rate (different pairs called 'same') and false-reject rate (same pairs called 'different')."""
    scores = np.asarray(scores, dtype=np.float64)
    truth = np.asarray(same).astype(bool)
    said_same = scores >= threshold
    negatives, positives = int((~truth).sum()), int(truth.sum())
    return {
        "far": float((said_same & ~truth).sum() / negatives) if negatives else float("nan"),
        "frr": float((~said_same & truth).sum() / positives) if positives else float("nan"),
    }


def _full_roc(scores: np.ndarray, same: np.ndarray):
    return roc_curve(same, scores, drop_intermediate=False)


def equal_error_rate(scores: np.ndarray, same: np.ndarray) -> EqualErrorRate:
    """The rate at which false accepts and false rejects are equal, and a threshold near it.

    Along the ROC curve the false-accept rate (FPR) rises as the false-reject rate (1 - TPR)
    falls; the EER is where they cross, interpolated linearly between the two ROC points on
    either side of the crossing (the usual definition in face and speaker verification).
    The threshold is that of the ROC point closest to the crossing. NaN when only one kind
    of pair is present.
    """
    same = np.asarray(same).astype(bool)
    if same.all() or not same.any():
        return {"eer": float("nan"), "threshold": float("nan")}
    fpr, tpr, thresholds = _full_roc(scores, same)
    fnr = 1.0 - tpr
    gap = fnr - fpr  # falls from +1 (threshold above all) to -1 (below all)
    after = int(np.argmax(gap <= 0))  # first point where false accepts reach false rejects
    before = max(after - 1, 0)
    if gap[before] == gap[after]:
        eer = (fpr[after] + fnr[after]) / 2
    else:
        w = gap[before] / (gap[before] - gap[after])
        eer = fpr[before] + w * (fpr[after] - fpr[before])
    nearest = before if abs(gap[before]) < abs(gap[after]) else after
    return {"eer": float(eer), "threshold": float(np.clip(thresholds[nearest], 0.0, 1.0))}


def tar_at_far(scores: np.ndarray, same: np.ndarray, far: float) -> TarAtFar:
    """True-accept rate at a false-accept rate of at most `far`: conservative, not interpolated.

    The best true-accept rate among the thresholds that really achieve a false-accept rate no
    higher than `far` on these pairs (so the figure is one a threshold can deliver, never an
    interpolation between two thresholds). With few different pairs, small targets are reached
    only by accepting nothing: `far` below 1 / (number of different pairs) is not measurable,
    and `measurable` says so.
    """
    same = np.asarray(same).astype(bool)
    negatives = int((~same).sum())
    if same.all() or not same.any():
        return {"tar": float("nan"), "far": float(far), "threshold": float("nan"), "measurable": False}
    fpr, tpr, thresholds = _full_roc(scores, same)
    allowed = np.flatnonzero(fpr <= far + 1e-12)
    best = allowed[np.argmax(tpr[allowed])]  # the last allowed point: tpr never falls along the curve
    return {"tar": float(tpr[best]), "far": float(far), "achieved_far": float(fpr[best]),
            "threshold": float(np.clip(thresholds[best], 0.0, 1.0)), "measurable": far * negatives >= 1}


def kfold_threshold(scores: np.ndarray, same: np.ndarray, folds: int = 10, seed: int = 0) -> KFold:
    """Choose the threshold on k-1 folds and score the held-out fold, k times (the LFW protocol).

    Folds are stratified (each holds its share of same and different pairs) and drawn with
    `seed`. Returns the mean and standard deviation of the held-out accuracies, each fold's
    threshold and accuracy, and `threshold`: the median of the fold thresholds, one threshold
    to use afterwards (chosen by this set, so figures at it on this same set are not held out).
    """
    scores = np.asarray(scores, dtype=np.float64)
    truth = np.asarray(same).astype(bool)
    folds = int(min(folds, truth.sum(), (~truth).sum()))
    if folds < 2:
        raise ValueError("k-fold threshold choice needs at least two same and two different pairs")
    rng = np.random.default_rng(seed)
    fold_of = np.empty(len(scores), dtype=np.int64)
    for kind in (True, False):
        members = rng.permutation(np.flatnonzero(truth == kind))
        fold_of[members] = np.arange(len(members)) % folds
    thresholds, accuracies = [], []
    for k in range(folds):
        held = fold_of == k
        t = calibrate_threshold(scores[~held], truth[~held])
        thresholds.append(t)
        accuracies.append(float(((scores[held] >= t) == truth[held]).mean()))
    return {"folds": folds, "accuracy_mean": float(np.mean(accuracies)), "accuracy_std": float(np.std(accuracies)),
            "fold_accuracies": accuracies, "fold_thresholds": thresholds, "threshold": float(np.median(thresholds)),
            "seed": int(seed)}
