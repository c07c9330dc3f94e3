"""Epoch snapshots: where a fixed sample of validation images sits in the model's space after each epoch.

The trainer writes them into the run directory (rank 0 only), so a finished run can show how its map
formed without its dataset:

runs/<run-id>/epoch-map/
  sample.json      the sample: positions in the validation images, class names, file names, what the vectors are
  thumbnails.json  one small data-URI thumbnail per sampled image, written once
  epoch-000.npy    float16 (N, D) vectors before training (random weights), then epoch-001.npy, ...

The vectors are the model's embedding, or for pair models (whose pair head has no embedding) the
backbone features the head compares: what Explore maps for that model too. Every file is written
atomically (runs.write_bytes / write_json), and a resumed run keeps the epochs before its checkpoint.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..files import read_json, write_bytes, write_json

FOLDER = "epoch-map"
SAMPLE_FILE = "sample.json"
THUMBNAILS_FILE = "thumbnails.json"
SAMPLE_SIZE = 300  # points on the map: enough to see classes gather, small enough to animate smoothly
FLOAT16_MAX = 60000.0  # float16 holds up to 65504; larger backbone features are clipped rather than infinite
_EPOCH_FILE = re.compile(r"^epoch-(\d{3,6})\.npy$")


def folder(run_path) -> Path:
    return Path(run_path) / FOLDER


def epoch_file(run_path, epoch: int) -> Path:
    return folder(run_path) / f"epoch-{epoch:03d}.npy"


def choose_sample(labels: np.ndarray, candidates: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted positions of up to `size` of `candidates`, as even across classes as they allow, seeded."""
    from .projection import sample_per_class

    candidates = np.unique(np.asarray(candidates, dtype=np.int64))
    return candidates[sample_per_class(np.asarray(labels)[candidates], size, seed)]


class SnapshotWriter:
    """Writes one run's snapshots. The sample is chosen once (seeded, evenly per class, among the images the
    validation pairs use) and kept in sample.json: a resumed run maps the very same images."""

    def __init__(self, run_path, val, val_pairs, seed: int, features: str, random_start: bool = True,
                 size: int = SAMPLE_SIZE):
        self.path = folder(run_path)
        saved = read_json(self.path / SAMPLE_FILE)
        kept = _saved_positions(saved, len(val))
        if kept is not None:
            self.positions = kept
            return
        candidates = np.concatenate([np.asarray(val_pairs[0]), np.asarray(val_pairs[1])])
        self.positions = choose_sample(val.labels, candidates, size, seed)
        classes = [str(c) for c in val.classes]
        labels = [classes[i] if 0 <= i < len(classes) else "(no label)" for i in val.labels[self.positions]]
        self._write_thumbnails(val)
        write_json(self.path / SAMPLE_FILE, {
            "positions": self.positions.tolist(), "labels": labels,
            "names": [str(val.names[i]) for i in self.positions], "classes": classes,
            "features": features, "random_start": bool(random_start), "seed": int(seed)})

    def _write_thumbnails(self, val) -> None:
        from .embedding_map import thumbnail_uris  # plotly comes with it: only once per run, here

        write_json(self.path / THUMBNAILS_FILE, thumbnail_uris(val, self.positions))

    def has(self, epoch: int) -> bool:
        return epoch_file(self.path.parent, epoch).is_file()

    def write(self, epoch: int, vectors) -> None:
        """Store the sample's vectors after `epoch` (0: before training)."""
        array = np.asarray(vectors, dtype=np.float32)
        array = np.clip(np.nan_to_num(array, nan=0.0, posinf=FLOAT16_MAX, neginf=-FLOAT16_MAX),
                        -FLOAT16_MAX, FLOAT16_MAX).astype(np.float16)
        buffer = io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        write_bytes(epoch_file(self.path.parent, epoch), buffer.getvalue())

    def keep_through(self, epoch: int) -> None:
        """On resume from `epoch`: drop the snapshots of the epochs a stop or kill cut off after it."""
        for found, number in _epoch_files(self.path):
            if number > epoch:
                found.unlink(missing_ok=True)


