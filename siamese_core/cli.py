"""python -m siamese_core {train,runs,eval,verify,embed,similar,export}: the same work as the app, without the browser."""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .config import (AUGMENTS, DATASETS, GPU_BACKBONE, HEADS, INPUTS, MININGS, MODES, OPTIMIZERS, PRECISIONS, RECIPES,
                     SCHEDULES, SPLITS, TrainConfig)
from .errors import UserError, plain_words
from .evaluation.reid import CAMERA_PATTERN, IDENTITY_PATTERN
from .files import csv_table, read_json, write_bytes, write_text
from .inference.index import METRICS
from .runs.rundir import RunDir, epoch_in_progress
from .settings import default_mnist_dir
from .words import ordinal

log = logging.getLogger("siamese_core")


def _default(name: str, **choices) -> str:
    """A training option's default as --help words, asked of TrainConfig (the one place defaults live)."""
    value = TrainConfig.default(name, **choices)
    return f"{value:g}" if isinstance(value, float) else str(value)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m siamese_core",
                                     description="Train, evaluate and use Siamese networks on images.")
    commands = parser.add_subparsers(dest="command", metavar="{train,runs,eval,verify,embed,similar,export}")

    t = commands.add_parser("train", help="train a Siamese network and write a run directory",
                            description="Train a Siamese network. With no data named, trains on the built-in digits.")
    data = t.add_argument_group("data")
    data.add_argument("--train_path", "--train-path", dest="train_path", help="folder with one sub-folder per class")
    data.add_argument("--val_path", "--val-path", dest="val_path",
                      help="validation folder (one sub-folder per class); without it the training data is split")
    data.add_argument("--dataset", choices=DATASETS,
                      help="digits (built in, offline), mnist, folder or triplets; guessed from the other flags")
    data.add_argument("--data-root", help="folder holding the MNIST IDX files, downloaded there when possible (default "
                           f"{default_mnist_dir()})")
    data.add_argument("--triplets", help="CSV with columns Anchor, Positive, Negative naming image files")
    data.add_argument("--images", help="folder the triplet CSV's file names are relative to")
    data.add_argument("--split", choices=SPLITS,
                      help="split one folder by class (validation classes unseen; default for folders) "
                           "or by image (default for digits and MNIST)")
    data.add_argument("--val-fraction", type=float,
                      help=f"share held out for validation (default {_default('val_fraction')})")
    data.add_argument("--max-val-classes", type=int,
                      help=f"a split by class holds out at most this many classes (default {_default('max_val_classes')}; "
                           f"0 = no cap; {_default('max_val_classes', recipe='classic')} with --recipe classic)")
    data.add_argument("--identity-pattern",
                      help="regex whose first group reads an identity from a triplet file name "
                           f"(default: {_default('identity_pattern')})")
    data.add_argument("--image-size", type=int,
                      help="side in pixels images are resized to (default "
                           f"{_default('image_size', backbone='convnet')} for convnet, "
                           f"{_default('image_size', backbone='small-resnet')} for small-resnet, "
                           f"{_default('image_size', backbone='timm:efficientnet_b0')} otherwise)")
    data.add_argument("--channels", type=int, choices=(1, 3), help="1 for grey, 3 for colour (default by backbone)")
    data.add_argument("--augment", nargs="?", const="shift", choices=AUGMENTS,
                      help="augmentation while training: photos, digits, shift (what a bare --augment means: random "
                           "shifts, and mirror images for colour) or none (default recipe: digits for digit models, "
                           "else photos; with --mode: none)")
    data.add_argument("--input", choices=INPUTS,
                      help="how an image becomes the model's input: resize (the whole image squashed to a square) "
                           "or digit (the ink found and centred as in MNIST)")
    data.add_argument("--class-word", "--class_word", dest="class_word",
                      help="what one class is called, for verdicts in words ('same person'): person, digit, "
                           "signature... (default: guessed from the data's name, else 'class')")

    model = t.add_argument_group("model")
    model.add_argument("-b", "--backbone",
                       help="convnet, small-resnet, timm:<name> or torchvision:<name> (default: "
                            f"{_default('backbone')} on a CPU, {GPU_BACKBONE} on a GPU; "
                            f"{_default('backbone', recipe='classic')} when --mode is named)")
    model.add_argument("--mode", choices=MODES,
                       help="pair: sigmoid head and binary cross-entropy; contrastive or triplet: an embedding. "
                            "Naming a mode selects the reference designs' settings (--recipe classic)")
    model.add_argument("--recipe", choices=RECIPES,
                       help="default: embedding, batch-hard mining with an identity loss, AdamW with warm-up and "
                            "cosine schedule, augmentation; classic: the reference designs' settings")
    model.add_argument("--head", choices=HEADS, help="how a pair head combines two feature vectors")
    model.add_argument("--dropout", type=float, help=f"dropout in the pair head (default {_default('dropout')}; "
                                                     f"{_default('dropout', backbone='convnet')} for convnet)")
    model.add_argument("--embedding-dim", type=int,
                       help=f"embedding size (default {_default('embedding_dim')}; "
                            f"{_default('embedding_dim', recipe='classic')} with --recipe classic)")
    model.add_argument("--margin", type=float,
                       help=f"margin of the contrastive ({_default('margin', mode='contrastive')}) "
                            f"or triplet ({_default('margin', mode='triplet')}) loss")
    model.add_argument("--mining", choices=MININGS,
                       help=f"online triplet mining inside P x K batches (default {_default('mining')}; "
                            f"{_default('mining', mode='triplet')} with --mode)")
    model.add_argument("--id-loss", type=float,
                       help=f"weight of the identity loss beside mined triplets (default {_default('id_loss')}; 0 = off)")
    model.add_argument("--neck", action=argparse.BooleanOptionalAction,
                       help="BatchNorm before the embedding's normalisation (default: on in the default recipe)")
    model.add_argument("--flip-test", action=argparse.BooleanOptionalAction,
                       help="average an image's vector with its mirror image's at test time (default: on for "
                            "photos in the default recipe, off for digits)")
    model.add_argument("--pretrained", action=argparse.BooleanOptionalAction,
                       help="start from pretrained weights when they can be had (default: "
                            f"{'yes' if TrainConfig.pretrained else 'no'})")
    model.add_argument("--weights", help="local backbone weights file (.pth or .safetensors, or a run's checkpoint) "
                                         "to start from")
    model.add_argument("--frozen", action=argparse.BooleanOptionalAction,
                       help="keep the pretrained backbone frozen: embed every image once and train only the head "
                            "(seconds on a CPU; needs pretrained weights or --weights). Default: fine-tune it all")

    opt = t.add_argument_group("training")
    opt.add_argument("-o", "--out", help="run directory to write (default runs/<date-time>)")
    opt.add_argument("--config", help="a run's config.json (or the app's request.json): train with exactly those "
                                      "settings; the data and model flags are then ignored")
    opt.add_argument("-lr", "--lr", type=float,
                     help=f"learning rate (default {_default('lr')}; "
                          f"{_default('lr', backbone='timm:efficientnet_b0')} for pretrained backbones)")
    opt.add_argument("-e", "--epochs", type=int,
                     help=f"epochs (default {_default('epochs')}; with --resume, the run's own number unless given)")
    opt.add_argument("-s", "--save_after", "--save-every", dest="save_every", type=int,
                     help="also keep a checkpoint every N epochs")
    opt.add_argument("--batch-size", type=int,
                     help=f"images per P x K batch with mining (default {_default('batch_size')}; "
                          f"{_default('batch_size', backbone='convnet')} for convnet), else pairs or triplets "
                          f"per batch (default {_default('batch_size', recipe='classic')})")
    opt.add_argument("--pairs-per-epoch", type=int, help="training pairs drawn afresh each epoch (default ~10 per image)")
    opt.add_argument("--eval-pairs", type=int,
                     help=f"validation pairs, drawn once with the seed (default {_default('eval_pairs')})")
    opt.add_argument("--same-share", type=float,
                     help="the share of same pairs the verdict threshold is tuned for on the validation pairs "
                          f"(default {_default('same_share')}: precise when same pairs are rare; "
                          f"{_default('same_share', recipe='classic')} with --recipe classic)")
    opt.add_argument("--optimizer", choices=OPTIMIZERS,
                     help=f"default {_default('optimizer')} ({_default('optimizer', recipe='classic')} "
                          "with --recipe classic)")
    opt.add_argument("--schedule", choices=SCHEDULES,
                     help=f"learning rate over the run: {_default('schedule')} (default; with warm-up) or "
                          f"{_default('schedule', recipe='classic')} (--recipe classic)")
    opt.add_argument("--warmup", type=float,
                     help=f"share of all steps spent warming up (default {_default('warmup')} with cosine)")
    opt.add_argument("--weight-decay", type=float,
                     help=f"default {_default('weight_decay')} with adamw, "
                          f"{_default('weight_decay', optimizer='adam')} with adam")
    opt.add_argument("--seed", type=int, help=f"default {_default('seed')}")
    opt.add_argument("--device", help=f"{TrainConfig.device} (the default: cuda, then mps, then cpu), "
                                      "cpu, cuda or mps")
    opt.add_argument("--precision", choices=PRECISIONS,
                     help="bf16 autocast (faster on CPUs that support it); "
                          f"{_default('precision')} (the default) = mixed precision on CUDA only")
    opt.add_argument("--resume", action="store_true", help="continue the run in -o from its last checkpoint")
    opt.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    t.set_defaults(handler=cmd_train)

    r = commands.add_parser("runs", help="list the runs in a folder with their state and figures",
                            description="List runs, newest first. A run whose training process has ended "
                                        "without saying so (a kill, a crash) is marked failed or stopped here, and "
                                        "runs waiting for a free slot start if one is free, as when the app lists them.")
    r.add_argument("-d", "--dir", help="the folder of runs (default: SIAMESE_RUNS_DIR, else ./runs)")
    r.add_argument("--json", action="store_true", help="print the runs as JSON")
    r.set_defaults(handler=cmd_runs)

    e = commands.add_parser("eval", help="evaluate a checkpoint: metrics.json, ROC and score plots, pair images",
                            description="Evaluate a checkpoint on pairs of an evaluation set: accuracy, precision, "
                                        "recall, F1, ROC AUC, equal error rate, true-accept rate at chosen false-accept "
                                        "rates, 10-fold threshold choice, and (when images have labels) retrieval "
                                        "figures. Writes metrics.json, roc.png, scores.png and pairs/*.png.")
    e.add_argument("-c", "--checkpoint", required=True)
    e.add_argument("-v", "--val_path", "--val-path", dest="val_path",
                   help="class folders to evaluate on, or a folder of images named by identity such as "
                        "Market-1501 crops (default: the checkpoint's own validation split)")
    e.add_argument("-o", "--out", required=True, help="folder for metrics.json, roc.png, scores.png and pairs/")
    e.add_argument("--pairs", type=int, default=1000, help="number of balanced evaluation pairs")
    e.add_argument("--sequential", action="store_true", help="pairs (0,1), (2,3), ... instead of balanced pairs")
    e.add_argument("--images", type=int, default=16, help="pair pictures to save (most confident mistakes first)")
    e.add_argument("--threshold", type=float,
                   help="decision threshold on the score, 0 to 1 (default: the checkpoint's)")
    e.add_argument("--far", type=float, nargs="+", default=[0.001, 0.01, 0.1],
                   help="false-accept rates to report the true-accept rate at (default: 0.001 0.01 0.1)")
    e.add_argument("--folds", type=int, default=10,
                   help="k of the k-fold threshold choice on this set (LFW protocol; default 10, 0 = skip)")
    e.add_argument("--n-way", type=int, default=5, help="classes per N-way one-shot episode (default 5)")
    e.add_argument("--episodes", type=int, default=500, help="one-shot episodes, drawn with --seed (default 500)")
    e.add_argument("--no-retrieval", dest="retrieval", action="store_false",
                   help="skip precision at 1, MAP@R and one-shot accuracy (they compare every image with every other)")
    e.add_argument("--reid", action=argparse.BooleanOptionalAction, default=None,
                   help="person re-identification figures (CMC rank-1/5/10, mAP; Market-1501 protocol: one query "
                        "per person and camera drawn with --seed, same-camera matches left out); default: "
                        "computed when every file name gives person and camera; --reid requires them, --no-reid skips")
    e.add_argument("--identity-pattern", default=IDENTITY_PATTERN,
                   help="regex whose first group reads the person (class) from a file name (default: %(default)s)")
    e.add_argument("--camera-pattern", default=CAMERA_PATTERN,
                   help="regex whose first group reads the camera from a file name (default: %(default)s)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--device", default="auto")
    e.set_defaults(handler=cmd_eval)

    v = commands.add_parser("verify", help="same or different? for one pair, or a CSV of pairs")
    v.add_argument("-c", "--checkpoint", required=True)
    v.add_argument("image_a", nargs="?")
    v.add_argument("image_b", nargs="?")
    v.add_argument("--pairs", help="CSV with columns image_a,image_b and optionally same (1/0)")
    v.add_argument("--images", help="folder the CSV's paths are relative to (default: the CSV's folder); "
                                    "a row naming a file outside it is not read")
    v.add_argument("--allow-outside", action="store_true",
                   help="read the files a trusted CSV names wherever they are (absolute paths, '..')")
    v.add_argument("-o", "--out", help="CSV of results, with --pairs")
    v.add_argument("--threshold", type=float, help="decision threshold on the score (default: the checkpoint's)")
    v.add_argument("--json", action="store_true", help="print the result as JSON")
    v.add_argument("--device", default="auto")
    v.set_defaults(handler=cmd_verify)

    m = commands.add_parser("embed", help="write the embedding of every image in a folder",
                            description="Write the vector of every image in a folder. Images are decoded a batch at "
                                        "a time; a large folder's vectors are saved in shards beside the output as "
                                        "they are done, so an interrupted run resumes where it stopped.")
    m.add_argument("-c", "--checkpoint", required=True)
    m.add_argument("-i", "--images", required=True, help="a folder of images, or of class sub-folders")
    m.add_argument("-o", "--out", required=True, help="output file: .csv or .npz")
    m.add_argument("--index", help="also write a FAISS index of the vectors to this file (and its sidecar FILE.json: "
                                   "names, labels, model), for `similar -g FILE`")
    m.add_argument("--metric", choices=METRICS, default="euclidean",
                   help="the index's distance: euclidean (default, as similar uses on folders) or cosine")
    m.add_argument("--shard-size", type=int,
                   help="images per shard of a large folder (default 10,000: inference.SHARD_IMAGES)")
    m.add_argument("--device", default="auto")
    m.set_defaults(handler=cmd_embed)

    f = commands.add_parser("similar", help="the images of a folder most like one image, nearest first")
    f.add_argument("-c", "--checkpoint", required=True)
    f.add_argument("query", help="the image to look for")
    f.add_argument("-g", "--gallery", required=True,
                   help="a folder of images, or of class sub-folders, or an index written by embed --index")
    f.add_argument("-k", type=int, default=5, help="how many to list (default 5)")
    f.add_argument("--json", action="store_true", help="print the matches as JSON")
    f.add_argument("--device", default="auto")
    f.set_defaults(handler=cmd_similar)

    x = commands.add_parser("export", help="write a checkpoint as ONNX for other apps, with a JSON sidecar and a "
                                           "model card",
                            description="Write the embedding network as ONNX (input: images, pixels / 255, any "
                                        "batch size; output: one vector per image), for pair models the pair head "
                                        "as a second ONNX file (NAME.pair-head.onnx), a JSON sidecar (NAME.json: "
                                        "input size, channels, normalisation, input pipeline, how to score a pair, "
                                        "threshold, class word) and a model card (NAME.md: data, recipe, figures).")
    x.add_argument("-c", "--checkpoint", required=True)
    x.add_argument("-o", "--out", required=True, help="the ONNX file to write, e.g. model.onnx; the others go beside it")
    x.add_argument("--force", action="store_true",
                   help="replace files at those names that an earlier export did not write (by default they are "
                        "left alone and the command stops)")
    x.set_defaults(handler=cmd_export)
    return parser


