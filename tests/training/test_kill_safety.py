"""What a kill leaves behind: the next start or resume tidies it, and every epoch is logged once."""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from siamese_core.config import TrainConfig
from siamese_core.runs.jobs import progress
from siamese_core.runs.rundir import RunDir
from siamese_core.runs.status import RunStatus
from siamese_core.training.loop import StopFlag, train

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from kill_loop import kill_loop  # noqa: E402  (the benchmark's loop, run here with fewer kills)


def epoch_counts(run: RunDir) -> Counter:
    return Counter(r["epoch"] for r in run.read_metrics() if r.get("type") == "epoch")


@pytest.mark.slow
def test_sigkills_at_random_moments_end_in_a_clean_run(tmp_path):
    result = kill_loop(tmp_path / "run", kills=3, epochs=8, seed=1)
    assert result.kills >= 1 and result.resumes + result.restarts >= 3
    assert result.final_state == "done" and result.final_epoch == 8
    assert result.each_epoch_once, result.epoch_counts
    assert result.temp_files == [] and result.checkpoints_load


def test_resume_after_a_kill_drops_the_cut_off_epoch_and_sweeps_temp_files(tmp_path):
    stop = StopFlag()
    config = TrainConfig(dataset="digits", backbone="convnet", mode="pair", epochs=3, pairs_per_epoch=512)
    train(config, tmp_path / "run", stop=stop, on_epoch=lambda record: stop.set() if record["epoch"] == 2 else None)
    run = RunDir(tmp_path / "run")
    # What a SIGKILL in epoch 3, after its record and during its checkpoint write, leaves:
    run.append_metrics({"type": "epoch", "epoch": 3, "accuracy": 0.5, "time": time.time()})
    with open(run.metrics_path, "ab") as fh:
        fh.write(b'{"type": "step", "epoch": 3, "st')  # a torn line
    torn = [run.checkpoints / ".last.pt.abc123.tmp", run.path / ".status.json.def456.tmp"]
    for path in torn:
        path.write_bytes(b"half a file")
        os.utime(path, (time.time() - 60, time.time() - 60))  # left by the attempt a minute ago
    run.update_status(state="running")  # the killed trainer never said otherwise
    before, resumed_at = run.status(), time.time()

    status = train(config, tmp_path / "run", resume=True)

    assert status.state == "done" and status.epoch == 3
    assert epoch_counts(run) == {1: 1, 2: 1, 3: 1}
    assert not any(path.exists() for path in torn)
    # elapsed goes on from the first attempt's training time (up to its last record), not from zero
    assert 0 < status.elapsed_before <= resumed_at - before.started_at
    assert progress(status)["elapsed"] >= status.elapsed_before


def test_a_torn_last_line_is_ended_before_the_next_record(tmp_path):
    run = RunDir(tmp_path).create()
    run.append_metrics({"type": "step", "epoch": 1, "step": 1})
    with open(run.metrics_path, "ab") as fh:
        fh.write(b'{"type": "step", "ep')
    run.append_metrics({"type": "epoch", "epoch": 1, "accuracy": 0.9})
    assert [r["type"] for r in run.read_metrics()] == ["step", "epoch"]


def test_garbled_bytes_in_metrics_and_status_are_skipped_not_fatal(tmp_path):
    run = RunDir(tmp_path).create()
    run.append_metrics({"type": "epoch", "epoch": 1, "accuracy": 0.9})
    with open(run.metrics_path, "ab") as fh:
        fh.write(b"\xff\xfe not utf-8 \x80\n[1, 2]\n")
    run.append_metrics({"type": "epoch", "epoch": 2, "accuracy": 0.95})
    assert [r["epoch"] for r in run.read_metrics()] == [1, 2]
    run.status_path.write_bytes(b"\xff" + json.dumps({"state": "done"}).encode())
    assert run.status() == RunStatus()


def test_after_a_sigkill_of_the_command_line_trainer_runs_says_so(tmp_path, capsys):
    import signal
    import subprocess

    from siamese_core.cli import main
    from siamese_core.runs.jobs import child_env

    out = tmp_path / "runs" / "killed"
    trainer = subprocess.Popen([sys.executable, "-m", "siamese_core", "train", "--dataset", "digits", "-b", "convnet",
                                "--mode", "pair", "-e", "50", "-o", str(out), "--quiet"], env=child_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run, deadline = RunDir(out), time.time() + 120
    while run.status().state != "running" and time.time() < deadline:
        time.sleep(0.2)
    trainer.send_signal(signal.SIGKILL)
    trainer.wait()
    assert run.status().state == "running"  # nobody was left to say otherwise

    assert main(["runs", "-d", str(tmp_path / "runs"), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["run"], r["state"]) for r in listed] == [("killed", "failed")]
    assert "ended unexpectedly" in listed[0]["error"]
    assert run.status().state == "failed"  # written back: every later reader sees the truth too
