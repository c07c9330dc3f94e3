"""The training loop: train() for a run, and the whole network's pieces of the run's outline (training.skeleton):
one step, one epoch (train_fn), validation (evaluate_pairs / eval_fn) and the epoch map's vectors."""

from __future__ import annotations

import logging
import math
import time
from typing import Callable, Optional

import numpy as np
import torch

from ..config import RARE_SAME_SHARE, TrainConfig
from ..data import augment
from ..data import sources as D
from ..data.prepare import PreparedData
from ..errors import UserError
from ..evaluation.metrics import roc_points, validation_figures, verification_metrics
from ..inference.domain import CALIBRATION_IMAGES, DESCRIBED_IMAGES
from ..maps.snapshots import SAMPLE_SIZE
from ..models.networks import as_model_input, count_parameters, embed_set, images_per_pass
from ..runs.status import RunStatus
from . import distributed, losses, threads
from .budget import PlannedSchedule, follow_plan
from .common import Batches, autocast_dtype, autocast_for, cohort_pairs, cohort_sample, progress_bar
from .frozen import FrozenTrainer
from .skeleton import Context, StopFlag, Trained, Trainer, train_run

log = logging.getLogger("siamese_core")


# ---------------------------------------------------------------- one step, one epoch

def train_step(model, item, kind: str, train: D.ImageSet, config: TrainConfig, device, channels_last: bool,
               identity_loss=None, group: distributed.Group = distributed.SINGLE):
    """Loss and (for pair models) correct-prediction count of one batch.

    All images of the batch (both sides of each pair, or all three of each triplet) go through the
    shared backbone together, in passes of images_per_pass() images.
    """
    per_pass = images_per_pass(device, config.image_size)

    def images(index):
        x = as_model_input(train.batch(index), device, channels_last)
        return augment.apply(x, config.augment)

    if kind == "pair":
        a, b, same = item
        target = torch.from_numpy(same).to(device)
        out = model(images(a), images(b), per_pass)
        if config.mode == "pair":
            loss = losses.pair_bce(out.float(), target)
            correct = int(((out > 0).float() == target).sum())
        else:
            loss = losses.contrastive(out.float(), target, config.margin)
            correct = None
        return loss, correct, len(a)
    if kind == "triplet":
        n = len(item)
        vectors = model.embed(images(item.T.reshape(-1)), per_pass).float()  # anchors, positives, negatives
        return losses.triplet(vectors[:n], vectors[n:2 * n], vectors[2 * n:], config.margin), None, n
    labels = torch.from_numpy(train.labels[item]).to(device)
    vectors = model.embed(images(item), per_pass).float()
    # Mining sees every rank's batch: hard negatives come from the global batch.
    loss = losses.mined_triplet(distributed.gather_with_grad(vectors, group),
                                distributed.gather_with_grad(labels, group), config.margin, config.mining)
    if identity_loss is not None:
        loss = loss + config.id_loss * identity_loss(vectors, labels)
    return loss, None, len(item)


@torch.inference_mode()
def eval_fn(model, image_set: D.ImageSet, pairs, device, batch_size: int = 256, channels_last: bool = False) -> np.ndarray:
    """Scores of pairs (higher = more alike): each distinct image is embedded once, then pairs are scored."""
    a, b, _ = pairs
    was_training = model.training
    model.eval()
    used = np.unique(np.concatenate([a, b]))
    vectors = embed_set(model, image_set, used, device, batch_size, channels_last)
    ia = torch.from_numpy(np.searchsorted(used, a)).to(vectors.device)  # row of each image in `vectors`
    ib = torch.from_numpy(np.searchsorted(used, b)).to(vectors.device)
    scores = model.pair_scores(vectors[ia], vectors[ib]).float().cpu().numpy()
    model.train(was_training)
    return scores


@torch.inference_mode()
def sample_vectors(model, image_set: D.ImageSet, positions, device, channels_last: bool = False) -> np.ndarray:
    """The epoch map's snapshot: vectors of the sampled validation images, in eval mode (as validation sees them)."""
    was_training = model.training
    model.eval()
    vectors = embed_set(model, image_set, positions, device, channels_last=channels_last).cpu().numpy()
    model.train(was_training)
    return vectors


@torch.inference_mode()
def cohort_scores(model, data: PreparedData, sample: Optional[tuple], device, channels_last=False):
    """Scores of validation images against training images of other classes: more different pairs for the
    threshold than the few held-out identities give (evaluation.metrics.medians_threshold). None without a sample."""
    if sample is None:
        return None
    val, train = sample
    was_training = model.training
    model.eval()
    va = embed_set(model, data.val, val, device, channels_last=channels_last)
    vb = embed_set(model, data.train, train, device, channels_last=channels_last)
    model.train(was_training)
    i, j = cohort_pairs(data.val.labels[val], data.train.labels[train])
    return model.pair_scores(va[torch.from_numpy(i)], vb[torch.from_numpy(j)]).float().cpu().numpy()


