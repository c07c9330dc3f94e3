"""Where the app finds its own files (the demo model, the sample digits) and MNIST."""

from __future__ import annotations

from pathlib import Path

from siamese_core import settings

ROOT = Path(__file__).resolve().parents[2]
DEMO_MODEL = ROOT / "assets" / "demo" / "digits-convnet.pt"
# The browser tab's icon, a file served by the app itself: a Material icon there is fetched from fonts.gstatic.com
# on every page load, which fails offline (a classroom server may have no internet).
TAB_ICON = ROOT / "assets" / "icon.png"
SAMPLES = ROOT / "assets" / "samples" / "digits"


def mnist_root() -> Path:
    """The folder of the MNIST IDX files (settings: SIAMESE_MNIST_DIR, else the command line's default)."""
    return settings.mnist_dir()
