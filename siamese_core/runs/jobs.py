"""Training in the background, for the app: start a run as its own process, watch it, stop it, delete it.

The app and the trainer talk only through the run directory. `start_training` writes
`request.json` (the TrainConfig asked for) and starts `python -m siamese_core train
--config request.json -o <run>`, the command line's own code path, in a new session, so
closing the browser or restarting the app does not stop it. `stop` sends SIGTERM; the
trainer saves its weights and marks the run stopped. This module imports no torch.

When SIAMESE_MAX_TRAINING_RUNS runs already train, a new run waits its turn (state "waiting")
and is started, oldest first, once a slot frees: by the trainer as it ends (cli.train.train_and_report, `start_next`)
and by `advance_queue`, which the app calls once per page load and the `runs` command once, so the queue
moves on with no browser open, after a restart or after a trainer was killed. Listing the runs
(`list_runs`) starts nothing. Deciding and starting happen under one file lock, so two servers sharing a
runs folder never start a run twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, TypedDict

from .. import settings
from ..config import TrainConfig, duration_words
from ..errors import UserError, plain_words
from ..files import read_json, write_json
from .rundir import RunDir, process_alive, process_started_at
from .status import RunStatus, as_pid, as_seconds

ACTIVE_STATES = ("queued", "running")  # a training process is (or is about to be) at work
WAITING = "waiting"  # asked for while every slot was taken: no process yet ("queued" means its process is starting)
CANCELLED = "cancelled"  # taken out of the queue before it started
WAITING_STATES = (WAITING,)
UNFINISHED_STATES = WAITING_STATES + ACTIVE_STATES
REQUEST_FILE = "request.json"  # what the app asked for; the trainer writes the resolved config.json
JOB_FILE = "job.json"  # the training process: pid, command, whether a stop was asked for
OUTPUT_FILE = "output.txt"  # the process's own stdout and stderr, for errors before the log opens
UPLOADS_DIR = "uploads"
# A run the app has queued but whose process has not reported yet is given this long to start.
START_GRACE_SECONDS = 120

_children: dict[int, subprocess.Popen] = {}  # processes this app started; each is reaped by _reap_when_done


def accelerator() -> Optional[str]:
    """The GPU training would use, found without importing torch (which takes seconds)."""
    if "torch" in sys.modules:
        # Another session of the server may be importing torch right now: sys.modules then holds a
        # half-initialised module. `import` waits for that import to finish (Python's per-module lock).
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
        mps = getattr(torch.backends, "mps", None)
        return "Apple GPU (MPS)" if mps is not None and mps.is_available() else None
    gpus = Path("/proc/driver/nvidia/gpus")
    if gpus.is_dir() and any(gpus.iterdir()):
        return "NVIDIA GPU"
    if sys.platform == "darwin" and os.uname().machine == "arm64":
        return "Apple GPU (MPS)"
    return None


max_training_runs = settings.max_training_runs


def child_env() -> dict:
    """The environment for a child Python process of the library (the trainer, a t-SNE fit): unbuffered
    output, and this very siamese_core on its path, wherever the app was started from."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    package_parent = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    return env


@dataclass
class RunInfo:
    run: RunDir
    status: RunStatus
    config: dict

    name = property(lambda self: self.run.path.name)
    state = property(lambda self: self.status.state or "queued")
    active = property(lambda self: self.state in ACTIVE_STATES)
    waiting = property(lambda self: self.state in WAITING_STATES)
    unfinished = property(lambda self: self.state in UNFINISHED_STATES)


def list_runs(root=None) -> list[RunInfo]:
    """Every run under `root`, newest first, with a crashed process shown as failed. Starts nothing:
    `advance_queue` does."""
    return _scan(Path(root or settings.runs_dir()))


def advance_queue(root=None, runs: Optional[list[RunInfo]] = None) -> list[RunDir]:
    """Start the waiting runs that free slots allow, oldest first; returns the runs started.

    The trainer starts the next run as it ends; this moves the queue on when no trainer is left to (after a
    restart, or a trainer that was killed). The app calls it once per page load, the `runs` command once.
    `runs`, a listing of `root` just made, spares a second one when nothing can start."""
    root = Path(root or settings.runs_dir())
    infos = _scan(root) if runs is None else runs
    if any(i.waiting for i in infos) and sum(i.active for i in infos) < max_training_runs():
        return start_waiting(root)
    return []


