"""The project's models on real images, each beside a pytorch-metric-learning baseline, in one run.

Rows (data from ../shared/data; a row whose data is missing is skipped with a one-line note):

  demo   the shipped demo model (assets/demo/digits-convnet.pt) on 1,000 balanced pairs (fixed seed) of
         MNIST test images 8,000-9,999, and on the same pairs drawn as photo-like images
         (siamese_core.data.digit_input.photo_like); every image goes through SiameseModel.prepare and
         score_pairs as an upload does. Accuracy at the checkpoint's threshold, ROC AUC.
  mnist  the issue's protocol: `train --train_path mnist_train/ --val_path mnist_val/ -b convnet -e 10`
         on MNIST test images 0-6,999 (training) and 7,000-7,999 (validation: best epoch and threshold),
         written as PNG class folders; then the 1,000 sequential pairs (8000,8001), (8002,8003), ...
         each counted once, at the checkpoint's threshold: accuracy, precision, recall.
  faces  AT&T faces: `train --train_path faces/` (people s1-s30, no other flag: the product's defaults,
         which hold out some of those people to choose the threshold), then 900 balanced pairs
         (fixed seed) of the unseen people s31-s40 at the checkpoint's threshold: accuracy, ROC AUC, EER.
  reid   Market-1501 crops: the 751 person ids sorted, `train --train_path people/` on the first 600
         (class folders of symlinks, the product's defaults), the other 151 as query and gallery: one
         query per person and camera, same-person same-camera gallery images left out; CMC rank-1 and
         mAP. A floor row compares 16x32 grey pixels directly.

Rows mnist, faces and reid set only data fields in TrainConfig (and `-b convnet -e 10` for mnist, as
the issue's command does): resolve() chooses the recipe, so the figures follow the product's defaults.

The baseline beside each row (pml_baseline): pytorch-metric-learning's classic loop as its README
writes it, on the same backbone, the same images (the very train/validation split the product used,
decoded once as the product decodes them) and the same wall-clock budget:
  - model: the row's network spec (backbone, image size, channels, input pipeline) in embedding mode,
    i.e. the backbone plus a linear embedding, L2-normalised; random initialisation;
  - loss: losses.TripletMarginLoss() and miner: miners.MultiSimilarityMiner(), both with PML's
    defaults (margin 0.05, epsilon 0.1), as in its README's example;
  - sampler: samplers.MPerClassSampler(labels, m, batch_size=64): m = 4 images per class, raised
    (to 8 for MNIST's 10 digits) where 4 x classes cannot fill a batch; a torch DataLoader;
  - optimizer: Adam, lr 1e-3 (PML's examples use Adam; its MNIST notebook's 0.01 suits its two-layer
    net, 1e-3 is Adam's default); no augmentation, as in PML's examples; fp32; channels_last on the
    CPU like the product, so the comparison is about the recipe, not the memory layout;
  - data: the product's own split for the config it ran (prepare_data); for the demo row, MNIST test
    images 0-6,999 for training and 7,000-7,999 for the threshold, each prepared through the demo
    checkpoint's input pipeline (SiameseModel.prepare);
  - budget: the wall time of the product's train() call for that row (data loading and validation
    included; for the demo row: the training time recorded in the checkpoint as train_seconds, else
    DEMO_BUDGET_S), stopping at the step that ends nearest to it;
  - scoring: its threshold is calibrated on the same held-out validation pairs the product used (never
    on test pairs); it is saved as a checkpoint and scored through SiameseModel exactly like the
    product's model.

A last table gives the time to the same accuracy: the baseline's final accuracy on the row's validation
pairs (threshold chosen as the product's epochs choose theirs) and the first epoch, with
its wall seconds since train() began, at which the product's validation accuracy reached it.

Timings are wall-clock on whatever machine runs it; "other load" says how many cores other processes
kept busy meanwhile (comparable only near 0). `--budget-scale X` (X < 1) is for quick checks only: it
stops the product's training after X times the row's time goal (cleanly, as Ctrl-C does) and the demo
baseline after X times its budget, so its figures are not the recipe's.

    python benchmarks/real_data.py [--data DIR] [--only demo,mnist,faces,reid] [--budget-scale 1] [--seed 0] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))  # `python benchmarks/...` from a clone, without installing

from bench_utils import OtherLoad, load_average, print_table  # noqa: E402  (the script's own folder is on sys.path)

DEFAULT_DATA = PROJECT_ROOT.parent / "shared" / "data"
DEMO_MODEL = PROJECT_ROOT / "assets" / "demo" / "digits-convnet.pt"
ROWS = ("demo", "mnist", "faces", "reid")
# The demo baseline's budget when the checkpoint does not record how long its recipe trained.
DEMO_BUDGET_S = 180.0
# The time goals (for MNIST, its reference's time); with --budget-scale X < 1 the product's
# training stops after X times these.
TIME_GOAL_S = {"mnist": 218.0, "faces": 600.0, "reid": 900.0}
N_TRAIN, N_DEVELOP, N_MNIST = 7_000, 8_000, 10_000  # MNIST test images: train | validation | held out
FACES_TRAIN_PEOPLE, FACES_PAIRS = 30, 900
REID_TRAIN_PEOPLE = 600
MARKET_NAME = re.compile(r"^(\d{4})_c(\d+)")
BASELINE_BATCH, BASELINE_M, BASELINE_LR = 64, 4, 1e-3


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, metavar="DIR",
                        help="folder holding mnist/, att_faces/ and person_reid/ (default: ../shared/data from the project root)")
    parser.add_argument("--only", default=",".join(ROWS), help=f"rows to run, comma-separated (default {','.join(ROWS)})")
    parser.add_argument("--budget-scale", type=float, default=1.0, metavar="X",
                        help="quick checks only: below 1, stop each training after X times its time budget")
    parser.add_argument("--seed", type=int, default=0, help="seed for training and for the evaluation pairs")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="keep the run directories here (default: a temporary folder, deleted at the end)")
    args = parser.parse_args(argv)
    args.only = [r.strip() for r in args.only.split(",") if r.strip()]
    unknown = [r for r in args.only if r not in ROWS]
    if unknown:
        parser.error(f"unknown row(s) {', '.join(unknown)}: choose from {', '.join(ROWS)}")
    if args.budget_scale <= 0:
        parser.error("--budget-scale must be positive")
    return args


# ---------------------------------------------------------------- results

@dataclass
class Figure:
    key: str  # the row it belongs to (demo, mnist, faces, reid), for the training times beside it
    row: str
    metric: str
    project: float
    baseline: float
    kind: str = "pct"  # pct | auc | lower (a rate where lower is better, shown as a percentage)


@dataclass
class Training:
    row: str
    who: str
    seconds: float
    what: str
    other_load: str


@dataclass
class Catch:
    """How soon the project's training reached the baseline's final validation accuracy."""
    row: str
    baseline_accuracy: float  # on the row's validation pairs, threshold calibrated as the product calibrates
    baseline_seconds: float
    project_epoch: Optional[int]  # the first epoch at or above it; None: never
    project_seconds: Optional[float]  # wall seconds from the start of train() to the end of that epoch


@dataclass
class Report:
    figures: list = field(default_factory=list)
    trainings: list = field(default_factory=list)
    catches: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    # per row the product trained: its validation curve [(epoch, seconds since train() began, accuracy)]
    # and how its validation threshold was chosen: (same_share, threshold_policy)
    curves: dict = field(default_factory=dict)
    same_shares: dict = field(default_factory=dict)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    print(f"Data from {args.data}; rows: {', '.join(args.only)}; budget scale {args.budget_scale:g}; seed {args.seed}.")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, os.cpu_count() = {os.cpu_count()}; "
          f"load average {load_average()} at start.", flush=True)
    if args.out is not None and args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        print(f"'{args.out}' exists and is not an empty folder: give --out a new folder.")
        return 1
    report = Report()
    started = time.perf_counter()
    if args.out is not None:
        run_rows(args, args.out, report)
    else:
        with tempfile.TemporaryDirectory(prefix="real-data-") as tmp:
            run_rows(args, Path(tmp), report)
    print_report(report)
    print(f"\nWhole run {time.perf_counter() - started:.0f} s; load average {load_average()} at the end.")
    return 0


def run_rows(args, work: Path, report: Report) -> None:
    from siamese_core.errors import UserError

    for name in args.only:
        print(f"\n== {name}", flush=True)
        try:
            ROW_FUNCTIONS[name](args, work / name, report)
        except UserError as exc:  # unreadable data or a bad option: the library's message says what to do
            report.notes.append(f"{name}: stopped: {exc}")
            print(f"Stopped: {exc}")


def print_report(report: Report) -> None:
    print()
    rows = [[f.row, f.metric, show(f.project, f.kind), show(f.baseline, f.kind), ratio(f),
             *train_seconds(report, f.key)] for f in report.figures]
    if rows:
        print_table(["row", "metric", "project", "PML baseline", "ratio", "project train s", "baseline train s"],
                    rows, figures_from=2)
        print("ratio: the project's figure over the baseline's (for EER, lower is better: the baseline's over "
              "the project's), so above 1 means the project wins.")
        print()
        print_table(["row", "training", "what ran", "wall s", "other load (cores)"],
                    [[t.row, t.who, t.what, seconds_cell(t.seconds, 1), t.other_load]
                     for t in report.trainings], figures_from=3)
    if report.catches:
        print()
        print_table(["row", "baseline's validation accuracy", "baseline train s", "project reached it at epoch",
                     "project train s to reach it", "time ratio"],
                    [[c.row, show(c.baseline_accuracy, "pct"), seconds_cell(c.baseline_seconds, 0),
                      "never" if c.project_epoch is None else str(c.project_epoch),
                      seconds_cell(c.project_seconds, 0),
                      "n/a" if c.project_seconds is None else f"{c.baseline_seconds / c.project_seconds:.2f}x"]
                     for c in report.catches], figures_from=1)
        print("time to the same accuracy: the baseline's final accuracy on the row's validation pairs (threshold "
              "calibrated as the product calibrates its own), and when the product's training first reached it "
              "(end of that epoch, its validation included); time ratio above 1 means the project got there sooner.")
    for note in report.notes:
        print(f"- {note}")


def train_seconds(report: Report, key: str) -> list:
    found = {t.who: t.seconds for t in report.trainings if t.row == key}
    return [seconds_cell(found.get(who), 0) for who in ("project", "PML baseline")]


def seconds_cell(seconds, digits: int) -> str:
    return "-" if seconds is None or seconds != seconds else f"{seconds:.{digits}f}"  # NaN: nothing trained here


def show(x: float, kind: str) -> str:
    if x is None or x != x:
        return "n/a"
    return f"{x:.4f}" if kind == "auc" else f"{100 * x:.2f}%"


def ratio(f: Figure) -> str:
    num, den = (f.baseline, f.project) if f.kind == "lower" else (f.project, f.baseline)
    if num is None or den is None or num != num or den != den or den == 0:
        return "n/a"
    return f"{num / den:.3f}"


# ---------------------------------------------------------------- shared steps

def train_product(config, out_dir: Path, row: str, args, report: Report):
    """Train as the product does (train() with a config of data fields only).

    Returns the trained model (best checkpoint), the training's wall seconds and the config it ran.

    Below --budget-scale 1 the training is stopped after that share of the row's time goal.
    """
    from siamese_core.inference.model import SiameseModel
    from siamese_core.runs.rundir import RunDir
    from siamese_core.training.loop import StopFlag, train

    stop = StopFlag()
    cap = TIME_GOAL_S[row] * args.budget_scale if args.budget_scale < 1 else None
    timer = threading.Timer(cap, stop.set) if cap else None
    if timer:
        timer.start()
    started = time.perf_counter()
    curve = report.curves.setdefault(row, [])

    def on_epoch(record: dict) -> None:
        curve.append((record["epoch"], time.perf_counter() - started, record["accuracy"]))
        print_epoch(record)

    try:
        with OtherLoad() as other_load:
            status = train(config, out_dir, stop=stop, on_epoch=on_epoch)
    finally:
        if timer:
            timer.cancel()
    seconds = time.perf_counter() - started
    run = RunDir(out_dir)
    ran = run.read_config()
    # a run from before the two thresholds tuned its verdict for its same_share
    report.same_shares[row] = (ran.get("same_share"), ran.get("threshold_policy") or "same-share")
    best = run.checkpoint("best")
    path = best if best.is_file() else run.checkpoint("last")
    if status.state == "stopped":
        report.notes.append(f"{row}: the product's training was stopped after {seconds:.0f} s (--budget-scale "
                            f"{args.budget_scale:g}); scored with {path.name}: not the recipe's figure.")
    summary = (f"{ran.get('backbone')} {ran.get('image_size')}px x{ran.get('channels')}, {ran.get('mode')} mode, "
               f"{ran.get('mining')} mining, augment {ran.get('augment')}, {status.epoch or 0} epoch(s)")
    report.trainings.append(Training(row, "project", seconds, summary, str(other_load)))
    print(f"  project: {summary}; {seconds:.1f} s", flush=True)
    return SiameseModel.load(path), seconds, ran


def print_epoch(record: dict) -> None:
    print(f"  epoch {record['epoch']}: loss {record['train_loss']:.4f}, validation accuracy "
          f"{100 * record['accuracy']:.2f}% at {record['threshold']:.3f}; {record['seconds']:.1f} s", flush=True)


def baseline_model(spec: dict, train_set, val_set, val_pairs, budget_s: float, seed: int, out: Path,
                   row: str, report: Report):
    """Train pml_baseline on `train_set`, calibrate its threshold on the held-out pairs, load it like a user would."""
    from siamese_core.evaluation.metrics import calibrate_threshold, validation_figures
    from siamese_core.inference.model import SiameseModel
    from siamese_core.models.networks import pick_device
    from siamese_core.runs.rundir import save_checkpoint
    from siamese_core.training.loop import eval_fn

    device = pick_device("auto")
    with OtherLoad() as other_load:
        net, bspec, seconds, steps = pml_baseline(spec, train_set, budget_s, seed, device)
    channels_last = device.type == "cpu"
    scores = eval_fn(net, val_set, val_pairs, device, channels_last=channels_last)
    threshold = calibrate_threshold(scores, val_pairs[2])
    if row in report.curves:  # at a threshold chosen as the product's epochs choose theirs, so the accuracies compare
        same_share, policy = report.same_shares[row]
        accuracy = validation_figures(scores, val_pairs[2], same_share, policy)["accuracy"]
        reached = [(epoch, at) for epoch, at, project_accuracy in report.curves[row] if project_accuracy >= accuracy]
        epoch, at = reached[0] if reached else (None, None)
        report.catches.append(Catch(row, accuracy, seconds, epoch, at))
    out.mkdir(parents=True, exist_ok=True)
    path = out / "pml-baseline.pt"
    save_checkpoint(path, spec=bspec, state_dict=net.state_dict(), threshold=threshold,
                    metrics={"threshold_source": "held-out validation pairs"}, epoch=0,
                    config={"backbone": bspec["backbone"], "mode": bspec["mode"], "notes": ["PML baseline"]},
                    classes=list(train_set.classes))
    what = (f"{bspec['backbone']} {bspec['image_size']}px x{bspec['channels']}, {steps} steps of "
            f"{BASELINE_BATCH}, budget {budget_s:.0f} s")
    report.trainings.append(Training(row, "PML baseline", seconds, what, str(other_load)))
    print(f"  PML baseline: {what}; {seconds:.1f} s", flush=True)
    return SiameseModel.load(path, device=device.type)


def pml_baseline(spec: dict, train_set, budget_s: float, seed: int, device):
    """pytorch-metric-learning's classic loop on the same backbone and images, for `budget_s` seconds.

    Returns (net, its spec, seconds trained, steps). See the module docstring for the choices.
    """
    import torch
    from pytorch_metric_learning import losses, miners, samplers
    from torch.utils.data import DataLoader, TensorDataset

    from siamese_core.models.networks import as_model_input, build_model

    torch.manual_seed(seed)
    # the backbone and a linear, L2-normalised embedding, without the project's recipe's extras
    bspec = {**spec, "mode": "triplet", "neck": False, "flip_test": False}
    net = build_model(bspec, pretrained=False).to(device)
    channels_last = device.type == "cpu"
    if channels_last:
        net.to(memory_format=torch.channels_last)
    labels = torch.from_numpy(np.asarray(train_set.labels))
    n_classes = len(np.unique(train_set.labels))
    m = BASELINE_M
    while m * n_classes < BASELINE_BATCH or BASELINE_BATCH % m:  # MPerClassSampler needs both
        m += 1
    sampler = samplers.MPerClassSampler(labels, m=m, batch_size=BASELINE_BATCH, length_before_new_iter=len(labels))
    pixels = train_set.pixels  # the decoded images, shared, not copied (decoded now if too large to keep)
    if not isinstance(pixels, torch.Tensor):
        pixels = train_set.batch(np.arange(len(train_set)))
    loader = DataLoader(TensorDataset(pixels, labels), batch_size=BASELINE_BATCH, sampler=sampler, drop_last=True)
    loss_func, miner = losses.TripletMarginLoss(), miners.MultiSimilarityMiner()
    optimizer = torch.optim.Adam(net.parameters(), lr=BASELINE_LR)
    net.train()
    steps, started = 0, time.perf_counter()

    def out_of_time() -> bool:
        """True once one more step would end farther past the budget than stopping now falls short of it."""
        elapsed = time.perf_counter() - started
        return elapsed + (0.5 * elapsed / steps if steps else 0.0) >= budget_s

    while not out_of_time():
        for images, batch_labels in loader:
            embeddings = net.embed(as_model_input(images, device, channels_last))
            batch_labels = batch_labels.to(device)
            loss = loss_func(embeddings, batch_labels, miner(embeddings, batch_labels))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
            if out_of_time():
                break
    return net.eval(), bspec, time.perf_counter() - started, steps


def vectors_of(model, prepared: np.ndarray):
    """The model's vectors of prepared images, as a tensor (pairs are then scored without embedding twice)."""
    import torch

    return torch.from_numpy(model.embed(prepared))


