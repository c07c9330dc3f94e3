"""Finished trainers are reaped by the app itself, not left as <defunct> children of the server.

Three real one-epoch runs on the built-in digits train at once through jobs.start_training. The test
watches them only through their status.json files: jobs.refresh and jobs.is_alive poll the process,
which reaps it, and the app's pages stop calling them once a run has its final status.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Optional

import pytest

from siamese_core.runs import jobs
from siamese_core.config import TrainConfig
from siamese_core.runs.rundir import RunDir
from siamese_core.files import read_json

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="reads process states from /proc")

# As short as a real run gets: two steps of one epoch, validated on 100 pairs.
TINY = dict(dataset="digits", backbone="convnet", mode="pair", epochs=1, pairs_per_epoch=256, eval_pairs=100,
            image_size=28)


def process_state(pid: int) -> Optional[str]:
    """The kernel's one-letter state of a process ('Z' for a zombie), or None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat.rsplit(")", 1)[1].split()[0]  # after the command name, which may hold spaces


def wait_final_status(run: RunDir, timeout: float = 120.0) -> dict:
    """The run's status once the trainer wrote a final one, read from the file alone."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = read_json(run.path / "status.json", default={}) or {}
        if status.get("state") not in jobs.ACTIVE_STATES:
            return status
        time.sleep(0.2)
    pytest.fail(f"{run.path.name} has no final status after {timeout:.0f} s: "
                f"{jobs.tail(run.path / jobs.OUTPUT_FILE, 10)}")


@pytest.mark.slow
def test_finished_trainers_are_reaped_without_polling(tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMESE_MAX_TRAINING_RUNS", "3")  # all three train at once: one wait, not three
    runs = [jobs.start_training(TrainConfig(**TINY), root=tmp_path / "runs", label=f"tiny-{n}") for n in range(3)]
    pids = [read_json(run.path / jobs.JOB_FILE)["pid"] for run in runs]
    try:
        for run in runs:
            assert wait_final_status(run)["state"] == "done"
        # The trainer exits a moment after its last status write; the reaper then collects it.
        deadline = time.time() + 15
        while any(process_state(pid) is not None for pid in pids) and time.time() < deadline:
            time.sleep(0.1)
        states = {pid: process_state(pid) for pid in pids}
        assert all(state is None for state in states.values()), f"not reaped (Z is a zombie): {states}"
        # What the reaper collected is still there for _why_it_ended to read.
        assert [jobs._children[pid].returncode for pid in pids] == [0, 0, 0]
    finally:
        for pid in pids:  # kill any trainer a failure left behind, and reap it
            if jobs.is_alive(pid):
                os.kill(pid, signal.SIGKILL)
                jobs._children[pid].wait(10)
