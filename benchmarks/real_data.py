"""The project's models on real images, each beside the field's standard recipe written plainly, in one run.

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
         (fixed seed) of the unseen people s31-s40: accuracy at the checkpoint's threshold, best accuracy
         (the threshold chosen on the test pairs), ROC AUC, EER.
  reid   Market-1501 crops: the 751 person ids sorted, `train --train_path people/` on the first 600
         (class folders of symlinks, the product's defaults), the other 151 as query and gallery: one
         query per person and camera, same-person same-camera gallery images left out; CMC rank-1 and
         mAP. A floor row compares 16x32 grey pixels directly.
  signatures  CEDAR: `train --train_path signatures/` on the genuine signatures of the first 45 signers (sorted;
         the product's defaults; no forgery is ever trained on), then the 10 new signers: 1,000 balanced
         random pairs of their genuine signatures (fixed seed), and genuine against skilled forgery: the same
         500 genuine same pairs and 500 pairs of a genuine signature and a forgery of the same signer. Accuracy
         at the checkpoint's threshold, best accuracy (the threshold chosen on the test pairs themselves: what
         the threshold costs), ROC AUC, EER. A floor row scores the forgery pairs by the scans' paper level
         alone: genuine scans have greyer paper than forgeries, a cue no model should lean on.

Rows mnist, faces, reid and signatures set only data fields in TrainConfig (and `-b convnet -e 10` for
mnist, as the issue's command does): resolve() chooses the recipe, so the figures follow the product's
defaults.

Two baselines beside each row, at the same time budget (`--baselines` picks them):

The plain reference (benchmarks/plain_reference.py, its docstring gives every choice): the field's standard
recipe, in plain PyTorch, with nothing of the product in its input, model or loop: torchvision resnet18
from random weights, batch-hard triplets over P x K batches, AdamW with a cosine schedule over the budget,
the threshold at the best balanced accuracy on pairs of the held-out training identities; each with the
input handling its field uses: grey ink with the paper removed for signatures, MNIST digits as they are,
faces as photos (80x64), people at 128x64 with a BN neck and an identity loss beside the triplet loss (the
usual re-identification recipe). It learns from the very identities the product trained on (the
product's own split, read from its files with its own input handling) and takes its threshold from the
same held-out validation pairs; its clock starts before it decodes its training images.

The PML baseline (pml_baseline), a second line: pytorch-metric-learning's classic loop as its README
writes it, on the product's own backbone, the same images (the very train/validation split the product
used, decoded once as the product decodes them) and the same wall-clock budget:
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

A last table gives the time to the same accuracy: each baseline's final accuracy on the row's validation
pairs (threshold chosen as the product's epochs choose theirs) and the first epoch, with
its wall seconds since train() began, at which the product's validation accuracy reached it.

Timings are wall-clock on whatever machine runs it; "other load" says how many cores other processes
kept busy meanwhile (comparable only near 0). `--budget-scale X` (X < 1) is for quick checks only: it
stops the product's training after X times the row's time goal (cleanly, as Ctrl-C does) and the demo
baselines after X times their budget; the other rows' baselines get the product's (shortened) time, so
such figures are not the recipes'.

    python benchmarks/real_data.py [--data DIR] [--only demo,mnist,faces,reid,signatures] [--budget-scale 1]
                                   [--baselines reference,pml] [--seed 0] [--out DIR]
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
ROWS = ("demo", "mnist", "faces", "reid", "signatures")
BASELINES = ("reference", "pml")
WHO = {"project": "project", "reference": "plain reference", "pml": "PML baseline"}
# The demo baseline's budget when the checkpoint does not record how long its recipe trained.
DEMO_BUDGET_S = 180.0
# The time goals (for MNIST, its reference's time); with --budget-scale X < 1 the product's
# training stops after X times these.
# The signatures have no time goal: 300 s is twice what the defaults took (163 s), a cap for quick checks only.
TIME_GOAL_S = {"mnist": 218.0, "faces": 600.0, "reid": 900.0, "signatures": 300.0}
N_TRAIN, N_DEVELOP, N_MNIST = 7_000, 8_000, 10_000  # MNIST test images: train | validation | held out
FACES_TRAIN_PEOPLE, FACES_PAIRS = 30, 900
REID_TRAIN_PEOPLE = 600
SIGNERS_TRAIN, SIGNATURE_PAIRS = 45, 1000
MARKET_NAME = re.compile(r"^(\d{4})_c(\d+)")
BASELINE_BATCH, BASELINE_M, BASELINE_LR = 64, 4, 1e-3


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, metavar="DIR",
                        help="folder holding mnist/, att_faces/, person_reid/ and signatures/ "
                             "(default: ../shared/data from the project root)")
    parser.add_argument("--only", default=",".join(ROWS), help=f"rows to run, comma-separated (default {','.join(ROWS)})")
    parser.add_argument("--budget-scale", type=float, default=1.0, metavar="X",
                        help="quick checks only: below 1, stop each training after X times its time budget")
    parser.add_argument("--baselines", default=",".join(BASELINES),
                        help="baselines beside each row, comma-separated: reference (the field's standard recipe, "
                             "benchmarks/plain_reference.py), pml (PML's loop on the product's backbone); default both")
    parser.add_argument("--seed", type=int, default=0, help="seed for training and for the evaluation pairs")
    parser.add_argument("--out", type=Path, default=None, metavar="DIR",
                        help="keep the run directories here (default: a temporary folder, deleted at the end)")
    args = parser.parse_args(argv)
    args.only = [r.strip() for r in args.only.split(",") if r.strip()]
    unknown = [r for r in args.only if r not in ROWS]
    if unknown:
        parser.error(f"unknown row(s) {', '.join(unknown)}: choose from {', '.join(ROWS)}")
    args.baselines = [b.strip() for b in args.baselines.split(",") if b.strip()]
    if not args.baselines or any(b not in BASELINES for b in args.baselines):
        parser.error(f"--baselines takes one or more of {', '.join(BASELINES)}, comma-separated")
    if args.budget_scale <= 0:
        parser.error("--budget-scale must be positive")
    return args


# ---------------------------------------------------------------- results

@dataclass
class Figure:
    key: str  # the row it belongs to (demo, mnist, faces, reid, signatures), for the training times beside it
    row: str
    metric: str
    project: float
    reference: Optional[float]  # the plain reference's figure (None: not run)
    pml: Optional[float]  # the PML baseline's
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
    """How soon the project's training reached a baseline's final validation accuracy."""
    row: str
    who: str  # the baseline, as WHO names it
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
    rows = [[f.row, f.metric, show(f.project, f.kind), show(f.reference, f.kind), ratio(f, f.reference),
             show(f.pml, f.kind), ratio(f, f.pml), *train_seconds(report, f.key)] for f in report.figures]
    if rows:
        print_table(["row", "metric", "project", "plain reference", "ratio", "PML baseline", "ratio",
                     "project train s", "reference train s", "PML train s"], rows, figures_from=2)
        print("ratio: the project's figure over the baseline's beside it (for EER, lower is better: the baseline's "
              "over the project's), so above 1 means the project wins; n/a where a baseline was not run.")
        print()
        print_table(["row", "training", "what ran", "wall s", "other load (cores)"],
                    [[t.row, t.who, t.what, seconds_cell(t.seconds, 1), t.other_load]
                     for t in report.trainings], figures_from=3)
    if report.catches:
        print()
        print_table(["row", "baseline", "baseline's validation accuracy", "baseline train s",
                     "project reached it at epoch", "project train s to reach it", "time ratio"],
                    [[c.row, c.who, show(c.baseline_accuracy, "pct"), seconds_cell(c.baseline_seconds, 0),
                      "never" if c.project_epoch is None else str(c.project_epoch),
                      seconds_cell(c.project_seconds, 0),
                      "n/a" if c.project_seconds is None else f"{c.baseline_seconds / c.project_seconds:.2f}x"]
                     for c in report.catches], figures_from=2)
        print("time to the same accuracy: each baseline's final accuracy on the row's validation pairs (threshold "
              "calibrated as the product calibrates its own), and when the product's training first reached it "
              "(end of that epoch, its validation included); time ratio above 1 means the project got there sooner.")
    for note in report.notes:
        print(f"- {note}")


def train_seconds(report: Report, key: str) -> list:
    found = {t.who: t.seconds for t in report.trainings if t.row == key}
    return [seconds_cell(found.get(WHO[who]), 0) for who in ("project", "reference", "pml")]


def seconds_cell(seconds, digits: int) -> str:
    return "-" if seconds is None or seconds != seconds else f"{seconds:.{digits}f}"  # NaN: nothing trained here


def show(x: float, kind: str) -> str:
    if x is None or x != x:
        return "n/a"
    return f"{x:.4f}" if kind == "auc" else f"{100 * x:.2f}%"


def ratio(f: Figure, baseline: Optional[float]) -> str:
    num, den = (baseline, f.project) if f.kind == "lower" else (f.project, baseline)
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
    summary = (f"{ran.get('backbone')} {size_text(ran.get('image_size'))} x{ran.get('channels')}, {ran.get('mode')} mode, "
               f"{ran.get('mining')} mining, augment {ran.get('augment')}, {status.epoch or 0} epoch(s)")
    report.trainings.append(Training(row, "project", seconds, summary, str(other_load)))
    print(f"  project: {summary}; {seconds:.1f} s", flush=True)
    return SiameseModel.load(path), seconds, ran


def size_text(size) -> str:
    """An input size as "64px" (square) or "128x64" (height x width), whichever the config holds."""
    if isinstance(size, (list, tuple)):
        return f"{size[0]}px" if len(set(size)) == 1 else "x".join(str(n) for n in size)
    return f"{size}px"


def print_epoch(record: dict) -> None:
    print(f"  epoch {record['epoch']}: loss {record['train_loss']:.4f}, validation accuracy "
          f"{100 * record['accuracy']:.2f}% at {record['threshold']:.3f}; {record['seconds']:.1f} s", flush=True)


def baselines(args, row: str, budget_s: float, work: Path, report: Report, *, spec: dict, train_set, val_set,
              val_pairs, field: str, train_sources, val_sources) -> dict:
    """The baselines --baselines asks for, trained for `budget_s` seconds each: {"reference": ..., "pml": ...}.

    `train_sources` and `val_sources` are the files (or images) of `train_set` and `val_set`, in their order, for
    the plain reference to read with its own input handling; the PML baseline takes the product's decoded images."""
    found = {}
    if "reference" in args.baselines:
        found["reference"] = reference_model(field, train_sources, train_set.labels, val_sources, val_pairs,
                                             budget_s, args.seed, row, report)
    if "pml" in args.baselines:
        found["pml"] = baseline_model(spec, train_set, val_set, val_pairs, budget_s, args.seed, work / "baseline",
                                      row, report)
    return found


