"""Everything needed to rebuild a training run's data and model, as plain values.

A TrainConfig is what the command line builds, what the app will build, and what
`config.json` in a run directory holds. `resolve()` fills in the defaults that
depend on the backbone, so a saved config says exactly what ran.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, get_args

from .errors import UserError
from .words import guess_class_word

# The choices, as types (for the fields below) and as tuples (for checks and argparse's choices).
Mode = Literal["pair", "contrastive", "triplet"]
RecipeName = Literal["default", "classic"]
Optimizer = Literal["adamw", "adam"]
Schedule = Literal["cosine", "constant"]
Head = Literal["absdiff", "product", "concat"]
Dataset = Literal["digits", "mnist", "folder", "triplets"]
Split = Literal["class", "image"]
Mining = Literal["none", "batch-hard", "semi-hard"]
Precision = Literal["auto", "fp32", "bf16"]
Augment = Literal["none", "shift", "photos", "digits"]  # see siamese_core.data.augment
# How an image becomes the model's input: "resize" squashes the whole image to a square;
# "digit" finds the ink and centres it as MNIST's digits are (see siamese_core.data.digit_input).
Input = Literal["resize", "digit"]
MODES: tuple = get_args(Mode)
RECIPES: tuple = get_args(RecipeName)
OPTIMIZERS: tuple = get_args(Optimizer)
SCHEDULES: tuple = get_args(Schedule)
HEADS: tuple = get_args(Head)
DATASETS: tuple = get_args(Dataset)
SPLITS: tuple = get_args(Split)
MININGS: tuple = get_args(Mining)
PRECISIONS: tuple = get_args(Precision)
AUGMENTS: tuple = get_args(Augment)
INPUTS: tuple = get_args(Input)
# Reads the person id "0002" from Market-1501 style names like 0002_c1s1_000451_03.jpg.
DEFAULT_IDENTITY_PATTERN = r"^(\d+)_"
# The default recipe's backbones: the small ResNet trains from random weights in minutes on a CPU;
# EfficientNet-B0 where a GPU makes it fast (and the reference designs' backbone).
CPU_BACKBONE = "small-resnet"
GPU_BACKBONE = "timm:efficientnet_b0"


@dataclass
class TrainConfig:
    # data
    dataset: Dataset = "folder"
    train_path: Optional[str] = None
    val_path: Optional[str] = None
    triplets: Optional[str] = None
    images: Optional[str] = None
    data_root: Optional[str] = None
    split: Optional[Split] = None  # default: by class for folders and triplets, by image for digits
    val_fraction: float = 0.3
    max_val_classes: Optional[int] = None  # a split by class holds out at most this many classes (0: no cap)
    identity_pattern: str = DEFAULT_IDENTITY_PATTERN
    image_size: Optional[int] = None
    channels: Optional[int] = None
    augment: Optional[Augment] = None  # a policy of AUGMENTS; True/False from older configs mean shift/none
    input: Optional[Input] = None  # a pipeline of INPUTS
    # model (None: chosen by resolve() from the recipe, the data and the machine)
    backbone: Optional[str] = None
    mode: Optional[Mode] = None
    head: Optional[Head] = None
    head_norm: Optional[bool] = None
    dropout: Optional[float] = None
    embedding_dim: Optional[int] = None
    margin: Optional[float] = None
    mining: Optional[Mining] = None
    neck: Optional[bool] = None  # BatchNorm before the embedding's normalisation
    flip_test: Optional[bool] = None  # mean of an image's and its mirror image's vectors at test time
    id_loss: Optional[float] = None  # weight of the identity (cosine softmax) loss beside the triplet loss
    pretrained: bool = True
    weights: Optional[str] = None
    frozen: Optional[bool] = None  # train only the head on features embedded once (siamese_core/training/frozen.py)
    # optimisation
    recipe: Optional[RecipeName] = None  # default (the measured recipe) or classic (the reference designs' settings)
    optimizer: Optional[Optimizer] = None
    schedule: Optional[Schedule] = None
    warmup: Optional[float] = None  # share of all steps spent warming the learning rate up
    lr: Optional[float] = None
    weight_decay: Optional[float] = None
    epochs: int = 10
    batch_size: Optional[int] = None
    pairs_per_epoch: Optional[int] = None
    eval_pairs: int = 1000
    same_share: Optional[float] = None  # the share of same pairs the verdict threshold is tuned for
    save_every: int = 0
    seed: int = 0
    device: str = "auto"
    precision: Precision = "auto"
    channels_last: Optional[bool] = None
    # what the things compared are called, for plain-words verdicts ("same person"); None: guessed from the data's name
    class_word: Optional[str] = None
    data_name: Optional[str] = None  # where the images came from, for people: "faces10.zip" (None: from the paths)
    notes: list = field(default_factory=list)

    @property
    def is_convnet(self) -> bool:
        return self.backbone == "convnet"

    def resolve(self) -> "TrainConfig":
        """Check the values and fill in the defaults (returns a new config that says exactly what runs).

        Two recipes. The reference designs' settings ("classic": pair head or plain triplets, Adam at a
        constant rate, no augmentation) whenever a mode is named, so the seed designs run as they did.
        Otherwise the measured default: an L2-normalised embedding trained with batch-hard triplet loss
        over P x K batches plus a cosine identity loss, AdamW with warm-up and a cosine schedule,
        augmentation that fits the data, and a backbone that fits the machine (README: "Default recipe").
        """
        c = dataclasses.replace(self, notes=list(self.notes))
        _check_choice("dataset", c.dataset, DATASETS)
        if c.recipe is None:
            c.recipe = "classic" if c.mode is not None else "default"
        _check_choice("recipe", c.recipe, RECIPES)
        default = c.recipe == "default"
        if c.backbone is None:
            c.backbone = default_backbone(c.device) if default else GPU_BACKBONE
        if c.mode is None:
            c.mode = "triplet" if default else "pair"
        _check_choice("mode", c.mode, MODES)
        if c.mining is None:
            c.mining = "batch-hard" if default and c.mode == "triplet" else "none"
        if c.split is None:
            # Ten digit classes are too few to hold some out and still learn what "same" means
            # (measured: ~74% on three unseen digits), so digits split by image, as the classic
            # digit script did; folders and triplets split by class, the honest Siamese test.
            c.split = "image" if c.dataset in ("digits", "mnist") else "class"
        _check_choice("split", c.split, SPLITS)
        _check_choice("mining", c.mining, MININGS)
        _check_choice("precision", c.precision, PRECISIONS)
        if c.head is not None:
            _check_choice("head", c.head, HEADS)
        if c.dataset == "folder" and not c.train_path:
            raise UserError("Say where the training images are: --train_path DIR (one folder per class), "
                            "or --dataset digits for the built-in digits.")
        if c.dataset == "triplets" and not c.triplets:
            raise UserError("--dataset triplets needs --triplets CSV (columns Anchor, Positive, Negative).")
        if c.mining != "none" and c.mode != "triplet":
            raise UserError("--mining only applies to --mode triplet.")
        for name, least in (("epochs", 1), ("eval_pairs", 2), ("pairs_per_epoch", 2)):
            value = getattr(c, name)
            if value is not None and value < least:
                raise UserError(f"--{name.replace('_', '-')} must be at least {least}.")
        if not 0.0 < c.val_fraction < 1.0:
            raise UserError("--val-fraction must be between 0 and 1 (for example 0.3).")
        if c.max_val_classes is None:
            # 50 classes give 1,000 validation pairs from every angle; the rest are better trained on
            c.max_val_classes = 50 if default else 0
        if c.max_val_classes < 0 or c.max_val_classes == 1:
            raise UserError("--max-val-classes must be 0 (no cap) or at least 2.")
        if c.input is None:
            # Digits are found, centred and scaled as MNIST's were, so photos and drawings match them.
            c.input = "digit" if c.dataset in ("digits", "mnist") else "resize"
        _check_choice("input", c.input, INPUTS)
        digit_like = c.is_convnet or c.input == "digit"
        if c.image_size is None:
            c.image_size = 28 if c.is_convnet else 64 if c.backbone == "small-resnet" else 224
        if c.image_size < 8:
            raise UserError("--image-size must be at least 8 pixels.")
        if c.channels is None:
            c.channels = 1 if c.is_convnet else 3
        if isinstance(c.augment, bool):  # configs written before augmentation had policies
            c.augment = "shift" if c.augment else "none"
        if c.augment is None:
            # digits must not be mirrored; photos gain from crops, flips and colour changes
            c.augment = ("digits" if digit_like else "photos") if default else "none"
        _check_choice("augment", c.augment, AUGMENTS)
        if c.head is None:
            # The reference designs: absolute difference for the digit ConvNet, product for photos.
            c.head = "absdiff" if c.is_convnet else "product"
        if c.head_norm is None:
            c.head_norm = not c.is_convnet  # the ConvNet's head is one linear layer
        if c.dropout is None:
            c.dropout = 0.0 if c.is_convnet else 0.3
        if c.embedding_dim is None:
            c.embedding_dim = 128 if default else 512
        if c.margin is None:
            c.margin = 1.0 if c.mode == "contrastive" else 0.3
        if c.neck is None:
            c.neck = default and c.mode != "pair"
        if c.flip_test is None:
            c.flip_test = default and not digit_like and not c.frozen  # frozen heads learn from cached mirror images
        if c.id_loss is None:
            c.id_loss = 1.0 if default and c.mining != "none" and not c.frozen else 0.0
        if c.id_loss < 0:
            raise UserError("--id-loss is a weight: 0 (off) or more.")
        if c.id_loss > 0 and c.mining == "none":
            raise UserError("--id-loss needs the classes of the training images: use it with --mining.")
        if c.optimizer is None:
            c.optimizer = "adamw" if default else "adam"
        _check_choice("optimizer", c.optimizer, OPTIMIZERS)
        if c.schedule is None:
            c.schedule = "cosine" if default else "constant"
        _check_choice("schedule", c.schedule, SCHEDULES)
        if c.warmup is None:
            c.warmup = 0.05 if c.schedule == "cosine" else 0.0
        if not 0.0 <= c.warmup < 1.0:
            raise UserError("--warmup is a share of all training steps, from 0 to below 1 (for example 0.05).")
        if c.weight_decay is None:
            c.weight_decay = 0.05 if c.optimizer == "adamw" else 0.0
        if c.frozen and c.lr is None:
            c.lr = 1e-3  # only a small head trains
        if c.lr is None:
            c.lr = 1e-4 if (c.pretrained and c.backbone.startswith(("timm:", "torchvision:"))) else 1e-3
        if c.lr <= 0:
            raise UserError("--lr must be positive (for example 0.001).")
        if c.same_share is None:
            # balanced pairs as the reference designs did; the default recipe also weighs rare same pairs
            c.same_share = 0.3 if default else 0.5
        if not 0.0 < c.same_share < 1.0:
            raise UserError("--same-share is the share of same pairs the threshold is tuned for, between 0 and 1.")
        if c.batch_size is None:
            c.batch_size = 128 if c.is_convnet else 64 if default else 32
        if c.batch_size < 2:
            raise UserError("--batch-size must be at least 2.")
        if c.backbone in ("convnet", CPU_BACKBONE):
            c.pretrained = False  # no pretrained weights exist for the project's own small networks
        _resolve_frozen(c)
        if c.class_word is None:
            c.class_word = _guess_class_word(c)
        return c

    def preview(self) -> "TrainConfig":
        """What these settings resolve to before the data is chosen (the Train page shows its defaults):
        resolve() with a stand-in path where none is named yet."""
        stand_in = {"train_path": self.train_path or ".", "triplets": self.triplets or "."}
        return dataclasses.replace(self, **stand_in).resolve()

    @classmethod
    def default(cls, name: str, **choices):
        """What setting `name` resolves to when it is not given, for these other choices: the command line's
        help and the Train page ask this rather than repeat resolve()'s rules. Resolved on a CPU unless a
        device is named, so asking never imports torch."""
        return getattr(cls(**{"device": "cpu", **choices}).preview(), name)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def _guess_class_word(c: TrainConfig) -> str:
    """Digits are digits; other data is named by what its name suggests ('faces10.zip': person), else 'class'."""
    if c.dataset in ("digits", "mnist"):
        return "digit"
    named = guess_class_word(c.data_name, c.train_path and Path(c.train_path).name, c.triplets, c.images)
    return named or ("identity" if c.dataset == "triplets" else "class")


def default_backbone(device: str = "auto") -> str:
    """The default recipe's backbone for this machine: EfficientNet-B0 where a GPU makes it fast,
    else the small ResNet, which trains from random weights in minutes on a CPU."""
    if device == "cpu":
        return CPU_BACKBONE
    import torch  # only here: the app imports this module without torch

    return GPU_BACKBONE if torch.cuda.is_available() else CPU_BACKBONE


def _resolve_frozen(c: TrainConfig) -> None:
    c.frozen = bool(c.frozen)
    if c.frozen and not c.pretrained and not c.weights:
        raise UserError("A frozen backbone with random weights learns nothing: name pretrained weights with "
                        "--weights FILE (a .pth or .safetensors file, or a run's checkpoint), or drop --frozen to "
                        "train the whole network.")
    if c.frozen and c.mode == "triplet" and c.mining == "none" and c.dataset != "triplets":
        c.mining = "batch-hard"  # P x K batches of cached features cost next to nothing


def _check_choice(name: str, value: str, choices) -> None:
    if value not in choices:
        raise UserError(f"Unknown {name} '{value}': choose one of {', '.join(choices)}.")
