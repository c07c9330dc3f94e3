"""What both trainers share (the whole-network loop in training, the frozen-backbone one in frozen):
an epoch's batches, mixed precision, the end of an epoch, its checkpoints and its progress bar."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Optional

import numpy as np
import torch
from tqdm import tqdm

from ..config import TrainConfig
from ..data import sources as D
from ..maps.snapshots import SnapshotWriter
from ..runs.rundir import RunDir, load_checkpoint, save_checkpoint

log = logging.getLogger("siamese_core")


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
        self.items = [item for item in self.items if _batch_len(item) > 1]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self):
        return iter(self.items)


def _batch_len(item) -> int:
    return len(item[0]) if isinstance(item, tuple) else len(item)


def default_pairs_per_epoch(n_train: int, kind: str = "pair", image_size: int = 64) -> int:
    """Pairs (or triplets, or images in P x K batches) drawn afresh each epoch.

    Pairs: about ten per training image, within bounds that keep an epoch between seconds and minutes.
    P x K batches: about ten passes over the images, at least 4,000 images, and at most what keeps ten
    epochs within about fifteen minutes on a 2-core CPU (30,000 images at 64 px; more for smaller images).
    """
    if kind == "pk":
        most = int(30_000 * max(1.0, (64 / image_size) ** 2))
        return int(min(max(10 * n_train, 4_000), most))
    return int(min(max(10 * n_train, 2_000), 50_000))


def resume_bookkeeping(run: RunDir, last_epoch: int) -> float:
    """Before a resumed run trains: forget what the epochs after its last checkpoint logged (each epoch is
    then logged once) and return the training seconds spent so far, so 'elapsed' goes on from there."""
    elapsed = run.elapsed_before()
    run.keep_metrics_through(last_epoch)
    return elapsed


class EpochSnapshots:
    """The trainers' side of the epoch map (siamese_core.maps.snapshots): the sample's vectors before training and
    after each epoch. Only rank 0 makes one. A snapshot that cannot be written (a full disk) is logged and
    the rest are skipped: the map is a picture of the training, never a reason for it to fail."""

    def __init__(self, run: RunDir, data, config: TrainConfig, model, resume: bool, start_epoch: int):
        self.writer, self.start_epoch = None, start_epoch
        try:
            self.writer = SnapshotWriter(run.path, data.val, data.val_pairs, config.seed,
                                         "embedding" if model.is_embedding else "backbone",
                                         getattr(model, "weights_source", "") == "random initialisation")
            if resume:
                self.writer.keep_through(start_epoch - 1)  # what a cut-off attempt wrote after the checkpoint
        except OSError as exc:
            self._give_up(exc)

    def take(self, epoch: int, vectors_of) -> None:
        """Store `vectors_of(positions of the sample)` as epoch `epoch`'s snapshot (0: before training, only
        when the run starts from scratch and has none yet)."""
        if self.writer is None or (epoch == 0 and (self.start_epoch > 1 or self.writer.has(0))):
            return
        try:
            self.writer.write(epoch, vectors_of(self.writer.positions))
        except OSError as exc:
            self._give_up(exc)

    def _give_up(self, exc: OSError) -> None:
        log.warning("The epoch map's snapshots could not be written (%s); training goes on without them.", exc)
        self.writer = None


def end_of_epoch(run: RunDir, saver: "CheckpointSaver", config: TrainConfig, epoch: int, result: dict, best,
                 on_epoch, *, train_loss: float, train_accuracy, seconds: float, n_items: int, **status) -> float:
    """Log an epoch's validation `result`, save best/last (and every-N) checkpoints, update the status.
    Returns the best validation accuracy so far."""
    roc = result.pop("roc")
    record = {"type": "epoch", "epoch": epoch, "train_loss": train_loss, "train_accuracy": train_accuracy,
              "seconds": seconds, "items_per_second": n_items / max(seconds, 1e-9), "time": time.time(),
              **{k: v for k, v in result.items() if k not in ("tp", "fp", "fn", "tn")}}
    run.append_metrics(record)
    log.info("Epoch %d/%d: loss %.4f, validation accuracy %.2f%% (precision %.2f%%, recall %.2f%%, AUC %.4f) "
             "at threshold %.3f; %.1f s.", epoch, config.epochs, train_loss, 100 * result["accuracy"],
             100 * result["precision"], 100 * result["recall"], result["roc_auc"], result["threshold"], seconds)
    improved = best is None or result["accuracy"] > best
    if improved:
        best = result["accuracy"]
        saver.save("best", epoch, result, roc)
        status["best_epoch"] = epoch  # every headline figure of the run comes from this epoch's record
    saver.save("last", epoch, result, roc, best=best)
    if config.save_every and epoch % config.save_every == 0:
        saver.save(f"epoch-{epoch:03d}", epoch, result, roc)
    run.update_status(epoch=epoch, best_accuracy=best, last_metrics=record, **status)
    if on_epoch:
        on_epoch(record)
    return best


class CheckpointSaver:
    """Writes the run's checkpoints; `last` also carries the optimizer state for --resume."""

    def __init__(self, run: RunDir, model, optimizer, spec: dict, config: TrainConfig, classes, identity_loss=None,
                 scheduler=None):
        self.run, self.model, self.optimizer = run, model, optimizer
        self.identity_loss, self.scheduler = identity_loss, scheduler
        self.common = dict(spec=spec, config=config.to_dict(), classes=list(classes))

    def _resume_state(self, best: Optional[float]) -> dict:
        state = {"optimizer": self.optimizer.state_dict(), "best": {"accuracy": best}}
        if self.identity_loss is not None:
            state["identity_loss"] = self.identity_loss.state_dict()
        if self.scheduler is not None:
            state["scheduler"] = self.scheduler.state_dict()
        return state

    def save(self, name: str, epoch: int, result: dict, roc: dict, best: Optional[float] = None) -> None:
        metrics = {**result, "roc": roc, "threshold_source": "validation pairs"}
        extra = self._resume_state(best) if name == "last" else None
        save_checkpoint(self.run.checkpoint(name), state_dict=self.model.state_dict(), threshold=result["threshold"],
                        metrics=metrics, epoch=epoch, extra=extra, **self.common)

    def save_stopped(self, completed_epochs: int, best: Optional[float]) -> None:
        """Keep the weights trained so far, with the last calibrated threshold (or a neutral one)."""
        path = self.run.checkpoint("last")
        previous = load_checkpoint(path) if path.is_file() else {}
        save_checkpoint(path, state_dict=self.model.state_dict(), threshold=previous.get("threshold", 0.5),
                        metrics=previous.get("metrics", {}), epoch=completed_epochs,
                        extra=self._resume_state(best), **self.common)


def progress_bar(total: int, desc: str, enabled: bool):
    if not enabled:
        return None
    # disable=None: a bar on a terminal, silence when output goes to a file or pipe
    return tqdm(total=total, desc=desc, unit="batch", leave=False, dynamic_ncols=True, disable=None, mininterval=0.5)