def files_of(root: Path, image_set) -> list:
    """The files of an ImageSet loaded from class folders under `root`, in its order."""
    return [root / name for name in image_set.names]


def reference_model(field_name: str, train_sources, train_labels, val_sources, val_pairs, budget_s: float, seed: int,
                    row: str, report: Report):
    """The plain reference (plain_reference.py) trained for `budget_s` seconds, its threshold at the best balanced
    accuracy on the held-out validation pairs."""
    import plain_reference as plain

    field = plain.FIELDS[field_name]
    with OtherLoad() as other_load:
        model = plain.PlainReference(field, plain.train(field, train_sources, train_labels, budget_s, seed))
    vectors = model.embed(plain.prepare_all(val_sources, field))
    a, b, same = val_pairs
    scores = model.pair_scores(vectors[a], vectors[b])
    model.threshold = plain.best_balanced_threshold(scores, same)
    record_catch(row, WHO["reference"], scores, same, model.seconds, report)
    what = f"{model.describe()}, budget {budget_s:.0f} s"
    report.trainings.append(Training(row, WHO["reference"], model.seconds, what, str(other_load)))
    print(f"  plain reference: {what}; {model.seconds:.1f} s", flush=True)
    return model


def record_catch(row: str, who: str, scores, same, seconds: float, report: Report) -> None:
    """A baseline's final validation accuracy, calibrated as the product's epochs are, and when the product got there."""
    from siamese_core.evaluation.metrics import validation_figures

    if row not in report.curves:  # the product was not trained here (the demo row)
        return
    same_share, policy = report.same_shares[row]  # at a threshold chosen as the product's epochs choose theirs
    accuracy = validation_figures(scores, same, same_share, policy)["accuracy"]
    reached = [(epoch, at) for epoch, at, project_accuracy in report.curves[row] if project_accuracy >= accuracy]
    epoch, at = reached[0] if reached else (None, None)
    report.catches.append(Catch(row, who, accuracy, seconds, epoch, at))


