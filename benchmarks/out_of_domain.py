"""Images a model knows nothing about: how many of each kind its verdicts flag as unlike its own images.

Every checkpoint carries a description of its images (siamese_core.inference.domain); a verdict on an image outside
it becomes a plain sentence instead. This script shows each model images of its own kind and of other kinds, each
through SiameseModel.outside as an upload goes (decoded, measured, prepared by the model's input pipeline, one pass
of the network), and prints the share flagged with counts. Goals (issue 23): at least 95% of every other kind
flagged, at most 3% of the model's own kind.

Models (rows; data from ../shared/data; a row whose data is missing is skipped with a note):
  demo        the shipped demo model, assets/demo/digits-convnet.pt (its own kind: held-out MNIST test images
              8000-9999 and photo-like versions of them, siamese_core.data.digit_input.photo_like)
  faces       `train --train_path faces/` on AT&T people s1-s30 with no other flag (the product's defaults), or the
              run named by --faces-run (its own kind: the new people s31-s40)
  signatures  `train --train_path signatures/` on the genuine signatures of CEDAR signers 1-40, defaults, or the run
              named by --signatures-run (its own kind: genuine signatures and forgeries of the new signers 41-55)
A run whose checkpoint has no description yet (trained before descriptions existed) is described here first, on
the training and validation images its config.json rebuilds.

Image kinds: MNIST 8000-9999 (2,000); photo-like digits of them (2,000, seed 0); AT&T faces (all 400, or s31-s40
for the faces row); 1,000 Market-1501 person crops (seed 0); CEDAR signatures (all 1,320, or signers 41-55 for the
signatures row); 300 noise images (uniform grey, uniform colour, Gaussian, sparse dots, smooth blobs; 28-256 px);
100 blank images (plain colours, and photos of empty paper: uneven light, sensor noise, JPEG).

Also the time a verdict takes with and without the check (SiameseModel.verify on 200 pairs of photo-like digits or
of the row's own images, median), measured in the same run: the check's cost per verdict.

    python benchmarks/out_of_domain.py [--data DIR] [--only demo,faces,signatures] [--faces-run DIR]
                                       [--signatures-run DIR] [--out DIR]
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))  # `python benchmarks/...` from a clone, without installing

from bench_utils import OtherLoad, load_average, print_table  # noqa: E402

DEFAULT_DATA = PROJECT_ROOT.parent / "shared" / "data"
DEMO_MODEL = PROJECT_ROOT / "assets" / "demo" / "digits-convnet.pt"
ROWS = ("demo", "faces", "signatures")
HELD_OUT = range(8000, 10000)
FACES_TRAIN, FACES_NEW = range(1, 31), range(31, 41)
SIGNERS_TRAIN, SIGNERS_NEW = range(1, 41), range(41, 56)
PERSONS, NOISE, BLANK, TIMED_PAIRS = 1000, 300, 100, 200


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, metavar="DIR",
                        help="folder holding mnist/, att_faces/, person_reid/ and signatures/ (default: ../shared/data)")
    parser.add_argument("--only", default=",".join(ROWS), help=f"rows to run, comma-separated (default {','.join(ROWS)})")
    parser.add_argument("--demo", type=Path, default=DEMO_MODEL, metavar="CHECKPOINT",
                        help="the demo checkpoint (default: assets/demo/digits-convnet.pt)")
    parser.add_argument("--faces-run", type=Path, metavar="DIR", help="a run trained on AT&T s1-s30 (else one is trained)")
    parser.add_argument("--signatures-run", type=Path, metavar="DIR",
                        help="a run trained on the genuine signatures of signers 1-40 (else one is trained)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="keep trained runs here (default: a temporary folder)")
    args = parser.parse_args(argv)
    args.only = [r.strip() for r in args.only.split(",") if r.strip()]
    unknown = [r for r in args.only if r not in ROWS]
    if unknown:
        parser.error(f"unknown row(s) {', '.join(unknown)}: choose from {', '.join(ROWS)}")
    return args


# ---------------------------------------------------------------- the image kinds

def mnist_digits(data: Path):
    from siamese_core.data import sources as D

    stored = D.load_mnist(data / "mnist", "test")
    return stored.pixels[HELD_OUT.start:HELD_OUT.stop, 0].numpy()


def photo_digits(digits):
    from siamese_core.data.digit_input import photo_like

    rng = np.random.default_rng(0)
    return [photo_like(d, rng) for d in digits]


def faces(data: Path, people) -> list:
    return [Image.open(p).copy() for s in people for p in sorted((data / "att_faces" / f"s{s}").glob("*.pgm"))]


def persons(data: Path) -> list:
    files = sorted((data / "person_reid" / "train").glob("*.jpg"))
    picked = np.random.default_rng(0).choice(len(files), size=min(PERSONS, len(files)), replace=False)
    return [Image.open(files[i]).convert("RGB") for i in sorted(picked)]


def signatures(data: Path, signers=None) -> list:
    files = sorted((data / "signatures").glob("*/*/*.png"))
    if signers is not None:
        files = [f for f in files if int(f.parent.name) in signers]
    return [Image.open(f).copy() for f in files]


def noise(n: int = NOISE, seed: int = 1) -> list:
    """Uniform grey, uniform colour, Gaussian around a grey, sparse dots on black or white, smooth blobs."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        side = int(rng.choice([28, 64, 100, 128, 256]))
        kind = i % 5
        if kind == 0:
            img = Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8))
        elif kind == 1:
            img = Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8), "RGB")
        elif kind == 2:
            level, spread = rng.uniform(60, 200), rng.uniform(10, 60)
            img = Image.fromarray(np.clip(rng.normal(level, spread, (side, side)), 0, 255).astype(np.uint8))
        elif kind == 3:
            arr = np.full((side, side), 0 if rng.random() < 0.5 else 255, np.uint8)
            dots = rng.random((side, side)) < rng.uniform(0.01, 0.1)
            arr[dots] = 255 - arr[dots]
            img = Image.fromarray(arr)
        else:
            blurred = Image.fromarray(rng.integers(0, 256, (side, side), dtype=np.uint8)).filter(
                ImageFilter.GaussianBlur(rng.uniform(1.5, 6)))
            arr = np.asarray(blurred, np.float32)
            img = Image.fromarray(((arr - arr.min()) / max(1.0, arr.max() - arr.min()) * 255).astype(np.uint8))
        out.append(img)
    return out