def pair_scores(model, vectors, pairs) -> np.ndarray:
    import torch

    a, b, _ = pairs
    with torch.inference_mode():
        return model.net.pair_scores(vectors[torch.from_numpy(a)], vectors[torch.from_numpy(b)]).float().numpy()


def held_out(config_dict: dict):
    """The product's own train / validation split and validation pairs for the config it ran."""
    from siamese_core.config import TrainConfig
    from siamese_core.data.prepare import prepare_data

    return prepare_data(TrainConfig.from_dict(config_dict).resolve())


def skip(report: Report, row: str, why: str) -> None:
    report.notes.append(f"{row}: skipped: {why}")
    print(report.notes[-1])


# ---------------------------------------------------------------- rows

def mnist_images(args, report: Report, row: str):
    """The 10,000 MNIST test images, or None (with a note) when they are missing."""
    from siamese_core.data import sources as D

    root = args.data / "mnist"
    if "test" not in D.mnist_parts_available(root):  # check first: load_mnist would try to download them
        skip(report, row, f"the MNIST test files (t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) "
                          f"are not in '{root}'.")
        return None
    full = D.load_mnist(root, "test")
    if len(full) < N_MNIST:
        skip(report, row, f"'{root}' holds {len(full)} MNIST test images, not 10,000.")
        return None
    return full


