"""One training run's outline, written once: open the run directory, build the model, resume, keep the status,
train epoch after epoch, validate, save checkpoints and epoch-map snapshots, stop cleanly.

The two ways of training supply their pieces as subclasses of Trainer, the way pytorch-metric-learning's
BaseTrainer keeps train() to a few lines with each step a small method: the whole network
(training.loop.FullTrainer) and a head on a frozen backbone's cached features (training.frozen.FrozenTrainer).
Each supplies its setup, one epoch, validation and the epoch map's vectors; what they share travels in one
Context.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch

from ..config import TrainConfig
from ..data import sources as D
from ..data.prepare import PreparedData, prepare_data
from ..data.reading import apply_reading
from ..errors import UserError, plain_words
from ..inference.domain import CALIBRATION_IMAGES, DESCRIBED_IMAGES, describe_run
from ..maps.snapshots import SnapshotWriter
from ..models.networks import build_model, model_spec, pick_device
from ..runs.context import SAMPLES_FILE, write_samples
from ..runs.rundir import ReadOnlyRun, RunDir, load_checkpoint, process_alive, save_checkpoint
from ..runs.status import RunStatus
from . import distributed
from .budget import Budget, follow_plan
from .common import default_pairs_per_epoch

log = logging.getLogger("siamese_core")


# ---------------------------------------------------------------- stop, and the log file

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


# ---------------------------------------------------------------- what a run carries

@dataclass
class Context:
    """One run from its start to its end: what every step of the outline reads, and what it learns on the way."""
    run: RunDir  # a ReadOnlyRun on every process of a distributed run but rank 0
    config: TrainConfig  # resolved
    data: PreparedData
    model: torch.nn.Module  # a SiameseNet
    device: torch.device
    group: distributed.Group  # this process's place in a distributed run (SINGLE when alone)
    stop: StopFlag
    resume: bool
    progress: bool  # progress bars on a terminal
    on_epoch: Optional[Callable[[dict], None]] = None  # called with each epoch's metrics record
    saver: Optional["CheckpointSaver"] = None
    snapshots: Optional["EpochMapRecorder"] = None  # rank 0 only
    start_epoch: int = 1
    best: Optional[float] = None  # the best validation accuracy so far
    clock_start: float = 0.0  # when the run's time began (the process's start on the command line)
    budget: Optional[Budget] = None  # the plan that keeps config.time_budget (None: train for config.epochs)


@dataclass
class Trained:
    """What one epoch of training reports to the outline."""
    loss: float  # mean training loss
    accuracy: Optional[float]  # training pair accuracy (pair models), else None
    items: int  # pairs, triplets or images trained on, by every process
    seconds: float  # training only, not validation
    step: int  # the run's step count once the epoch is done (the status's `step`)
    planned: Optional[int] = None  # the time budget's count of steps, where it differs (the frozen path's head steps)

    @property
    def budget_step(self) -> int:
        return self.step if self.planned is None else self.planned


# ---------------------------------------------------------------- the outline

class Trainer:
    """The outline of a run's epochs. A subclass supplies setup, start_status, train_epoch, validate and
    vectors, and may add before_epochs; it sets the optimizer (and a scheduler or identity loss) in setup so
    the checkpoints carry them."""

    optimizer: torch.optim.Optimizer
    scheduler = None
    identity_loss = None
    step_offset = 0  # the status's step count less the time budget's (the frozen path's embedding batches)

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def run(self) -> RunStatus:
        ctx = self.ctx
        self.setup()
        ctx.saver = CheckpointSaver(ctx.run, ctx.model, self.optimizer, ctx.config, ctx.data.train.class_counts(),
                                    self.identity_loss, self.scheduler)
        if ctx.resume:
            self._resume()
        self._mark_running()
        self.before_epochs()
        ctx.snapshots = EpochMapRecorder(ctx) if ctx.group.main else None
        writer = ctx.snapshots.writer if ctx.snapshots is not None else None
        if ctx.budget is not None and writer is not None:  # the first pass through a network pays for warming up:
            self.vectors(writer.positions[:8])  # done first, so the snapshot below times what validation will cost
        started = time.time()
        self._snapshot(0)  # the start (random weights: the most telling picture)
        if ctx.budget is not None and writer is not None and ctx.snapshots.writer is not None:
            ctx.budget.timed_embedding(time.time() - started, len(writer.positions))
        epoch, trained = ctx.start_epoch, None
        while epoch <= self.last_epoch():  # a time budget may move the last epoch as the speed is measured
            trained = self.train_epoch(epoch)
            if trained is None:
                return self._stopped(epoch)
            if ctx.group.main:  # rank 0 validates and writes; the others go on to their share of the next epoch
                started = time.time()
                self._end_epoch(epoch, trained, self.validate())
                if ctx.budget is not None and ctx.budget.after_epoch_end(time.time() - started, trained.budget_step,
                                                                         epoch + 1) and self.scheduler is not None:
                    follow_plan(self.scheduler)
            epoch += 1
        log.info("Done: best validation accuracy %.2f%%.", 100 * (ctx.best or 0))
        if ctx.group.main:  # what its images looked like, for the verdicts: in the checkpoints before 'done'
            describe_run(ctx.run, _described_data(ctx), ctx.device)
        finished = {} if ctx.budget is None else {"total_epochs": epoch - 1, "epoch": epoch - 1,
                                                  "total_steps": trained.step if trained else None,
                                                  **_budget_kept(ctx.config, ctx.budget)}
        return ctx.run.update_status(state="done", finished_at=time.time(), expected_end=None, **finished)

    def last_epoch(self) -> int:
        """The run's last epoch: the config's, or under a time budget the plan's (which the measured speed moves)."""
        return self.ctx.config.epochs if self.ctx.budget is None else self.ctx.budget.last_epoch

    def plan_budget(self, steps_per_epoch: int, *, eval_images: int, images_per_step: int,
                    described_images: int = 0, most_steps: Optional[int] = None) -> Optional[Budget]:
        """The plan that keeps config.time_budget (None without one): from the time the run has left (a resumed run
        the budget less the seconds its earlier attempts trained), over epochs of `steps_per_epoch` steps."""
        ctx, config = self.ctx, self.ctx.config
        if config.time_budget is None:
            return None
        if ctx.group.active:
            raise UserError("A time budget is kept by one process measuring its own speed: run it without torchrun, "
                            "or give the number of epochs (-e) instead of --time.")
        seconds = config.time_budget - (ctx.run.elapsed_before() if ctx.resume else 0.0)
        start_step = (ctx.start_epoch - 1) * steps_per_epoch
        ctx.budget = Budget(max(1.0, seconds), ctx.clock_start, steps_per_epoch, start_step=start_step,
                            provisional_steps=steps_per_epoch * config.epochs, eval_images=eval_images,
                            images_per_step=images_per_step, warmup=config.warmup or 0.0,
                            described_images=described_images, most_steps=most_steps)
        return ctx.budget

    def progress_fields(self, done: int, epoch: int) -> dict:
        """Under a time budget, the status fields that change with the plan: its totals and the expected end."""
        budget = self.ctx.budget
        if budget is None:
            return {}
        if not budget.planned:  # the provisional plan is no figure to show: "epoch 1 of ?" until the speed is known
            return dict(total_epochs=None, expected_end=budget.expected_end(done, epoch))
        return dict(total_steps=budget.total_steps + self.step_offset, total_epochs=budget.last_epoch,
                    expected_end=budget.expected_end(done, epoch))

    # -------------------------------------------------- the pieces a trainer supplies

    def setup(self) -> None:
        """Put the model on its device; make self.optimizer (and any scheduler or identity loss)."""
        raise NotImplementedError

    def start_status(self) -> dict:
        """The status fields of this trainer's progress as training starts: steps_per_epoch, step, total_steps."""
        raise NotImplementedError

    def before_epochs(self) -> None:
        """Work done once, after resuming and before the first epoch."""

    def train_epoch(self, epoch: int) -> Optional[Trained]:
        """Train one epoch; None when the stop flag ended it."""
        raise NotImplementedError

    def validate(self) -> dict:
        """Verification metrics on the validation pairs, with 'roc' (evaluation.metrics' result)."""
        raise NotImplementedError

    def vectors(self, positions) -> np.ndarray:
        """The epoch map's snapshot: the vectors of the validation images at `positions`."""
        raise NotImplementedError

    # -------------------------------------------------- the outline's own steps

    def _resume(self) -> None:
        ctx = self.ctx
        path = ctx.run.resume_checkpoint()
        last = load_checkpoint(path)
        ctx.saver.restore(last)
        ctx.start_epoch, ctx.best = last["epoch"] + 1, (last.get("best") or {}).get("accuracy")
        if path.stem == "best":  # last.pt's write failed (a full disk): best.pt holds weights, not the optimizer's state
            ctx.best = (last.get("metrics") or {}).get("accuracy")
            log.info("checkpoints/last.pt is missing (its write failed): resuming from checkpoints/best.pt, "
                     "the weights of epoch %d; the optimizer starts afresh from there.", last["epoch"])
        else:
            log.info("Resuming from epoch %d.", last["epoch"])

    def _mark_running(self) -> None:
        ctx = self.ctx
        # A resumed run forgets what the epochs after its last checkpoint logged (each epoch is then logged
        # once), and its 'elapsed' goes on from the training seconds spent so far.
        elapsed_before = ctx.run.elapsed_before() if ctx.resume else 0.0
        if ctx.resume:
            ctx.run.keep_metrics_through(ctx.start_epoch - 1)
        budgeted = {} if ctx.budget is None else {"time_budget": ctx.config.time_budget,
                                                  "budget_started_at": ctx.clock_start}
        fields = dict(state="running", started_at=time.time(), elapsed_before=elapsed_before,
                      epoch=ctx.start_epoch - 1, total_epochs=self.last_epoch() if ctx.budget is None else None,
                      train_images=len(ctx.data.train),
                      val_pairs=len(ctx.data.val_pairs[0]))
        ctx.run.update_status(**{**fields, **self.start_status(), **budgeted})

    def _snapshot(self, epoch: int) -> None:
        if self.ctx.snapshots is not None:
            self.ctx.snapshots.take(epoch, self.vectors)

    def _end_epoch(self, epoch: int, trained: Trained, result: dict) -> None:
        """Snapshot, log the epoch's record, save best/last (and every-N) checkpoints, update the status."""
        ctx, config = self.ctx, self.ctx.config
        self._snapshot(epoch)
        roc = result.pop("roc")
        result.pop("scores", None)
        record = {"type": "epoch", "epoch": epoch, "train_loss": trained.loss, "train_accuracy": trained.accuracy,
                  "seconds": trained.seconds, "items_per_second": trained.items / max(trained.seconds, 1e-9),
                  "time": time.time(), **{k: v for k, v in result.items() if k not in ("tp", "fp", "fn", "tn")}}
        ctx.run.append_metrics(record)
        log.info("Epoch %d/%d: loss %.4f, validation accuracy %.2f%% (precision %.2f%%, recall %.2f%%, AUC %.4f) "
                 "at threshold %.3f; %.1f s.", epoch, self.last_epoch(), trained.loss, 100 * result["accuracy"],
                 100 * result["precision"], 100 * result["recall"], result["roc_auc"], result["threshold"],
                 trained.seconds)
        changes = {}
        if ctx.best is None or result["accuracy"] > ctx.best:
            ctx.best = result["accuracy"]
            ctx.saver.save("best", epoch, result, roc)
            changes["best_epoch"] = epoch  # every headline figure of the run comes from this epoch's record
        ctx.saver.save("last", epoch, result, roc, best=ctx.best)
        if config.save_every and epoch % config.save_every == 0:
            ctx.saver.save(f"epoch-{epoch:03d}", epoch, result, roc)
        ctx.run.update_status(epoch=epoch, step=trained.step, best_accuracy=ctx.best, last_metrics=record, **changes,
                              **self.progress_fields(trained.budget_step, epoch + 1))
        if ctx.on_epoch:
            ctx.on_epoch(record)

    def _stopped(self, epoch: int) -> RunStatus:
        ctx = self.ctx
        if ctx.group.main:
            ctx.saver.save_stopped(epoch - 1, ctx.best)
            log.info("Stopped during epoch %d; the weights so far are saved in checkpoints/last.pt.", epoch)
        return ctx.run.update_status(state="stopped", finished_at=time.time())