def baseline_model(spec: dict, train_set, val_set, val_pairs, budget_s: float, seed: int, out: Path,
                   row: str, report: Report):
    """Train pml_baseline on `train_set`, calibrate its threshold on the held-out pairs, load it like a user would."""
    from siamese_core.evaluation.metrics import calibrate_threshold
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
    record_catch(row, WHO["pml"], scores, val_pairs[2], seconds, report)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "pml-baseline.pt"
    save_checkpoint(path, spec=bspec, state_dict=net.state_dict(), threshold=threshold,
                    metrics={"threshold_source": "held-out validation pairs"}, epoch=0,
                    config={"backbone": bspec["backbone"], "mode": bspec["mode"], "notes": ["PML baseline"]},
                    classes=list(train_set.classes))
    what = (f"{bspec['backbone']} {size_text(bspec['image_size'])} x{bspec['channels']}, {steps} steps of "
            f"{BASELINE_BATCH}, budget {budget_s:.0f} s")
    report.trainings.append(Training(row, WHO["pml"], seconds, what, str(other_load)))
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

    return torch.from_numpy(np.ascontiguousarray(model.embed(prepared)))


def add_figures(report: Report, key: str, title: str, found: dict, metrics) -> None:
    """One Figure per (metric, pick, kind): pick takes what `found` holds for each of project, reference, pml."""
    for metric, pick, kind in metrics:
        report.figures.append(Figure(key, title, metric, pick(found["project"]),
                                     pick(found["reference"]) if "reference" in found else None,
                                     pick(found["pml"]) if "pml" in found else None, kind))


