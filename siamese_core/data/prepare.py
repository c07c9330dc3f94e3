"""The images a training config names, loaded and split, with the fixed validation pairs of the whole run."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import settings
from ..config import TrainConfig
from ..errors import UserError
from . import sources as D

log = logging.getLogger("siamese_core")


@dataclass
class PreparedData:
    train: D.ImageSet
    val: D.ImageSet
    val_pairs: tuple  # (a, b, same) positions in `val`, fixed for the whole run


def prepare_data(config: TrainConfig) -> PreparedData:
    """Load the training and validation images a (resolved) config names, and the fixed validation pairs."""
    size, channels, pipeline = config.image_size, config.channels, config.input
    if config.dataset == "digits":
        train, val = _split(D.load_digits(size, channels, pipeline), config)
    elif config.dataset == "mnist":
        train, val = _mnist_sets(config)
    elif config.dataset == "triplets":
        full = D.load_triplet_csv(config.triplets, config.images, size, channels, config.identity_pattern, pipeline)
        if full.has_labels:
            train, val = _split(full, config)
        else:
            config.notes.append("No identity could be read from the file names, so the triplets were split by "
                                "row: validation images may also appear in training, which flatters the figures.")
            log.warning(config.notes[-1])
            train, val = D.split_triplet_rows(full, config.val_fraction, config.seed)
    else:
        full = D.load_class_folders(config.train_path, size, channels, pipeline)
        if config.val_path:
            train, val = full, D.load_class_folders(config.val_path, size, channels, pipeline)
        else:
            D.check_trainable(full)
            train, val = _split(full, config)
    D.check_trainable(train)
    if val.has_labels:
        D.check_trainable(val, "The validation set")
        val_pairs = D.evaluation_pairs(val.labels, config.eval_pairs, seed=config.seed)
    else:
        val_pairs = D.triplet_pairs(val.triplets[: max(1, config.eval_pairs // 2)])
    if len(val_pairs[0]) == 0:
        raise UserError("No validation pairs could be made: the validation set is too small.")
    if config.mining != "none" and not train.has_labels and config.recipe == "default":
        config.notes.append("No class or identity could be read from the file names, so the triplets are "
                            "trained as written, without mining or the identity loss.")
        log.warning(config.notes[-1])
        config.mining, config.id_loss = "none", 0.0
    if config.mining != "none" and not train.has_labels:
        raise UserError("--mining needs to know each image's class or identity; none could be read here. "
                        "Use --mining none, or --identity-pattern to read identities from file names.")
    return PreparedData(train, val, val_pairs)


def _split(full: D.ImageSet, config: TrainConfig):
    if config.split == "class":
        return D.split_by_class(full, config.val_fraction, config.seed, config.max_val_classes)
    return D.split_by_image(full, config.val_fraction, config.seed)


def _mnist_sets(config: TrainConfig):
    root = Path(config.data_root or settings.default_mnist_dir())
    parts = D.mnist_parts_available(root)
    if "test" in parts and "train" not in parts:
        # Only the 10,000 test images are here (as in ../shared/data): split them.
        config.notes.append(f"Only the MNIST test files were found in {root}; they were split for training and validation.")
        log.info(config.notes[-1])
        return _split(D.load_mnist(root, "test", config.image_size, config.channels, config.input), config)
    train = D.load_mnist(root, "train", config.image_size, config.channels, config.input)
    val = D.load_mnist(root, "test", config.image_size, config.channels, config.input)
    if config.split == "class":
        val_classes = np.random.default_rng(config.seed).choice(10, size=max(2, round(10 * config.val_fraction)), replace=False)
        train = train.subset(np.flatnonzero(~np.isin(train.labels, val_classes)))
        val = val.subset(np.flatnonzero(np.isin(val.labels, val_classes)))
    return train, val
