"""Every SIAMESE_* environment variable, read and checked in one place.

Each is read when asked for (not frozen at import), so a server's environment, or a test's
monkeypatched one, is what counts. A value that cannot be used ends in a UserError that names
the variable and says what it takes. `SETTINGS` documents them all; `markdown_table()` is the
settings table in docs/deployment.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .errors import UserError


@dataclass(frozen=True)
class Setting:
    name: str
    default: str  # as it would be written in the environment; "" for unset
    kind: str  # what it takes, in words
    meaning: str


SETTINGS = {s.name: s for s in (
    Setting("SIAMESE_RUNS_DIR", "runs", "folder", "where runs are written and listed"),
    Setting("SIAMESE_MAX_TRAINING_RUNS", "1", "whole number",
            "runs training at once; more wait their turn and start in order as runs end (a value that is not "
            "a positive whole number counts as 1)"),
    Setting("SIAMESE_TRAIN_PROCESSES", "1", "whole number",
            "processes one run started by the app trains with (torchrun on this machine: gloo on CPUs, one GPU "
            "each on GPUs); the Train page's *Advanced settings* can change it per run"),
    Setting("SIAMESE_DATA_ROOT", "", "folder",
            "a folder whose sub-folders may be trained on; the *server folder* option is off without it"),
    Setting("SIAMESE_MNIST_DIR", "data/mnist", "folder", "where the MNIST IDX files are, or are downloaded to"),
    Setting("SIAMESE_UPLOAD_MAX_MB", "2048", "number", "the most an uploaded zip may unpack to, in MB"),
    Setting("SIAMESE_UPLOAD_MAX_FILES", "100000", "number", "the most files an uploaded zip may hold"),
    Setting("SIAMESE_UPLOAD_MAX_RATIO", "100", "number",
            "the most a zip's file, and the zip as a whole, may unpack to per byte it holds (a zip bomb unpacks "
            "1 MB to 1 GB; photos and PNGs hardly shrink in a zip)"),
    Setting("SIAMESE_MAX_IMAGE_MEGAPIXELS", "64", "number",
            "larger images are refused before a pixel is decoded (a decompression bomb is tiny on disk)"),
    Setting("SIAMESE_MAX_CHECKPOINT_MB", "1024", "number", "larger uploaded checkpoints are refused before reading"),
    Setting("SIAMESE_MAX_PAIRS", "5000", "whole number",
            "the most pairs the app checks from one upload (Verify's many pairs); more are refused with a message"),
    Setting("SIAMESE_WEIGHTS_FILE", "", "file",
            "a local file of pretrained EfficientNet-B0 weights (or a run's checkpoint) for the *Photos* "
            "preset's fast path"),
    Setting("SIAMESE_IMAGE_MEMORY_GB", "4", "number",
            "decoded images are kept in memory up to this size in GB; beyond it they are decoded per batch"),
    Setting("SIAMESE_MEMORY_BUDGET_GB", "2", "number",
            "the most memory one model's work may take above the idle server, in GB: its weights, a batch's "
            "activations and the decoded images a gallery or map keeps, estimated before running; above it "
            "batches get smaller, and what cannot fit is refused with a message"),
    Setting("SIAMESE_WARM_UMAP", "1", "0 or 1",
            "1: the Explore page compiles UMAP in the background after its first map; 0: it does not"),
    Setting("SIAMESE_TRAIN_THREADS", "auto", "auto or whole number",
            "CPU threads a training step uses: auto chooses between one and PyTorch's count from the steps' own "
            "times (on a busy machine one thread can be ten times faster); a number fixes it"),
)}


def _raw(name: str) -> str:
    """The variable's value, stripped; its default when unset or blank."""
    return os.environ.get(name, "").strip() or SETTINGS[name].default


def _number(name: str, *, positive: bool = True) -> float:
    value = _raw(name)
    try:
        number = float(value)
    except ValueError:
        raise UserError(f"{name} must be a number, not '{value}'.") from None
    if number < 0 or (positive and number == 0) or number != number:
        raise UserError(f"{name} must be a {'positive' if positive else 'non-negative'} number, not '{value}'.")
    return number


def runs_dir() -> Path:
    """SIAMESE_RUNS_DIR: where runs live."""
    return Path(_raw("SIAMESE_RUNS_DIR")).expanduser()


