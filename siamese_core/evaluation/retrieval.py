"""Retrieval figures on a similarity matrix: precision at 1, MAP@R and N-way one-shot accuracy.

Every image is a query and every other image a candidate answer (the query itself is left
out), ranked by the model's similarity, highest first. The definitions are those of
pytorch-metric-learning's AccuracyCalculator with the query set equal to the reference set:
- precision at 1: the share of queries whose nearest other image has the query's class;
- MAP@R: for a query whose class has R other images, (1/R) * sum over the first R answers of
  P(i) * rel(i), where rel(i) is 1 when answer i has the query's class and P(i) is the
  precision among the first i answers; averaged over queries.
Queries whose class has no other image ("lone" queries) are left out of both, as there.
Pure numpy: no extra dependency. The ranked lists are the k-nearest selection of siamese_core.inference.index.
"""

from __future__ import annotations

import math
from typing import TypedDict

import numpy as np

from ..inference.index import smallest


def _ranked_matches(similarity: np.ndarray, labels: np.ndarray, depth: int):
    """For each query: whether its `depth` best answers share its class (self excluded, stable ties)."""
    sim = np.array(similarity, dtype=np.float64)
    np.fill_diagonal(sim, -np.inf)
    depth = max(1, min(depth, len(labels) - 1))
    # the `depth` smallest of the negated similarity, as a stable argsort ranks them: equal scores in index order
    order = smallest(-sim, depth)
    return labels[order] == labels[:, None]


def _others_of_same_class(labels: np.ndarray) -> np.ndarray:
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return counts[inverse] - 1


def precision_at_1(similarity: np.ndarray, labels: np.ndarray) -> float:
    labels = np.asarray(labels)
    keep = _others_of_same_class(labels) > 0
    if not keep.any() or len(labels) < 2:
        return float("nan")
    return float(_ranked_matches(similarity, labels, 1)[keep, 0].mean())


def map_at_r(similarity: np.ndarray, labels: np.ndarray) -> float:
    labels = np.asarray(labels)
    r = _others_of_same_class(labels)
    keep = r > 0
    if not keep.any():
        return float("nan")
    depth = int(r.max())
    relevant = _ranked_matches(similarity, labels, depth).astype(np.float64)
    ranks = np.arange(1, relevant.shape[1] + 1)
    within_r = ranks[None, :] <= r[:, None]
    precision_at_i = np.cumsum(relevant, axis=1) / ranks
    ap = (precision_at_i * relevant * within_r).sum(axis=1) / np.maximum(r, 1)
    return float(ap[keep].mean())


class OneShot(TypedDict):
    n_way: int
    episodes: int
    seed: int
    accuracy: float
    low: float  # the 95% interval
    high: float
    chance: float


def one_shot_accuracy(similarity: np.ndarray, labels: np.ndarray, n_way: int, episodes: int = 500,
                      seed: int = 0, max_queries_per_class: int = 20) -> OneShot:
    """N-way one-shot classification, averaged over seeded episodes.

    Each episode picks `n_way` classes (among those with two images or more), one random image of
    each as its only example (the support), and up to `max_queries_per_class` other images of each
    as queries; a query is answered with the class of the support image the model finds most
    alike. Returns the mean accuracy, a 95% interval (mean +- 1.96 standard errors over
    episodes), chance (1 / N) and the numbers used.
    """
    labels = np.asarray(labels)
    sim = np.asarray(similarity, dtype=np.float64)
    classes, counts = np.unique(labels, return_counts=True)
    usable = classes[counts >= 2]
    if n_way < 2 or n_way > len(usable):
        raise ValueError(f"n_way must be between 2 and {len(usable)} (classes with two images or more)")
    members = {c: np.flatnonzero(labels == c) for c in usable}
    rng = np.random.default_rng(seed)
    accuracies = np.empty(episodes)
    for e in range(episodes):
        chosen = rng.choice(usable, size=n_way, replace=False)
        supports, queries, truth = [], [], []
        for k, c in enumerate(chosen):
            shuffled = rng.permutation(members[c])
            supports.append(shuffled[0])
            picked = shuffled[1:1 + max_queries_per_class]
            queries.append(picked)
            truth.append(np.full(len(picked), k))
        queries, truth = np.concatenate(queries), np.concatenate(truth)
        answers = np.argmax(sim[np.ix_(queries, np.array(supports))], axis=1)
        accuracies[e] = (answers == truth).mean()
    mean = float(accuracies.mean())
    half = 1.96 * float(accuracies.std(ddof=1)) / math.sqrt(episodes) if episodes > 1 else float("nan")
    return {"n_way": int(n_way), "episodes": int(episodes), "seed": int(seed), "accuracy": mean,
            "low": max(0.0, mean - half), "high": min(1.0, mean + half), "chance": 1.0 / n_way}
