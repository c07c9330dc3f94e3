"""Regenerate the demo model and sample images that ship in assets/.

    python assets/make_demo.py

Trains the small digit ConvNet with the project's own command line on the built-in
digits (offline, about 20 seconds), keeps its best checkpoint as assets/demo/digits-convnet.pt,
and exports sample images from the same run's validation split (images the model never
trained on) to assets/samples/digits/<digit>/.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ASSETS = Path(__file__).resolve().parent
ROOT = ASSETS.parent
DEMO_MODEL = ASSETS / "demo" / "digits-convnet.pt"
SAMPLES = ASSETS / "samples" / "digits"
SAMPLES_PER_DIGIT = 3
TRAIN_ARGS = ["--dataset", "digits", "-b", "convnet", "-e", "5", "--seed", "0", "--quiet"]


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from siamese_core.config import TrainConfig
    from siamese_core.images import pixels_to_image
    from siamese_core.runs import read_json, write_bytes
    from siamese_core.training import prepare_data

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "demo-run"
        subprocess.run([sys.executable, "-m", "siamese_core", "train", *TRAIN_ARGS, "-o", str(out)],
                       cwd=ROOT, check=True)
        write_bytes(DEMO_MODEL, (out / "checkpoints" / "best.pt").read_bytes())
        config = TrainConfig.from_dict(read_json(out / "config.json"))

    val = prepare_data(config.resolve()).val
    shutil.rmtree(SAMPLES, ignore_errors=True)
    for label, digit in enumerate(val.classes):
        folder = SAMPLES / digit
        folder.mkdir(parents=True)
        for position in (val.labels == label).nonzero()[0][:SAMPLES_PER_DIGIT]:
            name = Path(val.names[position]).name  # e.g. 0123.png: its index in scikit-learn's digits
            pixels_to_image(val.pixels[int(position)].numpy()).save(folder / name)
    print(f"Demo model: {DEMO_MODEL}\nSamples: {SAMPLES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