def evaluate_pairs(model, image_set, pairs, device, threshold: Optional[float] = None, channels_last=False,
                   same_share: float = RARE_SAME_SHARE, policy: str = "medians",
                   other_different: Optional[np.ndarray] = None) -> dict:
    """Verification metrics on pairs, at `threshold` when given, else at the verdict's threshold chosen on them
    (and on `other_different`: cohort_scores) with both operating points beside it
    (evaluation.metrics.validation_figures)."""
    scores = eval_fn(model, image_set, pairs, device, channels_last=channels_last)
    same = pairs[2]
    if threshold is None:
        result = validation_figures(scores, same, same_share, policy, other_different)
    else:
        result = verification_metrics(scores, same, threshold)
    result["roc"] = roc_points(scores, same)
    result["scores"] = scores
    return result


# ---------------------------------------------------------------- the whole run

def train(config: TrainConfig, out_dir, *, resume: bool = False, progress: bool = False,
          stop: Optional[StopFlag] = None, on_epoch: Optional[Callable[[dict], None]] = None,
          data: Optional[PreparedData] = None, clock_start: Optional[float] = None) -> RunStatus:
    """Train a Siamese network as `config` says, writing the run directory `out_dir`.

    Returns the final status. SIGTERM or Ctrl-C (or `stop`) ends it cleanly: the last
    checkpoint is saved and the status says 'stopped'. `resume=True` continues the run
    in `out_dir` from its last checkpoint. With `config.time_budget`, the run (counted from `clock_start`,
    default now) ends within that many seconds: training.budget sets its steps from its measured speed.
    """
    group = distributed.join(config.device)  # started by torchrun: this process's rank; else a group of one
    started_threads = torch.get_num_threads()  # training may choose fewer (training.threads): given back at the end
    if config.device == "cpu" or (config.device == "auto" and not torch.cuda.is_available()):
        threads.start_on_a_busy_machine()
    try:
        status = train_run(group, config, out_dir, resume=resume, progress=progress, stop=stop, on_epoch=on_epoch,
                           data=data, trainer_for=_trainer_for, clock_start=clock_start)
        distributed.finish_together(group)
        return status
    finally:
        torch.set_num_threads(started_threads)
        distributed.leave(group)


def _trainer_for(ctx: Context) -> type:
    """A frozen backbone trains only its head, on features embedded once; otherwise the whole network trains."""
    return FrozenTrainer if ctx.config.frozen else FullTrainer


def train_fn(model, batches: Batches, train_set: D.ImageSet, config: TrainConfig, optimizer, device,
             channels_last: bool, stop: StopFlag, on_step: Callable[[int, float, float], None], bar=None,
             scheduler=None, identity_loss=None, group: distributed.Group = distributed.SINGLE,
             thread_chooser: Optional[threads.ThreadChooser] = None):
    """One epoch of training. Returns (mean loss, training pair accuracy or None, items), or None when stopped.

    `on_step(step, loss of this batch, items per second)` is called after each batch; `thread_chooser` is told each
    step's seconds and sets the CPU threads of the next (training.threads)."""
    model.train()
    scaler = None
    if autocast_dtype(device, config.precision) == torch.float16:
        scaler = torch.amp.GradScaler("cuda")  # fp16 gradients can underflow; bf16 has fp32's range
    started = time.time()
    loss_sum, n_sum, correct_sum, n_counted = 0.0, 0, 0, 0
    for step, item in enumerate(batches, 1):
        if distributed.agree_to_stop(bool(stop), group, device):
            return None
        step_started = time.perf_counter()
        with autocast_for(device, config.precision):
            loss, correct, n = train_step(model, item, batches.kind, train_set, config, device, channels_last,
                                          identity_loss, group)
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            if identity_loss is not None:
                distributed.average_gradients(identity_loss.parameters(), group)
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            if identity_loss is not None:
                distributed.average_gradients(identity_loss.parameters(), group)
            optimizer.step()
        if scheduler is not None:
            scheduler.step()
        loss_value = float(loss.detach())  # waits for the step to end: its time is the step's
        if thread_chooser is not None:
            thread_chooser.step_done(time.perf_counter() - step_started)
        if not np.isfinite(loss_value):
            raise UserError(f"The loss became {loss_value}: the learning rate ({config.lr}) is probably too high. "
                            "Try a tenth of it.")
        loss_sum += loss_value * n
        n_sum += n
        if correct is not None:
            correct_sum += correct
            n_counted += n
        rate = n_sum / max(time.time() - started, 1e-9)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss_sum / n_sum:.4f}", per_s=f"{rate:.0f}")
        on_step(step, loss_value, rate)
    return loss_sum / max(n_sum, 1), (correct_sum / n_counted if n_counted else None), n_sum