def _scan(root: Path) -> list[RunInfo]:
    if not root.is_dir():
        return []
    runs = [RunDir(p) for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
            and (p / "status.json").is_file()]
    infos = [info(run) for run in runs]
    return sorted(infos, key=lambda i: i.status.created_at or 0, reverse=True)


def info(run) -> RunInfo:
    run = run if isinstance(run, RunDir) else RunDir(run)
    config = run.read_config() or read_json(run.path / REQUEST_FILE, default={}) or {}
    return RunInfo(run, refresh(run), config)


def waiting_in_order(infos: list[RunInfo]) -> list[RunInfo]:
    """The waiting runs in the order they start: first asked for, first started (folder name on a tie)."""
    waiting = [i for i in infos if i.waiting]
    return sorted(waiting, key=lambda i: (i.status.asked_at or i.status.created_at or 0, i.name))


class QueuePlace(TypedDict):
    place: int  # 1 for the next run to start
    starts_in: Optional[float]  # seconds until it is expected to start; None when that cannot be estimated


def queue_places(infos: list[RunInfo]) -> dict[str, QueuePlace]:
    """Each waiting run's place in line and when it should start, from `infos` (list_runs, all of a folder).

    Each slot frees when its run's progress says it will; a run ahead in line then holds the slot for its
    epochs at the pace of an earlier run of the same settings. Whatever cannot be estimated (a run too young
    to tell, settings never trained before, more runs training than the cap allows) makes the starts after
    it unknown, rather than guessed."""
    waiting = waiting_in_order(infos)
    if not waiting:
        return {}
    pace = _Pace(infos)
    cap = max_training_runs()
    busy = [pace.seconds_left(i) for i in infos if i.active]
    slots = busy + [0.0] * (cap - len(busy)) if len(busy) <= cap else [None]
    places: dict[str, QueuePlace] = {}
    for place, info in enumerate(waiting, 1):
        known = None not in slots
        slot = slots.index(min(slots)) if known else None
        starts_in = slots[slot] if known else None
        places[info.name] = {"place": place, "starts_in": starts_in}
        if known:
            per_epoch = pace.seconds_per_epoch(info)
            epochs = info.status.total_epochs
            slots[slot] = starts_in + per_epoch * epochs if per_epoch is not None and epochs else None
    return places


class _Pace:
    """How fast runs of given settings train, learnt from the runs of the folder (each request read once)."""

    def __init__(self, infos: list[RunInfo]):
        self.infos = infos
        self.keys = {i.name: self._key(i.run) for i in infos}

    @staticmethod
    def _key(run: RunDir) -> Optional[str]:
        """A run's requested settings, but for how long it trains and what a class is called."""
        request = read_json(run.path / REQUEST_FILE, default=None)
        if not isinstance(request, dict):
            return None
        return json.dumps({k: v for k, v in request.items() if k not in ("epochs", "class_word", "save_every")},
                          sort_keys=True, default=str)

    def seconds_per_epoch(self, like: RunInfo) -> Optional[float]:
        """Of the newest other run with the same settings that trained long enough to tell."""
        key = self.keys.get(like.name)
        for info in self.infos if key is not None else ():  # newest first
            epochs = info.status.total_epochs
            if info.name == like.name or self.keys.get(info.name) != key or not epochs:
                continue
            status = info.status
            if info.state == "done" and status.finished_at and status.created_at:
                # From its process's start, not its first step: loading the data holds the slot too.
                return max(0.0, status.finished_at - status.created_at) / epochs
            left = progress(status)["left"] if info.state == "running" else None
            if left is not None:
                return (progress(status)["elapsed"] + left) / epochs
        return None

    def seconds_left(self, info: RunInfo) -> Optional[float]:
        """A training run's own estimate; while it is too young to tell, its epochs to go at the pace of an
        earlier run of the same settings."""
        left = progress(info.status)["left"]
        if left is None:
            per_epoch = self.seconds_per_epoch(info)
            to_go = (info.status.total_epochs or 0) - (info.status.epoch or 0)
            left = per_epoch * to_go if per_epoch is not None and to_go > 0 else None
        return left


def _job(run: RunDir) -> dict:
    """job.json (the training process the app started), or {} when it is missing or not an object."""
    job = read_json(run.path / JOB_FILE, default={})
    return job if isinstance(job, dict) else {}


def training_pid(run: RunDir) -> Optional[int]:
    return run.status().pid or as_pid(_job(run).get("pid"))


