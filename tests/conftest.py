"""Shared fixtures: small real image sets written to disk, and one trained digits model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from siamese_core import data as D  # noqa: E402
from siamese_core.config import TrainConfig  # noqa: E402
from siamese_core.images import pixels_to_image  # noqa: E402


def run_cli(*args, cwd=None, timeout=600):
    """Run `python -m siamese_core ARGS` as a user would; returns the CompletedProcess."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "siamese_core", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd or ROOT, env=env, timeout=timeout)


def stop_all_runs(root) -> None:
    """Stop every run still training under `root`, so a failed test leaves no trainer behind."""
    import signal

    from siamese_core import jobs

    for info in jobs.list_runs(root):
        if info.active:
            pid = jobs.training_pid(info.run)
            if pid and jobs.is_alive(pid):
                os.kill(pid, signal.SIGKILL)


def write_class_folders(root: Path, classes=range(10), per_class=12, size=28, colour=False,
                        formats=("png",)) -> Path:
    """Real handwritten digits (scikit-learn's) saved as class folders, cycling through `formats`."""
    digits = D.load_digits(size, 3 if colour else 1)
    root.mkdir(parents=True, exist_ok=True)
    for label in classes:
        folder = root / f"digit_{label}"
        folder.mkdir(exist_ok=True)
        members = np.flatnonzero(digits.labels == label)[:per_class]
        for n, i in enumerate(members):
            fmt = formats[n % len(formats)]
            image = pixels_to_image(digits.pixels[i].numpy())
            if fmt in ("jpg", "jpeg"):
                image = image.convert("RGB")
            image.save(folder / f"{n:03d}.{fmt}")
    return root


@pytest.fixture(scope="session")
def digit_folders(tmp_path_factory) -> Path:
    return write_class_folders(tmp_path_factory.mktemp("digit-folders"))


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory) -> Path:
    """A convnet trained for real on the built-in digits (3 epochs, a few seconds)."""
    from siamese_core.training import train

    out = tmp_path_factory.mktemp("runs") / "digits"
    status = train(TrainConfig(dataset="digits", backbone="convnet", mode="pair", epochs=3), out)
    assert status["state"] == "done"
    return out


@pytest.fixture(scope="session")
def digits_checkpoint(digits_run) -> Path:
    return digits_run / "checkpoints" / "best.pt"


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """An empty runs folder for the app and jobs (SIAMESE_RUNS_DIR); any run left training is stopped."""
    folder = tmp_path / "runs"
    monkeypatch.setenv("SIAMESE_RUNS_DIR", str(folder))
    yield folder
    stop_all_runs(folder)
