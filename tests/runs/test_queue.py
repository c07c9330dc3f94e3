"""A queue of training runs (issue 15): beyond SIAMESE_MAX_TRAINING_RUNS, runs wait their turn and start in order.

Real trainer processes on the built-in digits, as short as a run gets (two steps of one epoch). The tests watch
the runs only through their status.json files: what starts them here is the trainer that ends, or the
start_waiting / advance_queue call (or page load) under test; listing the runs starts none. Where a test
only needs the slot taken, a sleeping process stands in for a trainer, so no run trains just to be waited for.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app_helpers import open_page
from siamese_core.runs import jobs
from siamese_core.config import TrainConfig
from siamese_core.runs.rundir import RunDir
from siamese_core.files import read_json

TINY = dict(dataset="digits", backbone="convnet", mode="pair", epochs=1, pairs_per_epoch=256, eval_pairs=100)


@pytest.fixture
def cap_of_one(runs_dir, monkeypatch):
    monkeypatch.setenv("SIAMESE_MAX_TRAINING_RUNS", "1")  # the trainers inherit it: they start the next run
    return runs_dir


def state(run: RunDir) -> str:
    return (read_json(run.status_path, default={}) or {}).get("state")


def watch_until_ended(runs: list, timeout: float = 120.0) -> list:
    """Every distinct combination of the runs' states, read from status.json alone, until none is unfinished."""
    seen, deadline = [], time.time() + timeout
    while time.time() < deadline:
        states = tuple(state(run) for run in runs)
        if not seen or seen[-1] != states:
            seen.append(states)
        if not set(states) & set(jobs.UNFINISHED_STATES):
            return seen
        time.sleep(0.05)
    pytest.fail(f"still unfinished after {timeout:.0f} s: {seen[-1]}; "
                f"{[jobs.tail(run.path / jobs.OUTPUT_FILE, 5) for run in runs]}")


def write_waiting_run(root: Path, name: str, created_at: float) -> RunDir:
    """A waiting run as start_training leaves it when every slot is taken: its request and a 'waiting' status."""
    run = RunDir(root / name).create()
    (run.path / jobs.REQUEST_FILE).write_text(json.dumps(TrainConfig(**TINY).to_dict()))
    run.update_status(state="waiting", created_at=created_at, asked_at=created_at, label=name, epoch=0,
                      total_epochs=1, step=0, total_steps=None)
    return run


@pytest.mark.slow
def test_runs_beyond_the_cap_wait_and_the_trainers_start_them_in_order(cap_of_one):
    runs = [jobs.start_training(TrainConfig(**TINY), root=cap_of_one, label=f"tiny-{n}") for n in range(3)]
    assert [state(run) for run in runs] == ["queued", "waiting", "waiting"]
    assert not (runs[1].path / jobs.JOB_FILE).exists() and not (runs[2].path / jobs.JOB_FILE).exists()

    seen = watch_until_ended(runs)
    assert seen[-1] == ("done", "done", "done"), seen
    assert all(sum(s in jobs.ACTIVE_STATES for s in states) <= 1 for states in seen), seen  # never two at once
    first_active = [next(n for n, states in enumerate(seen) if states[i] in jobs.ACTIVE_STATES) for i in range(3)]
    assert first_active == sorted(first_active) and len(set(first_active)) == 3, seen  # first asked, first started
    jobs_files = [read_json(run.path / jobs.JOB_FILE) for run in runs]
    assert jobs_files[0]["started_at"] < jobs_files[1]["started_at"] < jobs_files[2]["started_at"]
    statuses = [run.status() for run in runs]
    assert statuses[0].finished_at <= jobs_files[1]["started_at"]  # the slot was freed before it was given
    assert statuses[1].finished_at <= jobs_files[2]["started_at"]
    # This process started only the first: the second and third were started by the trainer ahead of them.
    assert jobs_files[0]["pid"] in jobs._children
    assert jobs_files[1]["pid"] not in jobs._children and jobs_files[2]["pid"] not in jobs._children


def trainers_of(run: RunDir) -> list:
    """The pids of the live processes training `run`, found by their command line."""
    needle = str(run.path / jobs.REQUEST_FILE).encode()
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and needle in (proc / "cmdline").read_bytes() and jobs.is_alive(int(proc.name)):
                pids.append(int(proc.name))
        except OSError:
            pass
    return pids


