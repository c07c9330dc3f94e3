"""Shared fixtures: small real image sets written to disk, and one trained digits model."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from siamese_core.data import sources as D  # noqa: E402
from siamese_core.config import TrainConfig  # noqa: E402
from siamese_core.data.images import pixels_to_image  # noqa: E402


def run_cli(*args, cwd=None, timeout=600):
    """Run `python -m siamese_core ARGS` as a user would; returns the CompletedProcess."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "siamese_core", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd or ROOT, env=env, timeout=timeout)


def stop_all_runs(root) -> None:
    """Stop every run still training under `root`, so a failed test leaves no trainer behind; waiting runs
    are cancelled first, so no trainer ending now starts one."""
    import signal

    from siamese_core.runs import jobs

    infos = jobs.list_runs(root)  # listing starts no waiting run
    for info in infos:
        if info.waiting:
            jobs.cancel(info.run)
    for info in infos:
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


PEOPLE = ("alice", "bruno", "chen", "dara", "emeka", "fatima", "goran", "hana", "ines", "jonas")


def write_people(root: Path, people=PEOPLE, per_person: int = 8, size: int = 48, seed: int = 0) -> Path:
    """Generated people-like faces, one class folder per person: each person's face has its own shape, skin and
    hair tone, eye spacing and mouth; each photo of them shifts, lights and blurs it a little (no real data)."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for name in people:
        face = {"skin": rng.integers(110, 220), "hair": rng.integers(0, 90), "width": rng.uniform(0.30, 0.42),
                "eyes": rng.uniform(0.10, 0.20), "eye_y": rng.uniform(0.36, 0.48), "mouth": rng.uniform(0.06, 0.20),
                "hair_depth": rng.uniform(0.18, 0.34), "background": rng.integers(20, 250)}
        folder = root / name
        folder.mkdir(exist_ok=True)
        for n in range(per_person):
            big = 4 * size  # drawn large, then shrunk: smooth edges like a photo's
            dx, dy = rng.normal(0, 0.03, 2) * big
            light = rng.uniform(0.85, 1.15)
            tone = lambda v: int(np.clip(v * light, 0, 255))  # noqa: E731
            image = Image.new("L", (big, big), tone(face["background"]))
            draw = ImageDraw.Draw(image)
            cx, cy, half = big / 2 + dx, big / 2 + dy, face["width"] * big
            draw.ellipse([cx - half, cy - 0.45 * big, cx + half, cy + 0.42 * big], fill=tone(face["skin"]))
            draw.chord([cx - half, cy - 0.47 * big, cx + half, cy - (0.45 - 2 * face["hair_depth"]) * big],
                       180, 360, fill=tone(face["hair"]))
            for side in (-1, 1):
                ex, ey, r = cx + side * face["eyes"] * big, cy - (0.5 - face["eye_y"]) * big, 0.035 * big
                draw.ellipse([ex - r, ey - r, ex + r, ey + r], fill=tone(30))
            mouth_y = cy + 0.2 * big
            draw.line([cx - face["mouth"] * big, mouth_y, cx + face["mouth"] * big, mouth_y], fill=tone(60),
                      width=max(2, big // 40))
            image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 2.0))).resize((size, size), Image.BILINEAR)
            # Light falls from one side, as in a photo (a flat drawing on a flat background reads as ink on paper)
            angle, strength = rng.uniform(0, 2 * np.pi), rng.uniform(20, 35)
            ramp = np.cos(angle) * np.linspace(-1, 1, size)[None, :] + np.sin(angle) * np.linspace(-1, 1, size)[:, None]
            noisy = np.asarray(image, dtype=np.float32) + strength * ramp + rng.normal(0, 6, (size, size))
            Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(folder / f"{n:02d}.png")
    return root


@pytest.fixture(scope="session")
def people_run(tmp_path_factory) -> Path:
    """A small ConvNet trained for real on generated people (2 epochs, seconds): a model that is not about digits."""
    from siamese_core.training.loop import train

    people = write_people(tmp_path_factory.mktemp("data") / "people", per_person=6)
    out = tmp_path_factory.mktemp("runs") / "people-run"
    status = train(TrainConfig(dataset="folder", train_path=str(people), backbone="convnet", mode="pair",
                               image_size=28, epochs=2), out)
    assert status.state == "done"
    return out


@pytest.fixture(scope="session")
def digit_folders(tmp_path_factory) -> Path:
    return write_class_folders(tmp_path_factory.mktemp("digit-folders"))


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory) -> Path:
    """A convnet trained for real on the built-in digits (3 epochs, a few seconds)."""
    from siamese_core.training.loop import train

    out = tmp_path_factory.mktemp("runs") / "digits"
    status = train(TrainConfig(dataset="digits", backbone="convnet", mode="pair", epochs=3), out)
    assert status.state == "done"
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


def write_idx(path, array, compress):
    """An array as an MNIST IDX file (gzip-compressed or not)."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    (gzip.open if compress else open)(path, "wb").write(payload)


# Fixtures that train a model for the tests that use them (seconds to a minute each): such tests are `slow`.
TRAINING_FIXTURES = {"digits_run", "people_run", "embedding_run", "source_run", "people_checkpoint", "done_run"}


def pytest_collection_modifyitems(config, items):
    """A test that needs a model trained for it (a fixture above, directly or through another) is `slow`, so
    `python -m pytest -m "not slow"` trains nothing."""
    for item in items:
        if TRAINING_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
