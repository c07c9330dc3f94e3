"""Background training as the app drives it: real training processes, watched only through the run folder.

Every run trains the small ConvNet on the built-in digits (or a few digit images written as class
folders) in its own process, under a pytest tmp folder passed as `root=`. Runs meant to be stopped or
killed are, as soon as they reach the state the test needs, so the whole file stays well under a minute
and a half on two cores. Any process a failing test leaves behind is killed at the end of the module.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import types
from pathlib import Path

import pytest

from conftest import run_cli, write_class_folders
from siamese_core.runs import jobs
from siamese_core.config import TrainConfig
from siamese_core.errors import UserError
from siamese_core.runs.rundir import RunDir, process_alive
from siamese_core.runs.status import RunStatus
from siamese_core.files import read_json, write_json

# Fewer pairs per epoch than the default (~12,600 for the digits): one epoch in a few seconds, still >90%.
QUICK = dict(dataset="digits", backbone="convnet", mode="pair", pairs_per_epoch=5000)  # the classic design: one quick epoch
LONG = dict(dataset="digits", backbone="convnet", epochs=50)  # never meant to finish: stopped or killed

_started: list[RunDir] = []


def start(config: TrainConfig, root: Path, **kwargs) -> RunDir:
    """jobs.start_training, remembering the run so that nothing outlives the tests."""
    run = jobs.start_training(config, root=root, **kwargs)
    _started.append(run)
    return run


@pytest.fixture(scope="module", autouse=True)
def _no_stray_processes():
    yield
    for run in _started:
        pid = jobs.training_pid(run)
        if jobs.is_alive(pid):
            os.kill(pid, signal.SIGKILL)


def explain(run: RunDir) -> str:
    """What to print when a state is not the expected one: the status and the process's last words."""
    output = "\n".join(jobs.tail(run.path / jobs.OUTPUT_FILE, 15))
    return f"status: {json.dumps(run.status().to_dict(), indent=1, default=str)}\noutput.txt:\n{output}"


def wait_until_running(run: RunDir, timeout: float = 120.0) -> RunStatus:
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = jobs.refresh(run)
        if status.state == "running":
            return status
        assert status.state == "queued", explain(run)
        time.sleep(0.2)
    pytest.fail(f"{run.path.name} never reached 'running' in {timeout:.0f} s\n{explain(run)}")


def wait_ended(run: RunDir, timeout: float = 180.0) -> RunStatus:
    return jobs.wait(run, timeout=timeout, poll=0.2)


def assert_process_ends(pid: int, timeout: float = 30.0) -> None:
    """The trainer writes its last status just before it exits: give it a moment to be gone."""
    deadline = time.time() + timeout
    while jobs.is_alive(pid) and time.time() < deadline:
        time.sleep(0.05)
    assert not jobs.is_alive(pid), f"process {pid} still runs {timeout:.0f} s after its run ended"
    assert not process_alive(pid)


def run_folders(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir()) if root.exists() else []


# ---------------------------------------------------------------- a run from start to done


@pytest.fixture(scope="module")
def done_run(tmp_path_factory):
    """One real run trained to the end through start_training, next to an older hand-made one."""
    root = tmp_path_factory.mktemp("jobs-done")
    older = RunDir(root / "20000101-000000-older").create()
    write_json(older.status_path, {"state": "done", "created_at": 946684800.0, "best_accuracy": 0.5})
    run = start(TrainConfig(**QUICK, epochs=1), root, label="My Digits #1!")
    queued = run.status()
    status = wait_ended(run)
    return root, run, queued, status