def max_training_runs() -> int:
    """SIAMESE_MAX_TRAINING_RUNS: how many runs may train at once (a second run on a CPU halves both).
    Lenient by design: anything but a positive whole number means 1, so a typo never stops training."""
    value = _raw("SIAMESE_MAX_TRAINING_RUNS")
    return int(value) if value.isdigit() and int(value) > 0 else 1


def train_processes() -> int:
    """SIAMESE_TRAIN_PROCESSES: processes an app-started run trains with; anything but a positive whole number is 1."""
    value = _raw("SIAMESE_TRAIN_PROCESSES")
    return int(value) if value.isdigit() and int(value) > 0 else 1


def data_root() -> Optional[Path]:
    """SIAMESE_DATA_ROOT: the folder inside which the app may read server folders; None when unset."""
    value = _raw("SIAMESE_DATA_ROOT")
    return Path(value).expanduser() if value else None


def max_image_pixels() -> int:
    """SIAMESE_MAX_IMAGE_MEGAPIXELS, in pixels: larger images are refused before decoding."""
    return int(_number("SIAMESE_MAX_IMAGE_MEGAPIXELS") * 1_000_000)


def max_checkpoint_bytes() -> int:
    """SIAMESE_MAX_CHECKPOINT_MB, in bytes: larger uploaded checkpoints are refused."""
    return int(_number("SIAMESE_MAX_CHECKPOINT_MB") * 2**20)


def max_pairs() -> int:
    """SIAMESE_MAX_PAIRS: the most pairs the app checks from one upload."""
    return int(_number("SIAMESE_MAX_PAIRS"))


def mnist_dir() -> Path:
    """SIAMESE_MNIST_DIR: the folder of the MNIST IDX files."""
    return Path(_raw("SIAMESE_MNIST_DIR")).expanduser()


def default_mnist_dir() -> Path:
    """Where MNIST is looked for when nothing names a folder (the command line's --data-root default)."""
    return Path(SETTINGS["SIAMESE_MNIST_DIR"].default)


def upload_max_bytes() -> int:
    """SIAMESE_UPLOAD_MAX_MB, in bytes: the most an uploaded zip may unpack to."""
    return int(_number("SIAMESE_UPLOAD_MAX_MB") * 2**20)


def upload_max_files() -> int:
    """SIAMESE_UPLOAD_MAX_FILES: the most files an uploaded zip may hold."""
    return int(_number("SIAMESE_UPLOAD_MAX_FILES"))


def upload_max_ratio() -> float:
    """SIAMESE_UPLOAD_MAX_RATIO: the most a zip (and each file in it) may unpack to per byte it holds."""
    return _number("SIAMESE_UPLOAD_MAX_RATIO")


def memory_budget_bytes() -> int:
    """SIAMESE_MEMORY_BUDGET_GB, in bytes: the most memory one model's work may take above the idle server."""
    return int(_number("SIAMESE_MEMORY_BUDGET_GB") * 2**30)


def weights_file() -> str:
    """SIAMESE_WEIGHTS_FILE: the Photos preset's weights file ("" for none)."""
    return _raw("SIAMESE_WEIGHTS_FILE")


def image_memory_bytes() -> int:
    """SIAMESE_IMAGE_MEMORY_GB, in bytes: how much decoded image data is kept in memory."""
    return int(_number("SIAMESE_IMAGE_MEMORY_GB", positive=False) * 2**30)


def warm_umap() -> bool:
    """SIAMESE_WARM_UMAP: whether the Explore page compiles UMAP in the background."""
    value = _raw("SIAMESE_WARM_UMAP").lower()
    if value not in ("0", "1", "no", "yes", "false", "true", "off", "on"):
        raise UserError(f"SIAMESE_WARM_UMAP must be 0 (off) or 1 (on), not '{value}'.")
    return value in ("1", "yes", "true", "on")


def markdown_table() -> str:
    """The settings as docs/deployment.md's table: variable, default, what it takes, what it sets."""
    rows = ["| variable | default | takes | what it sets |", "|---|---|---|---|"]
    rows += [f"| `{s.name}` | {f'`{s.default}`' if s.default else 'unset'} | {s.kind} | {s.meaning} |"
             for s in SETTINGS.values()]
    return "\n".join(rows)


def train_threads() -> Optional[int]:
    """SIAMESE_TRAIN_THREADS: a fixed thread count for training steps, or None for auto (chosen from the steps'
    times). Lenient like the run counts: anything but a positive whole number means auto."""
    value = _raw("SIAMESE_TRAIN_THREADS")
    return int(value) if value.isdigit() and int(value) > 0 else None
