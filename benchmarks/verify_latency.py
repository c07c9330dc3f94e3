"""Verify latency: two decoded images to a verdict, against the bare forward pass of the same pair.

What the Verify page pays per check once a model is loaded: `SiameseModel.verify(image_a, image_b)`
on two decoded PIL images (conversion, resizing, both images through the network in one batch,
the score, the distance and the verdict). The baseline is the network alone on the same two
images already converted to float tensors: `net(a, b)` under `torch.inference_mode()`.

Models: (a) the demo model (assets/demo/digits-convnet.pt: the digit ConvNet, 28 px grey) on two
sample digits; (b) `timm:efficientnet_b0` at 224 px RGB with random weights (pretrained=False),
saved as a checkpoint in a temporary folder and loaded as the app loads it, on two real photos
from ../shared/data/person_reid when present, else on two generated colour images.

    python benchmarks/verify_latency.py [--repeats N] [--image-size 224] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))  # `python benchmarks/...` from a clone, without installing

from bench_utils import OtherLoad, load_average, print_table  # noqa: E402  (the script's own folder is on sys.path)

DEMO_MODEL = PROJECT_ROOT / "assets" / "demo" / "digits-convnet.pt"
SAMPLES = PROJECT_ROOT / "assets" / "samples" / "digits"
PHOTOS = PROJECT_ROOT.parent / "shared" / "data" / "person_reid" / "train"
WARMUP = 5


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=None, metavar="N",
                        help="timed repeats of each measurement (default: 300 for the demo model, 30 for efficientnet_b0)")
    parser.add_argument("--image-size", type=int, default=224, metavar="PX", help="efficientnet_b0 input size (default 224)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch threads (default: torch's own choice, one per core). On a machine shared with "
                             "other work, --threads 1 keeps torch's threads from waiting on each other")
    return parser.parse_args(argv)


def decoded(path: Path):
    from PIL import Image

    with Image.open(path) as img:
        img.load()
        return img.copy()


def efficientnet_checkpoint(folder: Path, image_size: int) -> Path:
    """A checkpoint of timm:efficientnet_b0 with random weights, written as training writes one."""
    import torch

    from siamese_core.config import TrainConfig
    from siamese_core.models.networks import build_model, model_spec
    from siamese_core.runs.rundir import save_checkpoint

    torch.manual_seed(0)
    config = TrainConfig(dataset="digits", backbone="timm:efficientnet_b0", mode="pair", image_size=image_size, channels=3,
                         pretrained=False).resolve()
    spec = model_spec(config)
    net = build_model(spec, pretrained=False)
    path = folder / "efficientnet_b0.pt"
    save_checkpoint(path, spec=spec, state_dict=net.state_dict(), threshold=0.5, metrics={}, epoch=0,
                    config=config.to_dict(), classes=[])
    return path


def photo_pair():
    """Two real colour photos when the shared data is there, else two generated ones (and which)."""
    import numpy as np
    from PIL import Image

    photos = sorted(PHOTOS.glob("*.jpg"))[:2] if PHOTOS.is_dir() else []
    if len(photos) == 2:
        return [decoded(p) for p in photos], f"2 person_reid photos, {decoded(photos[0]).size[0]}x{decoded(photos[0]).size[1]}"
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)) for _ in range(2)], "2 generated 640x480 images"


def median_ms(work, repeats: int) -> tuple:
    for _ in range(WARMUP):
        work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), min(times), max(times)


def measure(model, image_a, image_b, repeats: int):
    """(bare forward, verdict) timings, each (median, min, max) in ms, interleaved in rounds."""
    import numpy as np
    import torch

    from siamese_core.models.networks import as_model_input

    net = model.net
    pixels = np.stack([model.prepare(image_a), model.prepare(image_b)])
    x = as_model_input(torch.from_numpy(pixels), model.device, channels_last=model.device.type == "cpu")
    a, b = x[:1], x[1:]

    def bare():
        with torch.inference_mode():
            net(a, b)

    def verdict():
        model.verify(image_a, image_b)

    # Alternate the two in rounds so a change in machine load hits both alike.
    rounds = 3
    bare_times, verdict_times = [], []
    for _ in range(rounds):
        bare_times.append(median_ms(bare, max(1, repeats // rounds)))
        verdict_times.append(median_ms(verdict, max(1, repeats // rounds)))
    pick = lambda runs: (statistics.median(r[0] for r in runs), min(r[1] for r in runs), max(r[2] for r in runs))  # noqa: E731
    return pick(bare_times), pick(verdict_times)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from siamese_core.inference.model import SiameseModel

    if args.threads:
        torch.set_num_threads(args.threads)

    rows = []
    with tempfile.TemporaryDirectory() as tmp, OtherLoad() as load:
        digits = sorted(SAMPLES.glob("*/*.png"))
        cases = [("demo: convnet 28px grey", DEMO_MODEL, [decoded(digits[0]), decoded(digits[-1])],
                  "2 sample digits, 28x28", args.repeats or 300)]
        photos, photo_words = photo_pair()
        cases.append((f"timm:efficientnet_b0 {args.image_size}px RGB", efficientnet_checkpoint(Path(tmp), args.image_size),
                      photos, photo_words, args.repeats or 30))
        for name, path, (image_a, image_b), inputs, repeats in cases:
            start = time.perf_counter()
            model = SiameseModel.load(path)
            load_ms = (time.perf_counter() - start) * 1000
            bare, verdict = measure(model, image_a, image_b, repeats)
            rows.append([name, inputs, f"{load_ms:.0f}", f"{bare[0]:.2f} ({bare[1]:.2f}-{bare[2]:.2f})",
                         f"{verdict[0]:.2f} ({verdict[1]:.2f}-{verdict[2]:.2f})", f"{verdict[0] / bare[0]:.2f}x"])
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} thread{'' if threads == 1 else 's'}; load average {load_average()}; "
          f"other load while timing: {load} cores")
    print_table(["model", "images", "load ms (once)", "bare forward ms: median (min-max)",
                 "verdict ms: median (min-max)", "verdict / forward"], rows, figures_from=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
