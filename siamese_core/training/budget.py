"""Training for a time, not for epochs: the plan that fits a run's steps, validations and last checkpoint into
`TrainConfig.time_budget` seconds.

The trainer times its own steps from the first ones on, and after every step plans again: the most steps whose
training, epoch ends (validation, epoch-map snapshot, checkpoints) and closing work (describing the model's images)
still end before the deadline, with a small reserve. The learning-rate schedule follows the plan by its progress
(0 at the start, 1 at the last planned step) rather than by a fixed step count: when a plan changes, the progress
already made is kept and the rest of the schedule is stretched or squeezed over the steps now left, so warm-up and
the whole cosine decay always end at the last step, and the learning rate never jumps. When the machine gets slower
the plan shortens at once; when it gets faster it may lengthen, never past the deadline.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from typing import Optional

# How many recent steps time the rest of the run: enough to smooth out noise, few enough to notice a busier machine
# within seconds.
RECENT_STEPS = 8
PLAN_AFTER = 3  # timed steps before the first plan: two can both be a busy machine's worst
RESERVE_SHARE = 0.03  # of the budget, kept back for what cannot be timed (a status write, the process exiting)
RESERVE_LEAST = 1.5  # seconds (a 30 s run on a machine at load 10 missed by 0.06 s with 1.0)
SAFETY = 1.05  # measured step times are stretched by this much before they plan the remaining steps
EVAL_SHARE = 0.5  # a validation image's cost against a training image's, until one is timed (inference only)
EPOCH_END_FIXED = 0.3  # seconds of an epoch end that are not embedding images: checkpoints, status, metrics
CLOSING_FIXED = 0.5  # the same of the closing work
DESCRIBE_FACTOR = 2.6  # describing a model's images costs this many times embedding them (measured: clustering)
CLOSING_SHARE = 0.15  # of the budget, at most, for describing the model's images: the rest is for training
MIN_DESCRIBED = 300  # images a description under a short budget is measured on, at least


def process_start_time() -> float:
    """When this process began (seconds since 1970), so a budget counts the seconds spent importing and loading too;
    now where the system does not say (only Linux's /proc does)."""
    try:
        with open("/proc/self/stat", encoding="ascii") as fh:
            ticks = int(fh.read().rsplit(")", 1)[1].split()[19])  # field 22, starttime: clock ticks after boot
        with open("/proc/stat", encoding="ascii") as fh:
            boot = next(int(line.split()[1]) for line in fh if line.startswith("btime "))
        started = boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return time.time()
    return min(started, time.time()) if time.time() - started < 3600 else time.time()


def follow_plan(scheduler) -> None:
    """A time budget's plan changed after a step: the next step's rate from the new plan (LambdaLR set it from the
    old one), so the run's last step is the schedule's last."""
    for group, base, factor in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
        group["lr"] = base * factor(scheduler.last_epoch)
    scheduler._last_lr = [group["lr"] for group in scheduler.optimizer.param_groups]


class PlannedSchedule:
    """The learning-rate factor of a step under a plan that may change: linear warm-up over the first `warmup` share
    of the progress, then a cosine decay to zero at progress 1. A callable with plain fields, so LambdaLR saves and
    restores it with the scheduler's state (a resumed run goes on along the same curve)."""

    def __init__(self, total: int, warmup: float):
        self.total = max(1, int(total))  # the last planned step
        self.anchor_step, self.anchor_progress = 0, 0.0  # progress is linear from here to 1 at `total`
        self.warmup = float(warmup)

    def progress(self, step: int) -> float:
        if step >= self.total:
            return 1.0
        span = max(1, self.total - self.anchor_step)
        return min(1.0, self.anchor_progress + (1.0 - self.anchor_progress) * (step - self.anchor_step) / span)

    def replan(self, step: int, total: int) -> None:
        """From `step` on, the rest of the schedule runs over the steps up to `total`."""
        self.anchor_progress, self.anchor_step = self.progress(step), step
        self.total = max(step, int(total))

    def __call__(self, step: int) -> float:
        # LambdaLR asks for the rate of the step after `step` steps: the middle of that step's share of the progress,
        # so the first step learns (a little), the last at almost zero, and after the last the rate is zero.
        p = max(0.0, 0.5 * (self.progress(step) + self.progress(step + 1)))
        if self.warmup > 0 and p < self.warmup:
            return max(p, 1e-3) / self.warmup
        decay = (p - self.warmup) / max(1e-9, 1.0 - self.warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, max(0.0, decay))))


