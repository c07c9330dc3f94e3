"""Training for a time: does a run end within its budget, and what does the budget buy? (issue 25)

For each budget (30 s and 60 s; with --full also 5 min) and each data set (the built-in digits on the Quick preset's
ConvNet, judged on its validation images; 10 AT&T people on the default recipe, judged on pairs of 10 other people it
never saw), the real command line (`python -m siamese_core train --time ...`, a process of its own, as the app starts
one) is timed from the outside, beside the epochs-based run the Train page used to start (the old Quick preset:
5 epochs) in the same script. Prints wall time against budget (the ratio the issue asks to stay within +5%), the
budget the run recorded, the epochs it trained, the estimate the Train page would have shown before Start, and the
accuracy.

    python benchmarks/time_budget.py            # 30 s and 60 s budgets, and the 5-epoch runs
    python benchmarks/time_budget.py --full     # also 5 minutes
    python benchmarks/time_budget.py --only digits

The machine is shared: the load average is printed with the table, and every figure of one table comes from the
same run of the script.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT_ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_utils import load_average, print_table  # noqa: E402

DEFAULT_DATA = PROJECT_ROOT.parent / "shared" / "data"
TRAIN_PEOPLE = [f"s{i}" for i in range(1, 11)]  # 10 AT&T people to train on
JUDGE_PEOPLE = [f"s{i}" for i in range(31, 41)]  # 10 others, never seen, to judge on
JUDGE_PAIRS = 900
BASELINE_EPOCHS = 5  # what the Train page's Quick preset trained before it was a time budget


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding att_faces/")
    parser.add_argument("--full", action="store_true", help="also the 5-minute budget")
    parser.add_argument("--only", choices=("digits", "faces"), help="one data set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs-cap", type=float, default=900.0,
                        help="seconds after which an epochs-based run is stopped and reported as not done "
                             "(a busy machine can make it take an hour; default 900)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    budgets = [30, 60] + ([300] if args.full else [])
    sets = [args.only] if args.only else ["digits", "faces"]
    rows = []
    with tempfile.TemporaryDirectory(prefix="time-budget-") as tmp:
        work = Path(tmp)
        for name in sets:
            flags, judge = data_set(name, args, work)
            if flags is None:
                print(f"{name}: skipped ({judge})")
                continue
            for budget in budgets:
                rows.append(run_row(name, f"--time {budget}s", flags + ["--time", f"{budget}s"], budget, judge,
                                    work / f"{name}-{budget}"))
            rows.append(run_row(name, f"-e {BASELINE_EPOCHS} (before)", flags + ["-e", str(BASELINE_EPOCHS)], None,
                                judge, work / f"{name}-epochs", cap=args.epochs_cap))
    print()
    print(f"Load average at the end: {load_average()} (2-core machine). Wall: the train command timed from outside, "
          "its start included.")
    print_table(["data", "run", "estimate before Start", "wall s", "budget s", "wall / budget", "recorded s",
                 "before 1st step s", "epochs", "steps", "accuracy", "judged on"], rows, figures_from=2)
    print("before 1st step: from the process's start to training's (Python and torch imported, images loaded, the "
          "model built): time no plan can give back.")
    return 0


def data_set(name: str, args, work: Path):
    """The train command's data flags and the judge of its checkpoint, or (None, why) when the data is missing."""
    if name == "digits":
        return ["--dataset", "digits", "-b", "convnet"], None
    root = args.data / "att_faces"
    if not all((root / p).is_dir() for p in TRAIN_PEOPLE + JUDGE_PEOPLE):
        return None, f"'{root}' does not hold the AT&T folders s1 ... s40"
    faces = work / "faces10"
    faces.mkdir(parents=True)
    for person in TRAIN_PEOPLE:
        (faces / person).symlink_to(root / person, target_is_directory=True)
    return ["--train_path", str(faces)], root


def run_row(name: str, label: str, flags: list, budget, judge, out: Path, cap=None) -> list:
    estimate = estimate_words(flags, budget)
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "siamese_core", "train", *flags, "-q", "-o", str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=PROJECT_ROOT)
    try:
        stdout, stderr = process.communicate(timeout=cap)
    except subprocess.TimeoutExpired:
        process.terminate()  # stops cleanly, as Stop does
        process.communicate()
        wall = time.perf_counter() - started
        status = json.loads((out / "status.json").read_text())
        return [name, label, estimate, f"> {wall:.0f} (stopped)", "", "", "", "", status.get("epoch"),
                status.get("step"), "", "not done within --epochs-cap"]
    result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        print(result.stderr[-2000:])
        return [name, label, estimate, f"{wall:.1f}", budget or "", "failed", "", "", "", "", "", ""]
    print(f"{name} {label}: {result.stdout.strip().splitlines()[0]} ({wall:.1f} s)", flush=True)
    status = json.loads((out / "status.json").read_text())
    if judge is None:
        accuracy, judged = status.get("best_accuracy"), "validation images"
    else:
        accuracy, judged = judge_on_others(out, judge), f"{JUDGE_PAIRS} pairs of 10 unseen people"
    recorded = status.get("budget_used")
    before = status["started_at"] - (status.get("budget_started_at") or started_at(status))
    return [name, label, estimate, f"{wall:.1f}", budget or "", f"{wall / budget:.2f}" if budget else "",
            f"{recorded:.1f}" if recorded else "", f"{before:.1f}", status.get("epoch"), status.get("step"),
            f"{100 * accuracy:.1f}%" if accuracy is not None else "", judged]


def started_at(status: dict) -> float:
    """An epochs-based run's process start, from the status it wrote when it began (its budget clock, if any)."""
    return status.get("created_at") or status["started_at"]


def estimate_words(flags: list, budget) -> str:
    """What the Train page would say before Start for these settings (timed here, in this process)."""
    from siamese_core.config import TrainConfig
    from siamese_core.training.estimate import estimate_run

    values = {"dataset": "digits", "backbone": "convnet"} if "digits" in flags else {
        "train_path": flags[flags.index("--train_path") + 1]}
    config = TrainConfig(**values, device="cpu", time_budget=budget,
                         epochs=BASELINE_EPOCHS if budget is None else 10)
    estimate = estimate_run(config)
    if budget is None:
        return f"{estimate.seconds:.0f} s"
    return f"{estimate.epochs:.1f} epochs"


def judge_on_others(out: Path, root: Path) -> float:
    """Verdict accuracy of the best checkpoint, at its own threshold, on pairs of 10 people it never saw."""
    import torch

    from siamese_core.data import sources as D
    from siamese_core.data.images import is_image_file
    from siamese_core.evaluation.metrics import verification_metrics
    from siamese_core.inference.model import SiameseModel

    model = SiameseModel.load(out / "checkpoints" / "best.pt")
    files, labels = [], []
    for label, person in enumerate(JUDGE_PEOPLE):
        found = sorted(p for p in (root / person).iterdir() if is_image_file(p))
        files += found
        labels += [label] * len(found)
    pairs = D.evaluation_pairs(np.array(labels), JUDGE_PAIRS, 0)
    vectors = torch.from_numpy(model.embed(np.stack([model.prepare(f) for f in files])))
    with torch.inference_mode():
        scores = model.net.pair_scores(vectors[torch.from_numpy(pairs[0])],
                                       vectors[torch.from_numpy(pairs[1])]).float().numpy()
    return verification_metrics(scores, pairs[2], model.threshold)["accuracy"]


if __name__ == "__main__":
    sys.exit(main())
