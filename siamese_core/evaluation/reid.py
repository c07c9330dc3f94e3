"""Person re-identification figures, the Market-1501 way: CMC rank-k and mAP over a query/gallery split.

The protocol, as in the official Market-1501 code and torchreid's `eval_market1501`:
- each query is ranked against the whole gallery by distance, nearest first;
- gallery images of the query's person taken by the query's camera are left out ("junk"):
  finding the same person in the same camera is too easy to count;
- a query whose person has no image left in the gallery is skipped;
- CMC rank-k: the share of queries with a right answer among the first k;
- AP: for a query with R right answers at (junk-free) ranks r_1 < ... < r_R,
  (1/R) * sum_i i / r_i; mAP is its mean over queries.
The data carries no "-1" junk or "0000" distractor boxes (those are in Market's test gallery only),
so nothing else is left out. Pure numpy, in blocks of queries, so ~3,000 x 10,000 fits in memory.
"""

from __future__ import annotations

import os
import re
from typing import Callable, Optional, Sequence, Union

import numpy as np

from ..config import DEFAULT_IDENTITY_PATTERN as IDENTITY_PATTERN
from ..errors import UserError

CAMERA_PATTERN = r"_c(\d+)"
RANKS = (1, 5, 10)
_QUERIES_PER_BLOCK = 256