class Budget:
    """A run's time budget and the plan that keeps it (one per run, rank 0 alone)."""

    def __init__(self, seconds: float, clock_start: float, steps_per_epoch: int, *, start_step: int = 0,
                 provisional_steps: int, eval_images: int, images_per_step: int, warmup: float = 0.0,
                 described_images: int = 0, most_steps: Optional[int] = None):
        self.seconds = float(seconds)
        self.clock_start = clock_start
        self.deadline = clock_start + self.seconds
        self.steps_per_epoch = max(1, int(steps_per_epoch))
        self.most_steps = most_steps  # a cap (the frozen head trains at most its epochs), None: the time decides
        self.reserve = max(RESERVE_LEAST, RESERVE_SHARE * self.seconds)
        self.eval_images, self.images_per_step = eval_images, max(1, images_per_step)
        self.described_images = described_images  # the closing work: describing the model's images
        self.image_timing: Optional[list] = None  # [seconds to embed one image, the step time then (None: unknown)]
        self.schedule = PlannedSchedule(provisional_steps, warmup)
        self.recent: deque = deque(maxlen=RECENT_STEPS)
        self.last_step_at: Optional[float] = None
        self.first_step = start_step
        self.epoch_end: Optional[tuple] = None  # (seconds one epoch end took, step time when it was measured)
        self.planned = False

    # -------------------------------------------------- what the trainer reads

    @property
    def total_steps(self) -> int:
        return self.schedule.total

    @property
    def last_epoch(self) -> int:
        return max(1, math.ceil(self.total_steps / self.steps_per_epoch))

    def steps_left_in(self, epoch: int, done: int) -> bool:
        """Whether the plan trains another step after `done` steps in all (epoch `epoch` in progress)."""
        return done < min(self.total_steps, epoch * self.steps_per_epoch)

    def step_seconds(self) -> Optional[float]:
        if not self.recent:
            return None
        return SAFETY * sum(self.recent) / len(self.recent)

    def timed_embedding(self, seconds: float, images: int) -> None:
        """Embedding `images` images for the epoch map before training took `seconds`: what a validation image
        costs, until an epoch end is timed."""
        if images > 0:
            self.image_timing = [seconds / images, None]

    def _slower(self, tau_then: Optional[float]) -> float:
        """How much slower the steps are now than when a cost was timed (never below 1: a cost is never shrunk)."""
        tau = self.step_seconds()
        return max(1.0, tau / tau_then) if tau and tau_then else 1.0

    def image_seconds(self) -> Optional[float]:
        """What embedding one validation image costs now: from the last epoch end, else from the epoch map's
        embedding before training, else guessed from the step time."""
        if self.epoch_end is not None:
            seconds, tau_then = self.epoch_end
            return max(0.0, seconds - EPOCH_END_FIXED) / max(1, self.eval_images) * self._slower(tau_then)
        tau = self.step_seconds()
        if self.image_timing is not None:
            if self.image_timing[1] is None:
                self.image_timing[1] = tau  # the speed of the steps when the embedding was timed: about now
            return self.image_timing[0] * self._slower(self.image_timing[1])
        return None if tau is None else EVAL_SHARE * tau / self.images_per_step

    def epoch_end_seconds(self) -> Optional[float]:
        """What one epoch end costs now: as timed (scaled by how much slower the steps have become since), or
        before the first one, its images at image_seconds() each."""
        if self.epoch_end is not None:
            seconds, tau_then = self.epoch_end
            return seconds * self._slower(tau_then)
        per_image = self.image_seconds()
        return None if per_image is None else EPOCH_END_FIXED + self.eval_images * per_image

    def closing_seconds(self) -> Optional[float]:
        """The work once training is done: describing the model's images for the verdicts, on as many of them as
        CLOSING_SHARE of the budget allows (at least MIN_DESCRIBED)."""
        per_image = self.image_seconds()
        if per_image is None or not self.described_images:
            return 0.0 if per_image is not None else None
        return CLOSING_FIXED + DESCRIBE_FACTOR * self.images_to_describe(per_image) * per_image

    def images_to_describe(self, per_image: Optional[float] = None, now: Optional[float] = None) -> int:
        """How many images the closing description takes: all it would, or what its share of the budget (and, once
        training is done, the time left: pass `now`) allows, at least MIN_DESCRIBED."""
        per_image = self.image_seconds() if per_image is None else per_image
        if not per_image:
            return self.described_images
        room = CLOSING_SHARE * self.seconds
        if now is not None:
            room = min(room, self.deadline - now - self.reserve - CLOSING_FIXED)
        affordable = int(room / (DESCRIBE_FACTOR * per_image))
        return min(self.described_images, max(MIN_DESCRIBED, affordable))

    def expected_end(self, done: int, epoch: int, now: Optional[float] = None) -> Optional[float]:
        """When the run should end (a time since 1970), from the measured rate: the steps and epoch ends left."""
        tau, v, closing = self.step_seconds(), self.epoch_end_seconds(), self.closing_seconds()
        if tau is None or v is None:
            return None
        now = time.time() if now is None else now
        return now + max(0, self.total_steps - done) * tau + (self.last_epoch - epoch + 1) * v + closing

    # -------------------------------------------------- what the trainer tells it

    def after_step(self, done: int, epoch: int, now: Optional[float] = None) -> bool:
        """A step ended (`done` steps in all, epoch `epoch` in progress, its end still to come): time it, and plan
        the remaining steps again. True when the plan changed."""
        now = time.time() if now is None else now
        if self.last_step_at is not None:
            self.recent.append(now - self.last_step_at)
        self.last_step_at = now
        if self.recent:  # the first step pays for warming caches up: it is not timed
            # Until a few steps are timed, a plan may only shorten the run (a busy machine's first steps can leave
            # no time to wait for more); then it may lengthen it too.
            return self._plan(done, epoch, now, grow=len(self.recent) >= PLAN_AFTER)
        return False

    def after_epoch_end(self, seconds: float, done: int, next_epoch: int, now: Optional[float] = None) -> bool:
        """An epoch end (validation, snapshot, checkpoints) took `seconds`: plan again before the next epoch, which
        may not start at all when its first step and its validation no longer fit."""
        tau = self.step_seconds()
        self.epoch_end = (seconds, tau or 0.0)
        self.last_step_at = None  # the next step's time starts with the next step, not with the epoch end
        if tau is not None and done >= (next_epoch - 1) * self.steps_per_epoch:  # a cut-short epoch was the last
            return self._plan(done, next_epoch, time.time() if now is None else now)
        return False

    def used(self, now: Optional[float] = None) -> float:
        return (time.time() if now is None else now) - self.clock_start

    # -------------------------------------------------- planning

    def _plan(self, done: int, epoch: int, now: float, grow: bool = True) -> bool:
        tau, v = self.step_seconds(), self.epoch_end_seconds()
        left = self.deadline - now - self.reserve - self.closing_seconds()
        best = done  # no time for another step: the epoch in progress ends now, and its validation closes the run
        last = epoch
        while True:  # the most steps over `last` epochs, each of which ends with a validation
            room = left - (last - epoch + 1) * v
            fits = done + math.floor(room / tau) if room > 0 else done
            if fits <= (last - 1) * self.steps_per_epoch:
                break  # not even one step of epoch `last`: its validation would cost more than it brings
            best = max(best, min(last * self.steps_per_epoch, fits))
            if fits <= last * self.steps_per_epoch:
                break
            last += 1
        if self.most_steps is not None:
            best = min(best, self.most_steps)
        longer = grow and (not self.planned or best > 1.02 * self.total_steps + 1)
        changed = best < self.total_steps or (best > self.total_steps and longer)
        if changed:
            self.schedule.replan(done, best)  # shorter at once; longer only for a real gain (no jitter)
        self.planned = self.planned or grow
        return changed

    def report(self, now: Optional[float] = None) -> dict:
        """The status fields of the budget kept: the budget, the seconds used, and their ratio."""
        used = self.used(now)
        return {"time_budget": self.seconds, "budget_used": used}
