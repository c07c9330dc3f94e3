"""Everything needed to rebuild a training run's data and model, as plain values.

A TrainConfig is what the command line builds, what the app will build, and what
`config.json` in a run directory holds. `resolve()` fills in the defaults that
depend on the backbone, so a saved config says exactly what ran.
"""

from __future__ import annotations

import dataclasses
import re
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
Augment = Literal["none", "shift", "photos", "digits", "ink"]  # see siamese_core.data.augment
# How an image becomes the model's input (see siamese_core.data.pipelines): "resize" squashes the whole image to
# height x width (the old behaviour, kept for old models); "fit" keeps its shape, fitted inside and padded with
# its border's level; "digit" finds the ink and centres it as MNIST's digits are; "ink" cleans any writing on
# paper and keeps the ink's own shape.
Input = Literal["resize", "fit", "digit", "ink"]
# How the verdict threshold is chosen on the validation pairs (siamese_core.evaluation.metrics.operating_points):
# the middle of the median same and median different scores, or the rare-same point tuned for --same-share.
ThresholdPolicy = Literal["medians", "same-share"]
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
THRESHOLD_POLICIES: tuple = get_args(ThresholdPolicy)
RARE_SAME_SHARE = 0.1  # the rare-same threshold's share of same pairs, unless --same-share says: one pair in ten
# Reads the person id "0002" from Market-1501 style names like 0002_c1s1_000451_03.jpg.
DEFAULT_IDENTITY_PATTERN = r"^(\d+)_"
# The default recipe's backbones: the small ResNet trains from random weights in minutes on a CPU;
# EfficientNet-B0 where a GPU makes it fast (and the reference designs' backbone).
CPU_BACKBONE = "small-resnet"
GPU_BACKBONE = "timm:efficientnet_b0"
# A time budget (--time): below 10 s there is no room for a step, a validation and a checkpoint; a day is far enough.
MIN_TIME_BUDGET = 10.0
MAX_TIME_BUDGET = 24 * 3600.0
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|secs|seconds?|m|min|mins|minutes?|h|hours?)?\s*$", re.IGNORECASE)
# The largest side an image_size may name: far above any size trained here (224); a checkpoint's spec is held to it.
MAX_IMAGE_SIDE = 1024
MIN_IMAGE_SIDE = 8


def image_hw(size) -> tuple:
    """(height, width) of an image_size: a whole number is a square (as every run before shapes), a pair is
    [height, width]."""
    if isinstance(size, (list, tuple)):
        height, width = size
        return int(height), int(width)
    return int(size), int(size)


def image_size_value(height: int, width: int):
    """image_size as configs and checkpoints store it: a whole number when square (readers of old files
    unchanged), else [height, width]."""
    return int(height) if height == width else [int(height), int(width)]


def size_words(size) -> str:
    """'128x64' (height x width) for people."""
    height, width = image_hw(size)
    return f"{height}x{width}"


