"""What both epoch functions share (the whole network's in training.loop, the frozen backbone's head's in
training.frozen): an epoch's batches, mixed precision and a progress bar. The run around the epochs, with its
checkpoints, status and epoch map, is training.skeleton's."""

from __future__ import annotations

import contextlib
from typing import Optional

import numpy as np
import torch
from tqdm import tqdm

from ..config import TrainConfig, image_hw
from ..data import sources as D


def autocast_dtype(device: torch.device, precision: str) -> Optional[torch.dtype]:
    """bf16 when asked for (CPU) and by default on CUDA (fp16 where the GPU lacks bf16); None for fp32."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda"):
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            return torch.float16
        return torch.bfloat16
    return None


def autocast_for(device: torch.device, precision: str):
    dtype = autocast_dtype(device, precision)
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()


class Batches:
    """The training batches of one epoch, drawn afresh from the epoch's own seed."""

    def __init__(self, train: D.ImageSet, config: TrainConfig, epoch: int):
        rng = np.random.default_rng([config.seed, epoch])
        self.kind = "pk" if config.mining != "none" else ("triplet" if config.mode == "triplet" else "pair")
        bs = config.batch_size
        per_epoch = config.pairs_per_epoch or default_pairs_per_epoch(len(train), self.kind, config.image_size)
        if self.kind == "pk":
            n = max(1, per_epoch // bs)
            self.items = list(D.pk_batches(train.labels, bs, n, rng))
        elif self.kind == "triplet":
            if train.triplets is not None and len(train.triplets):
                triplets = train.triplets[rng.permutation(len(train.triplets))]
            else:
                triplets = D.sample_triplets(train.labels, per_epoch, rng)
            self.items = [triplets[i:i + bs] for i in range(0, len(triplets), bs)]
        else:
            if train.has_labels:
                a, b, same = D.sample_pairs(train.labels, per_epoch, rng)
            else:  # triplets without identities: their anchor-positive and anchor-negative pairs
                a, b, same = D.triplet_pairs(train.triplets)
                order = rng.permutation(len(a))
                a, b, same = a[order], b[order], same[order]
            self.items = [(a[i:i + bs], b[i:i + bs], same[i:i + bs]) for i in range(0, len(a), bs)]
        # BatchNorm cannot train on a batch of one
        self.items = [item for item in self.items if batch_len(item) > 1]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)


def batch_len(item) -> int:
    """Pairs, triplets or images in one batch of Batches."""
    return len(item[0]) if isinstance(item, tuple) else len(item)


def default_pairs_per_epoch(n_train: int, kind: str = "pair", image_size=64) -> int:
    """Pairs (or triplets, or images in P x K batches) drawn afresh each epoch.

    Pairs: about ten per training image, within bounds that keep an epoch between seconds and minutes.
    P x K batches: about ten passes over the images, at least 4,000 images, and at most what keeps ten
    epochs within about fifteen minutes on a 2-core CPU (30,000 images at 64x64 px; more for fewer pixels).
    `image_size` is a whole number (a square) or (height, width).
    """
    if kind == "pk":
        height, width = image_hw(image_size)
        most = int(30_000 * max(1.0, 64 * 64 / (height * width)))
        return int(min(max(10 * n_train, 4_000), most))
    return int(min(max(10 * n_train, 2_000), 50_000))


def progress_bar(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    # disable=None: a bar on a terminal, silence when output goes to a file or pipe
    return tqdm(total=total, desc=desc, unit="batch", leave=False, dynamic_ncols=True, disable=None, mininterval=0.5)


# ---------------------------------------------------------------- the threshold's extra different pairs

COHORT_IMAGES = 128  # validation images, and as many training images, whose pairs of different classes the
# threshold also reads: 16,384 pairs at most, two small embedding passes per validation


def cohort_sample(data, seed: int) -> Optional[tuple]:
    """A run's fixed sample (of a PreparedData) for cohort_pairs: positions of validation images the pairs use and of training images.
    None when either set has no labels (then no pair is known to be different)."""
    if not (data.train.has_labels and data.val.has_labels) or not len(data.train):
        return None
    rng = np.random.default_rng(seed)
    used = np.unique(np.concatenate(data.val_pairs[:2]))
    val = np.sort(rng.choice(used, min(COHORT_IMAGES, len(used)), replace=False))
    train = np.sort(rng.choice(len(data.train), min(COHORT_IMAGES, len(data.train)), replace=False))
    return val, train


def cohort_pairs(val_labels, train_labels) -> tuple:
    """Rows (validation image, training image) of every pair of the two samples whose classes differ."""
    return np.nonzero(np.asarray(val_labels)[:, None] != np.asarray(train_labels)[None, :])
