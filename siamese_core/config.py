"""Everything needed to rebuild a training run's data and model, as plain values.

A TrainConfig is what the command line builds, what the app will build, and what
`config.json` in a run directory holds. `resolve()` fills in the defaults that
depend on the backbone, so a saved config says exactly what ran.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Optional

from .errors import UserError

MODES = ("pair", "contrastive", "triplet")
HEADS = ("absdiff", "product", "concat")
DATASETS = ("digits", "mnist", "folder", "triplets")
SPLITS = ("class", "image")
MININGS = ("none", "batch-hard", "semi-hard")
PRECISIONS = ("auto", "fp32", "bf16")
AUGMENTS = ("none", "shift", "photos", "digits")  # see siamese_core.augment
# How an image becomes the model's input: "resize" squashes the whole image to a square;
# "digit" finds the ink and centres it as MNIST's digits are (see siamese_core.digit_input).
INPUTS = ("resize", "digit")
# Reads the person id "0002" from Market-1501 style names like 0002_c1s1_000451_03.jpg.
DEFAULT_IDENTITY_PATTERN = r"^(\d+)_"


@dataclass
class TrainConfig:
    # data
    dataset: str = "folder"
    train_path: Optional[str] = None
    val_path: Optional[str] = None
    triplets: Optional[str] = None
    images: Optional[str] = None
    data_root: Optional[str] = None
    split: Optional[str] = None  # default: by class for folders and triplets, by image for digits
    val_fraction: float = 0.3
    identity_pattern: str = DEFAULT_IDENTITY_PATTERN
    image_size: Optional[int] = None
    channels: Optional[int] = None
    augment: Optional[str] = None  # a policy of AUGMENTS; True/False from older configs mean shift/none
    input: Optional[str] = None  # a pipeline of INPUTS
    # model
    backbone: str = "timm:efficientnet_b0"
    mode: str = "pair"
    head: Optional[str] = None
    head_norm: Optional[bool] = None
    dropout: Optional[float] = None
    embedding_dim: int = 512
    margin: Optional[float] = None
    mining: str = "none"
    pretrained: bool = True
    weights: Optional[str] = None
    # optimisation
    lr: Optional[float] = None
    weight_decay: float = 0.0
    epochs: int = 10
    batch_size: Optional[int] = None
    pairs_per_epoch: Optional[int] = None
    eval_pairs: int = 1000
    save_every: int = 0
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    channels_last: Optional[bool] = None
    # what the things compared are called, for plain-words verdicts ("same digit")
    class_word: Optional[str] = None
    notes: list = field(default_factory=list)

    @property
    def is_convnet(self) -> bool:
        return self.backbone == "convnet"

    def resolve(self) -> "TrainConfig":
        """Check the values and fill in backbone-dependent defaults (returns a new config)."""
        c = dataclasses.replace(self, notes=list(self.notes))
        _check_choice("mode", c.mode, MODES)
        _check_choice("dataset", c.dataset, DATASETS)
        if c.split is None:
            # Ten digit classes are too few to hold some out and still learn what "same" means
            # (measured: ~74% on three unseen digits), so digits split by image, as the classic
            # digit script did; folders and triplets split by class, the honest Siamese test.
            c.split = "image" if c.dataset in ("digits", "mnist") else "class"
        _check_choice("split", c.split, SPLITS)
        _check_choice("mining", c.mining, MININGS)
        _check_choice("precision", c.precision, PRECISIONS)
        if isinstance(c.augment, bool):  # configs written before augmentation had policies
            c.augment = "shift" if c.augment else "none"
        if c.augment is None:
            c.augment = "none"
        _check_choice("augment", c.augment, AUGMENTS)
        if c.input is None:
            # Digits are found, centred and scaled as MNIST's were, so photos and drawings match them.
            c.input = "digit" if c.dataset in ("digits", "mnist") else "resize"
        _check_choice("input", c.input, INPUTS)
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
        if c.image_size is None:
            c.image_size = 28 if c.is_convnet else 224
        if c.image_size < 8:
            raise UserError("--image-size must be at least 8 pixels.")
        if c.channels is None:
            c.channels = 1 if c.is_convnet else 3
        if c.head is None:
            # The reference designs: absolute difference for the digit ConvNet, product for photos.
            c.head = "absdiff" if c.is_convnet else "product"
        if c.head_norm is None:
            c.head_norm = not c.is_convnet  # the ConvNet's head is one linear layer
        if c.dropout is None:
            c.dropout = 0.0 if c.is_convnet else 0.3
        if c.margin is None:
            c.margin = 1.0 if c.mode == "contrastive" else 0.3
        if c.lr is None:
            c.lr = 1e-4 if (c.pretrained and not c.is_convnet) else 1e-3
        if c.lr <= 0:
            raise UserError("--lr must be positive (for example 0.001).")
        if c.batch_size is None:
            c.batch_size = 128 if c.is_convnet else 32
        if c.batch_size < 2:
            raise UserError("--batch-size must be at least 2.")
        if c.is_convnet:
            c.pretrained = False  # nothing to download for the small ConvNet
        if c.class_word is None:
            c.class_word = {"digits": "digit", "mnist": "digit", "triplets": "identity"}.get(c.dataset, "class")
        return c

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def _check_choice(name: str, value: str, choices) -> None:
    if value not in choices:
        raise UserError(f"Unknown {name} '{value}': choose one of {', '.join(choices)}.")


def plural(word: str) -> str:
    """The class word for several: digit -> digits, class -> classes, identity -> identities, person -> people."""
    if word.endswith("person"):
        return word[:-len("person")] + "people"
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in ("a", "e", "i", "o", "u"):
        return word[:-1] + "ies"
    return word + "s"
