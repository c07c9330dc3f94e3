"""How good is a model, and where does it fail: one implementation for the app's Evaluate page and `eval`.

The model runs once (`score_evaluation`): every image needed is embedded once, the evaluation
pairs are scored, and for retrieval every image is scored against every other. Everything
after that (figures at any threshold, k-fold threshold choice, mistakes, one-shot episodes)
is numpy on the cached scores, so moving a threshold never runs the model again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from PIL import Image, ImageDraw

from ..config import TrainConfig
from ..data import sources as D
from ..data.images import pixels_to_image
from ..data.prepare import prepare_data
from ..errors import UserError
from ..files import write_json, write_png
from ..inference.model import SiameseModel
from ..models.memory import plan
from ..models.networks import embed_set, images_per_pass
from .metrics import (EqualErrorRate, FiguresAt, KFold, RocPoints, TarAtFar, calibrate_threshold, equal_error_rate,
                      kfold_threshold, rates, roc_points, tar_at_far, verification_metrics)
from .reid import CAMERA_PATTERN, IDENTITY_PATTERN, RANKS, reid_labels, reid_metrics, reid_split
from .report_plots import histogram_png, roc_png
from .retrieval import OneShot, map_at_r, one_shot_accuracy, precision_at_1

log = logging.getLogger("siamese_core")

DEFAULT_FARS = (0.001, 0.01, 0.1)
DEFAULT_FOLDS = 10
# Retrieval scores every image against every other: N x N model scores. Larger sets use a
# seeded sample of this many images (the pair figures still use the whole set).
MAX_RETRIEVAL_IMAGES = 2000
# Scored pairs per pass of a pair head while filling the retrieval matrix.
_PAIRS_PER_PASS = 65536


def evaluation_set(model: SiameseModel, val_path: Optional[str] = None,
                   identity_pattern: str = IDENTITY_PATTERN) -> D.ImageSet:
    """Class folders at `val_path` (or a flat folder named by identity), else the checkpoint's validation split."""
    if val_path:
        return load_evaluation_folder(val_path, model.image_size, model.channels, identity_pattern,
                                      model.input_pipeline)
    saved = model.checkpoint.get("config")
    if not saved:
        raise UserError("This checkpoint does not say what it was validated on: give -v VAL_PATH.")
    return prepare_data(TrainConfig.from_dict(saved).resolve()).val


def load_evaluation_folder(folder, size: int, channels: int, identity_pattern: str = IDENTITY_PATTERN,
                           pipeline: str = "resize") -> D.ImageSet:
    """Class folders; or, for a folder of images only (Market-1501 crops), classes read from the file names."""
    root = Path(folder)
    if not root.is_dir() or any(p.is_dir() and not p.name.startswith(".") for p in root.iterdir()):
        return D.load_class_folders(root, size, channels, pipeline)
    image_set = D.load_image_folder(root, size, channels, pipeline)
    labels, classes = D.identities(image_set.names, identity_pattern)
    if not classes:
        raise UserError(f"'{root}' holds images directly, and not every file name says whose it is with "
                        f"'{identity_pattern}': put the images into one sub-folder per class, or name them "
                        "like 0002_c1s1_000451_03.jpg (person 2, camera 1).")
    image_set.labels, image_set.classes = labels, classes
    return image_set


def named_identities(folder, identity_pattern: str = IDENTITY_PATTERN) -> int:
    """How many identities the file names of a folder of loose images give; 0 unless every name gives one."""
    names = [p.name for p in Path(folder).iterdir() if p.is_file() and D.is_image_file(p)]
    return len(D.identities(names, identity_pattern)[1])


def model_operating_points(model: SiameseModel) -> list:
    """The thresholds a checkpoint carries, each with its name, a label and what it suits in plain words, the
    verdict's first: the middle of the medians and the rare-same point, or the one threshold of an older checkpoint."""
    points = model.operating_points
    if not points:
        return [{"name": "checkpoint", "label": "The checkpoint's threshold", "threshold": model.threshold,
                 "verdict": True, "words": "chosen on the model's validation pairs (an older checkpoint keeps this "
                                           "one threshold only)"}]
    share = points["same_share"]
    medians = {"name": "medians", "label": "Middle of the medians", "threshold": points["medians_threshold"],
               "words": "halfway between the usual score of a same pair and of a different pair on the model's "
                        "validation pairs: suits a verdict on one pair, whether same pairs are rare or common"}
    rare = {"name": "rare-same", "label": f"Rare same pairs ({100 * share:g}% same)",
            "threshold": points["rare_same_threshold"],
            "words": f"tuned on the validation pairs as if {100 * share:g}% of all pairs were the same: fewer false "
                     "accepts where same pairs are rare (sequential pairs, searching a large collection), more false "
                     "rejects on balanced pairs"}
    medians["verdict"], rare["verdict"] = points["threshold_policy"] == "medians", points["threshold_policy"] != "medians"
    return [medians, rare] if medians["verdict"] else [rare, medians]


