"""How long a run will take on this machine, before it starts: from a few timed steps of the very model and batch
the settings describe (random pixels, the real training step), cached per recipe and image size.

The Train page says it before Start ("about 3 min"; under a time budget, how much training the budget holds), so a
person knows whether to wait or come back. The figures are this machine's now: on a busier one the run is slower,
and a run with a time budget keeps its budget all the same (training.budget).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from .. import settings
from ..config import TrainConfig, image_hw
from ..data import sources as D
from ..data.images import holds_image
from ..errors import plain_words
from ..inference.domain import CALIBRATION_IMAGES, DESCRIBED_IMAGES
from ..maps.snapshots import SAMPLE_SIZE
from ..models.networks import build_model, embed_set, images_per_pass, model_spec, pick_device
from .budget import (CLOSING_FIXED, CLOSING_SHARE, DESCRIBE_FACTOR, EPOCH_END_FIXED, MIN_DESCRIBED, RESERVE_LEAST,
                     RESERVE_SHARE)
from .common import COHORT_IMAGES, Batches, default_pairs_per_epoch

TIMED_STEPS = 3  # after one untimed step (the first pays for warming caches up)
TIMED_CLASSES = 16  # classes of the random images a step is timed on (a P x K batch of 64 takes 16)
STARTUP_IDLE = 4.0  # a training process starting on an idle 2-core machine: Python, torch and the model's code
DECODE_SECONDS = 0.002  # reading and preparing one image file, once per run, on an idle machine (digits: 1.7 ms)
STARTUP_TIMED_FOR = 600.0  # seconds a timed start-up is trusted (the machine's load moves)
PROJECT_ROOT = Path(__file__).resolve().parents[2]
KNOWN_SIZES = {"digits": 1797, "mnist": 70_000}
_cache: dict = {}
_lock = threading.Lock()  # guards the dictionaries below
_timing_lock = threading.Lock()  # one timing at a time
_later: dict = {}  # estimate_later's answers (an Estimate, or the sentence of why there is none), by key
_timing: set = set()  # keys being timed in the background now


@dataclass(frozen=True)
class Estimate:
    step_seconds: float  # one training step, as timed here
    image_seconds: float  # embedding one image for validation, as timed here
    steps_per_epoch: int
    epochs: float  # the epochs asked for, or under a time budget those the budget holds
    seconds: float  # the whole run, start to end (under a time budget: the budget)
    budget: Optional[float] = None
    fixed_seconds: float = 0.0  # starting, loading the images, the first and last work: no training in them

    @property
    def steps(self) -> int:
        return int(self.epochs * self.steps_per_epoch)


def count_images(config: TrainConfig) -> Optional[int]:
    """How many images the data has: known for the built-in sets, counted for a folder (None when unknown)."""
    if config.dataset in KNOWN_SIZES:
        return KNOWN_SIZES[config.dataset]
    folder = config.train_path if config.dataset == "folder" else config.images
    if not folder or not Path(folder).is_dir():
        return None
    return sum(1 for path in Path(folder).rglob("*") if holds_image(path))


def batch_classes(config: TrainConfig) -> int:
    """The classes a timed P x K batch is drawn from: those the run will train on, up to TIMED_CLASSES. A P x K batch
    holds 4 images of each of at most batch_size / 4 classes, so 2 people's images make batches of 8 images, not 64:
    timing 64 made the estimate for a set built on the Train page forty times too slow. Class folders are counted by
    their names alone (one listing, no file read)."""
    if config.mining == "none":
        return TIMED_CLASSES
    classes = None
    if config.dataset in KNOWN_SIZES:
        classes = 10
    elif config.dataset == "folder" and config.train_path:
        try:
            classes = sum(1 for entry in os.scandir(config.train_path)
                          if entry.is_dir() and not entry.name.startswith("."))
        except OSError:
            classes = None
    if classes is None:
        return TIMED_CLASSES
    if config.split == "class" and not config.val_path:  # as data.sources.split_by_class holds classes out
        held = min(max(2, round(classes * config.val_fraction)), classes - 2)
        classes -= min(held, config.max_val_classes) if config.max_val_classes else held
    return int(min(TIMED_CLASSES, max(2, classes)))


def _key(config: TrainConfig) -> str:
    """What the timing depends on: the model, its input and its batch (not the data's place or the run's length)."""
    values = {k: v for k, v in dataclasses.asdict(config).items()
              if k not in ("train_path", "val_path", "triplets", "images", "data_root", "class_word",
                           "data_name", "notes", "epochs", "time_budget", "seed", "save_every")}
    return json.dumps({**values, "batch_classes": batch_classes(config)}, sort_keys=True, default=str)


def estimate_later(config: TrainConfig, n_images: Optional[int] = None):
    """estimate_run() without waiting: the Estimate when these settings' steps have been timed, else None, the
    timing then started in the background (a page asks again on its next redraw). A failure is a sentence (str)."""
    config = config.resolve()
    key = _key(config)
    with _lock:
        if key in _cache:
            pass
        elif key in _later:
            return _later[key]  # why it could not be timed
        else:
            if key not in _timing:
                _timing.add(key)
                threading.Thread(target=_time_in_background, args=(config, key), daemon=True).start()
            return None
    return estimate_run(config, n_images)


def estimate_ready(config: TrainConfig) -> bool:
    """Whether estimate_later() answers these settings at once (timed already, or known not to time)."""
    key = _key(config.resolve())
    with _lock:
        return key in _cache or key in _later


def _time_in_background(config: TrainConfig, key: str) -> None:
    try:
        timed_costs(config)
    except Exception as exc:  # noqa: BLE001 - a backbone that cannot be built here: the run will say why
        with _lock:
            _later[key] = f"It could not be timed here ({plain_words(exc)})."
    finally:
        with _lock:
            _timing.discard(key)


def timed_costs(config: TrainConfig) -> tuple:
    """(seconds of one training step, seconds to embed one image) of this resolved config on this machine, timed
    once per recipe and image size (cached for the life of the process)."""
    key = _key(config)
    with _timing_lock:  # two page sessions asking at once time it once, not twice side by side (which halves both)
        with _lock:
            if key in _cache:
                return _cache[key]
        costs = _time_steps(config)
        startup_seconds()  # timed now too, in the background, while the page waits anyway
        with _lock:
            _cache[key] = costs
        return costs


def estimate_run(config: TrainConfig, n_images: Optional[int] = None) -> Estimate:
    """How long these settings train here: `config` resolved, `n_images` the data's images (counted when None)."""
    config = config.resolve() if config.mode is None else config
    n = n_images if n_images is not None else (count_images(config) or 1000)
    step, per_image = timed_costs(config)
    startup = startup_seconds()
    busy = max(1.0, startup / STARTUP_IDLE)  # how much slower than idle the machine is now
    n_val = max(2, int(n * config.val_fraction))
    n_train = max(2, n - n_val)
    kind = "pk" if config.mining != "none" else config.mode
    per_epoch = config.pairs_per_epoch or default_pairs_per_epoch(n_train, kind, config.image_size)
    steps_per_epoch = max(1, per_epoch // config.batch_size)
    if config.frozen:  # every image embedded once (and mirrored for photos), then the head trains in moments
        embed = n * per_image * (2 if config.channels == 3 else 1)
        fixed = startup + n * DECODE_SECONDS * busy
        return Estimate(step, per_image, steps_per_epoch, config.epochs, fixed + embed + 2.0, config.time_budget,
                        fixed)
    val_images = min(n_val, 2 * config.eval_pairs)
    sample = min(SAMPLE_SIZE, val_images)  # the epoch map's sample is drawn from the validation pairs' images
    cohort = min(COHORT_IMAGES, val_images) + min(COHORT_IMAGES, n_train)  # as training.loop.closing_costs counts
    eval_images = (val_images + cohort) * (2 if config.flip_test else 1) + sample
    epoch_end = EPOCH_END_FIXED + eval_images * per_image
    described = min(DESCRIBED_IMAGES, n_train) + min(CALIBRATION_IMAGES, n_val)
    if config.time_budget is not None:  # a budget describes what its share allows (training.budget)
        affordable = int(CLOSING_SHARE * config.time_budget / (DESCRIBE_FACTOR * per_image))
        described = min(described, max(MIN_DESCRIBED, affordable))
    fixed = (startup + n * DECODE_SECONDS * busy + sample * per_image
             + CLOSING_FIXED + DESCRIBE_FACTOR * described * per_image)
    epoch_seconds = steps_per_epoch * step + epoch_end
    if config.time_budget is None:
        return Estimate(step, per_image, steps_per_epoch, config.epochs, fixed + config.epochs * epoch_seconds,
                        None, fixed)
    reserve = max(RESERVE_LEAST, RESERVE_SHARE * config.time_budget)
    room = max(0.0, config.time_budget - reserve - fixed)
    whole = math.floor(room / epoch_seconds)
    left = room - whole * epoch_seconds - epoch_end  # a last epoch cut short, with its own validation
    epochs = whole + (max(0.0, left / step) / steps_per_epoch if left > 0 else 0.0)
    return Estimate(step, per_image, steps_per_epoch, epochs, config.time_budget, config.time_budget, fixed)


def startup_seconds() -> float:
    """How long a training process takes to start here now: a Python importing torch and the trainer, timed (and
    kept ten minutes: the machine's load moves)."""
    with _lock:
        timed = _cache.get("startup")
    if timed is not None and time.time() - timed[1] < STARTUP_TIMED_FOR:
        return timed[0]
    started = time.perf_counter()
    try:
        subprocess.run([sys.executable, "-c", "import siamese_core.training.loop"], cwd=PROJECT_ROOT, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}, capture_output=True, check=True)
        seconds = time.perf_counter() - started
    except (OSError, subprocess.SubprocessError):
        seconds = STARTUP_IDLE
    with _lock:
        _cache["startup"] = (seconds, time.time())
    return seconds


