"""The training loop: data from a TrainConfig, train_fn / eval_fn, and the run directory it writes."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import threading
import time
import traceback
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from ..config import TrainConfig
from ..data import augment
from ..data import sources as D
from ..data.prepare import PreparedData, prepare_data
from ..errors import UserError, plain_words
from ..evaluation.metrics import calibrate_threshold, roc_points, verification_metrics
from ..inference.domain import describe_run
from ..models.networks import (as_model_input, build_model, count_parameters, embed_set, images_per_pass, model_spec,
                               pick_device)
from ..runs.context import SAMPLES_FILE, write_samples
from ..runs.rundir import ReadOnlyRun, RunDir, load_checkpoint, process_alive
from . import distributed, losses
from .common import (Batches, CheckpointSaver, EpochSnapshots, autocast_dtype, autocast_for, default_pairs_per_epoch,
                     end_of_epoch, progress_bar, resume_bookkeeping)
from .frozen import train_frozen

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


def evaluate_pairs(model, image_set, pairs, device, threshold: Optional[float] = None, channels_last=False,
                   same_share: Optional[float] = None) -> dict:
    """Verification metrics on pairs; the threshold is calibrated on them (for `same_share`) unless given."""
    scores = eval_fn(model, image_set, pairs, device, channels_last=channels_last)
    same = pairs[2]
    if threshold is None:
        threshold = calibrate_threshold(scores, same, same_share=same_share)
    result = verification_metrics(scores, same, threshold)
    result["roc"] = roc_points(scores, same)
    result["scores"] = scores
    return result


# ---------------------------------------------------------------- the whole run

class StopFlag:
    """Set by SIGTERM / Ctrl-C (or by a caller); the loop checks it between batches."""

    def __init__(self):
        self.event = threading.Event()

    def set(self, *_):
        self.event.set()

    def __bool__(self):
        return self.event.is_set()


@contextlib.contextmanager
def stop_on_signals(flag: StopFlag):
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, flag.set) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def log_to(path: Path):
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    log.addHandler(handler)
    if log.level == logging.NOTSET or log.level > logging.INFO:
        log.setLevel(logging.INFO)
    try:
        yield
    finally:
        log.removeHandler(handler)
        handler.close()


def train(config: TrainConfig, out_dir, *, resume: bool = False, progress: bool = False,
          stop: Optional[StopFlag] = None, on_epoch: Optional[Callable[[dict], None]] = None,
          data: Optional[PreparedData] = None) -> dict:
    """Train a Siamese network as `config` says, writing the run directory `out_dir`.

    Returns the final status. SIGTERM or Ctrl-C (or `stop`) ends it cleanly: the last
    checkpoint is saved and the status says 'stopped'. `resume=True` continues the run
    in `out_dir` from its last checkpoint.
    """
    group = distributed.join(config.device)  # started by torchrun: this process's rank; else a group of one
    try:
        status = _train_as(group, config, out_dir, resume, progress, stop, on_epoch, data)
        distributed.finish_together(group)
        return status
    finally:
        distributed.leave(group)


def _train_as(group: distributed.Group, config: TrainConfig, out_dir, resume, progress, stop, on_epoch, data) -> dict:
    # Only rank 0 writes the run directory; the other ranks read it (to resume) and train their share.
    run = RunDir(out_dir) if group.main else ReadOnlyRun(out_dir)
    stop = StopFlag() if stop is None else stop
    if resume:
        saved = run.read_config()
        if saved is None or not run.checkpoint("last").is_file():
            raise UserError(f"There is no run to resume in '{out_dir}' (no config.json or checkpoints/last.pt).")
        config = TrainConfig.from_dict({**saved, "epochs": config.epochs})
    elif group.main:
        _refuse_to_overwrite(run)
    config = config.resolve()
    run.create()
    run.sweep_temp_files()  # what a kill during an earlier attempt's checkpoint write left
    if not resume and group.main:
        run.metrics_path.unlink(missing_ok=True)  # a failed earlier attempt's lines are not this run's
    # A resumed run keeps showing how far it got until it trains again.
    fresh = {} if resume else {"epoch": 0, "step": 0, "total_steps": None}
    logged = log_to(run.log_path) if group.main else contextlib.nullcontext()
    with logged, stop_on_signals(stop):
        run.update_status(state="queued", pid=os.getpid(), total_epochs=config.epochs, error=None,
                          created_at=time.time(), processes=group.world, **fresh)
        try:
            if data is None:
                log.info("Loading data (%s)...", config.dataset)
                data = prepare_data(config)
            status = _train(config, run, resume, progress, stop, on_epoch, data, group)
            if group.main and status.get("state") == "done":  # what its images looked like, for the verdicts
                describe_run(run, data, distributed.device_of(group, config.device) or pick_device(config.device))
            run.sweep_temp_files()  # again: one the start left for being only seconds old is older now
            return status
        except Exception as exc:
            message = plain_words(exc)
            log.error("Training failed: %s", message)
            if not isinstance(exc, UserError):
                log.error(traceback.format_exc())
            try:
                run.update_status(state="failed", error=message, finished_at=time.time())
            except OSError:  # the disk that failed the run may refuse the status too; the log said it
                pass
            raise


def train_fn(model, batches: Batches, train_set: D.ImageSet, config: TrainConfig, optimizer, device,
             channels_last: bool, stop: StopFlag, on_step: Callable[[int, float, float], None], bar=None,
             scheduler=None, identity_loss=None, group: distributed.Group = distributed.SINGLE):
    """One epoch of training. Returns (mean loss, training pair accuracy or None, items), or None when stopped.

    `on_step(step, loss of this batch, items per second)` is called after each batch."""
    model.train()
    scaler = None
    if autocast_dtype(device, config.precision) == torch.float16:
        scaler = torch.amp.GradScaler("cuda")  # fp16 gradients can underflow; bf16 has fp32's range
    started = time.time()
    loss_sum, n_sum, correct_sum, n_counted = 0.0, 0, 0, 0
    for step, item in enumerate(batches, 1):
        if distributed.agree_to_stop(bool(stop), group, device):
            return None
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
        loss_value = float(loss.detach())
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
    if config.optimizer == "adamw":
        return torch.optim.AdamW(parameters, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay)


def make_scheduler(config: TrainConfig, optimizer, total_steps: int):
    """Linear warm-up over `config.warmup` of the steps, then a cosine decay to zero; None for a constant rate."""
    if config.schedule == "constant":
        return None
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


def _refuse_to_overwrite(run: RunDir) -> None:
    """A finished, stopped or live run is never overwritten; a failed or crashed one may be started afresh."""
    status = run.read_status()
    state, pid = status.get("state"), status.get("pid")
    if state in ("queued", "running") and pid and pid != os.getpid() and process_alive(pid):
        raise UserError(f"'{run.path}' is being trained right now (process {pid}): stop it first, or choose "
                        "another output folder.")
    if state in ("done", "stopped"):
        raise UserError(f"'{run.path}' already holds a run: choose another output folder, or resume it "
                        "(--resume on the command line).")


def _train(config, run: RunDir, resume, progress, stop, on_epoch, data,
           group: distributed.Group = distributed.SINGLE) -> dict:
    torch.manual_seed(config.seed)
    device = distributed.device_of(group, config.device) or pick_device(config.device)
    if config.pairs_per_epoch is None:
        kind = "pk" if config.mining != "none" else config.mode
        config.pairs_per_epoch = default_pairs_per_epoch(len(data.train), kind, config.image_size)
    run.write_config(config.to_dict())
    if group.main and not (run.path / SAMPLES_FILE).is_file():
        write_samples(run, data.val, config.seed)  # the pages' sample images for this model: its own kind
    spec = model_spec(config)
    model = build_model(spec, pretrained=config.pretrained and not resume, weights=None if resume else config.weights)
    if config.frozen:  # only the head trains, on features embedded once
        if group.active:
            raise UserError("A frozen backbone trains only a small head, in seconds: run it in one process "
                            "(without torchrun), or drop --frozen to train the whole network on several.")
        return train_frozen(model, config, data, run, device, resume, progress, stop, on_epoch)
    channels_last = uses_channels_last(config, device)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    identity_loss = None
    if config.id_loss > 0:
        identity_loss = losses.CosineIdentityLoss(config.embedding_dim, len(data.train.classes)).to(device)
    trained = list(model.parameters()) + (list(identity_loss.parameters()) if identity_loss is not None else [])
    optimizer = make_optimizer(config, trained)
    steps_per_epoch = len(distributed.share(Batches(data.train, config, 1).items, group))  # this rank's share
    scheduler = make_scheduler(config, optimizer, steps_per_epoch * config.epochs)
    start_epoch, best = 1, None
    if resume:
        last = load_checkpoint(run.checkpoint("last"))
        model.load_state_dict(last["state_dict"])
        if "optimizer" in last:
            optimizer.load_state_dict(last["optimizer"])
        if identity_loss is not None and "identity_loss" in last:
            identity_loss.load_state_dict(last["identity_loss"])
        start_epoch, best = last["epoch"] + 1, (last.get("best") or {}).get("accuracy")
        if scheduler is not None and "scheduler" in last:
            scheduler.load_state_dict(last["scheduler"])
        log.info("Resuming from epoch %d.", last["epoch"])
    elapsed_before = resume_bookkeeping(run, start_epoch - 1) if resume else 0.0
    log.info("Training %s (%s mode, %s parameters, weights from %s) on %d images of %d classes; validating on "
             "%d pairs of %d images. Device %s.", config.backbone, config.mode, f"{count_parameters(model):,}",
             "the last checkpoint" if resume else model.weights_source, len(data.train),
             len(data.train.class_counts()) if data.train.has_labels else 0, len(data.val_pairs[0]), len(data.val), device)
    run.update_status(state="running", started_at=time.time(), elapsed_before=elapsed_before, epoch=start_epoch - 1,
                      step=(start_epoch - 1) * steps_per_epoch, steps_per_epoch=steps_per_epoch,
                      total_steps=steps_per_epoch * config.epochs,
                      total_epochs=config.epochs, train_images=len(data.train), val_pairs=len(data.val_pairs[0]))
    saver = CheckpointSaver(run, model, optimizer, spec, config, list(data.train.class_counts()), identity_loss,
                             scheduler)
    snapshots = EpochSnapshots(run, data, config, model, resume, start_epoch) if group.main else None
    if snapshots is not None:  # the random start: the most telling picture
        snapshots.take(0, lambda positions: sample_vectors(model, data.val, positions, device, channels_last))
    last_write = [0.0]
    unlogged: list = []  # batch losses since the last step record

    network = distributed.trainable(model, group, device)  # in DistributedDataParallel when several processes train
    for epoch in range(start_epoch, config.epochs + 1):
        batches = Batches(data.train, config, epoch)
        batches.items = distributed.share(batches.items, group)

        def on_step(step, loss, rate):
            now = time.time()
            unlogged.append(loss)
            if now - last_write[0] > 1.0 or step == len(batches):  # at most one status write a second
                last_write[0] = now
                run.update_status(epoch=epoch - 1, step=(epoch - 1) * len(batches) + step, epoch_step=step)
                # The mean of the batches since the last record, not since the epoch began: a running mean
                # restarts at each epoch, and the curve would jump there.
                run.append_metrics({"type": "step", "epoch": epoch, "step": step, "loss": float(np.mean(unlogged)),
                                    "items_per_second": rate, "time": now})
                unlogged.clear()

        started = time.time()
        bar = progress_bar(len(batches), f"epoch {epoch}/{config.epochs}", progress)
        try:
            trained = train_fn(network, batches, data.train, config, optimizer, device, channels_last, stop, on_step,
                               bar, scheduler, identity_loss, group)
        finally:
            if bar is not None:
                bar.close()
        if trained is None:
            if group.main:
                saver.save_stopped(epoch - 1, best)
                log.info("Stopped during epoch %d; the weights so far are saved in checkpoints/last.pt.", epoch)
            return run.update_status(state="stopped", finished_at=time.time())
        train_loss, train_accuracy, n_items = trained
        seconds = time.time() - started  # training only, not validation
        if not group.main:
            continue  # rank 0 validates and writes; this rank goes on to its share of the next epoch
        result = evaluate_pairs(model, data.val, data.val_pairs, device, channels_last=channels_last,
                                same_share=config.same_share)
        result.pop("scores")
        snapshots.take(epoch, lambda positions: sample_vectors(model, data.val, positions, device, channels_last))
        best = end_of_epoch(run, saver, config, epoch, result, best, on_epoch, train_loss=train_loss,
                            train_accuracy=train_accuracy, seconds=seconds, n_items=n_items * group.world,
                            step=epoch * len(batches))
    log.info("Done: best validation accuracy %.2f%%.", 100 * (best or 0))
    return run.update_status(state="done", finished_at=time.time())