# ---------------------------------------------------------------- commands

# The train command's flags that are TrainConfig fields of the same name (dataset is worked out below).
TRAIN_FLAGS = ("train_path", "val_path", "triplets", "images", "data_root", "split", "val_fraction", "max_val_classes",
               "identity_pattern", "image_size", "channels", "augment", "input", "backbone", "mode", "head",
               "dropout", "embedding_dim", "margin", "mining", "id_loss", "neck", "flip_test", "pretrained",
               "weights", "frozen", "recipe", "optimizer", "schedule", "warmup", "lr", "weight_decay", "epochs",
               "batch_size", "pairs_per_epoch", "eval_pairs", "same_share", "save_every", "seed", "device",
               "precision", "class_word")

def cmd_train(args) -> int:
    out = args.out or f"runs/{time.strftime('%Y%m%d-%H%M%S')}"
    if args.config:
        config = config_from_file(args.config)
        if args.epochs is not None:
            config.epochs = args.epochs
        return run_training(config, out, args)
    dataset = args.dataset or ("triplets" if args.triplets else "folder" if args.train_path else "digits")
    # Flags not given stay out, so TrainConfig (and its resolve()) supplies every default.
    given = {name: getattr(args, name) for name in TRAIN_FLAGS if getattr(args, name) is not None}
    if args.epochs is None and args.resume:
        saved = RunDir(out).read_config()
        if saved:
            given["epochs"] = saved["epochs"]
    return run_training(TrainConfig(dataset=dataset, **given), out, args)