def _time_steps(config: TrainConfig) -> tuple:
    """Time the real training step on random pixels of the config's size, in a batch of its size."""
    from . import losses
    from .loop import make_optimizer, train_step, uses_channels_last

    device = pick_device(config.device)  # where the run will train
    wait = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)  # GPU work ends when asked
    model = build_model(model_spec(config), pretrained=False).to(device)
    channels_last = uses_channels_last(config, device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    classes = batch_classes(config)
    per_class = max(4, math.ceil(2 * config.batch_size / classes))
    generator = torch.Generator().manual_seed(0)
    height, width = image_hw(config.image_size)
    pixels = torch.randint(0, 256, (classes * per_class, config.channels, height, width),
                           dtype=torch.uint8, generator=generator)
    labels = np.repeat(np.arange(classes), per_class)
    images = D.ImageSet(pixels, labels, [str(c) for c in range(classes)], [f"{i}.png" for i in range(len(labels))])
    steps = dataclasses.replace(config, pairs_per_epoch=config.batch_size * (TIMED_STEPS + 2))
    batches = list(Batches(images, steps, 1))
    identity = (losses.CosineIdentityLoss(config.embedding_dim, classes) if config.id_loss and config.mining != "none"
                else None)
    parameters = list(model.parameters()) + (list(identity.parameters()) if identity is not None else [])
    optimizer = make_optimizer(config, parameters)
    kind = Batches(images, steps, 1).kind
    started_threads = torch.get_num_threads()
    # The run chooses its CPU threads from its steps' times (training.threads): the faster count is timed here too,
    # and the embedding at the count the steps chose. The count is the process's: given back at the end.
    fixed = settings.train_threads() if device.type == "cpu" else None  # SIAMESE_TRAIN_THREADS, when it fixes them
    counts = [fixed] if fixed else [started_threads] + ([1] if device.type == "cpu" and started_threads > 1 else [])
    step, fastest = 0.0, started_threads
    try:
        for count in counts if not config.frozen else []:
            torch.set_num_threads(count)
            model.train()
            times = []
            for item in batches[:TIMED_STEPS + 1]:
                started = time.perf_counter()
                loss, _, _ = train_step(model, item, kind, images, config, device, channels_last, identity)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                wait()
                times.append(time.perf_counter() - started)
            timed = float(np.median(times[1:])) if len(times) > 1 else 0.0
            if step == 0.0 or timed < step:
                step, fastest = timed, count
        torch.set_num_threads(fastest)
        n = min(len(images), max(32, images_per_pass(device, config.image_size) or 64))
        positions = np.arange(n)
        embed_set(model, images, positions[:8], device, channels_last=channels_last)  # warm up
        started = time.perf_counter()
        with torch.inference_mode():
            model.eval()
            embed_set(model, images, positions, device, channels_last=channels_last)
            wait()
        per_image = (time.perf_counter() - started) / n
    finally:
        torch.set_num_threads(started_threads)
    return step, per_image
