"""Verification metrics on scored pairs: a score in [0, 1] where higher means 'same'."""

from __future__ import annotations

import numpy as np


def calibrate_threshold(scores: np.ndarray, same: np.ndarray, tolerance: float = 0.002) -> float:
    """A decision threshold (verdict 'same' when score >= threshold) with near-best accuracy on these pairs.

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
    correct = diff_below + same_above
    near_best = candidates[correct >= correct.max() - np.floor(tolerance * len(scores))]
    middle = (near_best.min() + near_best.max()) / 2
    return float(np.clip(near_best[np.argmin(np.abs(near_best - middle))], 0.0, 1.0))


def verification_metrics(scores: np.ndarray, same: np.ndarray, threshold: float) -> dict:
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
    from sklearn.metrics import roc_auc_score

    same = np.asarray(same).astype(bool)
    if same.all() or not same.any():
        return float("nan")
    return float(roc_auc_score(same, scores))


def roc_points(scores: np.ndarray, same: np.ndarray, max_points: int = 200) -> dict:
    """False- and true-positive rates along the ROC curve, thinned to at most `max_points`."""
    from sklearn.metrics import roc_curve

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