def make_optimizer(config: TrainConfig, parameters) -> torch.optim.Optimizer:
    """AdamW or Adam, fused into one kernel where the parameters' device has it (CPU and CUDA; the same update):
    measured on this 2-core CPU, a step of the optimiser took 4.6 ms for the digit ConvNet and 208 ms for the small
    ResNet in PyTorch's default (foreach), 2.8 ms and 11 ms fused (benchmarks/README.md, "Where a minute goes")."""
    parameters = list(parameters)
    kind = torch.optim.AdamW if config.optimizer == "adamw" else torch.optim.Adam
    if _fusable(parameters):
        try:
            return kind(parameters, lr=config.lr, weight_decay=config.weight_decay, fused=True)
        except (RuntimeError, TypeError, ValueError):  # a PyTorch or a device without the fused kernel
            pass
    return kind(parameters, lr=config.lr, weight_decay=config.weight_decay)


def _fusable(parameters) -> bool:
    return bool(parameters) and all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point
                                    for p in parameters)


def make_scheduler(config: TrainConfig, optimizer, total_steps: int, planned: Optional[PlannedSchedule] = None):
    """Linear warm-up over `config.warmup` of the steps, then a cosine decay to zero; None for a constant rate.
    `planned`: a time budget's schedule, which follows the plan's progress rather than a fixed step count."""
    if config.schedule == "constant":
        return None
    if planned is not None:
        return torch.optim.lr_scheduler.LambdaLR(optimizer, planned)
    warmup = int(config.warmup * total_steps)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def uses_channels_last(config: TrainConfig, device: torch.device) -> bool:
    """The memory layout training runs in: channels_last on a CPU unless the config says otherwise.

    Measured on this CPU: +11% for the digit ConvNet, +27% to +79% for timm/torchvision backbones.
    """
    return device.type == "cpu" if config.channels_last is None else bool(config.channels_last)


def closing_costs(data: PreparedData, config: TrainConfig, kind: str) -> dict:
    """What a time budget's plan needs to cost the work around the steps: the images a validation embeds (the pairs'
    images, mirrored too with flip_test, and the epoch map's sample), the images of one training step, and the images
    described for the verdicts once training is done. The map's sample is drawn from the pairs' images, so a small
    validation set maps all of them, not SAMPLE_SIZE (counting 300 where 30 are embedded made a 10-people run plan a
    validation four times too dear and stop a quarter of its budget early)."""
    val_images = len(np.unique(np.concatenate(data.val_pairs[:2])))
    sample = cohort_sample(data, config.seed)
    cohort = 0 if sample is None else len(sample[0]) + len(sample[1])
    eval_images = (val_images + cohort) * (2 if config.flip_test else 1) + min(SAMPLE_SIZE, val_images)
    described = min(DESCRIBED_IMAGES, len(data.train)) + min(CALIBRATION_IMAGES, len(data.val) or len(data.train))
    return dict(eval_images=eval_images, images_per_step=config.batch_size * {"pk": 1, "pair": 2, "triplet": 3}[kind],
                described_images=described)


class PlannedBatches:
    """An epoch's batches under a time budget: they end where the plan ends this epoch, which it may move while
    they are trained (train_fn reads them one at a time)."""

    def __init__(self, batches: Batches, budget, epoch: int, first: int):
        self.batches, self.budget, self.epoch, self.first = batches, budget, epoch, first
        self.kind = batches.kind
        self.yielded = 0  # batches handed out (all trained, unless the stop flag ended the epoch)

    def __len__(self) -> int:
        return max(0, min(len(self.batches), self.budget.total_steps - self.first))

    def __iter__(self):
        for i, item in enumerate(self.batches):
            if not self.budget.steps_left_in(self.epoch, self.first + i):
                return
            self.yielded += 1
            yield item


