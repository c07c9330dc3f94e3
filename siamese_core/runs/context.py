"""What a model is about, for every page and command that uses it: what one of its classes is called
(digit, person, signature...), where its images came from, and a few of its own validation images.

A run keeps these beside its checkpoints: `samples/` and `samples.json` (written by the trainer once
its data is split) and `context.json` (the class word, when a person renames it after training).
A checkpoint read from outside a run still knows its class word and data name from its config.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from ..files import read_json, write_bytes, write_json
from ..words import clean_class_word
from .rundir import RunDir

SAMPLES_DIR = "samples"
SAMPLES_FILE = "samples.json"
CONTEXT_FILE = "context.json"
SAMPLE_CLASSES = 6  # classes a run keeps samples of: enough for several 'different' pairs
SAMPLES_PER_CLASS = 3  # enough for 'same' pairs of every kept class
@dataclass(frozen=True)
class Sample:
    path: Path
    label: str  # its class; "" when the data does not say


@dataclass(frozen=True)
class ModelContext:
    class_word: str  # what one class is called: "digit", "person"...
    data_name: str  # where its images came from, in words: "faces10.zip", "the built-in digits"
    samples: tuple = field(default_factory=tuple)  # Sample images of its own validation split
    run: Optional[Path] = None  # the run folder the checkpoint belongs to, if any

    def same_pairs(self) -> list:
        """(sample, sample) pairs of one class, one per class with two samples."""
        by_class = _by_class(self.samples)
        return [(kept[0], kept[1]) for kept in by_class.values() if len(kept) >= 2]

    def different_pairs(self) -> list:
        """(sample, sample) pairs of two classes, each class beside the next."""
        firsts = [kept[0] for kept in _by_class(self.samples).values()]
        return [(firsts[i], firsts[(i + 1) % len(firsts)]) for i in range(len(firsts))] if len(firsts) >= 2 else []


def _by_class(samples) -> dict:
    by_class: dict = {}
    for sample in samples:
        if sample.label:
            by_class.setdefault(sample.label, []).append(sample)
    return by_class


# ---------------------------------------------------------------- written by the trainer

def write_samples(run: RunDir, image_set, seed: int = 0) -> int:
    """Keep a few validation images with the run, as the model sees them. Returns how many were kept.

    The images are written first and the list last, so a reader sees all of them or none."""
    from ..data.images import pixels_to_image

    rng = np.random.default_rng(seed)
    labels = np.asarray(image_set.labels)
    picked = []
    if len(labels) and (labels >= 0).all():
        present = sorted(np.unique(labels).tolist(), key=lambda label: str(image_set.classes[label]))
        for label in present[:SAMPLE_CLASSES]:
            members = np.flatnonzero(labels == label)
            chosen = rng.choice(members, size=min(SAMPLES_PER_CLASS, len(members)), replace=False)
            picked += [(int(i), str(image_set.classes[label])) for i in sorted(chosen.tolist())]
    else:  # no classes known (triplets without identities): a few images, for the Sample picker
        picked = [(int(i), "") for i in range(min(SAMPLE_CLASSES * SAMPLES_PER_CLASS, len(labels)))]
    listed = []
    for n, (index, label) in enumerate(picked):
        pixels = image_set.batch(np.array([index]))[0]
        pixels = pixels.numpy() if hasattr(pixels, "numpy") else np.asarray(pixels)
        buffer = io.BytesIO()
        pixels_to_image(pixels).save(buffer, format="PNG")
        name = f"{SAMPLES_DIR}/{n:02d}.png"
        write_bytes(run.path / name, buffer.getvalue())
        listed.append({"file": name, "class": label})
    write_json(run.path / SAMPLES_FILE, {"samples": listed})
    return len(listed)


def set_class_word(run: RunDir, word: str) -> str:
    """Rename what one class of a run is called (on every page that uses its model). Returns the word kept."""
    word = clean_class_word(word)
    context = read_json(run.path / CONTEXT_FILE, default={}) or {}
    write_json(run.path / CONTEXT_FILE, {**(context if isinstance(context, dict) else {}), "class_word": word})
    return word


# ---------------------------------------------------------------- read by pages and commands

def run_of_checkpoint(path) -> Optional[RunDir]:
    """The run a checkpoint file belongs to (`<run>/checkpoints/<name>.pt`), or None."""
    if path is None:
        return None
    path = Path(path)
    run = path.parent.parent
    if path.parent.name == "checkpoints" and (run / "config.json").is_file():
        return RunDir(run)
    return None


def context_of(checkpoint_path, checkpoint: dict) -> ModelContext:
    """The context of a loaded checkpoint: its run's samples and class word where it has a run."""
    config = checkpoint.get("config") if isinstance(checkpoint.get("config"), dict) else {}
    run = run_of_checkpoint(checkpoint_path)
    word = run_class_word(run, config) if run is not None else clean_class_word(config.get("class_word") or "class")
    samples = tuple(read_samples(run)) if run is not None else ()
    return ModelContext(word, data_words(config), samples, run.path if run is not None else None)


def run_class_word(run: RunDir, config: dict) -> str:
    """What one class of a run is called: as renamed after training (context.json), else as trained."""
    saved = read_json(run.path / CONTEXT_FILE, default={}) or {}
    renamed = saved.get("class_word") if isinstance(saved, dict) else None
    return clean_class_word(renamed or config.get("class_word") or "class")


def read_samples(run: RunDir) -> list:
    listed = read_json(run.path / SAMPLES_FILE, default={}) or {}
    samples = []
    for entry in listed.get("samples", []) if isinstance(listed, dict) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            continue
        path = (run.path / entry["file"]).resolve()
        if path.parent == (run.path / SAMPLES_DIR).resolve() and path.is_file():  # never a file outside the run
            samples.append(Sample(path, str(entry.get("class") or "")))
    return samples


def data_words(config: dict) -> str:
    """Where a model's images came from, in words."""
    if config.get("data_name"):
        return str(config["data_name"])
    dataset = config.get("dataset")
    if dataset == "digits":
        return "the built-in digits"
    if dataset == "mnist":
        return "MNIST"
    if dataset == "triplets" and config.get("triplets"):
        return Path(config["triplets"]).name
    if config.get("train_path"):
        return Path(config["train_path"]).name
    return "data it does not name"

