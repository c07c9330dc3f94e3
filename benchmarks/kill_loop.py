"""Kill loop: SIGKILL the command-line trainer at random moments, resume after each kill, and check the run.

Each attempt starts `python -m siamese_core train` on the built-in digits (a small ConvNet whose
epochs take about a second, so kills land during batches, validation and checkpoint writes alike),
waits until it trains (one attempt in five: not even that, to kill it during start-up or resume),
then a random 0.05-2 s, and kills it with SIGKILL (no chance to clean up). The next attempt resumes
(`--resume`) when the run has a last checkpoint, else starts the run again. After the kills, one
last attempt resumes to the end. The finished run must then have:
  - status.json saying done, at the last epoch;
  - every epoch in metrics.jsonl exactly once (no epoch repeated by a resume after a cut-off epoch);
  - no temporary files left by writes a kill interrupted;
  - best.pt and last.pt that load.

    python benchmarks/kill_loop.py [--kills 20] [--epochs 60] [--seed 0] [--out DIR]

tests/training/test_kill_safety.py runs the same loop with 3 kills.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))  # `python benchmarks/...` from a clone, without installing

TRAIN = ["-m", "siamese_core", "train", "--dataset", "digits", "-b", "convnet", "--mode", "pair",
         "--pairs-per-epoch", "1024", "--eval-pairs", "200"]


@dataclass
class KillLoopResult:
    kills: int = 0
    resumes: int = 0
    restarts: int = 0  # attempts that began again because no epoch had finished yet
    torn_writes: int = 0  # temporary files found right after the kills: writes a kill cut short
    final_state: str = ""
    final_epoch: int = 0
    epoch_counts: dict = field(default_factory=dict)  # epoch -> how many epoch records metrics.jsonl holds
    temp_files: list = field(default_factory=list)
    checkpoints_load: bool = False
    seconds: float = 0.0

    @property
    def each_epoch_once(self) -> bool:
        return sorted(self.epoch_counts) == list(range(1, self.final_epoch + 1)) and set(
            self.epoch_counts.values()) == {1}

    @property
    def held(self) -> bool:
        return (self.final_state == "done" and self.each_epoch_once and not self.temp_files
                and self.checkpoints_load)


def wait_until_training(run, child: subprocess.Popen, timeout: float = 120.0) -> None:
    """Until `child` (pid) says in the run's status that it is training, or has ended."""
    deadline = time.time() + timeout
    while child.poll() is None and time.time() < deadline:
        status = run.status()
        if status.pid == child.pid and status.state == "running":
            return
        time.sleep(0.05)


def kill_loop(run_dir: Path, kills: int, epochs: int, seed: int = 0, max_wait: float = 2.0) -> KillLoopResult:
    """Train into `run_dir` with `kills` random SIGKILLs and a resume after each; then check the run."""
    from siamese_core.runs.rundir import RunDir, load_checkpoint

    rng = random.Random(seed)
    run = RunDir(run_dir)
    result = KillLoopResult()
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    started = time.perf_counter()

    def command() -> list:
        base = [sys.executable, *TRAIN, "-e", str(epochs), "-o", str(run_dir)]
        if run.checkpoint("last").is_file():
            result.resumes += 1
            return base + ["--resume"]
        result.restarts += 1
        return base

    for _ in range(kills):
        child = subprocess.Popen(command(), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Kill at a random moment once it trains (or, one time in five, while it is still starting up).
        if rng.random() >= 0.2:
            wait_until_training(run, child)
        try:
            child.wait(timeout=rng.uniform(0.05, max_wait))  # the run may even finish before its kill
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
            child.wait()
            result.kills += 1
            result.torn_writes += len(list(run_dir.rglob("*.tmp")))  # the next attempt must sweep these
    final = subprocess.run(command(), env=env, capture_output=True, text=True, timeout=600)
    if final.returncode != 0 and "already holds a run" not in final.stderr:
        raise RuntimeError(f"the last attempt failed:\n{final.stderr[-2000:]}")
    result.seconds = time.perf_counter() - started

    status = run.status()
    result.final_state, result.final_epoch = status.state or "", status.epoch or 0
    result.epoch_counts = dict(Counter(r["epoch"] for r in run.read_metrics() if r.get("type") == "epoch"))
    result.temp_files = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*.tmp"))
    try:
        for name in ("best", "last"):
            load_checkpoint(run.checkpoint(name))
        result.checkpoints_load = True
    except Exception:
        result.checkpoints_load = False
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="keep the run here (a new folder) to look at it")
    args = parser.parse_args(argv)
    from bench_utils import print_table

    with tempfile.TemporaryDirectory(prefix="kill-loop-") as tmp:
        run_dir = args.out or Path(tmp) / "run"
        r = kill_loop(run_dir, args.kills, args.epochs, args.seed)
    repeated = {e: n for e, n in r.epoch_counts.items() if n != 1}
    print_table(["kills", "resumes", "fresh starts", "writes cut short", "final state", "epochs logged", "repeated epochs",
                 "temp files left", "best/last load", "wall s"],
                [[str(r.kills), str(r.resumes), str(r.restarts), str(r.torn_writes), r.final_state,
                  f"{len(r.epoch_counts)} of {r.final_epoch}", str(repeated or "none"), str(len(r.temp_files)),
                  "yes" if r.checkpoints_load else "no", f"{r.seconds:.0f}"]], figures_from=0)
    print("held" if r.held else "FAILED")
    return 0 if r.held else 1


if __name__ == "__main__":
    raise SystemExit(main())