def verification_figures(scores, same, threshold) -> dict:
    """Accuracy at the model's threshold, the best accuracy on these pairs (what the threshold costs), AUC, EER."""
    from siamese_core.evaluation.metrics import calibrate_threshold, equal_error_rate, roc_auc, verification_metrics

    best = verification_metrics(scores, same, calibrate_threshold(scores, same, tolerance=0.0))["accuracy"]
    return {"accuracy": verification_metrics(scores, same, threshold)["accuracy"], "best": best,
            "auc": roc_auc(scores, same), "eer": equal_error_rate(scores, same)["eer"]}


VERIFICATION_FIGURES = (("accuracy at its threshold", lambda f: f["accuracy"], "pct"),
                        ("best accuracy (threshold chosen on these pairs)", lambda f: f["best"], "pct"),
                        ("ROC AUC", lambda f: f["auc"], "auc"),
                        ("EER (lower is better)", lambda f: f["eer"], "lower"))


def pair_scores(model, vectors, pairs) -> np.ndarray:
    import torch

    a, b, _ = pairs
    if not hasattr(model, "net") or not hasattr(model.net, "pair_scores"):  # the plain reference: cosine
        return model.pair_scores(np.asarray(vectors)[a], np.asarray(vectors)[b])
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
    report.notes.append(f"demo: baselines' budget {budget:.0f} s x {args.budget_scale:g} ("
                        + ("the training time recorded in the checkpoint" if recorded else
                           "the checkpoint records no training time: a fixed budget") + ").")
    report.trainings.append(Training("demo", "project", float("nan"), "the shipped checkpoint, not trained here", "-"))
    # the plain reference reads the digits as they are (its own input handling), the same images and split
    found_baselines = baselines(args, "demo", budget * min(args.budget_scale, 1.0), work, report, spec=demo.spec,
                                train_set=train_set, val_set=val_set, val_pairs=val_pairs, field="digits",
                                train_sources=list(digits[:N_TRAIN]), val_sources=list(digits[N_TRAIN:N_DEVELOP]))

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
        for who, model in {"project": demo, **found_baselines}.items():
            # as an upload: each image through prepare, each pair through score_pairs
            scores = model.score_pairs([images[i] for i in a], [images[i] for i in b])
            found[who] = (verification_metrics(scores, same, model.threshold)["accuracy"], roc_auc(scores, same))
        add_figures(report, "demo", f"demo: {view}", found,
                    ((f"accuracy, {len(a):,} balanced pairs", lambda f: f[0], "pct"), ("ROC AUC", lambda f: f[1], "auc")))