def blank(n: int = BLANK, seed: int = 2) -> list:
    """Half plain colours (black, white, a random colour, a grey); half photos of empty paper."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        side = int(rng.choice([28, 64, 96, 128, 256]))
        if i % 2 == 0:
            colour = [(0, 0, 0), (255, 255, 255), tuple(int(v) for v in rng.integers(0, 256, 3)),
                      (int(rng.integers(0, 256)),) * 3][i // 2 % 4]
            out.append(Image.new("RGB", (side, side), colour))
            continue
        rows, cols = np.mgrid[0:side, 0:side] / side - 0.5
        slope = rng.uniform(-0.25, 0.25, size=2)
        light = 1.0 + slope[0] * rows + slope[1] * cols - rng.uniform(0, 0.3) * (rows ** 2 + cols ** 2)
        paper = rng.uniform(150, 250) * light[..., None] * np.array([1.0, rng.uniform(0.96, 1), rng.uniform(0.85, 1)])
        paper = paper + rng.normal(0, rng.uniform(1, 6), paper.shape)
        img = Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8), "RGB").filter(
            ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
        buffer = io.BytesIO()
        img.save(buffer, format="JPEG", quality=int(rng.integers(40, 86)))
        out.append(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    return out


# ---------------------------------------------------------------- models

def trained_run(name: str, folder: Path, out: Path) -> Path:
    """Train a run on class folders with the product's defaults (as `train --train_path folder` does)."""
    from siamese_core.config import TrainConfig
    from siamese_core.training.loop import train

    run = out / name
    if (run / "checkpoints" / "best.pt").is_file():
        return run
    started = time.time()
    print(f"Training the {name} run on {folder} (the product's defaults)...", flush=True)
    train(TrainConfig(dataset="folder", train_path=str(folder)), run)
    print(f"  trained in {time.time() - started:.0f} s", flush=True)
    return run