def check_evaluable(image_set: D.ImageSet, what: str = "The evaluation set") -> None:
    """Refuse, with the reason, a set no 'same' and 'different' pairs can be drawn from."""
    if not image_set.has_labels and image_set.triplets is not None:
        if len(image_set.triplets) == 0:
            raise UserError(f"{what} has no complete triplets (anchor, positive, negative).")
        return
    D.check_trainable(image_set, what)


@dataclass
class Evaluation:
    """A model's scores on an evaluation set, and every figure computed from them."""

    scores: np.ndarray  # per pair, in [0, 1], higher = more alike
    same: np.ndarray  # per pair, bool: the truth
    a: np.ndarray  # per pair, positions of the two images in `image_set`
    b: np.ndarray
    image_set: D.ImageSet = field(repr=False)
    model_threshold: float  # the checkpoint's, chosen on its validation pairs
    model_threshold_note: str  # which pairs chose it, relative to these
    set_name: str
    protocol: str
    class_word: str = "class"
    similarity: Optional[np.ndarray] = field(default=None, repr=False)  # retrieval: N x N model scores
    retrieval_labels: Optional[np.ndarray] = field(default=None, repr=False)
    retrieval_note: str = ""  # why retrieval is missing or sampled, in plain words
    reid: Optional[dict] = None  # re-identification figures (CMC, mAP), when file names give person and camera
    reid_note: str = ""  # how they were computed, or why they are missing
    model_points: list = field(default_factory=list)  # model_operating_points(): the checkpoint's thresholds

    # -- figures at one threshold: cheap
    def at(self, threshold: float) -> FiguresAt:
        return {**verification_metrics(self.scores, self.same, threshold), **rates(self.scores, self.same, threshold)}

    def operating_points(self) -> list:
        """The checkpoint's thresholds (the verdict's first) with accuracy, precision, recall and the mistakes at
        each, on these pairs."""
        out = []
        for point in self.model_points:
            at = verification_metrics(self.scores, self.same, point["threshold"])
            out.append({**point, **{k: at[k] for k in ("accuracy", "precision", "recall", "fp", "fn")}})
        return out

    def point(self, threshold: float) -> tuple:
        """(false-accept rate, true-accept rate) at `threshold`: where it sits on the ROC curve."""
        r = rates(self.scores, self.same, threshold)
        return r["far"], 1.0 - r["frr"]

    # -- figures over all thresholds
    @property
    def positives(self) -> int:
        return int(self.same.sum())

    def roc(self, max_points: int = 400) -> RocPoints:
        return roc_points(self.scores, self.same, max_points)

    def eer(self) -> EqualErrorRate:
        return equal_error_rate(self.scores, self.same)

    def tar(self, far: float) -> TarAtFar:
        return tar_at_far(self.scores, self.same, far)

    def kfold(self, folds: int = DEFAULT_FOLDS, seed: int = 0) -> Optional[KFold]:
        """k-fold threshold choice on these pairs; None when there are not two of each kind of pair."""
        if min(self.positives, len(self.same) - self.positives) < 2:
            return None
        return kfold_threshold(self.scores, self.same, folds, seed)

    def best_threshold_here(self) -> float:
        """The threshold these same pairs like best: flattering, shown only as such."""
        return calibrate_threshold(self.scores, self.same)

    def histogram(self, bins: int = 40) -> dict:
        """Counts of scores of same and of different pairs in `bins` equal bins over [0, 1]."""
        edges = np.linspace(0.0, 1.0, bins + 1)
        clipped = np.clip(self.scores, 0.0, 1.0)
        return {"edges": edges.tolist(),
                "same": np.histogram(clipped[self.same], edges)[0].tolist(),
                "different": np.histogram(clipped[~self.same], edges)[0].tolist()}

    # -- where it fails
    def pairs_shown(self, threshold: float, which: str = "mistakes") -> np.ndarray:
        """Pair positions to show: 'all', 'mistakes', 'false accepts', 'false rejects' or 'correct'.

        Mistakes come most confident first (furthest from the threshold on the wrong side);
        'all' shows the mistakes first, then the correct pairs nearest the threshold first.
        """
        said_same = self.scores >= threshold
        false_accept = said_same & ~self.same
        false_reject = ~said_same & self.same
        wrong = false_accept | false_reject
        margin = np.abs(self.scores - threshold)
        chosen = {"mistakes": wrong, "false accepts": false_accept, "false rejects": false_reject,
                  "correct": ~wrong, "all": np.ones_like(wrong)}[which]
        positions = np.flatnonzero(chosen)
        # wrong pairs first, by decreasing margin; right pairs after, by increasing margin
        key = np.where(wrong[positions], -margin[positions], 1.0 + margin[positions])
        return positions[np.argsort(key, kind="stable")]

    def pair_pixels(self, i: int):
        """The two images of pair `i` as PIL images, as the model saw them."""
        return (pixels_to_image(self.image_set.batch([self.a[i]])[0].numpy()),
                pixels_to_image(self.image_set.batch([self.b[i]])[0].numpy()))

    # -- retrieval
    @property
    def has_retrieval(self) -> bool:
        return self.similarity is not None

    def retrieval_classes(self) -> int:
        """Classes with two images or more in the retrieval set: the largest N for one-shot."""
        if not self.has_retrieval:
            return 0
        _, counts = np.unique(self.retrieval_labels, return_counts=True)
        return int((counts >= 2).sum())

    def retrieval(self) -> dict:
        if not self.has_retrieval:
            return {}
        return {"precision_at_1": precision_at_1(self.similarity, self.retrieval_labels),
                "map_at_r": map_at_r(self.similarity, self.retrieval_labels),
                "images": int(len(self.retrieval_labels)), "classes": self.retrieval_classes()}

    def one_shot(self, n_way: int, episodes: int = 500, seed: int = 0) -> OneShot:
        return one_shot_accuracy(self.similarity, self.retrieval_labels, n_way, episodes, seed)

    # -- everything, for metrics.json
    def report(self, threshold: Optional[float] = None, threshold_source: Optional[str] = None,
               fars=DEFAULT_FARS, folds: int = DEFAULT_FOLDS, n_way: Optional[int] = None,
               episodes: int = 500, seed: int = 0) -> dict:
        """All figures at `threshold` (default: the model's), with which set chose it."""
        if threshold is None:
            threshold = self.model_threshold
            threshold_source = threshold_source or f"the checkpoint ({self.model_threshold_note})"
        figures = self.at(threshold)
        result = {
            "evaluation_set": self.set_name,
            "pairs_protocol": self.protocol,
            "images": len(self.image_set),
            **figures,
            "threshold_source": threshold_source or "given by hand",
            "model_threshold": self.model_threshold,
            "operating_points": self.operating_points(),
            "confusion_matrix": {"rows": "truth: same, different", "columns": "model: same, different",
                                 "counts": [[figures["tp"], figures["fn"]], [figures["fp"], figures["tn"]]]},
            "eer": self.eer(),
            "tar_at_far": [self.tar(far) for far in fars],
            "tar_at_far_method": "conservative: the best true-accept rate among thresholds whose false-accept "
                                 "rate on these pairs is at most the target (no interpolation)",
            "optimistic": {
                "note": "threshold chosen on these same pairs: it flatters the model; not an honest estimate",
                **verification_metrics(self.scores, self.same, self.best_threshold_here()),
            },
            "roc": self.roc(200),
            "histogram": self.histogram(),
        }
        kfold = self.kfold(folds, seed) if folds else None
        if kfold:
            result["kfold"] = {**kfold, "note": f"threshold chosen on {folds - 1} folds, accuracy "
                               "measured on the held-out fold, repeated for each fold (the LFW protocol)"}
        if self.has_retrieval:
            retrieval = {**self.retrieval(), "ranked_by": "the model's own pair score (for embedding models: the "
                         "distance between embeddings)", "note": self.retrieval_note}
            top = self.retrieval_classes()
            if top >= 2:
                retrieval["one_shot"] = self.one_shot(min(n_way or 5, top), episodes, seed)
            result["retrieval"] = retrieval
        else:
            result["retrieval"] = {"note": self.retrieval_note}
        result["reid"] = {**(self.reid or {}), "note": self.reid_note}
        return result


