"""`train`: train a Siamese network and write a run directory (the app's own training runs this command too)."""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

from ..config import (AUGMENTS, DATASETS, GPU_BACKBONE, HEADS, INPUTS, MININGS, MODES, OPTIMIZERS, PRECISIONS, RECIPES,
                      SCHEDULES, SPLITS, THRESHOLD_POLICIES, TrainConfig, parse_duration, parse_image_size)
from ..errors import UserError
from ..files import read_json
from ..runs.rundir import RunDir
from ..settings import default_mnist_dir


def _default(name: str, **choices) -> str:
    """A training option's default as --help words, asked of TrainConfig (the one place defaults live)."""
    value = TrainConfig.default(name, **choices)
    return f"{value:g}" if isinstance(value, float) else str(value)


def add_train_parser(commands) -> None:
    """The train command, its flags in three groups: the data, the model, the training."""
    t = commands.add_parser("train", help="train a Siamese network and write a run directory",
                            description="Train a Siamese network. With no data named, trains on the built-in digits.")
    _add_data_flags(t.add_argument_group("data"))
    _add_model_flags(t.add_argument_group("model"))
    _add_training_flags(t.add_argument_group("training"))
    t.set_defaults(handler=run_train)


def _add_data_flags(data) -> None:
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
    data.add_argument("--image-size", metavar="SIZE",
                      help="the model's input in pixels: height x width (128x64) or one number for a square (64). "
                           "Default: chosen by reading the images (their usual shape; docs/recipe.md), else "
                           f"{_default('image_size', backbone='convnet')} for convnet, "
                           f"{_default('image_size', backbone='small-resnet')} for small-resnet, "
                           f"{_default('image_size', backbone='timm:efficientnet_b0')} otherwise")
    data.add_argument("--channels", type=int, choices=(1, 3), help="1 for grey, 3 for colour (default by backbone)")
    data.add_argument("--augment", nargs="?", const="shift", choices=AUGMENTS,
                      help="augmentation while training: photos, digits, ink (warps only, never mirror images), "
                           "shift (what a bare --augment means: random shifts, and mirror images for colour) or none "
                           "(default recipe: chosen from the images; with --mode: none)")
    data.add_argument("--input", choices=INPUTS,
                      help="how an image becomes the model's input: fit (its shape kept, padded), resize (squashed "
                           "to the size, as before), digit (the ink found and centred as in MNIST) or ink (any "
                           "writing on paper: paper removed, ink bright, its shape kept); default: chosen from the "
                           "images")
    data.add_argument("--class-word", "--class_word", dest="class_word",
                      help="what one class is called, for verdicts in words ('same person'): person, digit, "
                           "signature... (default: guessed from the data's name, else 'class')")


def _add_model_flags(model) -> None:
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


def _add_training_flags(opt) -> None:
    opt.add_argument("-o", "--out", help="run directory to write (default runs/<date-time>)")
    opt.add_argument("--config", help="a run's config.json (or the app's request.json): train with exactly those "
                                      "settings; the data and model flags are then ignored")
    opt.add_argument("-lr", "--lr", type=float,
                     help=f"learning rate (default {_default('lr')}; "
                          f"{_default('lr', backbone='timm:efficientnet_b0')} for pretrained backbones)")
    opt.add_argument("-e", "--epochs", type=int,
                     help=f"epochs (default {_default('epochs')}; with --resume, the run's own number unless given)")
    opt.add_argument("--time", dest="time_budget", metavar="LENGTH",
                     help="train for a length of time instead of a number of epochs: 60s, 2m, 15m or seconds alone "
                          "(90). The run measures its own speed and sets its steps so that the whole learning-rate "
                          "schedule, the last validation and the checkpoints end within it, counted from the "
                          "command's start; not with -e")
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
                     help="the share of same pairs the second, rare-same threshold is tuned for on the validation "
                          f"pairs (default {_default('same_share')}); naming it makes that threshold the verdict's "
                          "(see --threshold-policy)")
    opt.add_argument("--threshold-policy", choices=THRESHOLD_POLICIES,
                     help="which threshold gives the verdict: medians (the default: halfway between the median "
                          "scores of same and of different validation pairs, for a verdict on one pair) or "
                          "same-share (the rare-same one; the default when --same-share is given)")
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