# ---------------------------------------------------------------- checkpoints and the epoch map

class CheckpointSaver:
    """Writes the run's checkpoints; `last` also carries the optimizer's state (and the scheduler's and the
    identity loss's) for --resume, which `restore` puts back."""

    def __init__(self, run: RunDir, model, optimizer, config: TrainConfig, classes, identity_loss=None,
                 scheduler=None):
        self.run, self.model, self.optimizer = run, model, optimizer
        self.identity_loss, self.scheduler = identity_loss, scheduler
        self.common = dict(spec=model.spec, config=config.to_dict(), classes=list(classes))

    def _resume_state(self, best: Optional[float]) -> dict:
        state = {"optimizer": self.optimizer.state_dict(), "best": {"accuracy": best}}
        if self.identity_loss is not None:
            state["identity_loss"] = self.identity_loss.state_dict()
        if self.scheduler is not None:
            state["scheduler"] = self.scheduler.state_dict()
        return state

    def restore(self, last: dict) -> None:
        """Put back what `last` (the last checkpoint, loaded) holds: the weights and the resume state."""
        self.model.load_state_dict(last["state_dict"])
        for name, part in (("optimizer", self.optimizer), ("identity_loss", self.identity_loss),
                           ("scheduler", self.scheduler)):
            if part is not None and name in last:
                part.load_state_dict(last[name])

    def save(self, name: str, epoch: int, result: dict, roc: dict, best: Optional[float] = None) -> None:
        metrics = {**result, "roc": roc, "threshold_source": "validation pairs"}
        extra = self._resume_state(best) if name == "last" else None
        save_checkpoint(self.run.checkpoint(name), state_dict=self.model.state_dict(), threshold=result["threshold"],
                        metrics=metrics, epoch=epoch, extra=extra, operating_points=result, **self.common)

    def save_stopped(self, completed_epochs: int, best: Optional[float]) -> None:
        """Keep the weights trained so far, with the last calibrated threshold (or a neutral one)."""
        path = self.run.checkpoint("last")
        previous = load_checkpoint(path) if path.is_file() else {}
        save_checkpoint(path, state_dict=self.model.state_dict(), threshold=previous.get("threshold", 0.5),
                        metrics=previous.get("metrics", {}), epoch=completed_epochs,
                        extra=self._resume_state(best), operating_points=previous.get("operating_points"),
                        **self.common)