def torch_pixels(prepared: list):
    import torch

    return torch.from_numpy(np.stack(prepared))


def write_mnist_folders(full, root: Path, n_train: int):
    """MNIST test images 0..n_train-1 as class folders root/mnist_train, N_TRAIN..N_DEVELOP-1 as root/mnist_val
    (8,000-9,999 are never written: they are held out); returns the images as (N, 28, 28) uint8."""
    from PIL import Image

    digits = full.pixels[:, 0].numpy()
    for folder, positions in (("mnist_train", range(n_train)), ("mnist_val", range(N_TRAIN, N_DEVELOP))):
        for i in positions:
            path = root / folder / full.classes[full.labels[i]] / f"{i:05d}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(digits[i]).save(path)
    return digits


def row_mnist(args, work: Path, report: Report) -> None:
    from PIL import Image

    from siamese_core.config import TrainConfig
    from siamese_core.data import sources as D
    from siamese_core.evaluation.metrics import verification_metrics

    full = mnist_images(args, report, "mnist")
    if full is None:
        return
    digits = write_mnist_folders(full, work / "data", N_TRAIN)
    config = TrainConfig(dataset="folder", train_path=str(work / "data" / "mnist_train"),
                         val_path=str(work / "data" / "mnist_val"), backbone="convnet", epochs=10, seed=args.seed)
    project, seconds, ran = train_product(config, work / "run", "mnist", args, report)
    data = held_out(ran)
    models = {"project": project, **baselines(
        args, "mnist", seconds, work, report, spec=project.spec, train_set=data.train, val_set=data.val,
        val_pairs=data.val_pairs, field="digits", train_sources=files_of(work / "data" / "mnist_train", data.train),
        val_sources=files_of(work / "data" / "mnist_val", data.val))}

    test = np.arange(N_DEVELOP, N_MNIST)
    pairs = D.sequential_pairs(full.labels[test])
    images = [Image.fromarray(d) for d in digits[test]]
    found = {}
    for who, model in models.items():
        vectors = vectors_of(model, np.stack([model.prepare(img) for img in images]))
        found[who] = verification_metrics(pair_scores(model, vectors, pairs), pairs[2], model.threshold)
    add_figures(report, "mnist", "mnist", found,
                [(f"{metric}, 1,000 sequential pairs ({int(pairs[2].sum())} same)",
                  lambda f, metric=metric: f[metric], "pct") for metric in ("accuracy", "precision", "recall")])


