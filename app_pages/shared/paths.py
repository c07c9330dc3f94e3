"""Where the app finds its own files (the demo model, the sample digits) and MNIST."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO_MODEL = ROOT / "assets" / "demo" / "digits-convnet.pt"
SAMPLES = ROOT / "assets" / "samples" / "digits"


def mnist_root() -> Path:
    """The folder of the MNIST IDX files: SIAMESE_MNIST_DIR, else data/mnist (the command line's default)."""
    return Path(os.environ.get("SIAMESE_MNIST_DIR", "data/mnist"))