class EpochMapRecorder:
    """Records the epoch map (siamese_core.maps.snapshots, which reads it back as EpochSnapshots): the sample's
    vectors before training and after each epoch. A snapshot that cannot be written (a full disk) is logged
    and the rest are skipped: the map is a picture of the training, never a reason for it to fail."""

    def __init__(self, ctx: Context):
        self.writer, self.start_epoch = None, ctx.start_epoch
        model = ctx.model
        try:
            self.writer = SnapshotWriter(ctx.run.path, ctx.data.val, ctx.data.val_pairs, ctx.config.seed,
                                         "embedding" if model.is_embedding else "backbone",
                                         getattr(model, "weights_source", "") == "random initialisation")
            if ctx.resume:
                self.writer.keep_through(ctx.start_epoch - 1)  # what a cut-off attempt wrote after the checkpoint
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


# ---------------------------------------------------------------- the run around the epochs

def train_run(group: distributed.Group, config: TrainConfig, out_dir, *, resume: bool, progress: bool,
              stop: Optional[StopFlag], on_epoch, data: Optional[PreparedData],
              trainer_for: Callable[[Context], type], clock_start: Optional[float] = None) -> RunStatus:
    """This process's part of a run (training.loop.train): the run directory opened (or resumed), the status
    kept from 'queued' to its end, the trainer `trainer_for(context)` picks run, a failure written down.
    `clock_start`: when the run's time began (a time budget counts from it; default now)."""
    clock_start = time.time() if clock_start is None else clock_start
    # Only rank 0 writes the run directory; the other ranks read it (to resume) and train their share.
    run = RunDir(out_dir) if group.main else ReadOnlyRun(out_dir)
    stop = StopFlag() if stop is None else stop
    config = _open(run, config, resume, group, read=data is None)
    fresh = {} if resume else {"epoch": 0, "step": 0, "total_steps": None}  # a resumed run shows how far it got
    logged = log_to(run.log_path) if group.main else contextlib.nullcontext()
    with logged, stop_on_signals(stop):
        run.update_status(state="queued", pid=os.getpid(), total_epochs=config.epochs, error=None,
                          created_at=time.time(), processes=group.world, **fresh)
        try:
            ctx = _context(run, config, resume, progress, stop, on_epoch, data, group)
            ctx.clock_start = clock_start
            status = trainer_for(ctx)(ctx).run()
            run.sweep_temp_files()  # again: one the start left for being only seconds old is older now
            return status
        except Exception as exc:
            _mark_failed(run, exc)
            raise