def config_from_file(path) -> TrainConfig:
    values = read_json(path)
    if not isinstance(values, dict):
        raise UserError(f"'{path}' is not a training config (a JSON object such as a run's config.json).")
    return TrainConfig.from_dict(values)


def run_training(config: TrainConfig, out: str, args) -> int:
    from .runs import jobs
    from .training.loop import train

    rank = int(os.environ.get("RANK", "0") or 0)  # torchrun's: rank 0 speaks for all the processes
    if rank > 0:
        logging.getLogger("siamese_core").setLevel(logging.WARNING)
    try:
        status = train(config, out, resume=args.resume, progress=not args.quiet and rank == 0)
    finally:
        if rank == 0:
            jobs.start_next(out)  # done, failed or stopped: this slot is free for the next run waiting in the folder
    if rank > 0:
        return 0  # rank 0 reports the run; an early non-zero exit here would make torchrun kill it mid-save
    best = status.get("best_accuracy")
    summary = f"best validation accuracy {100 * best:.2f}%" if best is not None else "no epoch finished"
    print(f"Run {status['state']} ({summary}): {out}")
    best_path = Path(out) / "checkpoints" / "best.pt"
    if best_path.is_file():
        print(f"Best checkpoint: {best_path}")
    return 0 if status["state"] == "done" else 3


