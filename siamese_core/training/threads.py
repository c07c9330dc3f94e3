"""How many threads a CPU step uses, chosen from the steps' own times while training.

PyTorch starts one thread per core. On an idle machine that is the fastest; on a busy one (a classroom server, the
2-core test machine at load 15) the threads of one step wait at every parallel region for a thread the system has
given to another process, and a step becomes ten times slower than with one thread: measured here at load 15-19, the
digit ConvNet's step took 1,128 ms with 2 threads and 79 ms with 1; the small ResNet's 5,584 ms and 500 ms
(benchmarks/README.md, "Where a minute goes"). The load moves during a run, so the choice is measured, not guessed:
now and then a few steps run with the other count, and the faster one is kept.
"""

from __future__ import annotations

import os
import statistics
from typing import Callable, Optional

import torch

from .. import settings

TRIAL_STEPS = 2  # steps timed with the other count in one trial (the first of them is not counted: it warms up)
EVERY = 40  # steps between two trials once a count is chosen (a trial costs little when it loses)
FIRST_TRIAL_AFTER = 2  # steps at the starting count before the first trial (the very first step warms caches up)
GAIN = 0.9  # the other count is taken when its steps take less than this share of the current count's
ABORT = 1.5  # a trial step slower than this many of the current count's steps ends the trial at once
RECENT = 8  # steps of the current count its time is judged on
# What a trial step of an untimed count may cost, in current steps: fewer threads are at most about twice as slow
# (one core of two), more threads on a busy machine ten times and more (measured: 14x).
UNTIMED_FEWER, UNTIMED_MORE = 2.0, 15.0


class ThreadChooser:
    """Feed it each training step's seconds (`step_done`); it sets torch's thread count between steps.
    `counts`: the counts to choose from (default: 1 and the count PyTorch started with); `set_threads` is
    torch.set_num_threads (a test passes its own); `spare()`, when given, says how many seconds a trial may cost now
    (a time budget's slack): a trial whose worst step would cost more waits."""

    def __init__(self, counts: Optional[tuple] = None, set_threads: Callable[[int], None] = torch.set_num_threads,
                 start: Optional[int] = None, spare: Optional[Callable[[], float]] = None):
        start = torch.get_num_threads() if start is None else start
        self.counts = tuple(sorted(set(counts or (1, start))))
        self.current = start if start in self.counts else self.counts[-1]
        self.set_threads, self.spare = set_threads, spare
        self.recent: dict = {c: [] for c in self.counts}
        self.trial: Optional[int] = None  # the count being tried, while a trial runs
        self.trial_times: list = []
        self.since_trial = 0
        self.trials = 0

    @property
    def active(self) -> bool:
        return len(self.counts) > 1

    def step_done(self, seconds: float) -> None:
        if not self.active:
            return
        if self.trial is not None:
            self.trial_times.append(seconds)
            if seconds > ABORT * statistics.median(self.recent[self.current]):
                self._end_trial(lost=True)  # far slower: no second step to prove it
            elif len(self.trial_times) > TRIAL_STEPS:
                self._end_trial()
            return
        times = self.recent[self.current]
        times.append(seconds)
        del times[:-RECENT]
        self.since_trial += 1
        wait = FIRST_TRIAL_AFTER if self.trials == 0 else EVERY
        if self.since_trial >= wait and len(times) >= 2:
            self._start_trial()

    def _start_trial(self) -> None:
        others = [c for c in self.counts if c != self.current]
        trial = others[self.trials % len(others)]
        now = statistics.median(self.recent[self.current])
        known = self.recent[trial]
        worst = max(known) if known else now * (UNTIMED_FEWER if trial < self.current else UNTIMED_MORE)
        if self.spare is not None and worst > self.spare():
            self.since_trial = 0  # not now: the budget has no room for a slow step; ask again later
            self.trials += 1
            return
        self.trial, self.trial_times = trial, []
        self.set_threads(trial)

    def _end_trial(self, lost: bool = False) -> None:
        tried = statistics.median(self.trial_times[1:] or self.trial_times)
        now = statistics.median(self.recent[self.current])
        if not lost and tried < GAIN * now:
            self.current = self.trial
            self.recent[self.current] = list(self.trial_times[1:])
        else:
            self.recent[self.trial] = [max(self.trial_times)]  # what trying it again may cost
        self.set_threads(self.current)
        self.trial, self.trial_times, self.since_trial = None, [], 0
        self.trials += 1


MACHINE_THREADS = torch.get_num_threads()  # PyTorch's own count, before a run changes it


def start_on_a_busy_machine(most: int = MACHINE_THREADS) -> None:
    """Before a CPU run's first torch work (building the model, the first embedding, the first steps): one thread
    when other work already keeps every core busy (the load average, our process not yet in it), else `most`. At
    load 16 a 60 s run of 10 people spent 24 s before its first step and its first two steps took the rest on two
    threads. The chooser then measures which is faster. SIAMESE_TRAIN_THREADS, when it fixes the count, decides."""
    fixed = settings.train_threads()
    if fixed is not None:
        torch.set_num_threads(fixed)
        return
    try:
        busy = os.getloadavg()[0] >= (os.cpu_count() or 1)
    except OSError:  # no load average on this system
        busy = False
    torch.set_num_threads(1 if busy and most > 1 else most)


def for_device(device: torch.device, spare: Optional[Callable[[], float]] = None,
               most: Optional[int] = None) -> Optional[ThreadChooser]:
    """A chooser for training on `device`: on a CPU with more than one thread (`most`, default PyTorch's own count),
    unless SIAMESE_TRAIN_THREADS fixes the count (then set here); else None (a GPU's steps do not wait on CPU threads).
    It starts at torch's count now. `spare`: see ThreadChooser."""
    if device.type != "cpu":
        return None
    fixed = settings.train_threads()
    if fixed is not None:
        torch.set_num_threads(fixed)
        return None
    most = most or max(MACHINE_THREADS, torch.get_num_threads())
    return ThreadChooser((1, most), spare=spare) if most > 1 else None