def _saved_positions(saved, n_val: int) -> Optional[np.ndarray]:
    if not isinstance(saved, dict) or not isinstance(saved.get("positions"), list) or not saved["positions"]:
        return None
    positions = np.asarray(saved["positions"])
    if positions.dtype.kind != "i" or positions.min() < 0 or positions.max() >= n_val:
        return None  # another validation set: choose afresh
    return positions.astype(np.int64)


def _epoch_files(path: Path) -> list:
    if not path.is_dir():
        return []
    found = []
    for entry in path.iterdir():
        match = _EPOCH_FILE.match(entry.name)
        if match:
            found.append((entry, int(match.group(1))))
    return sorted(found, key=lambda pair: pair[1])


# ------------------------------------------------------------------ reading

@dataclass
class EpochSnapshots:
    epochs: list  # epoch numbers, ascending (0 = before training)
    vectors: list  # float32 (N, D) per epoch
    labels: list  # class name of each sampled image
    names: list  # file name of each sampled image
    positions: list  # each image's position in the run's validation images
    thumbnails: list  # data URI of each image ('' where missing)
    classes: list  # the validation classes, in their order
    features: str  # 'embedding' or 'backbone'
    random_start: bool = True  # False: training started from pretrained weights (epoch 0 shows those)

    def __len__(self) -> int:
        return len(self.epochs)


def snapshot_epochs(run_path) -> list:
    """The epochs that have a snapshot (cheap: a folder listing)."""
    return [number for _, number in _epoch_files(folder(run_path))]


def read_snapshots(run_path) -> Optional[EpochSnapshots]:
    """A run's snapshots, or None when it has none (older runs, the demo model). A file that is not a
    snapshot of this sample (damaged, edited) is skipped, never fatal."""
    path = folder(run_path)
    sample = read_json(path / SAMPLE_FILE)
    if not isinstance(sample, dict):
        return None
    labels, names = sample.get("labels"), sample.get("names")
    if not (isinstance(labels, list) and isinstance(names, list) and len(labels) == len(names) and labels):
        return None
    n = len(labels)
    thumbnails = read_json(path / THUMBNAILS_FILE)
    if not (isinstance(thumbnails, list) and len(thumbnails) == n
            and all(isinstance(t, str) and t.startswith("data:image/") for t in thumbnails)):
        thumbnails = [""] * n
    epochs, vectors = [], []
    dims = None
    for found, number in _epoch_files(path):
        try:
            array = np.load(found, allow_pickle=False)
        except (OSError, ValueError):
            continue
        if array.ndim != 2 or len(array) != n or (dims is not None and array.shape[1] != dims):
            continue
        dims = array.shape[1]
        epochs.append(number)
        vectors.append(array.astype(np.float32))
    if not epochs:
        return None
    positions = sample.get("positions") if isinstance(sample.get("positions"), list) else list(range(n))
    classes = sample.get("classes") if isinstance(sample.get("classes"), list) else sorted(set(map(str, labels)))
    return EpochSnapshots(epochs, vectors, [str(s) for s in labels], [str(s) for s in names], positions,
                          thumbnails, [str(c) for c in classes], str(sample.get("features") or "embedding"),
                          sample.get("random_start") is not False)


def describe_features(features: str) -> str:
    """What the mapped numbers are, in plain words."""
    if features == "backbone":
        return ("the features the network compares (this model scores pairs with a head, so its map shows the "
                "features that go into that head)")
    return "the model's embedding"


def sample_words(snapshots: EpochSnapshots) -> str:
    classes = len(set(snapshots.labels))
    return (f"{len(snapshots.labels):,} validation images, the same ones every epoch"
            + (f", from {classes} classes" if classes > 1 else ""))