def row_demo(args, work: Path, report: Report) -> None:
    from PIL import Image

    from siamese_core.data import sources as D
    from siamese_core.evaluation.metrics import roc_auc, verification_metrics
    from siamese_core.inference.model import SiameseModel

    full = mnist_images(args, report, "demo")
    if full is None:
        return
    if not DEMO_MODEL.is_file():
        skip(report, "demo", f"the demo model '{DEMO_MODEL}' is missing.")
        return
    demo = SiameseModel.load(DEMO_MODEL)
    digits = full.pixels[:, 0].numpy()  # (N, 28, 28) uint8
    test_positions = np.arange(N_DEVELOP, N_MNIST)
    pairs = D.evaluation_pairs(full.labels[test_positions], 1000, args.seed)

    # The baseline learns from MNIST 0-6,999 and takes its threshold from pairs of 7,000-7,999, each
    # image prepared through the demo checkpoint's input pipeline.
    develop = D.ImageSet(torch_pixels([demo.prepare(Image.fromarray(d)) for d in digits[:N_DEVELOP]]),
                         full.labels[:N_DEVELOP], full.classes, full.names[:N_DEVELOP])
    train_set, val_set = develop.subset(np.arange(N_TRAIN)), develop.subset(np.arange(N_TRAIN, N_DEVELOP))
    val_pairs = D.evaluation_pairs(val_set.labels, 1000, args.seed)
    recorded = demo.checkpoint.get("train_seconds")
    budget = float(recorded) if recorded else DEMO_BUDGET_S
    report.notes.append(f"demo: baseline budget {budget:.0f} s x {args.budget_scale:g} ("
                        + ("the training time recorded in the checkpoint" if recorded else
                           "the checkpoint records no training time: a fixed budget") + ").")
    report.trainings.append(Training("demo", "project", float("nan"), "the shipped checkpoint, not trained here", "-"))
    baseline = baseline_model(demo.spec, train_set, val_set, val_pairs, budget * min(args.budget_scale, 1.0),
                              args.seed, work, "demo", report)

    views = {"MNIST 8000-9999": [Image.fromarray(d) for d in digits[test_positions]]}
    try:
        from siamese_core.data.digit_input import photo_like
    except ImportError:
        skip(report, "demo (photo-like)", "siamese_core.data.digit_input.photo_like is not there yet.")
    else:
        rng = np.random.default_rng(args.seed)
        views["photo-like"] = [photo_like(d, rng) for d in digits[test_positions]]
    a, b, same = pairs
    for view, images in views.items():
        found = {}
        for who, model in (("project", demo), ("baseline", baseline)):
            # as an upload: each image through prepare, each pair through score_pairs
            scores = model.score_pairs([images[i] for i in a], [images[i] for i in b])
            found[who] = (verification_metrics(scores, same, model.threshold)["accuracy"], roc_auc(scores, same))
        report.figures.append(Figure("demo", f"demo: {view}", f"accuracy, {len(a):,} balanced pairs",
                                     found["project"][0], found["baseline"][0]))
        report.figures.append(Figure("demo", f"demo: {view}", "ROC AUC", found["project"][1], found["baseline"][1], "auc"))


