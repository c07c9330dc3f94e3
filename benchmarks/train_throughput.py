"""Training throughput: the project's loop against a classic Siamese training loop, same model, same run.

The classic loop is the kind most Siamese tutorials use: a Dataset that draws one pair
per item in Python, decodes both PNG files with PIL and converts them with torchvision
transforms, a DataLoader (num_workers=0), and the backbone called once per branch.
The project's loop is siamese_core.training.loop.train_fn over siamese_core.training.common.Batches (train_step inside),
set up as FullTrainer sets it up: images decoded once into memory, both images of a pair in
one forward pass, channels_last on the CPU (as training uses it by default), optional bf16 autocast,
optional torch.compile (--compile).

Both loops train the same network (build_model, same seed, same pair head) on the same
images: the built-in digits written as PNG files into class folders.

    python benchmarks/train_throughput.py [--batches N] [--image-size 224] [--seed 0] [--compile]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))  # `python benchmarks/...` from a clone, without installing

from bench_utils import OtherLoad, load_average, print_table  # noqa: E402  (the script's own folder is on sys.path)

WARMUP_BATCHES = 2


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=None, metavar="N",
                        help="timed batches per loop, after 2 warm-up batches (default: 150 for the convnet, "
                             "whose batches take a tenth of a second, and 10 for efficientnet_b0, ~4 s each at 224 px)")
    parser.add_argument("--image-size", type=int, default=224, metavar="PX",
                        help="image size for timm:efficientnet_b0 (default 224, its ImageNet size)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compile", action="store_true",
                        help="also time the project's loop with the model through torch.compile (compiling "
                             "efficientnet_b0 for training took over 10 minutes on a busy 2-core CPU)")
    return parser.parse_args(argv)


# ---------------------------------------------------------------- the classic loop

def classic_pair_dataset(root: Path, length: int, size: int, channels: int, mean, std):
    import torch
    from PIL import Image
    from torch.utils.data import Dataset
    from torchvision import transforms

    class ClassicPairDataset(Dataset):
        """One pair per item: a class, then images, drawn with `random`; both decoded from disk every time."""

        def __init__(self):
            self.files = {d.name: sorted(d.glob("*.png")) for d in sorted(root.iterdir()) if d.is_dir()}
            self.classes = list(self.files)
            self.mode = "L" if channels == 1 else "RGB"
            self.transform = transforms.Compose([
                transforms.Resize((size, size)),
                transforms.ToTensor(),
                transforms.Normalize(mean, std),
            ])

        def __len__(self):
            return length

        def load(self, path):
            with Image.open(path) as img:
                return self.transform(img.convert(self.mode))

        def __getitem__(self, index):
            first_class = random.choice(self.classes)
            same = random.random() < 0.5
            second_class = first_class if same else random.choice([c for c in self.classes if c != first_class])
            first = random.choice(self.files[first_class])
            second = random.choice(self.files[second_class])
            return self.load(first), self.load(second), torch.tensor(float(same))

    return ClassicPairDataset()


def time_classic(config, folder: Path, n_batches: int, seed: int, train_model: bool = True) -> "Timing":
    """Pairs/s of the classic loop; with train_model=False, of its data loading alone."""
    import torch
    from torch import nn
    from torch.utils.data import DataLoader

    from siamese_core.models.networks import build_model, model_spec

    random.seed(seed)
    spec = model_spec(config)
    torch.manual_seed(seed)
    model = build_model(spec, pretrained=False)
    model.train()
    branch, head = model.backbone, model.pair_head  # normalisation is done by the transforms here
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    criterion = nn.BCEWithLogitsLoss()
    dataset = classic_pair_dataset(folder, (WARMUP_BATCHES + n_batches) * config.batch_size,
                                   config.image_size, config.channels, spec["mean"], spec["std"])
    loader = DataLoader(dataset, batch_size=config.batch_size, shuffle=False, num_workers=0)

    def step(batch):
        img1, img2, label = batch
        if not train_model:
            return
        optimizer.zero_grad()
        out1 = branch(img1)
        out2 = branch(img2)
        loss = criterion(head(out1, out2), label)
        loss.backward()
        optimizer.step()
        loss.item()  # classic scripts read the loss every step for their log

    return timed(iter(loader), step, n_batches, config.batch_size)


# ---------------------------------------------------------------- the project's loop

def time_project(config, train_set, n_batches: int, compile_model: bool = False) -> "Timing":
    """Pairs/s of siamese_core.training.loop.train_fn over Batches, set up as FullTrainer.setup sets them up.

    With compile_model, the model goes through torch.compile first (the warm-up batches compile it;
    how long that took is printed, not timed)."""
    import numpy as np
    import torch

    from siamese_core.models.networks import build_model, model_spec, pick_device
    from siamese_core.training.common import Batches
    from siamese_core.training.loop import StopFlag, train_fn, uses_channels_last

    device = pick_device(config.device)
    torch.manual_seed(config.seed)
    model = build_model(model_spec(config), pretrained=False)
    channels_last = uses_channels_last(config, device)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    if compile_model:
        model = torch.compile(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    # Drawing the epoch's pairs is vectorised and takes milliseconds; it happens before the first batch.
    batches = Batches(train_set, config, epoch=1)
    if len(batches) != WARMUP_BATCHES + n_batches:
        raise RuntimeError(f"expected {WARMUP_BATCHES + n_batches} batches, got {len(batches)}: check pairs_per_epoch")

    finished_at, other_load = [], OtherLoad()
    began = time.perf_counter()

    def on_step(step, loss, rate):  # called by train_fn after each batch's optimizer step
        finished_at.append(time.perf_counter())
        if step == WARMUP_BATCHES:
            other_load.start()
            if compile_model:
                print(f"    torch.compile and {WARMUP_BATCHES} warm-up batches: {finished_at[-1] - began:.0f} s", flush=True)

    train_fn(model, batches, train_set, config, optimizer, device, channels_last, StopFlag(), on_step)
    other_load.stop()
    seconds = np.diff(finished_at[WARMUP_BATCHES - 1:]).tolist()  # each timed batch, fetching it included
    return Timing(config.batch_size, seconds, other_load)


def timed(items, step, n_batches: int, batch_size: int) -> "Timing":
    """Run `step` on warm-up batches, then time it batch by batch (the classic loop)."""
    for _ in range(WARMUP_BATCHES):  # first calls allocate memory and pick kernels
        step(next(items))
    seconds = []
    with OtherLoad() as other:
        for _ in range(n_batches):
            started = time.perf_counter()
            step(next(items))  # fetching the batch is part of the loop, and is timed
            seconds.append(time.perf_counter() - started)
    return Timing(batch_size, seconds, other)


class Timing:
    """Per-batch seconds; pairs/s is over all timed batches, the spread shows how noisy they were."""

    def __init__(self, batch_size: int, seconds: list, other_load: OtherLoad):
        self.batch_size = batch_size
        self.seconds = sorted(seconds)
        self.other_load = other_load

    @property
    def pairs_per_second(self) -> float:
        return self.batch_size * len(self.seconds) / sum(self.seconds)

    def spread(self) -> str:
        s = self.seconds
        return f"{s[len(s) // 2]:.3f} ({s[0]:.3f}-{s[-1]:.3f})"


# ---------------------------------------------------------------- data and cases

def write_class_folders(image_set, folder: Path) -> None:
    """The images as PNG files, one folder per class, at the size the model takes (no resizing needed)."""
    from siamese_core.data.images import pixels_to_image

    for i, (pixels, label) in enumerate(zip(image_set.pixels, image_set.labels)):
        class_dir = folder / image_set.classes[label]
        class_dir.mkdir(parents=True, exist_ok=True)
        pixels_to_image(pixels.numpy()).save(class_dir / f"{i:04d}.png")


def make_config(folder: Path, backbone: str, image_size=None, precision="fp32", channels_last=None, seed=0):
    from siamese_core.config import TrainConfig

    return TrainConfig(dataset="folder", train_path=str(folder), backbone=backbone, mode="pair", image_size=image_size,
                       pretrained=False, precision=precision, channels_last=channels_last, device="cpu",
                       seed=seed).resolve()


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from siamese_core.data import sources as D

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; "
          f"load average {load_average()} at start. Each loop: {WARMUP_BATCHES} warm-up batches, then timed batches; "
          "loops run one after the other.", flush=True)
    rows, loading_shares = [], []
    with tempfile.TemporaryDirectory(prefix="siamese-throughput-") as tmp:
        cases = [
            ("convnet", None, 28, 1, args.batches or 150,
             [("fp32", "fp32", False), ("fp32, channels_last (default)", "fp32", True)]),
            ("timm:efficientnet_b0", args.image_size, args.image_size, 3, args.batches or 10,
             [("fp32", "fp32", False), ("fp32, channels_last (default)", "fp32", True),
              ("bf16, channels_last", "bf16", True)]),
        ]
        if args.compile:  # opt-in: compiling takes from seconds (convnet) to many minutes (efficientnet_b0)
            for case in cases:
                case[5].append(("fp32, channels_last, torch.compile", "fp32", "compile"))
        for backbone, size_option, size, channels, n_batches, variants in cases:
            folder = Path(tmp) / f"digits-{size}px-{channels}ch"
            write_class_folders(D.load_digits(size, channels), folder)
            train_set = D.load_class_folders(folder, size, channels)  # the same files, decoded once
            label = f"{backbone} {size}px {'grey' if channels == 1 else 'RGB'}"
            base = make_config(folder, backbone, size_option, seed=args.seed)
            label += f", batch {base.batch_size}"
            print(f"  {label}: {n_batches} timed batches per loop", flush=True)

            timing = time_classic(base, folder, n_batches, args.seed)
            classic = timing.pairs_per_second
            rows.append([label, "classic", "fp32 (DataLoader, 2 forwards)", timing.other_load, timing.spread(),
                         f"{classic:,.1f}", "1.00x"])
            print(f"  {label}: classic loop {classic:,.1f} pairs/s", flush=True)
            timing = time_classic(base, folder, n_batches, args.seed, train_model=False)
            rows.append([label, "classic", "its data loading alone, no model", timing.other_load, timing.spread(),
                         f"{timing.pairs_per_second:,.0f}", "-"])
            loading_shares.append((label, classic / timing.pairs_per_second))
            for variant, precision, layout in variants:
                config = make_config(folder, backbone, size_option, precision, bool(layout), args.seed)
                config.pairs_per_epoch = (WARMUP_BATCHES + n_batches) * config.batch_size  # exactly the batches used
                timing = time_project(config, train_set, n_batches, compile_model=layout == "compile")
                rate = timing.pairs_per_second
                rows.append([label, "project", variant, timing.other_load, timing.spread(), f"{rate:,.1f}",
                             f"{rate / classic:.2f}x"])
                print(f"  {label}: project loop, {variant}: {rate:,.1f} pairs/s", flush=True)

    print()
    print_table(["model", "loop", "variant", "other load (cores)", "s per batch: median (min-max)", "pairs/s",
                 "vs classic"], rows, figures_from=3)
    print("other load: cores kept busy by other processes during the timed batches; figures are comparable "
          "only where it is near 0.")
    print()
    for label, share in loading_shares:
        print(f"{label}: the classic loop spends about {100 * share:.0f}% of its time loading data.")
    print(f"\nLoad average {load_average()} at the end.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