def cmd_runs(args) -> int:
    from .runs import jobs

    root = Path(args.dir) if args.dir else None
    if root is not None and not root.is_dir():
        raise UserError(f"'{root}' is not a folder of runs.")
    infos = jobs.list_runs(root)  # marks a run whose process is gone as failed or stopped; starts what may start
    places = jobs.queue_places(infos)
    listed = [{"run": i.name, "state": i.state, "epoch": epoch_in_progress(i.status),
               "epochs": i.status.get("total_epochs"), "best_accuracy": i.status.get("best_accuracy"),
               "best_epoch": i.status.get("best_epoch"), "error": i.status.get("error"),
               "in_line": places[i.name]["place"] if i.name in places else None}  # waiting runs: 1 starts next
              for i in infos]
    if args.json:
        print(json.dumps(listed))
        return 0
    if not listed:
        print(f"No runs in {root or 'the runs folder'}.")
    for row in listed:
        best = (f"best {100 * row['best_accuracy']:.1f}%" + (f" (epoch {row['best_epoch']})" if row["best_epoch"] else "")
                if row["best_accuracy"] is not None else "no epoch finished")
        state = f"waiting ({ordinal(row['in_line'])} in line)" if row["in_line"] else row["state"]
        print(f"{row['run']}  {state}  epoch {row['epoch'] or 0} of {row['epochs'] or '?'}  {best}"
              + (f"  ({row['error']})" if row["error"] else ""))
    return 0