def torch_pixels(prepared: list):
    import torch

    return torch.from_numpy(np.stack(prepared))


def row_mnist(args, work: Path, report: Report) -> None:
    from PIL import Image

    from siamese_core.config import TrainConfig
    from siamese_core.data import sources as D
    from siamese_core.evaluation.metrics import verification_metrics

    full = mnist_images(args, report, "mnist")
    if full is None:
        return
    digits = full.pixels[:, 0].numpy()
    for folder, positions in (("mnist_train", range(N_TRAIN)), ("mnist_val", range(N_TRAIN, N_DEVELOP))):
        for i in positions:
            path = work / "data" / folder / full.classes[full.labels[i]] / f"{i:05d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(digits[i]).save(path)
    config = TrainConfig(dataset="folder", train_path=str(work / "data" / "mnist_train"),
                         val_path=str(work / "data" / "mnist_val"), backbone="convnet", epochs=10, seed=args.seed)
    project, seconds, ran = train_product(config, work / "run", "mnist", args, report)
    data = held_out(ran)
    baseline = baseline_model(project.spec, data.train, data.val, data.val_pairs, seconds, args.seed,
                              work / "baseline", "mnist", report)

    test = np.arange(N_DEVELOP, N_MNIST)
    pairs = D.sequential_pairs(full.labels[test])
    images = [Image.fromarray(d) for d in digits[test]]
    found = {}
    for who, model in (("project", project), ("baseline", baseline)):
        vectors = vectors_of(model, np.stack([model.prepare(img) for img in images]))
        found[who] = verification_metrics(pair_scores(model, vectors, pairs), pairs[2], model.threshold)
    for metric in ("accuracy", "precision", "recall"):
        report.figures.append(Figure("mnist", "mnist", f"{metric}, 1,000 sequential pairs ({int(pairs[2].sum())} same)",
                                     found["project"][metric], found["baseline"][metric]))