def live_trainer(run: RunDir) -> Optional[int]:
    """The pid of the run's training process while it runs, else None.

    A pid alone is not enough: after a restart (a container's, a laptop's) another program may
    have been given the same number. The trainer started before its run's last word (the last
    status write, or the app's note of the start), so a younger process is not it.
    """
    pid = training_pid(run)
    if not is_alive(pid):
        return None
    started = process_started_at(pid)
    if started is None or pid in _children:
        return pid  # no /proc to ask (macOS), or a child of this very app
    last_word = max(run.status().updated_at or 0, as_seconds(_job(run).get("started_at")) or 0)
    return pid if started <= last_word + 2 else None


def is_alive(pid: Optional[int]) -> bool:
    if not pid:
        return False
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None  # returncode is set once the process has ended (and been reaped)
    return process_alive(pid)


def refresh(run: RunDir) -> RunStatus:
    """The run's status; a queued or running run whose process has ended is marked stopped or failed."""
    status = run.status()
    if status.state not in ACTIVE_STATES:
        return status
    pid = training_pid(run)
    if pid is None and time.time() - (status.created_at or 0) < START_GRACE_SECONDS:
        return status  # queued a moment ago; its process is starting
    if live_trainer(run):
        return status
    job = _job(run)
    status = run.status()  # the trainer may have finished between the two reads
    if status.state not in ACTIVE_STATES:
        return status
    if job.get("stop_requested"):
        return run.update_status(state="stopped", finished_at=time.time())
    return run.update_status(state="failed", finished_at=time.time(),
                             error=f"The training process ended unexpectedly ({_why_it_ended(run, pid)}).")


def _why_it_ended(run: RunDir, pid: Optional[int]) -> str:
    child = _children.get(pid)
    code = child.returncode if child is not None else None
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        hint = ": the machine may have run out of memory" if -code == signal.SIGKILL else ""
        return f"it was killed by {name}{hint}"
    # The process's own output ends with the exception when Python itself failed.
    lines = [line.strip() for line in tail(run.path / OUTPUT_FILE, 40) if line.strip()]
    errors = [line for line in lines if "Error" in line or line.startswith("error:")]
    if errors:
        return errors[-1][:300]
    return f"it exited with code {code}; see the log" if code is not None else "no reason was given; see the log"


def tail(path, lines: int = 20) -> list[str]:
    """The last lines of a text file (reads only its end, so a long log costs nothing)."""
    if lines <= 0:
        return []
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return []
    return text.splitlines()[-lines:]


def warnings(run: RunDir, lines: int = 500) -> list[str]:
    """The trainer's warnings (e.g. pretrained weights unavailable offline), without time and level."""
    found = []
    for line in tail(run.log_path, lines):
        parts = line.split(" ", 3)  # date, time, level, message
        if len(parts) == 4 and parts[2] == "WARNING" and parts[3] not in found:
            found.append(parts[3])
    return found