def cmd_eval(args) -> int:
    from .evaluation.evaluate import evaluate

    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise UserError(f"--threshold is a score between 0 and 1 (got {args.threshold}).")
    if any(not 0.0 < far < 1.0 for far in args.far):
        raise UserError("--far takes rates between 0 and 1, such as 0.01 for one false accept in a hundred.")
    if args.pairs < 2 or args.folds < 0 or args.folds == 1 or args.episodes < 1 or args.n_way < 2:
        raise UserError("--pairs needs at least 2, --folds 0 (skip) or at least 2, --n-way at least 2, "
                        "--episodes at least 1.")
    result = evaluate(args.checkpoint, args.out, val_path=args.val_path, n_pairs=args.pairs, seed=args.seed,
                      sequential=args.sequential, n_images=args.images, device=args.device, threshold=args.threshold,
                      fars=args.far, folds=args.folds, n_way=args.n_way, episodes=args.episodes,
                      retrieval=args.retrieval, reid=args.reid, identity_pattern=args.identity_pattern,
                      camera_pattern=args.camera_pattern)
    for line in summary_lines(result):
        print(line)
    print(f"Written: {Path(args.out) / 'metrics.json'}, roc.png, scores.png"
          + (", pairs/" if args.images > 0 else ""))
    return 0


