"""Distributed training throughput: one process against torchrun with N processes, same model, data and batches.

    python benchmarks/distributed.py [--processes 1,2] [--epochs 3] [--models convnet,small-resnet]

Each row trains the built-in digits with the library's default recipe through the command line, one process
(`python -m siamese_core train`, the baseline) or N (`torchrun --nproc_per_node N -m siamese_core train`), and
reads the trainer's own images-per-second figure of every epoch after the first (warm-up), then the best
validation accuracy. On a CPU, N processes share the cores that one process uses with N threads, so the ratio
says what the communication costs; on a GPU machine pass one process per GPU (e.g. --processes 1,2,4,8).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_utils import load_average, print_table  # noqa: E402

MODELS = {"convnet": ["-b", "convnet", "--image-size", "28"],
          "small-resnet": ["-b", "small-resnet", "--image-size", "64"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def train(model: str, processes: int, epochs: int, out: Path) -> dict:
    args = ["-m", "siamese_core", "train", "--dataset", "digits", *MODELS[model], "-e", str(epochs),
            "-o", str(out), "--quiet"]
    if processes > 1:
        args = ["-m", "torch.distributed.run", "--nproc_per_node", str(processes), "--master_port",
                str(free_port()), *args]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{model} with {processes} process(es) failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if line.strip()]
    epochs_ = [r for r in records if r.get("type") == "epoch"]
    timed = epochs_[1:] or epochs_  # the first epoch pays for warm-up
    status = json.loads((out / "status.json").read_text())
    return {"images_per_second": sum(r["items_per_second"] for r in timed) / len(timed),
            "accuracy": status["best_accuracy"], "wall": time.perf_counter() - started,
            "steps": status["steps_per_epoch"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--processes", default="1,2", help="process counts to run, comma-separated (1 = baseline)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--models", default="convnet,small-resnet")
    args = parser.parse_args()
    counts = sorted({int(n) for n in args.processes.split(",")} | {1})
    import torch

    print(f"torch {torch.__version__}, {os.cpu_count()} CPU cores, GPUs: {torch.cuda.device_count()}; "
          f"load average before: {load_average()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            baseline = None
            for n in counts:
                result = train(model, n, args.epochs, Path(tmp) / f"{model}-{n}")
                baseline = baseline or result["images_per_second"]
                rows.append([model, n, result["steps"], f"{result['images_per_second']:,.0f}",
                             f"{result['images_per_second'] / baseline:.2f}x", f"{100 * result['accuracy']:.1f}%",
                             f"{result['wall']:.0f}"])
                print(f"  {model}, {n} process(es): {result['images_per_second']:,.0f} images/s", flush=True)
    print()
    print_table(["model", "processes", "steps/epoch", "images/s (epochs 2+)", "vs 1 process", "best val. accuracy",
                 "wall s"], rows, figures_from=1)
    print(f"\nLoad average after: {load_average()} (the trainers' own processes included).")


if __name__ == "__main__":
    main()