def score_evaluation(model: SiameseModel, image_set: D.ImageSet, n_pairs: int = 1000, seed: int = 0,
                     sequential: bool = False, set_name: str = "", retrieval: bool = True,
                     own_validation_split: bool = False, reid: Optional[bool] = None,
                     identity_pattern: str = IDENTITY_PATTERN, camera_pattern: str = CAMERA_PATTERN) -> Evaluation:
    """Run the model once over an evaluation set: pair scores, the retrieval matrix when there are labels,
    and re-identification figures when file names give person and camera (`reid`: None = then, True = must)."""
    check_evaluable(image_set)
    reid_parts, reid_note = reid_query_gallery(image_set, reid, identity_pattern, camera_pattern, seed)
    if not image_set.has_labels and image_set.triplets is not None:
        pairs = D.triplet_pairs(image_set.triplets[: max(1, n_pairs // 2)])
        protocol = f"pairs from the first {len(pairs[0]) // 2} triplets (anchor-positive, anchor-negative)"
    elif sequential:
        pairs = D.sequential_pairs(image_set.labels)
        protocol = "sequential pairs (0,1), (2,3), ..."
    else:
        pairs = D.evaluation_pairs(image_set.labels, n_pairs, seed)
        protocol = f"balanced pairs drawn with seed {seed}"
    a, b, same = pairs
    if len(a) == 0:
        raise UserError("No pairs could be drawn from the evaluation set: it needs at least two images.")
    # One kind of pair only (sequential pairs of a sorted folder) still has an accuracy; the curves are NaN.

    retrieval_positions, note = None, ""
    if not retrieval:
        note = "Retrieval figures were not asked for."
    elif not image_set.has_labels:
        note = f"Retrieval needs to know each image's {model.class_word}; this set does not say."
    else:
        retrieval_positions = np.arange(len(image_set))
        if len(image_set) > MAX_RETRIEVAL_IMAGES:
            rng = np.random.default_rng(seed)
            retrieval_positions = np.sort(rng.choice(len(image_set), MAX_RETRIEVAL_IMAGES, replace=False))
            note = (f"Computed on {MAX_RETRIEVAL_IMAGES:,} of the {len(image_set):,} images (a random sample, "
                    f"seed {seed}): every image is compared with every other.")

    needed = [a, b] + ([retrieval_positions] if retrieval_positions is not None else [])
    if reid_parts:
        needed += [reid_parts["query"], reid_parts["gallery"]]
    used = np.unique(np.concatenate(needed))
    vectors = _embed(model, image_set, used)
    rows_a, rows_b = np.searchsorted(used, a), np.searchsorted(used, b)
    scores = _pair_scores(model, vectors, rows_a, rows_b)

    similarity = labels = None
    if retrieval_positions is not None:
        similarity = _similarity_matrix(model, vectors[np.searchsorted(used, retrieval_positions)])
        labels = image_set.labels[retrieval_positions]
        if not model.is_embedding:
            note = (note + " " if note else "") + ("This model scores pairs with a trained head, so answers are "
                                                    "ranked by that score for each pair of images.")
    reid_figures = None
    if reid_parts:
        reid_figures = _reid_figures(model, vectors, used, reid_parts)
        reid_note = _reid_note(model, reid_parts, seed, own_validation_split)
    return Evaluation(scores=scores, same=same.astype(bool), a=a, b=b, image_set=image_set,
                      model_threshold=model.threshold, model_threshold_note=_threshold_note(model, own_validation_split,
                                                                                           sequential, n_pairs, seed),
                      set_name=set_name or "an evaluation set", protocol=protocol, class_word=model.class_word,
                      similarity=similarity, retrieval_labels=labels,
                      retrieval_note=note.strip(), reid=reid_figures, reid_note=reid_note,
                      model_points=model_operating_points(model))


def reid_query_gallery(image_set: D.ImageSet, reid: Optional[bool], identity_pattern: str = IDENTITY_PATTERN,
                       camera_pattern: str = CAMERA_PATTERN, seed: int = 0):
    """({persons, cameras, query, gallery} positions, "") for the re-id protocol, or (None, why not in words).

    `reid` None: when every file name gives person and camera; True: required (UserError if not); False: never.
    """
    if reid is False:
        return None, "Re-identification figures were not asked for."
    found = reid_labels(image_set.names, identity_pattern, camera_pattern, required=bool(reid))
    if found is None:
        return None, ("Re-identification figures need every file name to say the person and the camera, as "
                      "Market-1501's do (0002_c1s1_000451_03.jpg: person 2, camera 1).")
    persons, cameras = found
    query, gallery = reid_split(persons, cameras, seed)
    if len(query) == 0:
        why = ("No person in this set was photographed by two cameras or more, so no query can be matched "
               "across cameras.")
        if reid:
            raise UserError(f"Re-identification: {why}")
        return None, why
    return {"persons": persons, "cameras": cameras, "query": query, "gallery": gallery}, ""


def _reid_figures(model: SiameseModel, vectors, used: np.ndarray, parts: dict) -> dict:
    """CMC and mAP: embeddings ranked by Euclidean distance; a pair head's models by one minus its pair score."""
    q, g = parts["query"], parts["gallery"]
    q_vectors, g_vectors = vectors[np.searchsorted(used, q)], vectors[np.searchsorted(used, g)]
    labels = (parts["persons"][q], parts["persons"][g], parts["cameras"][q], parts["cameras"][g])
    if model.is_embedding:
        return reid_metrics(q_vectors.cpu().numpy(), g_vectors.cpu().numpy(), *labels, ranks=RANKS)
    return reid_metrics(None, None, *labels, ranks=RANKS, distances=1.0 - _score_matrix(model, q_vectors, g_vectors))


def _reid_note(model: SiameseModel, parts: dict, seed: int, own_validation_split: bool) -> str:
    ranked = ("Euclidean distance between embeddings" if model.is_embedding
              else "the model's pair score (it has a trained pair head)")
    people = len(np.unique(parts["persons"][parts["query"]]))
    note = (f"One query per person and camera ({people} people), drawn with seed {seed}, each keeping a match "
            f"from another camera; every other image is the gallery. Matches of the query's person from the "
            f"query's own camera are left out (too easy). Ranked by {ranked}.")
    if own_validation_split and (model.checkpoint.get("config") or {}).get("split") == "image":
        note += " These people were also in the training images, so the figures flatter the model."
    return note


def _threshold_note(model: SiameseModel, own_validation_split: bool, sequential: bool, n_pairs: int, seed: int) -> str:
    """Which pairs chose the checkpoint's threshold, relative to the pairs scored now."""
    config = model.checkpoint.get("config") or {}
    if not own_validation_split:
        return "chosen on the model's own validation pairs, not on this set"
    if not sequential and n_pairs == config.get("eval_pairs", 1000) and seed == config.get("seed", 0):
        return ("chosen on these very pairs (the model's validation pairs) when it was trained, "
                "so the figures at it flatter the model a little")
    return "chosen on other pairs of these same images (the model's validation split), so it may flatter a little"


def _embed(model: SiameseModel, image_set: D.ImageSet, positions: np.ndarray):
    batch_size, per_pass = plan(model.spec, 256, images_per_pass(model.device, model.image_size),
                                on_cpu=model.device.type == "cpu")  # within the memory budget
    return embed_set(model.net, image_set, positions, model.device, batch_size,
                     channels_last=model.device.type == "cpu", per_pass=per_pass)


def _pair_scores(model: SiameseModel, vectors, rows_a: np.ndarray, rows_b: np.ndarray) -> np.ndarray:
    out = []
    with torch.inference_mode():
        for i in range(0, len(rows_a), _PAIRS_PER_PASS):
            ia = torch.from_numpy(rows_a[i:i + _PAIRS_PER_PASS]).to(vectors.device)
            ib = torch.from_numpy(rows_b[i:i + _PAIRS_PER_PASS]).to(vectors.device)
            out.append(model.net.pair_scores(vectors[ia], vectors[ib]).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def _similarity_matrix(model: SiameseModel, vectors) -> np.ndarray:
    """The model's score for every ordered pair of these images (N x N); the diagonal is meaningless."""
    return _score_matrix(model, vectors, vectors)


def _score_matrix(model: SiameseModel, row_vectors, column_vectors) -> np.ndarray:
    """The model's score (higher = more alike) of every row image against every column image."""
    n_rows, n = len(row_vectors), len(column_vectors)
    with torch.inference_mode():
        if model.is_embedding:
            return (1.0 - torch.cdist(row_vectors, column_vectors) / 2.0).float().cpu().numpy()
        out = np.empty((n_rows, n), dtype=np.float32)
        rows_per_pass = max(1, _PAIRS_PER_PASS // max(n, 1))
        columns = torch.arange(n, device=column_vectors.device)
        for start in range(0, n_rows, rows_per_pass):
            rows = torch.arange(start, min(n_rows, start + rows_per_pass), device=row_vectors.device)
            ia = rows.repeat_interleave(n)
            ib = columns.repeat(len(rows))
            scores = model.net.pair_scores(row_vectors[ia], column_vectors[ib]).float().cpu().numpy()
            out[start:start + len(rows)] = scores.reshape(len(rows), n)
    return out


def evaluate(checkpoint, out_dir, val_path: Optional[str] = None, n_pairs: int = 1000, seed: int = 0,
             sequential: bool = False, n_images: int = 16, device: str = "auto", threshold: Optional[float] = None,
             fars=DEFAULT_FARS, folds: int = DEFAULT_FOLDS, n_way: int = 5, episodes: int = 500,
             retrieval: bool = True, plots: bool = True, reid: Optional[bool] = None,
             identity_pattern: str = IDENTITY_PATTERN, camera_pattern: str = CAMERA_PATTERN) -> dict:
    """Score evaluation pairs with a checkpoint; write metrics.json, roc.png, scores.png and pair images.

    `reid` (None: when every file name gives person and camera; True: required; False: skipped) adds the
    Market-1501 re-identification figures under "reid".
    """
    model = SiameseModel.load(checkpoint, device)
    image_set = evaluation_set(model, val_path, identity_pattern)
    evaluation = score_evaluation(model, image_set, n_pairs, seed, sequential,
                                  set_name=str(val_path) if val_path else "the checkpoint's validation split",
                                  retrieval=retrieval, own_validation_split=not val_path, reid=reid,
                                  identity_pattern=identity_pattern, camera_pattern=camera_pattern)
    source = None if threshold is None else "given on the command line"
    result = {"checkpoint": str(checkpoint), **evaluation.report(threshold, source, fars, folds, n_way, episodes, seed)}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "metrics.json", result)
    used = result["threshold"]
    if plots:
        roc_png(evaluation.roc(400), evaluation.point(used), result["eer"], out / "roc.png",
                f"ROC curve (AUC {result['roc_auc']:.3f})")
        histogram_png(evaluation.histogram(), used, out / "scores.png", class_word=evaluation.class_word)
    if n_images > 0:
        save_pair_images(image_set, (evaluation.a, evaluation.b, evaluation.same.astype(np.float32)), evaluation.scores,
                         used, out / "pairs", n_images, model.class_word)
    log.info("Accuracy %.2f%%, precision %.2f%%, recall %.2f%%, AUC %.4f, EER %.2f%% on %d pairs (threshold %.3f).",
             100 * result["accuracy"], 100 * result["precision"], 100 * result["recall"], result["roc_auc"],
             100 * result["eer"]["eer"], result["pairs"], result["threshold"])
    return result


def save_pair_images(image_set, pairs, scores, threshold, folder: Path, limit: int, class_word: str = "class") -> list:
    """PNG pictures of pairs: both images, the truth, the model's verdict and score.

    Mistakes first, the most confident ones first; then correct pairs, those nearest the threshold first.
    """
    a, b, same = pairs
    truth = np.asarray(same) == 1
    wrong = (scores >= threshold) != truth
    margin = np.abs(np.asarray(scores, dtype=np.float64) - threshold)
    order = np.argsort(np.where(wrong, -margin, 1.0 + margin), kind="stable")[:limit]
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    side = 112
    for rank, i in enumerate(order):
        left = pixels_to_image(image_set.batch([a[i]])[0].numpy()).convert("RGB").resize((side, side), Image.Resampling.NEAREST)
        right = pixels_to_image(image_set.batch([b[i]])[0].numpy()).convert("RGB").resize((side, side), Image.Resampling.NEAREST)
        canvas = Image.new("RGB", (2 * side + 12, side + 44), "white")
        canvas.paste(left, (4, 4))
        canvas.paste(right, (side + 8, 4))
        draw = ImageDraw.Draw(canvas)
        said = "same" if scores[i] >= threshold else "different"
        colour = (170, 0, 0) if wrong[i] else (0, 120, 0)
        draw.text((4, side + 8), f"truth: {'same' if truth[i] else 'different'} {class_word}", fill="black")
        draw.text((4, side + 24), f"model: {said}, {100 * scores[i]:.0f}%", fill=colour)
        path = folder / f"{rank:03d}-{'wrong' if wrong[i] else 'right'}.png"
        write_png(path, canvas)
        written.append(path)
    return written