def _percent(x: float, digits: int = 1) -> str:
    return "n/a" if x != x else f"{100 * x:.{digits}f}%"


def summary_lines(result: dict) -> list:
    """The figures of an evaluation in a few lines, for people."""
    lines = [f"accuracy {100 * result['accuracy']:.2f}%  precision {100 * result['precision']:.2f}%  "
             f"recall {100 * result['recall']:.2f}%  F1 {100 * result['f1']:.2f}%  ROC AUC {result['roc_auc']:.4f}  "
             f"on {result['pairs']} pairs at threshold {result['threshold']:.3f}",
             f"threshold: {result['threshold_source']}",
             f"equal error rate {_percent(result['eer']['eer'], 2)}  "
             + "  ".join(f"TAR@FAR={tar['far']:g}: {_percent(tar['tar'])}" + ("" if tar["measurable"] else " (too few pairs)")
                         for tar in result["tar_at_far"])]
    if result["eer"]["eer"] != result["eer"]["eer"]:  # NaN: the pairs are all same or all different
        lines[-1] = "equal error rate, true-accept rates, ROC AUC: n/a (the pairs are all of one kind)"
    if "kfold" in result:
        k = result["kfold"]
        lines.append(f"{k['folds']}-fold threshold choice on this set: accuracy {100 * k['accuracy_mean']:.2f}% "
                     f"+- {100 * k['accuracy_std']:.2f}%")
    retrieval = result.get("retrieval", {})
    if "precision_at_1" in retrieval:
        line = (f"retrieval over {retrieval['images']} images: precision at 1 {100 * retrieval['precision_at_1']:.2f}%  "
                f"MAP@R {100 * retrieval['map_at_r']:.2f}%")
        if "one_shot" in retrieval:
            o = retrieval["one_shot"]
            line += (f"  {o['n_way']}-way one-shot {100 * o['accuracy']:.1f}% "
                     f"(95% interval {100 * o['low']:.1f}-{100 * o['high']:.1f}%, chance {100 * o['chance']:.0f}%)")
        lines.append(line)
    elif retrieval.get("note"):
        lines.append(f"retrieval: {retrieval['note']}")
    reid = result.get("reid", {})
    if "cmc" in reid:
        lines.append("re-identification: CMC " + " ".join(f"rank-{k} {_percent(v)}" for k, v in reid["cmc"].items())
                     + f" mAP {_percent(reid['map'])} over {reid['queries']} queries and {reid['gallery']} "
                       "gallery images")
    return lines