@pytest.mark.slow
def test_start_training_runs_to_done_and_writes_the_run_folder(done_run):
    root, run, queued, status = done_run
    assert queued.state == "queued" and queued.label == "My Digits #1!" and queued.total_epochs == 1
    assert status.state == "done", explain(run)
    assert status.best_accuracy > 0.9
    assert status.error is None and status.finished_at >= status.started_at

    assert run.path.parent == root.resolve()
    assert "my-digits-1" in run.path.name
    for name in ("request.json", "config.json", "job.json", "status.json", "metrics.jsonl", "log.txt",
                 "output.txt", "checkpoints/best.pt"):
        assert (run.path / name).is_file(), f"{name} is missing: {sorted(os.listdir(run.path))}"

    request = read_json(run.path / jobs.REQUEST_FILE)
    assert request["dataset"] == "digits" and request["backbone"] == "convnet" and request["epochs"] == 1
    job = read_json(run.path / jobs.JOB_FILE)
    assert job["pid"] == status.pid  # the process started is the trainer itself
    assert job["command"][-6:] == ["train", "--config", str(run.path / "request.json"), "-o", str(run.path),
                                   "--quiet"]
    assert_process_ends(job["pid"])

    epochs = [r for r in run.read_metrics() if r.get("type") == "epoch"]
    assert [r["epoch"] for r in epochs] == [1]
    assert epochs[0]["accuracy"] == pytest.approx(status.best_accuracy)
    assert "Done: best validation accuracy" in run.log_path.read_text()


def test_list_runs_and_info_see_the_finished_run(done_run):
    root, run, _, status = done_run
    runs = jobs.list_runs(root)
    assert [i.name for i in runs] == [run.path.name, "20000101-000000-older"]  # newest first
    newest = runs[0]
    assert newest.state == "done" and not newest.active
    assert newest.config["backbone"] == "convnet" and newest.config["image_size"] == 28  # the resolved config
    assert jobs.info(run.path).status.best_accuracy == status.best_accuracy
    assert jobs.list_runs(root / "no-such-folder") == []


def test_progress_of_a_finished_run(done_run):
    *_, status = done_run
    p = jobs.progress(status)
    assert p["fraction"] == 1.0 and p["left"] is None
    assert p["elapsed"] == pytest.approx(status.finished_at - status.started_at)
    assert p["elapsed"] > 0


# ---------------------------------------------------------------- the cap on runs at once


def test_a_second_run_waits_while_one_trains_unless_the_cap_allows_it(tmp_path, monkeypatch):
    monkeypatch.delenv("SIAMESE_MAX_TRAINING_RUNS", raising=False)
    assert jobs.max_training_runs() == 1
    root = tmp_path / "runs"
    first = start(TrainConfig(**LONG), root, label="first")
    second = start(TrainConfig(**LONG), root, label="second")
    mine = [first, second]
    try:
        assert jobs.refresh(second).state == "waiting"  # queued behind the first, not refused
        assert not (second.path / jobs.JOB_FILE).exists()  # no process yet
        assert read_json(second.path / jobs.REQUEST_FILE)["epochs"] == 50
        assert run_folders(root) == sorted([first.path.name, second.path.name])

        monkeypatch.setenv("SIAMESE_MAX_TRAINING_RUNS", "2")  # a slot more: listing the runs starts nothing...
        assert {i.name: i.state for i in jobs.list_runs(root)}[second.path.name] == "waiting"
        assert not (second.path / jobs.JOB_FILE).exists()
        started = jobs.advance_queue(root)  # ... advancing the queue starts the waiting one
        assert [r.path.name for r in started] == [second.path.name]
        assert {i.name: i.state for i in jobs.list_runs(root)}[second.path.name] == "queued"
        assert read_json(second.path / jobs.JOB_FILE)["pid"]
        assert jobs.advance_queue(root) == []  # nothing left waiting: nothing more starts
        third = start(TrainConfig(**LONG), root, label="third")
        mine.append(third)
        assert jobs.refresh(third).state == "waiting"
        assert jobs.stop(third) is True  # Stop on a waiting run cancels it
        assert jobs.refresh(third).state == "cancelled"
    finally:
        for run in reversed(mine):  # the waiting one first, so no stopped trainer hands it a slot
            jobs.stop(run)
    assert wait_ended(first).state == "stopped", explain(first)
    assert wait_ended(second).state == "stopped", explain(second)
    assert not (third.path / jobs.JOB_FILE).exists()  # cancelled: it never started
    assert sorted(i.name for i in jobs.list_runs(root)) == sorted(r.path.name for r in mine)


@pytest.mark.parametrize("value, expected", [("", 1), ("1", 1), ("3", 3), (" 2 ", 2), ("0", 1), ("-2", 1),
                                             ("many", 1)])
def test_max_training_runs_reads_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("SIAMESE_MAX_TRAINING_RUNS", value)
    assert jobs.max_training_runs() == expected


# ---------------------------------------------------------------- stopping, and a crash