@pytest.mark.skipif(not Path("/proc/self/cmdline").is_file(), reason="finds the trainers in /proc")
def test_two_processes_starting_the_queue_at_once_start_a_run_once(cap_of_one):
    run = write_waiting_run(cap_of_one, "20260101-000000-contested", time.time())
    go = time.time() + 2.5  # both processes are up and have imported jobs by then: they call at the same moment
    script = ("import json, sys, time; from siamese_core.runs import jobs; time.sleep(max(0, float(sys.argv[2]) - time.time())); "
              "print(json.dumps([r.path.name for r in jobs.start_waiting(sys.argv[1])]))")
    callers = [subprocess.Popen([sys.executable, "-c", script, str(cap_of_one), str(go)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=jobs.child_env()) for _ in range(2)]
    try:
        results = [caller.communicate(timeout=60) for caller in callers]
        assert [caller.returncode for caller in callers] == [0, 0], results
        started = [json.loads(out) for out, _ in results]
        assert sorted(started) == [[], [run.path.name]], started  # one of them started it, the other saw it started
        assert state(run) in jobs.ACTIVE_STATES
        pid = read_json(run.path / jobs.JOB_FILE)["pid"]
        assert trainers_of(run) == [pid]  # one trainer, the one job.json names
    finally:
        jobs.stop(run)
    assert jobs.wait(run, timeout=60).state == "stopped"


@contextlib.contextmanager
def slot_taken(root: Path):
    """The one slot held by a "running" run whose process is a sleeper: live, so waiting runs stay waiting.
    Half of its steps are done after 60 s, so it has about 60 s left."""
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        now = time.time()
        busy = RunDir(root / "20260101-000000-busy").create()
        busy.update_status(state="running", pid=sleeper.pid, label="busy", created_at=now - 70, started_at=now - 60,
                           epoch=0, total_epochs=1, step=50, total_steps=100)
        yield sleeper
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_cancelled_run_never_starts_and_the_one_behind_it_does(cap_of_one):
    with slot_taken(cap_of_one) as sleeper:
        cancelled, behind = (jobs.start_training(TrainConfig(**TINY), root=cap_of_one, label=label)
                             for label in ("cancelled", "behind"))
        assert [state(cancelled), state(behind)] == ["waiting", "waiting"]
        assert jobs.cancel(cancelled) is True
        assert state(cancelled) == "cancelled" and jobs.cancel(cancelled) is False  # once out, it stays out
        sleeper.kill()  # the busy run's process ends: its slot is free
        sleeper.wait()
    try:
        started = [run.path for run in jobs.start_waiting(cap_of_one)]
        assert started == [behind.path]  # not the cancelled run, first in line as it was
        assert state(behind) in jobs.ACTIVE_STATES and read_json(behind.path / jobs.JOB_FILE)["pid"]
        assert state(cancelled) == "cancelled" and not (cancelled.path / jobs.JOB_FILE).exists()
    finally:
        jobs.stop(behind)
    assert jobs.wait(behind, timeout=60).state == "stopped"
    jobs.delete(cancelled, root=cap_of_one)  # a cancelled run is deleted like a finished one
    assert not cancelled.path.exists()


@pytest.mark.parametrize("damage", [b"{not json", b"[1, 2]", json.dumps({"dataset": "no-such-set"}).encode()])
def test_a_waiting_run_whose_request_is_damaged_fails_at_once_and_the_one_behind_it_starts(cap_of_one, damage):
    now = time.time()
    damaged, behind = write_waiting_run(cap_of_one, "damaged", now - 2), write_waiting_run(cap_of_one, "behind", now - 1)
    (damaged.path / jobs.REQUEST_FILE).write_bytes(damage)
    try:
        started = [run.path for run in jobs.start_waiting(cap_of_one)]
        assert started == [behind.path]  # the damaged run does not hold the one slot until the runs are listed
        status = read_json(damaged.status_path)
        assert status["state"] == "failed" and "request.json" in status["error"]
        assert "Traceback" not in status["error"] and not (damaged.path / jobs.JOB_FILE).exists()
    finally:
        jobs.stop(behind)
    assert jobs.wait(behind, timeout=60).state in ("stopped", "done")


def test_runs_page_shows_a_waiting_runs_place_and_cancels_it(cap_of_one):
    with slot_taken(cap_of_one):
        waiting = write_waiting_run(cap_of_one, "20260101-000001-patient", time.time())
        at = open_page("runs")
        table = at.dataframe[0].value
        assert table.set_index("folder").loc[waiting.path.name, "state"] == "waiting its turn (1st in line)"
        assert at.selectbox(key="open-run").value == waiting.path.name  # the newest run is shown
        assert any("1st in line" in i.value and "about 1 min" in i.value for i in at.info), [i.value for i in at.info]
        assert any("Waiting" in c.value and "1st in line" in c.value for c in at.sidebar.caption)
        at.button(key=f"cancel-{waiting.path.name}").click().run()
        assert not at.exception
        assert state(waiting) == "cancelled" and not (waiting.path / jobs.JOB_FILE).exists()
        assert any("cancelled before its turn came" in i.value for i in at.info)


def stop_and_wait_gone(run: RunDir) -> None:
    """Stop `run` and wait for its trainer to exit, so it hands its slot to no run written afterwards."""
    pid = jobs.training_pid(run)
    jobs.stop(run)
    assert jobs.wait(run, timeout=60).state == "stopped"
    deadline = time.time() + 30
    while pid and jobs.is_alive(pid) and time.time() < deadline:
        time.sleep(0.05)


def test_listing_starts_no_run_and_a_page_load_or_the_runs_command_does(cap_of_one, capsys):
    from siamese_core.cli import main

    with slot_taken(cap_of_one) as sleeper:
        first = write_waiting_run(cap_of_one, "20260101-000001-first", time.time())
        sleeper.kill()  # the busy run's process ends: its slot is free, and no trainer is left to hand it on
        sleeper.wait()
    listed = {info.name: info.state for info in jobs.list_runs(cap_of_one)}
    assert listed == {"20260101-000000-busy": "failed", first.path.name: "waiting"}  # looked at, not started
    assert not (first.path / jobs.JOB_FILE).exists()
    try:
        at = open_page("runs")  # a page load moves the queue on, once, before the page
        assert not at.exception
        assert state(first) in jobs.ACTIVE_STATES and read_json(first.path / jobs.JOB_FILE)["pid"]
    finally:
        stop_and_wait_gone(first)

    second = write_waiting_run(cap_of_one, "20260101-000002-second", time.time())
    assert jobs.list_runs(cap_of_one)[0].state == "waiting"
    try:
        assert main(["runs", "-d", str(cap_of_one), "--json"]) == 0  # so does the command line's `runs`
        shown = {row["run"]: row["state"] for row in json.loads(capsys.readouterr().out)}
        assert shown[second.path.name] in jobs.ACTIVE_STATES and state(second) in jobs.ACTIVE_STATES
    finally:
        stop_and_wait_gone(second)
