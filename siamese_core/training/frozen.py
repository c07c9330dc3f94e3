"""The fast path where a pretrained backbone exists: embed every image once, then train only the head.

Browser teaching tools train in seconds this way. The backbone stays frozen in eval mode, so its
features of an image never change: each training and validation image (and, for colour photos, its
mirror image, which gives flip augmentation for free) goes through it once, and the head then trains
for the configured epochs on the cached features. Checkpoints hold the full model, so they load
anywhere a fine-tuned one does.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..config import TrainConfig
from ..data import sources as D
from ..errors import UserError
from ..evaluation.metrics import roc_points, validation_figures
from ..inference.domain import CALIBRATION_IMAGES, DESCRIBED_IMAGES
from ..models.networks import as_model_input, cached_timm_weights, images_per_pass, parse_backbone, reachable
from ..runs.rundir import RunDir
from . import losses
from .common import Batches, autocast_for, batch_len, cohort_pairs, cohort_sample, progress_bar
from .skeleton import Trained, Trainer

log = logging.getLogger("siamese_core")

RANDOM_BACKBONE = ("A frozen backbone with random weights learns nothing: name pretrained weights with --weights FILE "
                   "(a .pth or .safetensors file, or a run's checkpoint), or drop --frozen to train the whole network.")
PHOTOS_BACKBONE = "timm:efficientnet_b0"


@dataclass
class CachedFeatures:
    train: torch.Tensor  # (N, F) backbone features of every training image
    train_mirror: Optional[torch.Tensor]  # the same of their mirror images, or None
    val: torch.Tensor  # (M, F) features of the validation images the pairs use
    val_rows: np.ndarray  # sorted validation positions: row i of `val` is image val_rows[i]


def wants_mirror(config: TrainConfig) -> bool:
    """Mirror images are the same thing for colour photos; never for digits (a mirrored 2 is no digit)."""
    return config.channels == 3 and config.augment not in ("none", "digits") and config.input != "digit"


# ---------------------------------------------------------------- embedding once

@torch.inference_mode()
def backbone_features(model, images: torch.Tensor) -> torch.Tensor:
    return model.backbone((images - model.mean) / model.std).float().flatten(1)


def embed_images(model, image_set: D.ImageSet, positions, device, config: TrainConfig, mirror: bool, on_batch):
    """Backbone features of the images at `positions` (and of their mirror images when `mirror`), in batches."""
    batch_size = images_per_pass(device, config.image_size) or 256
    channels_last = device.type == "cpu"
    plain, mirrored = [], []
    for i in range(0, len(positions), batch_size):
        x = as_model_input(image_set.batch(positions[i:i + batch_size]), device, channels_last)
        with autocast_for(device, config.precision):
            plain.append(backbone_features(model, x))
            if mirror:
                mirrored.append(backbone_features(model, x.flip(-1)))
        on_batch()
    empty = torch.zeros(0)
    return (torch.cat(plain) if plain else empty), (torch.cat(mirrored) if mirrored else None)


def embed_batches(n_images: int, device, config: TrainConfig) -> int:
    return math.ceil(n_images / (images_per_pass(device, config.image_size) or 256))


def cache_features(model, data, device, config: TrainConfig, on_batch) -> CachedFeatures:
    model.eval()
    if device.type == "cpu":
        model.to(memory_format=torch.channels_last)
    mirror = wants_mirror(config)
    train, train_mirror = embed_images(model, data.train, np.arange(len(data.train)), device, config, mirror, on_batch)
    val_rows = np.unique(np.concatenate(data.val_pairs[:2]))
    val, _ = embed_images(model, data.val, val_rows, device, config, False, on_batch)
    return CachedFeatures(train, train_mirror, val, val_rows)


# ---------------------------------------------------------------- training the head

def head_vectors(model, features: torch.Tensor) -> torch.Tensor:
    """What the model compares: the embedding, or for pair models the backbone features themselves."""
    return model.embedding_head(features) if model.is_embedding else features


def head_step(model, item, kind: str, cache: CachedFeatures, labels: np.ndarray, config: TrainConfig):
    """The loss of one batch, computed on cached features (each image or, at random, its mirror image)."""
    def features(positions):
        index = torch.from_numpy(np.asarray(positions, dtype=np.int64))
        f = cache.train[index]
        if cache.train_mirror is not None:
            flip = torch.rand(len(index), device=f.device) < 0.5
            f = torch.where(flip[:, None], cache.train_mirror[index], f)
        return f

    if kind == "pair":
        a, b, same = item
        target = torch.from_numpy(same).to(cache.train.device)
        fa, fb = features(a), features(b)
        if config.mode == "pair":
            return losses.pair_bce(model.pair_head(fa, fb), target)
        return losses.contrastive((head_vectors(model, fa) - head_vectors(model, fb)).norm(dim=1), target, config.margin)
    if kind == "triplet":
        n = len(item)
        v = head_vectors(model, features(item.T.reshape(-1)))
        return losses.triplet(v[:n], v[n:2 * n], v[2 * n:], config.margin)
    target = torch.from_numpy(labels[item]).to(cache.train.device)
    return losses.mined_triplet(head_vectors(model, features(item)), target, config.margin, config.mining)


@torch.inference_mode()
def evaluate_features(model, cache: CachedFeatures, pairs, same_share: float, policy: str = "medians",
                      cohort: Optional[tuple] = None) -> dict:
    """evaluate_pairs() on cached features: the figures at the verdict's threshold chosen on them (and on the
    cohort's pairs: common.cohort_sample, with the labels of its images), both operating points, and the ROC."""
    model.eval()
    vectors = head_vectors(model, cache.val)
    a, b, same = pairs
    ia = torch.from_numpy(np.searchsorted(cache.val_rows, a)).to(vectors.device)
    ib = torch.from_numpy(np.searchsorted(cache.val_rows, b)).to(vectors.device)
    scores = model.pair_scores(vectors[ia], vectors[ib]).float().cpu().numpy()
    others = None
    if cohort is not None:
        (val, train), val_labels, train_labels = cohort
        i, j = cohort_pairs(val_labels[val], train_labels[train])
        va = vectors[torch.from_numpy(np.searchsorted(cache.val_rows, val[i])).to(vectors.device)]
        vb = head_vectors(model, cache.train[torch.from_numpy(train).to(cache.train.device)])[torch.from_numpy(j)]
        others = model.pair_scores(va, vb).float().cpu().numpy()
    result = validation_figures(scores, same, same_share, policy, others)
    result["roc"] = roc_points(scores, same)
    return result