def _described_data(ctx: Context) -> PreparedData:
    """The images the verdicts' description is measured on: all it would take, or under a time budget as many as
    its share of the budget and the time left allow (at least a few hundred: a rougher description, not a broken
    budget)."""
    budget, data = ctx.budget, ctx.data
    if budget is None or not budget.described_images:
        return data
    affordable = budget.images_to_describe(now=time.time())
    if affordable >= budget.described_images:
        return data
    log.info("Describing the model's images on %d of them, not %d: that is what the time budget has left.",
             affordable, budget.described_images)
    rng = np.random.default_rng(ctx.config.seed)
    share = affordable / budget.described_images
    return PreparedData(_some_of(data.train, share, DESCRIBED_IMAGES, rng),
                        _some_of(data.val, share, CALIBRATION_IMAGES, rng), data.val_pairs)


def _some_of(images: D.ImageSet, share: float, most: int, rng) -> D.ImageSet:
    """`share` of the images a description would take of `images` (it takes at most `most`), drawn at random."""
    if not len(images):
        return images
    keep = np.sort(rng.choice(len(images), max(2, int(share * min(most, len(images)))), replace=False))
    return D.ImageSet(images.batch(keep), images.labels[keep], images.classes, [images.names[i] for i in keep])


def _budget_kept(config: TrainConfig, budget: Budget) -> dict:
    """How well the run kept its time budget, for the status (and the log): the budget and the seconds it took."""
    total = config.time_budget or budget.seconds
    used = budget.used() + (total - budget.seconds)  # a resumed run: with the seconds its earlier attempts took
    log.info("Time budget: %.1f s used of %.0f s (%.0f%%).", used, total, 100 * used / total)
    return {"time_budget": total, "budget_used": used}