def row_faces(args, work: Path, report: Report) -> None:
    from siamese_core.config import TrainConfig
    from siamese_core.data import sources as D
    from siamese_core.data.images import is_image_file

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
    data = held_out(ran)  # the people of s1-s30 the product held out choose the baselines' thresholds too
    models = {"project": project, **baselines(
        args, "faces", seconds, work, report, spec=project.spec, train_set=data.train, val_set=data.val,
        val_pairs=data.val_pairs, field="faces", train_sources=files_of(faces, data.train),
        val_sources=files_of(faces, data.val))}

    files, labels = [], []
    for label, person in enumerate(people[FACES_TRAIN_PEOPLE:]):
        found_files = sorted(p for p in person.iterdir() if is_image_file(p))
        files += found_files
        labels += [label] * len(found_files)
    pairs = D.evaluation_pairs(np.array(labels), FACES_PAIRS, args.seed)
    found = {}
    for who, model in models.items():
        scores = pair_scores(model, vectors_of(model, np.stack([model.prepare(f) for f in files])), pairs)
        found[who] = verification_figures(scores, pairs[2], model.threshold)
    add_figures(report, "faces", f"faces: s31-s40, {len(pairs[0])} pairs", found, VERIFICATION_FIGURES)


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
    models = {"project": project, **baselines(
        args, "reid", seconds, work, report, spec=project.spec, train_set=data.train, val_set=data.val,
        val_pairs=data.val_pairs, field="people", train_sources=files_of(people, data.train),
        val_sources=files_of(people, data.val))}

    unseen = np.flatnonzero(~trained)
    paths, persons, cameras = [files[i] for i in unseen], persons[unseen], cameras[unseen]
    query, gallery = reid_split(persons, cameras, args.seed)
    title = f"reid: {len(ids) - REID_TRAIN_PEOPLE} unseen people, {len(query)} queries, {len(gallery)} gallery"
    found = {}
    for who, model in models.items():
        vectors = model.embed(np.stack([model.prepare(p) for p in paths]))
        found[who] = reid_metrics(vectors[query], vectors[gallery], persons[query], persons[gallery],
                                  cameras[query], cameras[gallery])
    raw = raw_pixels(paths)
    floor = reid_metrics(raw[query], raw[gallery], persons[query], persons[gallery], cameras[query], cameras[gallery])
    add_figures(report, "reid", title, found, [(metric, value, "pct") for metric, value in REID_FIGURES])
    for metric, value in REID_FIGURES:
        # the floor: no model at all, so it stands in the project's column with nothing beside it
        report.figures.append(Figure("reid floor", "reid floor: 16x32 grey pixels compared directly", metric,
                                     value(floor), None, None))


REID_FIGURES = (("CMC rank-1", lambda r: r["cmc"][1]), ("mAP", lambda r: r["map"]))


def raw_pixels(paths) -> np.ndarray:
    """Each crop as 16 wide x 32 high grey pixels in [0, 1], flattened: the floor any model must beat."""
    from siamese_core.data.images import open_image

    return np.stack([np.asarray(open_image(p).convert("L").resize((16, 32)), dtype=np.float32).ravel() / 255.0
                     for p in paths])