def row_faces(args, work: Path, report: Report) -> None:
    from siamese_core.config import TrainConfig
    from siamese_core.data import sources as D
    from siamese_core.data.images import is_image_file
    from siamese_core.evaluation.metrics import equal_error_rate, roc_auc, verification_metrics

    root = args.data / "att_faces"
    people = [root / f"s{i}" for i in range(1, 41)]
    if not all(p.is_dir() for p in people):
        skip(report, "faces", f"'{root}' does not hold the AT&T folders s1 ... s40.")
        return
    faces = work / "data" / "faces"
    faces.mkdir(parents=True)
    for person in people[:FACES_TRAIN_PEOPLE]:
        (faces / person.name).symlink_to(person, target_is_directory=True)
    config = TrainConfig(dataset="folder", train_path=str(faces), seed=args.seed)
    project, seconds, ran = train_product(config, work / "run", "faces", args, report)
    data = held_out(ran)  # the people of s1-s30 the product held out choose the baseline's threshold too
    baseline = baseline_model(project.spec, data.train, data.val, data.val_pairs, seconds, args.seed,
                              work / "baseline", "faces", report)

    files, labels = [], []
    for label, person in enumerate(people[FACES_TRAIN_PEOPLE:]):
        found_files = sorted(p for p in person.iterdir() if is_image_file(p))
        files += found_files
        labels += [label] * len(found_files)
    pairs = D.evaluation_pairs(np.array(labels), FACES_PAIRS, args.seed)
    found = {}
    for who, model in (("project", project), ("baseline", baseline)):
        scores = pair_scores(model, vectors_of(model, np.stack([model.prepare(f) for f in files])), pairs)
        found[who] = (verification_metrics(scores, pairs[2], model.threshold)["accuracy"],
                      roc_auc(scores, pairs[2]), equal_error_rate(scores, pairs[2])["eer"])
    title = f"faces: s31-s40, {len(pairs[0])} pairs"
    report.figures.append(Figure("faces", title, "accuracy", found["project"][0], found["baseline"][0]))
    report.figures.append(Figure("faces", title, "ROC AUC", found["project"][1], found["baseline"][1], "auc"))
    report.figures.append(Figure("faces", title, "EER (lower is better)", found["project"][2], found["baseline"][2], "lower"))