def parse_image_size(text: str):
    """The command line's --image-size: '64' (a square) or '128x64' (height x width), as image_size stores it;
    anything else is refused in a sentence."""
    words = str(text).strip().lower().replace("×", "x")
    parts = words.split("x") if words else []
    if not 1 <= len(parts) <= 2 or not all(p.strip().isdigit() for p in parts):
        raise UserError(f"--image-size '{text}' is not a size: give one number for a square (64) or height x width "
                        "(128x64).")
    sides = [int(p) for p in parts]
    if min(sides) < MIN_IMAGE_SIDE or max(sides) > MAX_IMAGE_SIDE:
        bound = f"at least {MIN_IMAGE_SIDE}" if min(sides) < MIN_IMAGE_SIDE else f"at most {MAX_IMAGE_SIDE}"
        raise UserError(f"--image-size '{text}': each side must be {bound} pixels.")
    return image_size_value(sides[0], sides[-1])


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
    image_size: Optional[object] = None  # a whole number (a square) or [height, width]
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
    # seconds the whole run may take (None: train for `epochs`); the trainer measures its speed and sets the steps
    time_budget: Optional[float] = None
    batch_size: Optional[int] = None
    pairs_per_epoch: Optional[int] = None
    eval_pairs: int = 1000
    same_share: Optional[float] = None  # the share of same pairs the rare-same threshold is tuned for
    threshold_policy: Optional[ThresholdPolicy] = None  # which threshold gives the verdict (default: medians)
    save_every: int = 0
    seed: int = 0
    device: str = "auto"
    precision: Precision = "auto"
    channels_last: Optional[bool] = None
    # what the things compared are called, for plain-words verdicts ("same person"); None: guessed from the data's name
    class_word: Optional[str] = None
    data_name: Optional[str] = None  # where the images came from, for people: "faces10.zip" (None: from the paths)
    notes: list = field(default_factory=list)
    # what reading the images measured and chose (siamese_core.data.reading), with its sentence; None: not read
    reading: Optional[dict] = None

    @property
    def is_convnet(self) -> bool:
        return self.backbone == "convnet"

    @property
    def uses_default_recipe(self) -> bool:
        """The measured default recipe, not the reference designs' settings ("classic")."""
        return self.recipe == "default"

    @property
    def is_digit_like(self) -> bool:
        """Images of ink on paper: the digit ConvNet's, or any read by the digit or ink input pipeline
        (never mirrored: a mirrored 2 or signature is not one)."""
        return self.is_convnet or self.input in ("digit", "ink")

    def resolve(self) -> "TrainConfig":
        """Check the values and fill in the defaults (returns a new config that says exactly what runs).

        Two recipes. The reference designs' settings ("classic": pair head or plain triplets, Adam at a
        constant rate, no augmentation) whenever a mode is named, so the seed designs run as they did.
        Otherwise the measured default: an L2-normalised embedding trained with batch-hard triplet loss
        over P x K batches plus a cosine identity loss, AdamW with warm-up and a cosine schedule,
        augmentation that fits the data, and a backbone that fits the machine (docs/recipe.md: "The default recipe").

        Each concern fills in its own defaults, in this order because later ones read earlier choices; then
        every value is checked; then the starting weights, whose rule changes the mining after its check.
        """
        c = dataclasses.replace(self, notes=list(self.notes))
        _check_choice("dataset", c.dataset, DATASETS)  # first: the data's kind decides several defaults
        c._choose_recipe_and_model()
        c._choose_data_and_split()
        c._choose_input_and_augmentation()
        c._choose_head_and_losses()
        c._choose_optimisation_and_schedule()
        c._choose_threshold()
        c._check()
        c._choose_starting_weights()
        if c.class_word is None:
            c.class_word = _guess_class_word(c)
        return c

    # The steps of resolve(), each on the copy it returns: a default fills only a field left as None.

    def _choose_recipe_and_model(self) -> None:
        """The recipe, the backbone, the mode and the mining, which every later default reads (so the recipe's and
        the mode's names are checked here, first). Naming a mode selects the classic recipe, so the seed designs run
        as they did; otherwise the default recipe's embedding, trained with batch-hard mining, on a backbone that
        fits the machine; the classic recipe keeps the reference designs' EfficientNet-B0 and pair head."""
        if self.recipe is None:
            self.recipe = "classic" if self.mode is not None else "default"
        _check_choice("recipe", self.recipe, RECIPES)
        if self.backbone is None:
            self.backbone = default_backbone(self.device) if self.uses_default_recipe else GPU_BACKBONE
        if self.mode is None:
            self.mode = "triplet" if self.uses_default_recipe else "pair"
        _check_choice("mode", self.mode, MODES)
        if self.mining is None:
            self.mining = "batch-hard" if self.uses_default_recipe and self.mode == "triplet" else "none"

    def _choose_data_and_split(self) -> None:
        """How the images are split for validation. Ten digit classes are too few to hold some out and still learn
        what "same" means (measured: ~74% on three unseen digits), so digits split by image, as the classic digit
        script did; folders and triplets split by class, the honest Siamese test. The default recipe holds out at
        most 50 classes: they give 1,000 validation pairs from every angle, and the rest are better trained on."""
        if self.split is None:
            self.split = "image" if self.dataset in ("digits", "mnist") else "class"
        if self.max_val_classes is None:
            self.max_val_classes = 50 if self.uses_default_recipe else 0

    def _choose_input_and_augmentation(self) -> None:
        """How an image becomes the model's input, and how it varies while training. Digits are found, centred and
        scaled as MNIST's were, so photos and drawings match them; other images keep their shape ("fit"); size and channels are the backbone's own (28 grey
        pixels for the digit ConvNet, 64 for the small ResNet, 224 for ImageNet backbones). The default recipe
        augments digits without mirroring them and photos with crops, flips and colour changes; the classic recipe
        does not augment. Configs written before augmentation had policies say True or False: shift or none."""
        if self.input is None:
            self.input = ("digit" if self.dataset in ("digits", "mnist") else
                          "fit" if self.uses_default_recipe else "resize")  # classic: the reference designs' squash
        if self.image_size is None:
            self.image_size = 28 if self.is_convnet else 64 if self.backbone == "small-resnet" else 224
        if self.channels is None:
            self.channels = 1 if self.is_convnet else 3
        if isinstance(self.augment, bool):
            self.augment = "shift" if self.augment else "none"
        if self.augment is None:
            digit_like = "ink" if self.input == "ink" else "digits"
            self.augment = (digit_like if self.is_digit_like else "photos") if self.uses_default_recipe else "none"

    def _choose_head_and_losses(self) -> None:
        """The pair head, the embedding and its losses. As the reference designs: the digit ConvNet's head is one
        linear layer over the absolute difference (no norm, no dropout), photos' a product with norm and dropout.
        The default recipe's embedding is 128 numbers (classic: 512) behind a BatchNorm neck; photos are embedded
        with their mirror image averaged in (never digits; a frozen head learns from cached mirror images instead);
        a cosine identity loss goes beside mined triplets (not beside a frozen backbone's cached features)."""
        default = self.uses_default_recipe
        if self.head is None:
            self.head = "absdiff" if self.is_convnet else "product"
        if self.head_norm is None:
            self.head_norm = not self.is_convnet
        if self.dropout is None:
            self.dropout = 0.0 if self.is_convnet else 0.3
        if self.embedding_dim is None:
            self.embedding_dim = 128 if default else 512
        if self.margin is None:
            self.margin = 1.0 if self.mode == "contrastive" else 0.3
        if self.neck is None:
            self.neck = default and self.mode != "pair"
        if self.flip_test is None:
            self.flip_test = default and not self.is_digit_like and not self.frozen
        if self.id_loss is None:
            self.id_loss = 1.0 if default and self.mining != "none" and not self.frozen else 0.0

    def _choose_optimisation_and_schedule(self) -> None:
        """The optimiser, the learning rate over the run and the batch. The default recipe: AdamW (weight decay
        0.05), warming up over 5% of the steps, then a cosine decay; classic: Adam at a constant rate. The rate is
        1e-4 to fine-tune pretrained weights, 1e-3 from random weights or for a frozen backbone's small head. A batch
        is 128 for the small ConvNet; else 64 images in P x K batches (default) or 32 pairs or triplets (classic)."""
        default = self.uses_default_recipe
        if self.optimizer is None:
            self.optimizer = "adamw" if default else "adam"
        if self.schedule is None:
            self.schedule = "cosine" if default else "constant"
        if self.warmup is None:
            self.warmup = 0.05 if self.schedule == "cosine" else 0.0
        if self.weight_decay is None:
            self.weight_decay = 0.05 if self.optimizer == "adamw" else 0.0
        if self.lr is None and self.frozen:
            self.lr = 1e-3  # only a small head trains
        if self.lr is None:
            fine_tuned = self.pretrained and self.backbone.startswith(("timm:", "torchvision:"))
            self.lr = 1e-4 if fine_tuned else 1e-3
        if self.batch_size is None:
            self.batch_size = 128 if self.is_convnet else 64 if default else 32

    def _choose_threshold(self) -> None:
        """Two thresholds are chosen on the validation pairs: the middle of the median same and median different
        scores, which suits a verdict on one pair of unknown prior (it cost at most 2 points on balanced pairs of new
        identities where a share of 0.3 cost up to 6, research/recipe Q1), and a rare-same point tuned as if
        `same_share` of all pairs were the same (default one in ten; sequential digit pairs hold about 6%).
        The verdict uses the middle of the medians, in both recipes (the classic recipe's share, 0.5, cost up to
        4.7 points on the same rows), unless a share is asked for: whoever names one gets that point."""
        if self.threshold_policy is None:
            self.threshold_policy = "medians" if self.same_share is None else "same-share"
        if self.same_share is None:
            self.same_share = RARE_SAME_SHARE

    def _check(self) -> None:
        """Refuse what cannot run, in a sentence that names the flag. In this order, the order the checks had when
        each followed its default, so a config with several faults hears of the same one first."""
        _check_choice("split", self.split, SPLITS)
        _check_choice("mining", self.mining, MININGS)
        _check_choice("precision", self.precision, PRECISIONS)
        _check_choice("head", self.head, HEADS)
        if self.dataset == "folder" and not self.train_path:
            raise UserError("Say where the training images are: --train_path DIR (one folder per class), "
                            "or --dataset digits for the built-in digits.")
        if self.dataset == "triplets" and not self.triplets:
            raise UserError("--dataset triplets needs --triplets CSV (columns Anchor, Positive, Negative).")
        if self.mining != "none" and self.mode != "triplet":
            raise UserError("--mining only applies to --mode triplet.")
        for name, least in (("epochs", 1), ("eval_pairs", 2), ("pairs_per_epoch", 2)):
            value = getattr(self, name)
            if value is not None and value < least:
                raise UserError(f"--{name.replace('_', '-')} must be at least {least}.")
        if self.time_budget is not None and not MIN_TIME_BUDGET <= self.time_budget <= MAX_TIME_BUDGET:
            raise UserError(f"--time must be from {MIN_TIME_BUDGET:g} seconds to {MAX_TIME_BUDGET // 3600:g} hours "
                            "(for example 60s, 2m or 15m).")
        if not 0.0 < self.val_fraction < 1.0:
            raise UserError("--val-fraction must be between 0 and 1 (for example 0.3).")
        if self.max_val_classes < 0 or self.max_val_classes == 1:
            raise UserError("--max-val-classes must be 0 (no cap) or at least 2.")
        _check_choice("input", self.input, INPUTS)
        self._check_image_size()
        _check_choice("augment", self.augment, AUGMENTS)
        if self.id_loss < 0:
            raise UserError("--id-loss is a weight: 0 (off) or more.")
        if self.id_loss > 0 and self.mining == "none":
            raise UserError("--id-loss needs the classes of the training images: use it with --mining.")
        _check_choice("optimizer", self.optimizer, OPTIMIZERS)
        _check_choice("schedule", self.schedule, SCHEDULES)
        if not 0.0 <= self.warmup < 1.0:
            raise UserError("--warmup is a share of all training steps, from 0 to below 1 (for example 0.05).")
        if self.lr <= 0:
            raise UserError("--lr must be positive (for example 0.001).")
        if not 0.0 < self.same_share < 1.0:
            raise UserError("--same-share is the share of same pairs the threshold is tuned for, between 0 and 1.")
        _check_choice("threshold policy", self.threshold_policy, THRESHOLD_POLICIES)
        if self.batch_size < 2:
            raise UserError("--batch-size must be at least 2.")

    def _check_image_size(self) -> None:
        """A whole number or [height, width], each side from MIN_IMAGE_SIDE to MAX_IMAGE_SIDE; stored as
        image_size_value gives it (a square pair becomes one number)."""
        size = self.image_size
        pair = isinstance(size, (list, tuple)) and len(size) == 2
        sides = list(size) if pair else [size]
        if not all(isinstance(s, int) and not isinstance(s, bool) for s in sides):
            raise UserError("--image-size must be a whole number of pixels (64) or height x width (128x64).")
        if min(sides) < MIN_IMAGE_SIDE:
            raise UserError(f"--image-size must be at least {MIN_IMAGE_SIDE} pixels.")
        if max(sides) > MAX_IMAGE_SIDE:
            raise UserError(f"--image-size must be at most {MAX_IMAGE_SIDE} pixels a side.")
        self.image_size = image_size_value(*image_hw(size))

    @property
    def height_width(self) -> tuple:
        """(height, width) of the images the model sees."""
        return image_hw(self.image_size)

    def _choose_starting_weights(self) -> None:
        """Where the backbone's weights start, and whether they train. The project's own small networks have no
        pretrained weights; a frozen backbone needs real ones (pretrained or --weights), or it learns nothing; a
        frozen triplet run mines P x K batches, which cost next to nothing over cached features. This comes after
        the checks, as it always did, so --id-loss on a frozen run without --mining is refused as asked."""
        if self.backbone in ("convnet", CPU_BACKBONE):
            self.pretrained = False
        self.frozen = bool(self.frozen)
        if self.frozen and not self.pretrained and not self.weights:
            raise UserError("A frozen backbone with random weights learns nothing: name pretrained weights with "
                            "--weights FILE (a .pth or .safetensors file, or a run's checkpoint), or drop --frozen to "
                            "train the whole network.")
        if self.frozen and self.mode == "triplet" and self.mining == "none" and self.dataset != "triplets":
            self.mining = "batch-hard"

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


def parse_duration(text) -> float:
    """Seconds from '90', '60s', '2m', '15 min' or '1h' (a number alone is seconds); a sentence for anything else."""
    match = _DURATION.match(str(text))
    if not match:
        raise UserError(f"'{text}' is not a length of time: write seconds or minutes, for example 60s, 2m or 15m.")
    unit = (match.group(2) or "s")[0].lower()
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600}[unit]


def duration_words(seconds: float) -> str:
    """A length of time as a person says it: '40 s', '1 min', '2 min 30 s', '1 h 5 min'."""
    seconds = int(round(max(0.0, seconds)))
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min" + (f" {rest} s" if rest and minutes < 10 else "")
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h" + (f" {minutes} min" if minutes else "")


def _check_choice(name: str, value: str, choices) -> None:
    if value not in choices:
        raise UserError(f"Unknown {name} '{value}': choose one of {', '.join(choices)}.")
