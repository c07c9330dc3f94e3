"""Training one model with two processes (torchrun, gloo on this CPU), for real: the same quality as one process,
only rank 0 writes the run directory, SIGTERM to any rank stops them all with the weights saved, and the run
resumes in another number of processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from siamese_core.inference.model import SiameseModel
from siamese_core.runs.jobs import child_env
from siamese_core.runs.rundir import RunDir

DIGITS = ["--dataset", "digits", "-b", "convnet", "--quiet"]


def torchrun(out: Path, *args: str) -> subprocess.Popen:
    with socket.socket() as s:  # a free port for this test's rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                             "--master_port", str(port), "-m", "siamese_core", "train", *DIGITS, "-o", str(out),
                             *args], env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def one_process(out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "siamese_core", "train", *DIGITS, "-o", str(out), *args],
                          env=child_env(), capture_output=True, text=True, timeout=300)


def epochs_logged(run: RunDir) -> list:
    return [r["epoch"] for r in run.read_metrics() if r.get("type") == "epoch"]


@pytest.mark.slow
def test_two_processes_train_as_well_as_one_and_only_rank_0_writes(tmp_path):
    two = torchrun(tmp_path / "two", "-e", "2")
    output, _ = two.communicate(timeout=300)
    assert two.returncode == 0, output
    one = one_process(tmp_path / "one", "-e", "2")
    assert one.returncode == 0, one.stdout + one.stderr

    run, alone = RunDir(tmp_path / "two"), RunDir(tmp_path / "one")
    status = run.status()
    assert status.state == "done" and status.processes == 2
    # Each process trains a slice of every batch: the same batches, steps and global batch as one process.
    assert status.steps_per_epoch == alone.status().steps_per_epoch
    assert abs(status.best_accuracy - alone.status().best_accuracy) <= 0.04, (status, alone.status())
    assert status.best_accuracy >= 0.85
    # Written once, by rank 0: each epoch once, each log line once, one summary line on the console.
    assert epochs_logged(run) == [1, 2]
    log = run.log_path.read_text()
    assert log.count("Loading data") == 1 and log.count("Epoch 1/2") == 1
    assert output.count("Run done") == 1
    assert sorted(p.name for p in run.path.iterdir()) == sorted(p.name for p in alone.path.iterdir())
    # The checkpoint of two processes is one network's: it loads and verifies in this one process.
    model = SiameseModel.load(run.checkpoint("best"))
    assert model.checkpoint["epoch"] == status.best_epoch


def _children(parent: int) -> list:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == parent:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
def test_sigterm_to_one_rank_stops_all_with_weights_saved_then_it_resumes_in_one_process(tmp_path):
    out = tmp_path / "run"
    launcher = torchrun(out, "-e", "40")
    run, deadline = RunDir(out), time.time() + 180
    while not epochs_logged(run) and time.time() < deadline and launcher.poll() is None:
        time.sleep(0.2)
    assert epochs_logged(run), launcher.communicate()[0]
    rank_0 = run.status().pid
    rank_1 = next(pid for pid in _children(launcher.pid) if pid != rank_0)
    os.kill(rank_1, signal.SIGTERM)  # not the process that writes: it must learn of it from the others
    output, _ = launcher.communicate(timeout=120)

    status = run.status()
    assert status.state == "stopped", output
    stopped_at = status.epoch
    assert 1 <= stopped_at < 40 and RunDir(out).checkpoint("last").is_file()

    resumed = one_process(out, "--resume", "-e", str(stopped_at + 1))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    status = run.status()
    assert status.state == "done" and status.processes == 1 and status.epoch == stopped_at + 1
    assert epochs_logged(run) == list(range(1, stopped_at + 2))  # each epoch once, across both attempts
    assert json.loads(run.config_path.read_text())["epochs"] == stopped_at + 1


@pytest.mark.slow
def test_the_app_starts_a_run_with_two_processes_through_its_job_code(runs_dir):
    from siamese_core.runs import jobs
    from siamese_core.config import TrainConfig

    config = TrainConfig(dataset="digits", backbone="convnet", epochs=1, pairs_per_epoch=1024)
    run = jobs.start_training(config, label="two", processes=2)
    status = jobs.wait(run, timeout=300)
    assert status.state == "done" and status.processes == 2, (status, jobs.tail(run.path / jobs.OUTPUT_FILE))
    command = json.loads((run.path / jobs.JOB_FILE).read_text())["command"]
    assert command[1:6] == ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    assert SiameseModel.load(run.checkpoint("best")).checkpoint["epoch"] == 1