def row_reid(args, work: Path, report: Report) -> None:
    from siamese_core.config import TrainConfig
    from siamese_core.evaluation.reid import reid_metrics, reid_split

    root = args.data / "person_reid" / "train"
    files = sorted(p for p in root.glob("*.jpg") if MARKET_NAME.match(p.name)) if root.is_dir() else []
    if not files:
        skip(report, "reid", f"no Market-1501 crops (0002_c1s1_000451_03.jpg ...) in '{root}'.")
        return
    names = [MARKET_NAME.match(p.name) for p in files]
    persons, cameras = np.array([int(m.group(1)) for m in names]), np.array([int(m.group(2)) for m in names])
    ids = np.unique(persons)  # sorted
    trained = np.isin(persons, ids[:REID_TRAIN_PEOPLE])
    people = work / "data" / "people"
    for path, person in zip(np.array(files)[trained], persons[trained]):
        (people / f"{person:04d}").mkdir(parents=True, exist_ok=True)
        (people / f"{person:04d}" / path.name).symlink_to(path)
    config = TrainConfig(dataset="folder", train_path=str(people), seed=args.seed)
    project, seconds, ran = train_product(config, work / "run", "reid", args, report)
    data = held_out(ran)
    baseline = baseline_model(project.spec, data.train, data.val, data.val_pairs, seconds, args.seed,
                              work / "baseline", "reid", report)

    unseen = np.flatnonzero(~trained)
    paths, persons, cameras = [files[i] for i in unseen], persons[unseen], cameras[unseen]
    query, gallery = reid_split(persons, cameras, args.seed)
    title = f"reid: {len(ids) - REID_TRAIN_PEOPLE} unseen people, {len(query)} queries, {len(gallery)} gallery"
    found = {}
    for who, model in (("project", project), ("baseline", baseline)):
        vectors = model.embed(np.stack([model.prepare(p) for p in paths]))
        found[who] = reid_metrics(vectors[query], vectors[gallery], persons[query], persons[gallery],
                                  cameras[query], cameras[gallery])
    raw = raw_pixels(paths)
    floor = reid_metrics(raw[query], raw[gallery], persons[query], persons[gallery], cameras[query], cameras[gallery])
    for metric, value in REID_FIGURES:
        report.figures.append(Figure("reid", title, metric, value(found["project"]), value(found["baseline"])))
    for metric, value in REID_FIGURES:
        # the floor: no model at all, so it stands in the project's column with nothing beside it
        report.figures.append(Figure("reid floor", "reid floor: 16x32 grey pixels compared directly", metric,
                                     value(floor), None))


REID_FIGURES = (("CMC rank-1", lambda r: r["cmc"][1]), ("mAP", lambda r: r["map"]))


def raw_pixels(paths) -> np.ndarray:
    """Each crop as 16 wide x 32 high grey pixels in [0, 1], flattened: the floor any model must beat."""
    from siamese_core.data.images import open_image

    return np.stack([np.asarray(open_image(p).convert("L").resize((16, 32)), dtype=np.float32).ravel() / 255.0
                     for p in paths])


ROW_FUNCTIONS = {"demo": row_demo, "mnist": row_mnist, "faces": row_faces, "reid": row_reid}


if __name__ == "__main__":
    sys.exit(main())