# The train command's flags that are TrainConfig fields of the same name (dataset is worked out below).
TRAIN_FLAGS = ("train_path", "val_path", "triplets", "images", "data_root", "split", "val_fraction", "max_val_classes",
               "identity_pattern", "image_size", "channels", "augment", "input", "backbone", "mode", "head",
               "dropout", "embedding_dim", "margin", "mining", "id_loss", "neck", "flip_test", "pretrained",
               "weights", "frozen", "recipe", "optimizer", "schedule", "warmup", "lr", "weight_decay", "epochs",
               "batch_size", "pairs_per_epoch", "eval_pairs", "same_share", "threshold_policy", "save_every", "seed", "device",
               "precision", "class_word", "time_budget")


def run_train(args) -> int:
    """Train from the flags given (TrainConfig fills in the rest) or from a config file, into -o."""
    out = args.out or f"runs/{time.strftime('%Y%m%d-%H%M%S')}"
    budget = time_budget(args)
    if args.config:
        config = config_from_file(args.config)
        if args.epochs is not None:  # epochs asked for: a budget the file holds no longer applies
            config.epochs, config.time_budget = args.epochs, None
        if budget is not None:
            config.time_budget = budget
        return train_and_report(config, out, args)
    dataset = args.dataset or ("triplets" if args.triplets else "folder" if args.train_path else "digits")
    # Flags not given stay out, so TrainConfig (and its resolve()) supplies every default.
    given = {name: getattr(args, name) for name in TRAIN_FLAGS if getattr(args, name) is not None}
    if budget is not None:
        given["time_budget"] = budget
    if "image_size" in given:
        given["image_size"] = parse_image_size(given["image_size"])  # a bad size is one sentence, before any work
    if args.epochs is None and args.resume:
        saved = RunDir(out).read_config()
        if saved:
            given["epochs"] = saved["epochs"]
    return train_and_report(TrainConfig(dataset=dataset, **given), out, args)


def time_budget(args) -> "float | None":
    """--time in seconds (None without it); a sentence for a length that is not one, or for --time beside -e."""
    if args.time_budget is None:
        return None
    if args.epochs is not None:
        raise UserError("Give either --time (train for a length of time) or -e/--epochs (train for a number of "
                        "epochs), not both.")
    return parse_duration(args.time_budget)


def config_from_file(path) -> TrainConfig:
    """A run's config.json or the app's request.json as a TrainConfig; anything but a JSON object is refused."""
    values = read_json(path)
    if not isinstance(values, dict):
        raise UserError(f"'{path}' is not a training config (a JSON object such as a run's config.json).")
    return TrainConfig.from_dict(values)


def train_and_report(config: TrainConfig, out: str, args) -> int:
    """Train, free the slot for the next waiting run, and say how it went: exit code 0 when done, 3 otherwise."""
    from ..runs import jobs
    from ..training.budget import process_start_time
    from ..training.loop import train

    rank = int(os.environ.get("RANK", "0") or 0)  # torchrun's: rank 0 speaks for all the processes
    if rank > 0:
        logging.getLogger("siamese_core").setLevel(logging.WARNING)
    try:
        status = train(config, out, resume=args.resume, progress=not args.quiet and rank == 0,
                       clock_start=process_start_time())
    finally:
        if rank == 0:
            jobs.start_next(out)  # done, failed or stopped: this slot is free for the next run waiting in the folder
    if rank > 0:
        return 0  # rank 0 reports the run; an early non-zero exit here would make torchrun kill it mid-save
    best = status.best_accuracy
    summary = f"best validation accuracy {100 * best:.2f}%" if best is not None else "no epoch finished"
    if status.time_budget:
        summary += f"; {jobs.budget_words(status)}"
    print(f"Run {status.state} ({summary}): {out}")
    best_path = Path(out) / "checkpoints" / "best.pt"
    if best_path.is_file():
        print(f"Best checkpoint: {best_path}")
    return 0 if status.state == "done" else 3