@pytest.mark.slow
def test_stop_a_running_run(tmp_path):
    run = start(TrainConfig(**LONG), tmp_path / "runs", label="to-stop")
    running = wait_until_running(run)
    pid = jobs.training_pid(run)
    assert pid == running.pid and jobs.is_alive(pid)
    assert jobs.stop(run) is True
    assert read_json(run.path / jobs.JOB_FILE)["stop_requested"] is True
    status = wait_ended(run)
    assert status.state == "stopped", explain(run)
    assert status.error is None and status.finished_at >= status.started_at
    assert_process_ends(pid)
    assert jobs.stop(run) is False  # nothing left to stop
    assert jobs.refresh(run).state == "stopped"


def test_stop_while_still_queued_ends_stopped_not_failed(tmp_path):
    run = start(TrainConfig(**LONG), tmp_path / "runs", label="early")
    assert run.status().state == "queued"
    assert run.status().pid is None  # the trainer has not even started writing
    assert jobs.stop(run) is True  # the process is killed before it installs its own SIGTERM handler
    status = wait_ended(run, timeout=60)
    assert status.state == "stopped", explain(run)
    assert status.error is None
    assert_process_ends(jobs.training_pid(run))
    assert jobs.list_runs(run.path.parent)[0].state == "stopped"


@pytest.fixture(scope="module")
def crashed_run(tmp_path_factory):
    """A run whose process is killed outright (as the out-of-memory killer would) while it trains."""
    run = start(TrainConfig(**LONG), tmp_path_factory.mktemp("jobs-crash"), label="crash")
    wait_until_running(run)
    pid = jobs.training_pid(run)
    os.kill(pid, signal.SIGKILL)
    assert_process_ends(pid, timeout=10)
    return run, pid, jobs.refresh(run)


@pytest.mark.slow
def test_a_killed_process_is_marked_failed(crashed_run):
    run, pid, status = crashed_run
    assert status.state == "failed", explain(run)
    assert "ended unexpectedly" in status.error
    assert status.finished_at > 0
    assert jobs.refresh(run) == run.status()  # marked once, on disk
    assert jobs.list_runs(run.path.parent)[0].state == "failed"


def test_a_killed_process_is_reported_as_killed(crashed_run):
    run, _, status = crashed_run
    error = status.error
    last_log = [line for line in jobs.tail(run.path / jobs.OUTPUT_FILE, 40) if line.strip()]
    assert not last_log or last_log[-1].strip()[:60] not in error, error
    assert any(word in error for word in ("SIGKILL", "signal 9", "killed", "-9")), error


# ---------------------------------------------------------------- configs and data that cannot train


def test_a_config_that_cannot_train_is_refused_before_any_process(tmp_path):
    root = tmp_path / "runs"
    with pytest.raises(UserError, match="Say where the training images are"):
        jobs.start_training(TrainConfig(dataset="folder", backbone="convnet"), root=root)
    with pytest.raises(UserError, match="epochs must be at least 1"):
        jobs.start_training(TrainConfig(dataset="digits", backbone="convnet", epochs=0), root=root)
    assert run_folders(root) == [] and jobs.list_runs(root) == []


def test_data_the_trainer_refuses_ends_failed_with_its_plain_words(tmp_path):
    one_class = write_class_folders(tmp_path / "one-class", classes=[3], per_class=3)
    run = start(TrainConfig(dataset="folder", train_path=str(one_class), backbone="convnet", epochs=1),
                tmp_path / "runs", label="one class")
    status = wait_ended(run, timeout=120)
    assert status.state == "failed", explain(run)
    assert "has only one class ('digit_3')" in status.error, status.error
    assert "ended unexpectedly" not in status.error  # the trainer said why, not the watcher
    assert not (run.checkpoints / "best.pt").exists()
    assert_process_ends(jobs.training_pid(run))


# ---------------------------------------------------------------- delete