def _open(run: RunDir, config: TrainConfig, resume: bool, group: distributed.Group, read: bool = True) -> TrainConfig:
    """The run's resolved config (a resumed run's own, with the epochs asked for now), its folder made ready. A new
    run's open settings are first chosen from reading its images (`read`: not when the data is given ready)."""
    if resume:
        saved = run.read_config()
        if saved is None or run.resume_checkpoint() is None:
            raise UserError(f"There is no run to resume in '{run.path}' (no config.json, or no checkpoints/last.pt "
                            "or best.pt).")
        config = TrainConfig.from_dict({**saved, "epochs": config.epochs})
    elif group.main:
        _refuse_to_overwrite(run)
    if not resume and read:
        config = apply_reading(config)
        if config.reading:
            log.info("Read the images: %s", config.reading["sentence"])
    config = config.resolve()
    run.create()
    run.sweep_temp_files()  # what a kill during an earlier attempt's checkpoint write left
    if not resume and group.main:
        run.metrics_path.unlink(missing_ok=True)  # a failed earlier attempt's lines are not this run's
    return config


def _refuse_to_overwrite(run: RunDir) -> None:
    """A finished, stopped or live run is never overwritten; a failed or crashed one may be started afresh."""
    status = run.status()
    state, pid = status.state, status.pid
    if state in ("queued", "running") and pid and pid != os.getpid() and process_alive(pid):
        raise UserError(f"'{run.path}' is being trained right now (process {pid}): stop it first, or choose "
                        "another output folder.")
    if state in ("done", "stopped"):
        raise UserError(f"'{run.path}' already holds a run: choose another output folder, or resume it "
                        "(--resume on the command line).")


def _context(run: RunDir, config: TrainConfig, resume: bool, progress: bool, stop: StopFlag, on_epoch,
             data: Optional[PreparedData], group: distributed.Group) -> Context:
    """The data (prepared here unless given), the model built, the device chosen: the run's Context."""
    torch.manual_seed(config.seed)
    device = distributed.device_of(group, config.device) or pick_device(config.device)
    if data is None:
        log.info("Loading data (%s)...", config.dataset)
        data = prepare_data(config)
    if config.pairs_per_epoch is None:
        kind = "pk" if config.mining != "none" else config.mode
        config.pairs_per_epoch = default_pairs_per_epoch(len(data.train), kind, config.image_size)
    run.write_config(config.to_dict())
    if group.main and not (run.path / SAMPLES_FILE).is_file():
        write_samples(run, data.val, config.seed)  # the pages' sample images for this model: its own kind
    model = build_model(model_spec(config), pretrained=config.pretrained and not resume,
                        weights=None if resume else config.weights)
    return Context(run, config, data, model, device, group, stop, resume, progress, on_epoch)


def _mark_failed(run: RunDir, exc: Exception) -> None:
    message = plain_words(exc)
    log.error("Training failed: %s", message)
    if not isinstance(exc, UserError):
        log.error(traceback.format_exc())
    try:
        run.update_status(state="failed", error=message, finished_at=time.time())
    except OSError:  # the disk that failed the run may refuse the status too; the log said it
        pass