def cmd_verify(args) -> int:
    from .inference.model import SiameseModel

    if args.pairs:
        if args.image_a or args.image_b:
            raise UserError("Give either two images or --pairs CSV, not both.")
        if not args.out:
            raise UserError("--pairs needs -o OUT.csv for the results.")
        model = SiameseModel.load(args.checkpoint, args.device)
        return verify_many(model, args)
    if not (args.image_a and args.image_b):
        raise UserError("Give two images to compare (verify -c CHECKPOINT IMAGE_A IMAGE_B), or --pairs CSV.")
    model = SiameseModel.load(args.checkpoint, args.device)
    verdict = model.verify(args.image_a, args.image_b, threshold=args.threshold)
    if args.json:
        print(json.dumps(verdict.to_dict()))
    else:
        word = model.class_word
        print(f"{'Same' if verdict.same else 'Different'} {word}: score {100 * verdict.score:.1f}% "
              f"(threshold {100 * verdict.threshold:.1f}%, distance {verdict.distance:.4f})")
    return 0


def verify_many(model, args) -> int:
    from .inference.model import verify_csv

    table, accuracy = verify_csv(model, args.pairs, args.images, args.threshold, confine=not args.allow_outside,
                                 images_word="the images in the --images folder (--allow-outside reads any path)")
    write_text(args.out, csv_table(table).to_csv(index=False))  # a name like =HYPERLINK(...) stays text
    scored = int((table["error"] == "").sum())
    failed = len(table) - scored
    threshold = model.threshold if args.threshold is None else args.threshold
    print(f"Scored {scored} of {len(table)} pairs at threshold {threshold:.3f}: {args.out}"
          + (f" ({failed} could not be read: see the error column)" if failed else ""))
    if accuracy is not None:
        print(f"accuracy {100 * accuracy['accuracy']:.2f}% on {accuracy['pairs']} labelled pairs")
    return 0