def row_signatures(args, work: Path, report: Report) -> None:
    from siamese_core.config import TrainConfig
    from siamese_core.data import sources as D
    from siamese_core.data.images import is_image_file
    from siamese_core.evaluation.metrics import roc_auc

    root = args.data / "signatures"
    signers = sorted(d.name for d in (root / "genuine").iterdir() if d.is_dir()) if (root / "genuine").is_dir() else []
    if len(signers) < SIGNERS_TRAIN + 2 or not (root / "forged").is_dir():
        skip(report, "signatures", f"'{root}' does not hold genuine/ and forged/ folders of at least "
                                   f"{SIGNERS_TRAIN + 2} signers (CEDAR: 001 ... 055).")
        return
    # the genuine signatures of the first 45 signers, as class folders of links; no forgery is trained on
    signatures = work / "data" / "signatures"
    signatures.mkdir(parents=True)
    for signer in signers[:SIGNERS_TRAIN]:
        (signatures / signer).symlink_to(root / "genuine" / signer, target_is_directory=True)
    config = TrainConfig(dataset="folder", train_path=str(signatures), seed=args.seed)
    project, seconds, ran = train_product(config, work / "run", "signatures", args, report)
    data = held_out(ran)  # the signers the product held out choose the baselines' thresholds too
    models = {"project": project, **baselines(
        args, "signatures", seconds, work, report, spec=project.spec, train_set=data.train, val_set=data.val,
        val_pairs=data.val_pairs, field="ink", train_sources=files_of(signatures, data.train),
        val_sources=files_of(signatures, data.val))}

    new = signers[SIGNERS_TRAIN:]
    files, labels, forged = [], [], []
    for kind in ("genuine", "forged"):
        for label, signer in enumerate(new):
            found_files = sorted(p for p in (root / kind / signer).iterdir() if is_image_file(p))
            files += found_files
            labels += [label] * len(found_files)
            forged += [kind == "forged"] * len(found_files)
    labels, forged = np.array(labels), np.array(forged)
    genuine = np.flatnonzero(~forged)
    a, b, same = D.evaluation_pairs(labels[genuine], SIGNATURE_PAIRS, args.seed)
    random_pairs = (genuine[a], genuine[b], same)
    forgery_pairs = forgery_test_pairs(random_pairs, labels, forged, args.seed)
    sets = {f"signatures: {len(new)} new signers, {len(same)} random genuine pairs": random_pairs,
            f"signatures: the same signers, {len(forgery_pairs[0])} pairs, half genuine vs forgery": forgery_pairs}
    found = {title: {} for title in sets}
    for who, model in models.items():
        vectors = vectors_of(model, np.stack([model.prepare(f) for f in files]))
        for title, pairs in sets.items():
            found[title][who] = verification_figures(pair_scores(model, vectors, pairs), pairs[2], model.threshold)
    for title in sets:
        add_figures(report, "signatures", title, found[title], VERIFICATION_FIGURES)
    # the floor: the paper alone (each scan's median grey level), no model; a model must not get its figure this way
    paper = np.array([float(np.median(np.asarray(open_grey(f)))) for f in files])
    a, b, same = forgery_pairs
    report.figures.append(Figure("signatures floor", "signatures floor: the forgery pairs by paper level alone",
                                 "ROC AUC", roc_auc(-np.abs(paper[a] - paper[b]), same), None, None, "auc"))


def forgery_test_pairs(random_pairs, labels: np.ndarray, forged: np.ndarray, seed: int):
    """The random pairs' genuine same pairs, and as many pairs of a genuine signature and a skilled forgery of the same
    signer (as even a share of each signer as the count allows), shuffled with the seed."""
    rng = np.random.default_rng(seed)
    a, b, same = random_pairs
    keep = same == 1
    want = int(keep.sum())
    signers = np.unique(labels[forged])
    fa, fb = [], []
    for i, signer in enumerate(signers):
        share = want // len(signers) + (1 if i < want % len(signers) else 0)
        genuine, fakes = np.flatnonzero(~forged & (labels == signer)), np.flatnonzero(forged & (labels == signer))
        every = np.array([(g, f) for g in genuine for f in fakes])
        picked = every[rng.choice(len(every), size=min(share, len(every)), replace=False)]
        fa += picked[:, 0].tolist()
        fb += picked[:, 1].tolist()
    pairs_a = np.concatenate([a[keep], np.array(fa, dtype=np.int64)])
    pairs_b = np.concatenate([b[keep], np.array(fb, dtype=np.int64)])
    truth = np.concatenate([np.ones(want), np.zeros(len(fa))]).astype(np.float32)
    order = rng.permutation(len(truth))
    return pairs_a[order], pairs_b[order], truth[order]


def open_grey(path):
    from siamese_core.data.images import open_image

    return open_image(path).convert("L")


ROW_FUNCTIONS = {"demo": row_demo, "mnist": row_mnist, "faces": row_faces, "reid": row_reid,
                 "signatures": row_signatures}


if __name__ == "__main__":
    sys.exit(main())