def test_delete_refuses_an_active_run_and_deletes_a_finished_one(tmp_path):
    root = tmp_path / "runs"
    run = start(TrainConfig(**LONG), root, label="doomed")
    try:
        with pytest.raises(UserError, match="still training"):
            jobs.delete(run, root=root)
        assert run.path.is_dir() and (run.path / "request.json").is_file()
    finally:
        jobs.stop(run)
    assert wait_ended(run, timeout=60).state == "stopped", explain(run)

    outside = RunDir(tmp_path / "elsewhere" / run.path.name)
    outside.create()
    write_json(outside.status_path, {"state": "done", "created_at": 1.0})
    with pytest.raises(UserError, match="is not a run in"):
        jobs.delete(outside, root=root)
    with pytest.raises(UserError, match="is not a run in"):
        jobs.delete(RunDir(root / run.path.name / "checkpoints"), root=root)
    with pytest.raises(UserError, match="is not a run in"):  # a relative path that climbs out of the root
        jobs.delete(RunDir(root / ".." / "elsewhere" / run.path.name), root=root)
    assert outside.path.is_dir() and run.path.is_dir()

    jobs.delete(run, root=root)
    assert not run.path.exists()
    assert os.listdir(root) == [".lock"]  # not even the renamed .deleting- folder is left
    assert jobs.list_runs(root) == []


# ---------------------------------------------------------------- uploads moved into the run


def test_upload_folder_is_moved_into_the_run(tmp_path):
    upload = tmp_path / "upload-7f3a"
    write_class_folders(upload / "train", classes=range(4), per_class=6, size=28)  # 4: a split by class needs 4
    config = TrainConfig(dataset="folder", train_path=str(upload / "train"), backbone="convnet", epochs=1,
                         pairs_per_epoch=512)
    run = start(config, tmp_path / "runs", label="uploaded", upload_dir=upload)
    assert not upload.exists()
    adopted = run.path / jobs.UPLOADS_DIR / "train"
    assert sorted(p.name for p in adopted.iterdir()) == [f"digit_{d}" for d in range(4)]
    assert len(list((adopted / "digit_2").iterdir())) == 6
    request = read_json(run.path / jobs.REQUEST_FILE)
    assert request["train_path"] == str(adopted)
    status = wait_ended(run, timeout=120)
    assert status.state == "done", explain(run)
    assert run.read_config()["train_path"] == str(adopted)
    assert (run.checkpoints / "best.pt").is_file()


# ---------------------------------------------------------------- small helpers, no training


def test_tail_returns_the_last_lines_of_a_long_file(tmp_path):
    path = tmp_path / "long.log"
    path.write_text("".join(f"line {i:05d} " + "x" * 90 + "\n" for i in range(2000)))  # ~200 KB
    assert path.stat().st_size > 64 * 1024
    last = jobs.tail(path, 5)
    assert last == [f"line {i:05d} " + "x" * 90 for i in range(1995, 2000)]
    assert jobs.tail(path)[0].startswith("line 01980 ")  # 20 by default
    assert jobs.tail(tmp_path / "missing.log") == []
    short = tmp_path / "short.log"
    short.write_text("one\ntwo\n")
    assert jobs.tail(short, 10) == ["one", "two"]


def test_tail_of_zero_lines_is_empty(tmp_path):
    path = tmp_path / "log.txt"
    path.write_text("a\nb\nc\n")
    assert jobs.tail(path, 0) == []


def test_progress_of_a_running_run():
    now = time.time()
    status = RunStatus(state="running", started_at=now - 10, step=25, total_steps=100)
    p = jobs.progress(status, now=now)
    assert p["fraction"] == pytest.approx(0.25)
    assert p["elapsed"] == pytest.approx(10)
    assert p["left"] == pytest.approx(30)
    assert jobs.progress(status)["left"] == pytest.approx(30, abs=1.5)  # with the clock's own now

    assert jobs.progress(RunStatus(state="queued")) == {"fraction": 0.0, "elapsed": 0.0, "left": None}
    too_early = jobs.progress(status.changed(step=1), now=now)  # 1%: too little to guess from
    assert too_early["fraction"] == pytest.approx(0.01) and too_early["left"] is None
    stopped = jobs.progress(status.changed(state="stopped", finished_at=now - 4), now=now + 100)
    assert stopped["elapsed"] == pytest.approx(6) and stopped["left"] is None and stopped["fraction"] == 0.25