@contextlib.contextmanager
def _runs_lock(root: Path):
    """Two clicks on Start at once must not both pass the cap: one at a time, across processes."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as fh:
        try:
            import fcntl
        except ImportError:  # Windows: no advisory locks; the cap is then checked without one
            yield
            return
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def new_run_name(root: Path, label: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")[:40] or "run"
    base = f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}"
    name, n = base, 2
    while (root / name).exists():
        name, n = f"{base}-{n}", n + 1
    return name


def start_training(config: TrainConfig, root=None, label: str = "run", upload_dir: Optional[Path] = None,
                   processes: Optional[int] = None) -> RunDir:
    """Check `config`, then start training it in its own process, or queue it (state "waiting") when the
    cap on runs at once is reached: it then starts in its turn. Returns the new run directory.

    `upload_dir`, a folder of unpacked uploads the config's paths point into, is moved into
    the run (run/uploads), so deleting the run deletes its data too. `processes` (default
    SIAMESE_TRAIN_PROCESSES) above 1 trains with torchrun on this machine (siamese_core.training.distributed).
    Raises UserError for a config that cannot train.
    """
    config.resolve()  # a bad value is refused here, in plain words, before any process starts
    processes = processes or settings.train_processes()
    if processes > 1 and config.frozen:
        raise UserError("A frozen backbone trains only a small head, in seconds: train it with one process.")
    root = Path(root or settings.runs_dir()).resolve()
    with _runs_lock(root):
        run = RunDir(root / new_run_name(root, label)).create()
        if upload_dir is not None:
            config = _adopt_upload(config, Path(upload_dir), run.path / UPLOADS_DIR)
        write_json(run.path / REQUEST_FILE, config.to_dict())
        now = time.time()
        run.update_status(state=WAITING, created_at=now, asked_at=now, label=label, epoch=0,
                          total_epochs=config.epochs, step=0, total_steps=None, processes=int(processes))
        # Always through the queue: a free slot goes to whoever waited longest, which may be this run.
        _start_free_slots(root)
    return run


def start_waiting(root=None) -> list[RunDir]:
    """Start the waiting runs, oldest first, as many as free slots allow. Returns the runs started.

    Safe to call from any process at any time: the decision and the start happen under the runs folder's
    lock, and a started run is no longer waiting when the lock is released, so no run starts twice."""
    root = Path(root or settings.runs_dir()).resolve()
    if not root.is_dir():
        return []
    with _runs_lock(root):
        return _start_free_slots(root)


def start_next(run_dir) -> None:
    """Called by the trainer as it ends (done, failed or stopped): give its slot to the next waiting run.

    Only in a folder the app queues runs in (it holds the lock file), so a command-line run written
    anywhere else leaves that folder alone. A failure here never hides how the run itself ended: the
    queue then moves on the next time the app lists runs."""
    root = Path(run_dir).resolve().parent
    if not (root / ".lock").is_file():
        return
    try:
        start_waiting(root)
    except OSError as exc:
        print(f"The next waiting run could not be started: {_clause(exc)} The app starts it when it next lists "
              "the runs.", file=sys.stderr)


def _clause(exc: OSError) -> str:
    """plain_words' sentence, to follow a colon."""
    sentence = plain_words(exc)
    return sentence[:1].lower() + sentence[1:]


def _start_free_slots(root: Path) -> list[RunDir]:
    """With the lock held: start as many of the oldest waiting runs as there are free slots."""
    infos = _scan(root)
    free = max_training_runs() - sum(i.active for i in infos)
    started = []
    for info in waiting_in_order(infos):
        if len(started) >= free:
            break
        problem = _request_problem(info.run)
        if problem is not None:  # it would fail at once and hold its slot until someone lists the runs
            info.run.update_status(state="failed", finished_at=time.time(), error=problem)
            continue
        started.append(_launch(info.run))
    return started


def _request_problem(run: RunDir) -> Optional[str]:
    """Why a waiting run's request.json cannot train (damaged, edited, not a config), or None."""
    try:
        request = read_json(run.path / REQUEST_FILE)
        if not isinstance(request, dict):
            raise UserError("it is not a set of training settings")
        TrainConfig.from_dict(request).resolve()
    except (UserError, OSError, ValueError, TypeError) as exc:
        return f"Its settings (request.json) cannot be read: {_clause(exc) if isinstance(exc, OSError) else exc}"
    return None


def _launch(run: RunDir) -> RunDir:
    """Start the trainer of a waiting run (the lock is held). Its status leaves "waiting" before the
    process starts, and job.json names the process before the lock is released."""
    # created_at restarts the grace a starting process is given (refresh), as the trainer itself does.
    run.update_status(state="queued", created_at=time.time())
    command = ["-m", "siamese_core", "train", "--config", str(run.path / REQUEST_FILE), "-o", str(run.path), "--quiet"]
    processes = run.status().processes or 1
    if processes > 1:  # PyTorch's launcher; --standalone: a free port on this machine
        command = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(processes)] + command
    command = [sys.executable] + command
    try:
        with open(run.path / OUTPUT_FILE, "ab") as output:
            child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                     env=child_env(), start_new_session=True)  # its own session: Ctrl-C on the app spares it
    except OSError as exc:
        run.update_status(state="failed", finished_at=time.time(),
                          error=f"The training process could not be started: {_clause(exc)}")
        return run
    _children[child.pid] = child
    _reap_when_done(child)
    write_json(run.path / JOB_FILE, {"pid": child.pid, "command": command, "started_at": time.time()})
    return run


def _reap_when_done(child: subprocess.Popen) -> None:
    """Collect the trainer's exit as soon as it ends. Nothing else would: the pages stop polling a run
    once it has its final status, and an unreaped child stays a <defunct> process until the server stops.
    The Popen keeps its returncode for _why_it_ended; the daemon thread never holds the server open."""
    threading.Thread(target=child.wait, name=f"reap-trainer-{child.pid}", daemon=True).start()