def copy_classes(source: Path, names, target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        if not (target / name).is_dir():
            shutil.copytree(source / name, target / name)
    return target


def described_model(checkpoint: Path, run: Path = None):
    """The model of `checkpoint`, its description written first (on its run's own data) if it has none."""
    from siamese_core.inference.domain import describe_checkpoint
    from siamese_core.inference.model import SiameseModel

    model = SiameseModel.load(checkpoint, device="cpu")
    if model.domain is None:
        if run is None:
            raise SystemExit(f"{checkpoint} has no description of its images: run assets/make_demo.py --describe-only")
        from siamese_core.config import TrainConfig
        from siamese_core.data.prepare import prepare_data
        from siamese_core.runs.rundir import RunDir

        print(f"  {checkpoint} has no description yet: describing it on its run's data", flush=True)
        config = TrainConfig.from_dict(RunDir(run).read_config()).resolve()
        describe_checkpoint(checkpoint, prepare_data(config))
        model = SiameseModel.load(checkpoint, device="cpu")
    return model


# ---------------------------------------------------------------- measuring

def flagged(model, images) -> np.ndarray:
    out = []
    for start in range(0, len(images), 256):
        out.append(model.outside(images[start:start + 256]))
    return np.concatenate(out)


def verdict_times(model, pairs) -> tuple:
    """Median seconds of model.verify over `pairs`, with the check and without it (the same model and pairs, each
    pair timed both ways in turn, twice, so that a busy spell on a shared machine hits both alike)."""
    check = model.domain
    times = {True: [], False: []}
    for a, b in pairs * 2:
        for with_check in (True, False):
            model.domain = check if with_check else None
            started = time.perf_counter()
            model.verify(a, b)
            times[with_check].append(time.perf_counter() - started)
    model.domain = check
    return float(np.median(times[True])), float(np.median(times[False]))


def report(title: str, model, kinds: list, own: set, timed_pairs) -> list:
    """Print one model's table; returns its rows for the summary."""
    print(f"\n## {title}\n")
    d = model.checkpoint["domain"]
    print(f"Description: {len(d['centres'])} reference vectors of {d['centres'].shape[1]} numbers, limits set on "
          f"{d['calibration_images']} validation images; paper share used: {d['paper_limit'] is not None}.\n")
    rows, summary = [], []
    for name, images in kinds:
        started = time.time()
        flags = flagged(model, images)
        seconds = time.time() - started
        kind = "own kind" if name in own else "other"
        goal = "<= 3%" if name in own else ">= 95%"
        met = (flags.mean() <= 0.03) if name in own else (flags.mean() >= 0.95)
        rows.append([name, kind, len(images), int(flags.sum()), f"{100 * flags.mean():.1f}%", goal,
                     "yes" if met else "no", f"{1000 * seconds / len(images):.1f}"])
        summary.append((title, name, kind, float(flags.mean()), bool(met)))
    print_table(["images", "kind", "count", "flagged", "share", "goal", "met", "ms/image"], rows, figures_from=2)
    with_check, without = verdict_times(model, timed_pairs)
    print(f"\nA verdict (SiameseModel.verify, median of {2 * len(timed_pairs)} each): {1000 * with_check:.2f} ms with "
          f"the check, {1000 * without:.2f} ms without: {1000 * (with_check - without):+.2f} ms per verdict.")
    return summary


def main(argv=None) -> int:
    args = parse_args(argv)
    data = args.data
    started, load = time.time(), OtherLoad().start()
    tmp = tempfile.TemporaryDirectory()
    out = args.out or Path(tmp.name)
    out.mkdir(parents=True, exist_ok=True)
    missing = [p for p in ("mnist", "att_faces", "person_reid", "signatures") if not (data / p).is_dir()]
    if missing:
        print(f"Missing under {data}: {', '.join(missing)}; this benchmark needs all four.", file=sys.stderr)
        return 2
    print("Loading the image kinds...", flush=True)
    digits = mnist_digits(data)
    kinds = {"MNIST 8000-9999": [Image.fromarray(d) for d in digits], "photo-like digits": photo_digits(digits),
             "AT&T faces (all 40 people)": faces(data, range(1, 41)),
             "AT&T faces s31-s40 (new people)": faces(data, FACES_NEW), "person crops (Market-1501)": persons(data),
             "signatures (all 55 signers)": signatures(data),
             "signatures of signers 41-55 (new)": signatures(data, SIGNERS_NEW),
             "noise": noise(), "blank": blank()}
    others = ["person crops (Market-1501)", "noise", "blank"]
    photo_pairs = list(zip(kinds["photo-like digits"][:TIMED_PAIRS], kinds["photo-like digits"][1:TIMED_PAIRS + 1]))
    summary = []
    if "demo" in args.only:
        model = described_model(args.demo)
        rows = ["MNIST 8000-9999", "photo-like digits", "AT&T faces (all 40 people)", "signatures (all 55 signers)"]
        summary += report(f"demo model ({args.demo.name})", model,
                          [(k, kinds[k]) for k in rows[:3] + [others[0]] + rows[3:] + others[1:]],
                          {"MNIST 8000-9999", "photo-like digits"}, photo_pairs)
    if "faces" in args.only:
        run = args.faces_run or trained_run(
            "faces", copy_classes(data / "att_faces", [f"s{i}" for i in FACES_TRAIN], out / "data" / "faces"), out)
        model = described_model(Path(run) / "checkpoints" / "best.pt", Path(run))
        new = kinds["AT&T faces s31-s40 (new people)"]
        names = ["AT&T faces s31-s40 (new people)", "MNIST 8000-9999", "photo-like digits", others[0],
                 "signatures (all 55 signers)"] + others[1:]
        summary += report(f"faces run ({run})", model, [(k, kinds[k]) for k in names],
                          {"AT&T faces s31-s40 (new people)"}, list(zip(new * 2, new[1:] + new))[:TIMED_PAIRS])
    if "signatures" in args.only:
        genuine = data / "signatures" / "genuine"
        run = args.signatures_run or trained_run(
            "signatures", copy_classes(genuine, [f"{i:03d}" for i in SIGNERS_TRAIN], out / "data" / "signatures"), out)
        model = described_model(Path(run) / "checkpoints" / "best.pt", Path(run))
        new = kinds["signatures of signers 41-55 (new)"]
        names = ["signatures of signers 41-55 (new)", "MNIST 8000-9999", "photo-like digits",
                 "AT&T faces (all 40 people)"] + others
        summary += report(f"signatures run ({run})", model, [(k, kinds[k]) for k in names],
                          {"signatures of signers 41-55 (new)"}, list(zip(new, new[1:]))[:TIMED_PAIRS])
    load.stop()
    print(f"\nWall time {time.time() - started:.0f} s; load average {load_average()}; other load {load} cores.")
    missed = [f"{title}: {name} {100 * share:.1f}%" for title, name, _, share, met in summary if not met]
    print("Every goal met." if not missed else "Goals missed: " + "; ".join(missed))
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
