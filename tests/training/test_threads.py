"""The CPU threads of a training step, chosen from the steps' own times (training.threads)."""

import torch

from siamese_core.config import TrainConfig
from siamese_core.training.threads import EVERY, ThreadChooser


class Machine:
    """A simulated CPU: a step's seconds for each thread count, which a test changes part-way (the load moves)."""

    def __init__(self, seconds: dict):
        self.seconds, self.threads, self.history = dict(seconds), 2, []

    def set_threads(self, n: int) -> None:
        self.threads = n

    def run(self, chooser: ThreadChooser, steps: int) -> None:
        for _ in range(steps):
            self.history.append(self.threads)
            chooser.step_done(self.seconds[self.threads])


def test_a_busy_machine_trains_on_one_thread_and_an_idle_one_goes_back_to_two():
    busy = Machine({1: 0.08, 2: 1.1})  # measured at load 15-19: the digit ConvNet's step
    chooser = ThreadChooser((1, 2), busy.set_threads, start=2)
    busy.run(chooser, 10)
    assert busy.threads == 1 and busy.history[-3:] == [1, 1, 1]  # chose one thread after a single trial
    busy.run(chooser, 2 * EVERY)
    assert busy.history[-EVERY:].count(2) <= 3  # later trials of two threads cost at most a step or three...
    busy.seconds = {1: 0.08, 2: 0.05}  # ...and when the other work ends, two threads are faster again
    busy.run(chooser, 3 * EVERY)
    assert chooser.current == 2 and busy.history[-EVERY:].count(1) <= 3  # back on two, trying one now and then


def test_an_idle_machine_keeps_its_threads_and_one_count_means_no_trial():
    idle = Machine({1: 0.09, 2: 0.05})
    chooser = ThreadChooser((1, 2), idle.set_threads, start=2)
    idle.run(chooser, 3 * EVERY)
    assert idle.history.count(1) <= 3 * 3 and idle.threads == 2  # tried one thread now and then, kept two
    single = Machine({1: 0.1, 2: 0.1})
    single.threads = 1
    ThreadChooser((1,), single.set_threads, start=1).step_done(0.1)
    assert single.threads == 1


def test_training_gives_its_thread_count_back(tmp_path):
    from siamese_core.training.loop import train

    before = torch.get_num_threads()
    status = train(TrainConfig(dataset="digits", backbone="convnet", epochs=1, pairs_per_epoch=1280,
                               eval_pairs=200), tmp_path / "run")
    assert status.state == "done" and torch.get_num_threads() == before


def test_siamese_train_threads_fixes_the_count(monkeypatch):
    from siamese_core.training.threads import for_device

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("SIAMESE_TRAIN_THREADS", "1")
        assert for_device(torch.device("cpu")) is None and torch.get_num_threads() == 1
        monkeypatch.setenv("SIAMESE_TRAIN_THREADS", "auto")
        torch.set_num_threads(2)
        assert isinstance(for_device(torch.device("cpu")), ThreadChooser)
    finally:
        torch.set_num_threads(before)


def test_a_trial_far_slower_ends_after_one_step_and_a_budget_without_room_waits():
    """On a busy machine two threads can be fifteen times slower: a trial of them ends after its first step, and a
    time budget with little time left tries no count whose step could cost more than it has to spare."""
    busy = Machine({1: 0.1, 2: 1.5})
    busy.threads = 1
    chooser = ThreadChooser((1, 2), busy.set_threads, start=1)
    busy.run(chooser, 3 * EVERY)
    assert busy.history.count(2) <= 3 and chooser.current == 1  # one step per trial, then back to one thread
    tight = Machine({1: 0.1, 2: 1.5})
    tight.threads = 1
    chooser = ThreadChooser((1, 2), tight.set_threads, start=1, spare=lambda: 1.0)
    tight.run(chooser, 3 * EVERY)
    assert tight.history.count(2) == 0  # an untimed second thread may cost 15 steps of 0.1 s: more than 1 s


def test_a_run_starts_on_one_thread_when_other_work_fills_every_core(monkeypatch):
    import os

    from siamese_core.training import threads

    before = torch.get_num_threads()
    monkeypatch.delenv("SIAMESE_TRAIN_THREADS", raising=False)
    try:
        monkeypatch.setattr(os, "getloadavg", lambda: (2.0 * (os.cpu_count() or 1), 0.0, 0.0))
        threads.start_on_a_busy_machine(2)
        assert torch.get_num_threads() == 1
        chooser = threads.for_device(torch.device("cpu"), most=2)
        assert chooser.counts == (1, 2) and chooser.current == 1  # two threads stay on trial
        monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.0, 0.0))
        threads.start_on_a_busy_machine(2)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