def _compile(pattern: str, flag: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise UserError(f"{flag} '{pattern}' is not a valid regular expression ({exc}).") from None


def _value(match: re.Match):
    text = match.group(1) if match.groups() else match.group(0)
    return int(text) if text.isdigit() else text


def parse_identity_camera(name: str, identity_pattern: str = IDENTITY_PATTERN,
                          camera_pattern: str = CAMERA_PATTERN) -> tuple:
    """(person, camera) from a file name such as 0002_c1s1_000451_03.jpg -> (2, 1); folders are ignored."""
    base = os.path.basename(name)
    person = _compile(identity_pattern, "--identity-pattern").search(base)
    camera = _compile(camera_pattern, "--camera-pattern").search(base)
    if not person or not camera:
        missing = " and ".join(what for what, found in (("person", person), ("camera", camera)) if not found)
        raise UserError(f"'{base}' does not say which {missing} it shows: re-identification reads the person with "
                        f"'{identity_pattern}' and the camera with '{camera_pattern}' (Market-1501 names such as "
                        "0002_c1s1_000451_03.jpg: person 2, camera 1).")
    return _value(person), _value(camera)


def reid_labels(names: Sequence[str], identity_pattern: str = IDENTITY_PATTERN,
                camera_pattern: str = CAMERA_PATTERN, required: bool = False):
    """(persons, cameras) as integer codes for every name; None when a name does not match (UserError if required)."""
    identity, camera = _compile(identity_pattern, "--identity-pattern"), _compile(camera_pattern, "--camera-pattern")
    bases = [os.path.basename(n) for n in names]
    if not bases or not all(identity.search(b) and camera.search(b) for b in bases):
        if not required:
            return None
        if not bases:
            raise UserError("Re-identification needs images; there are none.")
        first_bad = next(b for b in bases if not (identity.search(b) and camera.search(b)))
        parse_identity_camera(first_bad, identity_pattern, camera_pattern)  # raises, naming the file
    pairs = [parse_identity_camera(b, identity_pattern, camera_pattern) for b in bases]
    persons = np.unique([str(p) for p, _ in pairs], return_inverse=True)[1]
    cameras = np.unique([str(c) for _, c in pairs], return_inverse=True)[1]
    return persons.astype(np.int64), cameras.astype(np.int64)


def reid_split(persons: np.ndarray, cameras: np.ndarray, seed: int = 0) -> tuple:
    """(query_idx, gallery_idx): one query per person and camera, chosen with `seed`; the rest is the gallery.

    A query must keep a match from another camera in the gallery. So people seen by one camera give no
    query (they stay in the gallery as distractors), and a person with fewer than two cameras holding two
    images or more keeps one single-image camera (chosen with `seed`) wholly in the gallery.
    """
    persons, cameras = np.asarray(persons), np.asarray(cameras)
    if persons.shape != cameras.shape or persons.ndim != 1:
        raise ValueError("persons and cameras must be 1-D arrays of the same length")
    shuffled = np.random.default_rng(seed).permutation(len(persons))
    # the first image of each (person, camera) in the shuffled order is that pair's query
    keys, first, counts = np.unique(np.stack([persons[shuffled], cameras[shuffled]], axis=1), axis=0,
                                    return_index=True, return_counts=True)
    keep = np.ones(len(keys), dtype=bool)
    for person in np.unique(keys[:, 0]):
        mine = np.flatnonzero(keys[:, 0] == person)
        if len(mine) < 2:
            keep[mine] = False
        elif (counts[mine] >= 2).sum() < 2:
            singles = mine[counts[mine] == 1]
            keep[singles[np.argmin(first[singles])]] = False
    query = np.sort(shuffled[first[keep]])
    gallery = np.setdiff1d(np.arange(len(persons)), query)
    return query.astype(np.int64), gallery.astype(np.int64)


Metric = Union[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]


def _distances(query_vecs, gallery_vecs, metric: Metric) -> np.ndarray:
    """Query x gallery distances, smaller = more alike."""
    if callable(metric):
        return np.asarray(metric(query_vecs, gallery_vecs), dtype=np.float64)
    q, g = np.asarray(query_vecs, dtype=np.float64), np.asarray(gallery_vecs, dtype=np.float64)
    if metric == "euclidean":
        squared = (q * q).sum(1)[:, None] + (g * g).sum(1)[None, :] - 2.0 * q @ g.T
        return np.sqrt(np.maximum(squared, 0.0))
    if metric == "cosine":
        qn = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        gn = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
        return 1.0 - qn @ gn.T
    raise ValueError(f"metric must be 'euclidean', 'cosine' or a function of (query, gallery) vectors, not {metric!r}")


def _block_figures(distances: np.ndarray, q_persons, g_persons, q_cams, g_cams, max_rank: int):
    """For a block of queries: whether each is valid, its first right rank (1-based) and its AP."""
    order = np.argsort(distances, axis=1, kind="stable")
    same_person = g_persons[order] == q_persons[:, None]
    junk = same_person & (g_cams[order] == q_cams[:, None])
    right = same_person & ~junk
    rank = np.cumsum(~junk, axis=1)  # 1-based rank among the gallery items that are not junk
    found = np.cumsum(right, axis=1)
    n_right = right.sum(axis=1)
    valid = n_right > 0
    first = np.where(valid, rank[np.arange(len(order)), np.argmax(right, axis=1)], max_rank + 1)
    ap = np.where(right, found / np.maximum(rank, 1), 0.0).sum(axis=1) / np.maximum(n_right, 1)
    return valid, first, ap


def reid_metrics(query_vecs, gallery_vecs, q_persons, g_persons, q_cams, g_cams, ranks: Sequence[int] = RANKS,
                 metric: Metric = "euclidean", distances: Optional[np.ndarray] = None) -> dict:
    """CMC at `ranks` and mAP, the Market-1501 way (see the module's note).

    Queries are ranked by `metric` between vectors ('euclidean', 'cosine', or a function returning a
    query x gallery distance matrix, e.g. one minus a pair head's score), or by a precomputed
    `distances` matrix (then the vectors may be None).
    Returns {"cmc": {k: share}, "map": .., "queries": valid queries, "skipped_queries": ..,
    "gallery": gallery size}; figures are NaN when no query is valid.
    """
    q_persons, g_persons = np.asarray(q_persons), np.asarray(g_persons)
    q_cams, g_cams = np.asarray(q_cams), np.asarray(g_cams)
    n_query, n_gallery = len(q_persons), len(g_persons)
    if distances is not None and np.shape(distances) != (n_query, n_gallery):
        raise ValueError(f"distances must be queries x gallery ({n_query} x {n_gallery}), not {np.shape(distances)}")
    max_rank = max(ranks) if len(ranks) else 1
    valid, first, ap = [], [], []
    for start in range(0, n_query, _QUERIES_PER_BLOCK):
        block = slice(start, min(n_query, start + _QUERIES_PER_BLOCK))
        d = (np.asarray(distances[block], dtype=np.float64) if distances is not None
             else _distances(query_vecs[block], gallery_vecs, metric))
        figures = _block_figures(d, q_persons[block], g_persons, q_cams[block], g_cams, max_rank)
        for into, values in zip((valid, first, ap), figures):
            into.append(values)
    valid = np.concatenate(valid) if valid else np.zeros(0, dtype=bool)
    first = np.concatenate(first)[valid] if n_query else np.zeros(0)
    ap = np.concatenate(ap)[valid] if n_query else np.zeros(0)
    n_valid = int(valid.sum())
    nan = float("nan")
    return {"cmc": {int(k): float((first <= k).mean()) if n_valid else nan for k in ranks},
            "map": float(ap.mean()) if n_valid else nan,
            "queries": n_valid, "skipped_queries": int(n_query - n_valid), "gallery": int(n_gallery)}
