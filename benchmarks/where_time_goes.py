"""Where a time-budgeted run's seconds go (issue 25, item 3): the real command line (`python -m siamese_core train
--time 60s`) run under cProfile, its time split into start-up (imports, reading the images, decoding them, building
the model), the training steps (the batch's images, augmentation, forward, backward, the optimiser), validation, the
epoch map's snapshots, checkpoints and the closing description, each in seconds and as a share of the wall time.

    python benchmarks/where_time_goes.py                    # the built-in digits and 10 AT&T people, 60 s each
    python benchmarks/where_time_goes.py --only faces --time 30s

cProfile slows Python-heavy code (not torch's kernels) by a few per cent: the shares are what to read, and the
step counts are the profiled run's own. The load average is printed with the table.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_utils import load_average, print_table  # noqa: E402

DEFAULT_DATA = PROJECT_ROOT.parent / "shared" / "data"
TRAIN_PEOPLE = [f"s{i}" for i in range(1, 11)]

# (phase, file ending, function name): cumulative seconds of that function (recursion counted once by cProfile).
# Phases nested in another are subtracted from it below (NESTED), so the rows add up to the run.
PHASES = [
    ("imports", "<frozen importlib._bootstrap>", "_find_and_load"),
    ("reading the images (recipe)", "data/reading.py", "apply_reading"),
    ("decoding and preparing images", "data/prepare.py", "prepare_data"),
    ("building the model", "models/networks.py", "build_model"),
    ("sample images for the pages", "runs/context.py", "write_samples"),
    ("step: batch images to float", "models/networks.py", "as_model_input"),
    ("step: augmentation", "data/augment.py", "apply"),
    ("step: forward and loss", "training/loop.py", "train_step"),
    ("step: backward", "torch/_tensor.py", "backward"),
    ("step: optimiser", "torch/optim/optimizer.py", "wrapper"),
    ("step: status and metrics writes", "training/loop.py", "on_step"),
    ("validation", "training/loop.py", "validate"),
    ("epoch-map snapshots", "training/skeleton.py", "take"),
    ("checkpoints", "training/skeleton.py", "save"),
    ("closing: describing the images", "inference/domain.py", "describe_run"),
]
NESTED = {"step: forward and loss": ["step: batch images to float", "step: augmentation"],
          "reading the images (recipe)": [], "imports": []}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder holding att_faces/")
    parser.add_argument("--only", choices=("digits", "faces"))
    parser.add_argument("--time", default="60s", help="the budget (default 60s)")
    parser.add_argument("--extra", default="", help="more train flags, as one string")
    parser.add_argument("--keep", type=Path, help="a folder to keep the runs and their .prof files in")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    sets = [args.only] if args.only else ["digits", "faces"]
    with tempfile.TemporaryDirectory(prefix="where-time-") as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        for name in sets:
            flags = data_flags(name, args, work)
            if flags is None:
                print(f"{name}: skipped (no AT&T folders in {args.data})")
                continue
            profile_one(name, flags + ["--time", args.time] + args.extra.split(), work / name)
    return 0


def data_flags(name: str, args, work: Path):
    if name == "digits":
        return ["--dataset", "digits", "-b", "convnet"]
    root = args.data / "att_faces"
    if not all((root / p).is_dir() for p in TRAIN_PEOPLE):
        return None
    faces = work / "faces10"
    faces.mkdir(parents=True)
    for person in TRAIN_PEOPLE:
        (faces / person).symlink_to(root / person, target_is_directory=True)
    return ["--train_path", str(faces)]


def profile_one(name: str, flags: list, out: Path) -> None:
    stats_file = out.with_suffix(".prof")
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "cProfile", "-o", str(stats_file), "-m", "siamese_core", "train",
                             *flags, "-q", "-o", str(out)], capture_output=True, text=True, env=env, cwd=PROJECT_ROOT)
    wall = time.perf_counter() - started
    if result.returncode != 0:
        print(result.stderr[-2000:])
        return
    status = json.loads((out / "status.json").read_text())
    seconds = phase_seconds(pstats.Stats(str(stats_file)))
    before_first = status["started_at"] - status.get("budget_started_at", status["created_at"])
    steps = status.get("step") or 0
    rows = []
    for phase, _, _ in PHASES:
        s = seconds.get(phase, 0.0)
        rows.append([phase, f"{s:.1f}", f"{100 * s / wall:.0f}%"])
    counted = sum(seconds.values())
    rows.append(["other (the process starting and ending, logging, planning)", f"{wall - counted:.1f}",
                 f"{100 * (wall - counted) / wall:.0f}%"])
    rows.append(["wall (the command, timed from outside)", f"{wall:.1f}", "100%"])
    print(f"\n{name}: {' '.join(flags)}; {steps} steps in {status.get('epoch')} epochs, best validation accuracy "
          f"{100 * (status.get('best_accuracy') or 0):.1f}%; {before_first:.1f} s before the first step (the "
          f"status's started_at less the process's start). Load average {load_average()} (2-core machine).")
    print_table(["phase", "seconds", "share"], rows, figures_from=1)
    train_s = sum(v for k, v in seconds.items() if k.startswith("step:"))
    if steps:
        print(f"per step: {1000 * train_s / steps:.0f} ms of which forward {1000 * seconds['step: forward and loss'] / steps:.0f}, "
              f"backward {1000 * seconds['step: backward'] / steps:.0f}, optimiser {1000 * seconds['step: optimiser'] / steps:.0f}, "
              f"augmentation {1000 * seconds['step: augmentation'] / steps:.0f}, images {1000 * seconds['step: batch images to float'] / steps:.0f}")


def phase_seconds(stats: pstats.Stats) -> dict:
    found = {}
    for (file, _, function), (_, _, _, cumulative, _) in stats.stats.items():
        for phase, ending, name in PHASES:
            if function == name and file.replace("\\", "/").endswith(ending):
                found[phase] = found.get(phase, 0.0) + cumulative
    for outer, inner in NESTED.items():
        if outer in found:
            found[outer] -= sum(found.get(i, 0.0) for i in inner)
    return found  # an import made inside a later phase (a lazy module) is counted there and in imports too


if __name__ == "__main__":
    sys.exit(main())