class FullTrainer(Trainer):
    """The whole network trains: the skeleton's pieces for it (setup, one epoch, validation, the map's vectors)."""

    def setup(self) -> None:
        ctx, config = self.ctx, self.ctx.config
        self.channels_last = uses_channels_last(config, ctx.device)
        ctx.model.to(ctx.device)
        if self.channels_last:
            ctx.model.to(memory_format=torch.channels_last)
        if config.id_loss > 0:
            self.identity_loss = losses.CosineIdentityLoss(config.embedding_dim,
                                                           len(ctx.data.train.classes)).to(ctx.device)
        trained = list(ctx.model.parameters()) + (list(self.identity_loss.parameters())
                                                  if self.identity_loss is not None else [])
        self.optimizer = make_optimizer(config, trained)
        first = Batches(ctx.data.train, config, 1)
        self.steps = len(distributed.share(first.items, ctx.group))  # this rank's share
        budget = self.plan_budget(self.steps, **closing_costs(ctx.data, config, first.kind))
        self.scheduler = make_scheduler(config, self.optimizer, self.steps * config.epochs,
                                        budget.schedule if budget is not None else None)
        self.last_write, self.unlogged = 0.0, []  # the last status write; batch losses since the last step record
        self.cohort = cohort_sample(ctx.data, config.seed)
        self.thread_chooser = threads.for_device(ctx.device, self._trial_room if budget is not None else None)

    def _trial_room(self) -> float:
        """Seconds a step on another thread count may cost under a time budget: a tenth of the time left (the plan
        gives a slow step back with fewer steps later; near the end there is nothing to give it back with)."""
        return 0.1 * max(0.0, self.ctx.budget.deadline - time.time())

    def start_status(self) -> dict:
        return {"steps_per_epoch": self.steps, "step": (self.ctx.start_epoch - 1) * self.steps,
                "total_steps": self.steps * self.ctx.config.epochs, **self.progress_fields(0, self.ctx.start_epoch)}

    def before_epochs(self) -> None:
        ctx, data = self.ctx, self.ctx.data
        log.info("Training %s (%s mode, %s parameters, weights from %s) on %d images of %d classes; validating on "
                 "%d pairs of %d images. Device %s.", ctx.config.backbone, ctx.config.mode,
                 f"{count_parameters(ctx.model):,}", "the last checkpoint" if ctx.resume else ctx.model.weights_source,
                 len(data.train), len(data.train.class_counts()) if data.train.has_labels else 0,
                 len(data.val_pairs[0]), len(data.val), ctx.device)
        # In DistributedDataParallel when several processes train; the resumed weights are in by now.
        self.network = distributed.trainable(ctx.model, ctx.group, ctx.device)

    def train_epoch(self, epoch: int) -> Optional[Trained]:
        ctx, config = self.ctx, self.ctx.config
        batches = Batches(ctx.data.train, config, epoch)
        batches.items = distributed.share(batches.items, ctx.group)
        first = (epoch - 1) * self.steps  # steps before this epoch
        if ctx.budget is not None:
            batches = PlannedBatches(batches, ctx.budget, epoch, first)
        started = time.time()
        bar = progress_bar(len(batches), f"epoch {epoch}/{self.last_epoch()}", ctx.progress)
        try:
            trained = train_fn(self.network, batches, ctx.data.train, config, self.optimizer, ctx.device,
                               self.channels_last, ctx.stop, self._reporter(epoch, len(batches)), bar, self.scheduler,
                               self.identity_loss, ctx.group, self.thread_chooser)
        finally:
            if bar is not None:
                bar.close()
        if trained is None:
            return None
        loss, accuracy, items = trained
        done = first + (len(batches) if ctx.budget is None else batches.yielded)
        return Trained(loss, accuracy, items * ctx.group.world, time.time() - started, done)

    def _reporter(self, epoch: int, n_batches: int) -> Callable[[int, float, float], None]:
        """train_fn's on_step: the status and a step record, at most once a second and after the last batch."""
        budget, first = self.ctx.budget, (epoch - 1) * self.steps

        def on_step(step: int, loss: float, rate: float) -> None:
            now = time.time()
            self.unlogged.append(loss)
            last = step == n_batches
            if budget is not None and budget.after_step(first + step, epoch, now) and self.scheduler is not None:
                follow_plan(self.scheduler)
                last = last or not budget.steps_left_in(epoch, first + step)
            if now - self.last_write > 1.0 or last:
                self.last_write = now
                self.ctx.run.update_status(epoch=epoch - 1, step=first + step, epoch_step=step,
                                           **self.progress_fields(first + step, epoch))
                # The mean of the batches since the last record, not since the epoch began: a running mean
                # restarts at each epoch, and the curve would jump there.
                self.ctx.run.append_metrics({"type": "step", "epoch": epoch, "step": step, "time": now,
                                             "loss": float(np.mean(self.unlogged)), "items_per_second": rate,
                                             "lr": self.optimizer.param_groups[0]["lr"]})
                self.unlogged.clear()

        return on_step

    def validate(self) -> dict:
        ctx = self.ctx
        others = cohort_scores(ctx.model, ctx.data, self.cohort, ctx.device, self.channels_last)
        return evaluate_pairs(ctx.model, ctx.data.val, ctx.data.val_pairs, ctx.device,
                              channels_last=self.channels_last, same_share=ctx.config.same_share,
                              policy=ctx.config.threshold_policy, other_different=others)

    def vectors(self, positions) -> np.ndarray:
        return sample_vectors(self.ctx.model, self.ctx.data.val, positions, self.ctx.device, self.channels_last)
