"""Evaluate a checkpoint on pairs: metrics.json, ROC points, and pictures of pairs with the verdicts."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np

from . import data as D
from .config import TrainConfig
from .errors import UserError
from .images import pixels_to_image
from .inference import SiameseModel
from .metrics import calibrate_threshold, roc_points, verification_metrics
from .runs import write_json
from .training import eval_fn, prepare_data

log = logging.getLogger("siamese_core")


def evaluation_set(model: SiameseModel, val_path: Optional[str] = None) -> D.ImageSet:
    """Class folders at `val_path`, or else the validation split the checkpoint was trained with."""
    if val_path:
        return D.load_class_folders(val_path, model.image_size, model.channels)
    saved = model.checkpoint.get("config")
    if not saved:
        raise UserError("This checkpoint does not say what it was validated on: give -v VAL_PATH.")
    return prepare_data(TrainConfig.from_dict(saved).resolve()).val


def evaluate(checkpoint, out_dir, val_path: Optional[str] = None, n_pairs: int = 1000, seed: int = 0,
             sequential: bool = False, n_images: int = 16, device: str = "auto") -> dict:
    """Score evaluation pairs with a checkpoint and write metrics.json and pair images under `out_dir`."""
    model = SiameseModel.load(checkpoint, device)
    image_set = evaluation_set(model, val_path)
    if not image_set.has_labels and image_set.triplets is not None:
        pairs = D.triplet_pairs(image_set.triplets[: max(1, n_pairs // 2)])
    else:
        D.check_trainable(image_set, "The evaluation set")
        pairs = D.sequential_pairs(image_set.labels) if sequential else D.evaluation_pairs(image_set.labels, n_pairs, seed)
    scores = eval_fn(model.net, image_set, pairs, model.device)
    same = pairs[2]
    at_checkpoint = verification_metrics(scores, same, model.threshold)
    best_here = calibrate_threshold(scores, same)
    result = {
        "checkpoint": str(checkpoint),
        "evaluation_set": str(val_path) if val_path else "the checkpoint's validation split",
        "pairs_protocol": "sequential pairs (0,1), (2,3), ..." if sequential else f"balanced pairs drawn with seed {seed}",
        "images": len(image_set),
        **at_checkpoint,
        "threshold_source": "the checkpoint (calibrated on its validation pairs)",
        "optimistic": {
            "note": "threshold chosen on these same pairs: it flatters the model; not an honest estimate",
            **verification_metrics(scores, same, best_here),
        },
        "roc": roc_points(scores, same),
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "metrics.json", result)
    if n_images > 0:
        save_pair_images(image_set, pairs, scores, model.threshold, out / "pairs", n_images, model.class_word)
    log.info("Accuracy %.2f%%, precision %.2f%%, recall %.2f%%, AUC %.4f on %d pairs (threshold %.3f).",
             100 * result["accuracy"], 100 * result["precision"], 100 * result["recall"], result["roc_auc"],
             result["pairs"], result["threshold"])
    return result


def save_pair_images(image_set, pairs, scores, threshold, folder: Path, limit: int, class_word: str = "class") -> list:
    """PNG pictures of pairs: both images, the truth, the model's verdict and score. Mistakes first."""
    from PIL import Image, ImageDraw

    a, b, same = pairs
    wrong = (scores >= threshold) != (same == 1)
    order = np.concatenate([np.flatnonzero(wrong), np.flatnonzero(~wrong)])[:limit]
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
        truth = f"same {class_word}" if same[i] == 1 else f"different {class_word}"
        said = "same" if scores[i] >= threshold else "different"
        colour = (170, 0, 0) if wrong[i] else (0, 120, 0)
        draw.text((4, side + 8), f"truth: {truth}", fill="black")
        draw.text((4, side + 24), f"model: {said}, {100 * scores[i]:.0f}%", fill=colour)
        path = folder / f"{rank:03d}-{'wrong' if wrong[i] else 'right'}.png"
        canvas.save(path)
        written.append(path)
    return written