def _adopt_upload(config: TrainConfig, upload_dir: Path, target: Path) -> TrainConfig:
    upload_dir = upload_dir.resolve()
    shutil.move(str(upload_dir), str(target))
    values = config.to_dict()
    for key in ("train_path", "val_path", "triplets", "images"):
        if values.get(key):
            path = Path(values[key]).resolve()
            if path == upload_dir or upload_dir in path.parents:
                values[key] = str(target / path.relative_to(upload_dir))
    return TrainConfig.from_dict(values)


def cancel(run: RunDir) -> bool:
    """Take a waiting run out of the queue: it never starts. Returns False when it is not waiting (it may
    have started a moment ago: `stop` it then).

    The run is marked "cancelled", not deleted: its folder may hold the data uploaded for it, and the Runs
    page keeps saying what became of it until the person deletes it."""
    with _runs_lock(run.path.resolve().parent):  # against a start_waiting deciding at this very moment
        if run.status().state not in WAITING_STATES:
            return False
        run.update_status(state=CANCELLED, finished_at=time.time())
    return True


def stop(run: RunDir) -> bool:
    """Ask a run's process to stop (it saves its weights first); a waiting run is cancelled instead.
    Returns False when it was neither waiting nor running."""
    if cancel(run):
        return True
    if run.status().state not in ACTIVE_STATES:
        return False  # it has ended: nothing to ask of it
    write_json(run.path / JOB_FILE, {**_job(run), "stop_requested": True})
    pid = live_trainer(run)
    if pid is None:
        refresh(run)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    return True


def delete(run: RunDir, root=None) -> None:
    """Delete a finished or waiting run's folder; a run still training must be stopped first."""
    root = Path(root or settings.runs_dir()).resolve()
    path = run.path.resolve()
    if path.parent != root:
        raise UserError(f"'{run.path}' is not a run in {root}: nothing was deleted.")
    # Under the lock: a waiting run must not be started while its folder goes.
    with _runs_lock(root):
        if refresh(run).state in ACTIVE_STATES:
            raise UserError(f"'{run.path.name}' is still training: stop it first, then delete it.")
        # Renamed first, so a delete cut short never leaves a half-run that still looks like one.
        doomed = path.with_name(f".deleting-{path.name}-{os.getpid()}")
        path.rename(doomed)
    shutil.rmtree(doomed, ignore_errors=True)


def wait(run: RunDir, timeout: float = 600.0, poll: float = 0.5) -> RunStatus:
    """Block until the run is no longer waiting, queued or running (for scripts and tests). Returns its status."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        status = refresh(run)
        if status.state not in UNFINISHED_STATES:
            return status
        if status.state in WAITING_STATES:
            advance_queue(run.path.parent)  # starts it when a slot is free, should the trainer ahead have been killed
        time.sleep(poll)
    raise TimeoutError(f"{run.path.name} was still {run.status().state} after {timeout:.0f} s")


class Progress(TypedDict):
    fraction: float  # share of the steps done, 0 to 1
    elapsed: float  # seconds spent
    left: Optional[float]  # seconds still to go, estimated; None while unknown


def budget_words(status: RunStatus) -> Optional[str]:
    """How a run with a time budget kept it, in words ("58 s of its 1 min budget (97%)"); None without one."""
    if not status.time_budget:
        return None
    if status.budget_used is None:
        return f"a {duration_words(status.time_budget)} budget"
    return (f"{duration_words(status.budget_used)} of its {duration_words(status.time_budget)} budget "
            f"({100 * status.budget_used / status.time_budget:.0f}%)")


def progress(status: RunStatus, now: Optional[float] = None) -> Progress:
    """Share done, seconds spent and an estimate of seconds left, from a status."""
    now = now or time.time()
    started = status.started_at
    end = status.finished_at if status.state not in ACTIVE_STATES else None
    elapsed = (((end or now) - started) if started else 0.0) + (status.elapsed_before or 0.0)  # resumed runs
    total, step = status.total_steps or 0, status.step or 0
    fraction = min(1.0, step / total) if total else 0.0
    if status.state == "done":
        fraction = 1.0
    left = None
    if status.state == "running" and status.expected_end is not None:  # a time budget's plan, from the measured rate
        left = max(0.0, status.expected_end - now)
    elif status.state == "running" and 0.02 <= fraction < 1.0 and elapsed > 2:
        left = elapsed * (1 - fraction) / fraction
    return {"fraction": fraction, "elapsed": elapsed, "left": left}