class FrozenTrainer(Trainer):
    """The skeleton's pieces for a frozen backbone (training.skeleton): the same run directory, checkpoints and
    metrics as the whole network's, but every image embedded once first and only the head trained."""

    def setup(self) -> None:
        ctx = self.ctx
        if ctx.group.active:
            raise UserError("A frozen backbone trains only a small head, in seconds: run it in one process "
                            "(without torchrun), or drop --frozen to train the whole network on several.")
        if not ctx.resume and ctx.model.weights_source == "random initialisation":
            raise UserError(RANDOM_BACKBONE)
        ctx.model.to(ctx.device)
        ctx.model.backbone.requires_grad_(False)
        head = [p for name, p in ctx.model.named_parameters() if not name.startswith("backbone.")]
        self.optimizer = torch.optim.AdamW(head, lr=ctx.config.lr, weight_decay=ctx.config.weight_decay)
        # A time budget is the head's ceiling, never a reason for more epochs than asked: more passes over the same
        # cached features overfit. The images are embedded before the plan's first step: the plan sees that time gone.
        steps = len(Batches(ctx.data.train, ctx.config, 1))
        described = min(DESCRIBED_IMAGES, len(ctx.data.train)) + min(CALIBRATION_IMAGES, len(ctx.data.val))
        self.plan_budget(steps, eval_images=len(np.unique(np.concatenate(ctx.data.val_pairs[:2]))),
                         images_per_step=ctx.config.batch_size, described_images=described,
                         most_steps=steps * ctx.config.epochs)

    def start_status(self) -> dict:
        ctx, config = self.ctx, self.ctx.config
        self.steps = len(Batches(ctx.data.train, config, ctx.start_epoch))
        self.n_val = len(np.unique(np.concatenate(ctx.data.val_pairs[:2])))
        self.embed_steps = (embed_batches(len(ctx.data.train), ctx.device, config)
                            + embed_batches(self.n_val, ctx.device, config))
        self.step_offset = self.embed_steps - (ctx.start_epoch - 1) * self.steps
        return {"phase": "embedding images", "step": 0, "steps_per_epoch": self.steps,
                "total_steps": self.embed_steps + self.steps * (config.epochs - ctx.start_epoch + 1),
                **self.progress_fields(0, ctx.start_epoch)}

    def before_epochs(self) -> None:
        ctx = self.ctx
        log.info("Frozen %s (weights from %s): embedding %d training and %d validation images once%s.",
                 ctx.config.backbone, "the last checkpoint" if ctx.resume else ctx.model.weights_source,
                 len(ctx.data.train), self.n_val,
                 " (and the training images' mirror images)" if wants_mirror(ctx.config) else "")
        started = time.time()
        self.cache = _cache_with_progress(ctx.model, ctx.data, ctx.device, ctx.config, ctx.run, self.embed_steps,
                                          ctx.progress)
        log.info("Embedded in %.1f s; training the head on %d-dimensional features.", time.time() - started,
                 self.cache.train.shape[1])
        ctx.run.update_status(phase="training the head")

    def train_epoch(self, epoch: int) -> Optional[Trained]:
        """One epoch of head training, logged as one step record."""
        ctx, model, config = self.ctx, self.ctx.model, self.ctx.config
        model.train()
        model.backbone.eval()
        batches = Batches(ctx.data.train, config, epoch)
        started, loss_sum, n_sum, budget = time.time(), 0.0, 0, ctx.budget
        first = (epoch - 1) * self.steps  # head steps before this epoch
        trained = 0
        for item in batches:
            if ctx.stop:
                return None
            if budget is not None and not budget.steps_left_in(epoch, first + trained):
                break
            loss = head_step(model, item, batches.kind, self.cache, ctx.data.train.labels, config)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            loss_sum, n_sum = loss_sum + float(loss.detach()) * batch_len(item), n_sum + batch_len(item)
            trained += 1
            if budget is not None:
                budget.after_step(first + trained, epoch)
        if not np.isfinite(loss_sum):
            raise UserError(f"The loss became {loss_sum}: the learning rate ({config.lr}) is probably too high. "
                            "Try a tenth of it.")
        seconds, mean = time.time() - started, loss_sum / max(n_sum, 1)
        ctx.run.append_metrics({"type": "step", "epoch": epoch, "step": len(batches), "loss": mean,
                                "items_per_second": n_sum / max(seconds, 1e-9), "time": time.time()})
        if budget is None:
            return Trained(mean, None, n_sum, seconds, self.embed_steps + (epoch - ctx.start_epoch + 1) * self.steps)
        # the plan counts head steps; the status, this attempt's embedding batches and head steps
        return Trained(mean, None, n_sum, seconds, first + trained + self.step_offset, planned=first + trained)

    def validate(self) -> dict:
        config = self.ctx.config
        data = self.ctx.data
        cohort = cohort_sample(data, config.seed)
        return evaluate_features(self.ctx.model, self.cache, data.val_pairs, config.same_share,
                                 config.threshold_policy,
                                 None if cohort is None else (cohort, data.val.labels, data.train.labels))

    @torch.inference_mode()
    def vectors(self, positions) -> np.ndarray:
        """The epoch map's snapshot from the cached features (the sample is drawn from the validation pairs' images)."""
        model, cache = self.ctx.model, self.cache
        model.eval()
        rows = torch.from_numpy(np.searchsorted(cache.val_rows, positions))
        return head_vectors(model, cache.val[rows]).cpu().numpy()