def cmd_embed(args) -> int:
    from .inference.index import VectorIndex
    from .inference.model import SHARD_IMAGES, SiameseModel, embed_folder, file_digest, remove_shards

    out = Path(args.out)
    if out.suffix not in (".csv", ".npz"):
        raise UserError(f"-o must end in .csv or .npz (got '{out.name}').")
    index_path = Path(args.index) if args.index else None
    if index_path is not None and index_path.resolve() == out.resolve():
        raise UserError("--index must name another file than -o: the index goes beside the vectors.")
    shard_size = SHARD_IMAGES if args.shard_size is None else args.shard_size
    if shard_size < 1:
        raise UserError(f"--shard-size is a number of images: at least 1 (got {shard_size}).")
    model = SiameseModel.load(args.checkpoint, args.device)
    checkpoint_digest = file_digest(args.checkpoint)
    shards = out.with_name(out.name + ".shards")
    found = embed_folder(model, args.images, shards, shard_size, model_id=checkpoint_digest)
    vectors = found.vectors
    if out.suffix == ".npz":
        buffer = io.BytesIO()
        np.savez_compressed(buffer, paths=np.array(found.names), labels=np.array(found.labels), vectors=vectors)
        write_bytes(out, buffer.getvalue())
    else:
        table = pd.DataFrame(vectors, columns=[f"e{i}" for i in range(vectors.shape[1])])
        table.insert(0, "label", found.labels)
        table.insert(0, "path", found.names)
        write_text(out, csv_table(table).to_csv(index=False, float_format="%.6g"))
    written = ""
    if index_path is not None:
        index = VectorIndex(vectors, args.metric)
        index.save(index_path, names=found.names, labels=found.labels, pixel_digests=found.digests,
                   checkpoint=Path(args.checkpoint).name, checkpoint_sha256=checkpoint_digest, vectors_file=out.name)
        written = f"; index: {index_path} ({args.metric} distance)"
    remove_shards(shards)  # the output holds every vector now
    reused = f", {found.reused:,} of them from an earlier run's shards" if found.reused else ""
    print(f"Embedded {len(found.names)} images ({vectors.shape[1]} numbers each{reused}): {out}{written}")
    return 0


def cmd_similar(args) -> int:
    from .inference.gallery import find_similar, folder_gallery, saved_gallery
    from .inference.model import SiameseModel, file_digest

    if args.k < 1:
        raise UserError(f"-k is how many images to list: at least 1 (got {args.k}).")
    model = SiameseModel.load(args.checkpoint, args.device)
    query = model.prepare(args.query)  # a bad query fails here, before the gallery is read
    if not Path(args.gallery).exists():
        raise UserError(f"The gallery '{args.gallery}' does not exist: give a folder of images or an index "
                        "written by embed --index.")
    if Path(args.gallery).is_file():  # an index written by embed --index: no image decoded again
        gallery, vectors = saved_gallery(args.gallery, model, file_digest(args.checkpoint))
    else:
        gallery = folder_gallery(args.gallery, model.image_size, model.channels, model.input_pipeline)
        vectors = model.embed(gallery.pixels)
    matches, left_out = find_similar(model, query, gallery, vectors, args.k)
    if args.json:
        print(json.dumps({"matches": [vars(m) for m in matches], "left_out_as_the_query": left_out}))
        return 0
    space = "embeddings" if model.is_embedding else "backbone features"
    print(f"{len(matches)} nearest of {len(gallery)} images (distance between {space})"
          + (f"; {left_out} left out: the query itself" if left_out else "") + ":")
    for rank, match in enumerate(matches, 1):
        print(f"{rank:3d}. {match.distance:10.4f}  {match.name}" + (f"  ({match.label})" if match.label else ""))
    return 0


def cmd_export(args) -> int:
    from .inference.export import write_export

    written = write_export(args.checkpoint, args.out, force=args.force)
    print("Written: " + ", ".join(str(path) for path in written))
    return 0


# ---------------------------------------------------------------- entry

def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.captureWarnings(True)
    try:
        return args.handler(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (OSError, MemoryError, RuntimeError) as exc:  # a full or read-only disk, memory: a sentence, not a traceback
        sentence = plain_words(exc)
        if isinstance(exc, RuntimeError) and not isinstance(exc, MemoryError) and "disk is full" not in sentence:
            raise  # a bug: its traceback is what a report needs
        print(f"error: {sentence}" + (f" ({exc.filename})" if getattr(exc, "filename", None) else ""), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