def test_accelerator_asks_an_imported_torch(monkeypatch):
    def fake_torch(cuda: bool, mps=None):
        backends = types.SimpleNamespace()
        if mps is not None:
            backends.mps = types.SimpleNamespace(is_available=lambda: mps)
        return types.SimpleNamespace(cuda=types.SimpleNamespace(is_available=lambda: cuda,
                                                                get_device_name=lambda i: "Fake GPU 9000"),
                                     backends=backends)

    monkeypatch.setitem(sys.modules, "torch", fake_torch(cuda=True))
    assert jobs.accelerator() == "Fake GPU 9000"
    monkeypatch.setitem(sys.modules, "torch", fake_torch(cuda=False, mps=True))
    assert jobs.accelerator() == "Apple GPU (MPS)"
    monkeypatch.setitem(sys.modules, "torch", fake_torch(cuda=False, mps=False))
    assert jobs.accelerator() is None
    monkeypatch.setitem(sys.modules, "torch", fake_torch(cuda=False))
    assert jobs.accelerator() is None


def test_accelerator_without_torch_imported(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    gpus = Path("/proc/driver/nvidia/gpus")
    if gpus.is_dir() and any(gpus.iterdir()):
        expected = "NVIDIA GPU"
    elif sys.platform == "darwin" and os.uname().machine == "arm64":
        expected = "Apple GPU (MPS)"
    else:
        expected = None
    assert jobs.accelerator() == expected
    assert "torch" not in sys.modules  # found without importing torch


# ---------------------------------------------------------------- the command line the jobs run


@pytest.mark.slow
def test_cli_trains_from_a_config_file(tmp_path):
    config = tmp_path / "request.json"
    config.write_text(json.dumps({"dataset": "digits", "backbone": "convnet", "epochs": 1, "pairs_per_epoch": 1000}))
    out = tmp_path / "cli-run"
    result = run_cli("train", "--config", config, "-o", out, "-q", timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Run done" in result.stdout and str(out) in result.stdout
    status = read_json(out / "status.json")
    assert status["state"] == "done" and status["epoch"] == 1 and status["best_accuracy"] > 0.5
    saved = read_json(out / "config.json")
    assert saved["epochs"] == 1 and saved["pairs_per_epoch"] == 1000 and saved["image_size"] == 28
    assert (out / "checkpoints" / "best.pt").is_file()


def test_cli_refuses_a_config_file_that_is_not_an_object(tmp_path):
    config = tmp_path / "list.json"
    config.write_text(json.dumps([{"dataset": "digits"}]))
    out = tmp_path / "never"
    result = run_cli("train", "--config", config, "-o", out, "-q", timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "is not a training config" in last, result.stderr
    assert not out.exists()


def test_the_trainers_warnings_are_read_from_its_log(tmp_path):
    run = RunDir(tmp_path / "run").create()
    run.log_path.write_text(
        "2026-11-25 21:00:02 INFO Loading data (digits)...\n"
        "2026-11-25 21:00:05 WARNING Pretrained weights for timm:efficientnet_b0 could not be loaded.\n"
        "2026-11-25 21:00:06 WARNING Pretrained weights for timm:efficientnet_b0 could not be loaded.\n"
        "2026-11-25 21:00:08 INFO Epoch 1/1: loss 0.7729\n")
    assert jobs.warnings(run) == ["Pretrained weights for timm:efficientnet_b0 could not be loaded."]
    assert jobs.warnings(RunDir(tmp_path / "no-log")) == []


def test_a_reused_pid_is_not_taken_for_the_trainer(tmp_path):
    """After a restart another program may hold the dead trainer's pid: it is neither waited for nor stopped."""
    import subprocess

    run = RunDir(tmp_path / "runs" / "20260101-000000-before-the-restart").create()
    run.update_status(state="running", created_at=time.time() - 60, epoch=1, total_epochs=5)
    time.sleep(2.5)  # the status was last written before the other program started
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        run.update_status(pid=stranger.pid)
        status = json.loads(run.status_path.read_text())
        status["updated_at"] = time.time() - 5  # as if written before the restart
        run.status_path.write_text(json.dumps(status))
        assert jobs.live_trainer(run) is None
        assert jobs.stop(run) is False
        assert stranger.poll() is None  # not signalled
        assert jobs.refresh(run).state == "stopped"  # a stop was asked for, and nothing trains it
        assert jobs.list_runs(tmp_path / "runs")[0].active is False
    finally:
        stranger.kill()
        stranger.wait()