def _cache_with_progress(model, data, device, config, run: RunDir, embed_steps: int, progress: bool):
    bar = progress_bar(embed_steps, "embedding images", progress)
    done, last_write = [0], [0.0]

    def on_batch():
        done[0] += 1
        if bar is not None:
            bar.update(1)
        if time.time() - last_write[0] > 1.0:  # at most one status write a second
            last_write[0] = time.time()
            run.update_status(step=done[0])

    try:
        return cache_features(model, data, device, config, on_batch)
    finally:
        if bar is not None:
            bar.close()


# ---------------------------------------------------------------- the Train page's Photos preset

def pretrained_source(backbone: str, weights_file: str = "") -> Optional[str]:
    """Where pretrained weights for `backbone` would come from, in words; None when none can be had."""
    if weights_file:
        return f"the weights file {Path(weights_file).name}" if Path(weights_file).is_file() else None
    family, name = parse_backbone(backbone)
    if family != "timm":
        return None
    if cached_timm_weights(name):
        return "the local cache"
    return "the Hugging Face hub" if reachable("huggingface.co") else None


@dataclass
class Recipe:
    config: TrainConfig  # resolved: what the page's settings start from
    frozen: bool
    message: str


def photos_recipe(settings: dict, weights_file: str = "") -> Recipe:
    """The Photos preset: the frozen fast path on EfficientNet-B0 where pretrained weights exist,
    otherwise the product's default recipe from random weights."""
    if weights_file and not Path(weights_file).is_file():
        raise UserError(f"The weights file '{weights_file}' does not exist: check the path, or clear the field.")
    source = pretrained_source(PHOTOS_BACKBONE, weights_file)
    if source:
        config = TrainConfig(**settings, backbone=PHOTOS_BACKBONE, mode="triplet", frozen=True, epochs=20,
                             weights=weights_file or None, image_size=224)
        message = (f"Pretrained EfficientNet-B0 weights come from {source}: the backbone stays frozen, each image "
                   "is embedded once and only a small head trains, in seconds.")
        return Recipe(config.preview(), True, message)
    message = ("No pretrained weights are available here (offline, none in the local cache, no weights file "
               "named), so Photos trains the default recipe from random weights: a few minutes on a CPU. "
               "Name a weights file under Advanced settings for the fast path.")
    return Recipe(TrainConfig(**settings).preview(), False, message)
