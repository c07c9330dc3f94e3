"""The field's standard recipe, written plainly: the strong reference beside each row of real_data.py.

Nothing of siamese_core is in its input, model or loop (only the metrics are shared, so both sides are scored
alike). The recipe, the same for every row but for the input handling its field uses:

  - model: torchvision resnet18 from random weights, its classifier replaced by a linear 128-d embedding,
    L2-normalised; grey input is repeated to resnet18's three channels; pixels scaled to [-1, 1];
  - batches: P x K (16 identities x 4 images; 10 x 6 when there are only ten classes, as MNIST's digits);
  - loss: batch-hard triplets (pytorch-metric-learning's BatchHardMiner and TripletMarginLoss, margin 0.2);
  - optimiser: AdamW (lr 1e-3, weight decay 5e-4), the learning rate on a cosine over the time budget;
  - threshold: the best balanced accuracy on pairs of the held-out training identities (cosine scores);
  - input, by field:
      ink     signatures: grey, the paper's level (its median) removed and the ink made bright, cropped to the
              ink's box, squashed to 64x64; small warps (turn 5 degrees, shift 5%, scale 10%, shear 5), never a
              mirror image (as the research script that reproduced the issue's reference figures, with the
              box crop the field's preprocessing uses: forged scans were framed tighter than genuine ones);
      digits  MNIST digits as they are (28x28 grey, no augmentation); any other image (a photo of a digit) is
              brought to MNIST's form: ink out of the paper as above, its box fitted in 20x20, centred in 28x28;
      faces   photos: RGB at 80x64 (height x width, the AT&T photos' shape), mirror images and small shifts;
      people  re-identification's usual recipe: RGB at 128x64, mirror images, 10-pixel pad and random crop,
              random erasing; a BN neck (batch norm after the pooled 512 features, no bias) with an identity
              classifier (cross-entropy, label smoothing 0.1) beside the batch-hard triplet loss (margin 0.3,
              on the features before the neck); the vectors compared are those after the neck.

The time budget counts from the start of decoding the training images to the last step (the step that ends
nearest to it), as the product's counts its own decoding; the threshold's calibration comes after.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image

EMBEDDING, BATCH, LR, WEIGHT_DECAY = 128, 64, 1e-3, 5e-4


@dataclass(frozen=True)
class Field:
    name: str
    size: tuple  # (height, width)
    channels: int
    margin: float = 0.2
    neck: bool = False  # BN neck and identity loss (re-identification)


FIELDS = {
    "ink": Field("ink", (64, 64), 1),
    "digits": Field("digits", (28, 28), 1),
    "faces": Field("faces", (80, 64), 3),
    "people": Field("people", (128, 64), 3, margin=0.3, neck=True),
}


# ---------------------------------------------------------------- input

def as_image(source) -> Image.Image:
    if isinstance(source, Image.Image):
        return source
    if isinstance(source, np.ndarray):
        return Image.fromarray(source)
    with Image.open(Path(source)) as img:
        img.load()
        return img


def ink_on_paper(img: Image.Image, box: bool = True) -> np.ndarray:
    """Grey, the paper's level (its median) removed and the ink bright in [0, 1]; cropped to the ink's box.

    Ink is what lies on the far side of the paper's level from its own brightness: darker than light paper, lighter
    than dark paper (MNIST's black); paper lighter than its median (a white margin) is not ink."""
    grey = np.asarray(img.convert("L"), dtype=np.float32)
    paper = float(np.median(grey))
    ink = np.clip(paper - grey if paper >= 128 else grey - paper, 0, None)
    ink = np.clip(ink / max(float(np.percentile(ink, 99.5)), 1.0), 0, 1)
    if box:
        rows, cols = np.flatnonzero((ink > 0.3).sum(1) >= 2), np.flatnonzero((ink > 0.3).sum(0) >= 2)
        if len(rows) and len(cols):
            ink = ink[max(0, rows[0] - 2):rows[-1] + 3, max(0, cols[0] - 2):cols[-1] + 3]
    return ink


def mnist_form(img: Image.Image) -> np.ndarray:
    """A 28x28 grey MNIST digit as it is; any other image as MNIST made its digits: the ink's box fitted in 20x20,
    centred in 28x28."""
    if img.mode == "L" and img.size == (28, 28):
        return np.asarray(img)
    ink = Image.fromarray((ink_on_paper(img) * 255).astype(np.uint8))
    scale = 20 / max(ink.size)
    ink = ink.resize((max(1, round(ink.width * scale)), max(1, round(ink.height * scale))), Image.Resampling.BILINEAR)
    canvas = Image.new("L", (28, 28))
    canvas.paste(ink, ((28 - ink.width) // 2, (28 - ink.height) // 2))
    return np.asarray(canvas)


def prepare(source, field: Field) -> np.ndarray:
    """One image as the field's input: uint8 (channels, height, width)."""
    img = as_image(source)
    height, width = field.size
    if field.name == "ink":
        ink = Image.fromarray((ink_on_paper(img) * 255).astype(np.uint8))
        pixels = np.asarray(ink.resize((width, height), Image.Resampling.BILINEAR))
    elif field.name == "digits":
        pixels = mnist_form(img)
    else:
        pixels = np.asarray(img.convert("RGB" if field.channels == 3 else "L")
                            .resize((width, height), Image.Resampling.BILINEAR))
    pixels = pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)
    if field.channels == 3 and pixels.shape[0] == 1:
        pixels = np.repeat(pixels, 3, axis=0)
    return np.ascontiguousarray(pixels)


def prepare_all(sources, field: Field) -> np.ndarray:
    with ThreadPoolExecutor(4) as pool:  # Pillow releases the GIL while it decodes
        return np.stack(list(pool.map(lambda s: prepare(s, field), sources)))


def augmenter(field: Field):
    """The field's augmentation of a float batch (B, C, H, W) in [0, 1], image by image; None for none."""
    from torchvision.transforms import v2

    if field.name == "ink":
        one = v2.RandomAffine(degrees=5, translate=(0.05, 0.05), scale=(0.9, 1.1), shear=5)
    elif field.name == "faces":
        one = v2.Compose([v2.RandomHorizontalFlip(), v2.RandomAffine(degrees=0, translate=(0.05, 0.05),
                                                                      scale=(0.95, 1.05))])
    elif field.name == "people":
        one = v2.Compose([v2.RandomHorizontalFlip(), v2.Pad(10), v2.RandomCrop(field.size),
                          v2.RandomErasing(p=0.5, value=0.5)])
    else:
        return None
    import torch

    return lambda batch: torch.stack([one(img) for img in batch])


# ---------------------------------------------------------------- model

def build_net(field: Field, n_identities: int):
    import torch
    import torchvision

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body = torchvision.models.resnet18(weights=None)
            if field.neck:
                self.body.fc = torch.nn.Identity()
                self.neck = torch.nn.BatchNorm1d(512)
                self.neck.bias.requires_grad_(False)
                self.classifier = torch.nn.Linear(512, n_identities, bias=False)
            else:
                self.body.fc = torch.nn.Linear(512, EMBEDDING)

        def forward(self, x):
            """(features for the triplet loss, identity logits or None)."""
            x = (x.expand(-1, 3, -1, -1) - 0.5) / 0.5
            features = self.body(x)
            if field.neck:
                return features, self.classifier(self.neck(features))
            return torch.nn.functional.normalize(features, dim=1), None

        def vectors(self, x):
            x = (x.expand(-1, 3, -1, -1) - 0.5) / 0.5
            features = self.body(x)
            return torch.nn.functional.normalize(self.neck(features) if field.neck else features, dim=1)

    return Net()


# ---------------------------------------------------------------- training

def pk_batch(members: list, p: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """P identities at random, K of each one's images (drawn again when it has fewer than K)."""
    chosen = rng.choice(len(members), size=min(p, len(members)), replace=False)
    return np.concatenate([rng.choice(members[c], size=k, replace=len(members[c]) < k) for c in chosen])


@dataclass
class Trained:
    net: object
    steps: int
    seconds: float  # from the start of decoding the training images to the end of the last step


def train(field: Field, sources, labels, budget_s: float, seed: int, started: Optional[float] = None) -> Trained:
    """Decode `sources`, then train for what is left of `budget_s` seconds since `started` (default: now)."""
    import torch
    from pytorch_metric_learning import losses, miners

    started = time.perf_counter() if started is None else started
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    pixels = torch.from_numpy(prepare_all(sources, field))
    _, ids = np.unique(np.asarray(labels), return_inverse=True)
    members = [m for m in (np.flatnonzero(ids == c) for c in range(ids.max() + 1)) if len(m) >= 2]
    p = 16 if len(members) > 10 else len(members)
    k = BATCH // p
    net = build_net(field, int(ids.max()) + 1).to(memory_format=torch.channels_last)
    augment = augmenter(field)
    miner, triplet = miners.BatchHardMiner(), losses.TripletMarginLoss(margin=field.margin)
    identity = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    optimiser = torch.optim.AdamW(net.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
    ids = torch.from_numpy(ids)
    net.train()
    began, steps = time.perf_counter(), 0  # the cosine runs over the time left after decoding
    span = max(budget_s - (began - started), 1e-6)
    while True:
        elapsed = time.perf_counter() - began
        if elapsed + (0.5 * elapsed / steps if steps else 0.0) >= span:  # stop at the step ending nearest the budget
            break
        for group in optimiser.param_groups:
            group["lr"] = LR * 0.5 * (1 + np.cos(np.pi * min(elapsed / span, 1.0)))
        index = torch.from_numpy(pk_batch(members, p, k, rng))
        x = pixels[index].float() / 255.0
        if augment is not None:
            x = augment(x)
        features, logits = net(x.contiguous(memory_format=torch.channels_last))
        y = ids[index]
        loss = triplet(features, y, miner(features, y))
        if logits is not None:
            loss = loss + identity(logits, y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        steps += 1
    return Trained(net.eval(), steps, time.perf_counter() - started)


# ---------------------------------------------------------------- scoring

def embed(net, pixels: np.ndarray, batch: int = 256) -> np.ndarray:
    import torch

    net.eval()
    with torch.inference_mode():
        return torch.cat([net.vectors((torch.from_numpy(pixels[i:i + batch]).float() / 255.0)
                                      .contiguous(memory_format=torch.channels_last))
                          for i in range(0, len(pixels), batch)]).numpy()


def cosine(vectors_a: np.ndarray, vectors_b: np.ndarray) -> np.ndarray:
    return (vectors_a * vectors_b).sum(axis=1)


def best_balanced_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold (same when score >= it) with the best mean of the same and the different pairs' accuracy."""
    same = np.asarray(same).astype(bool)
    order = np.argsort(scores)
    s, truth = np.asarray(scores, dtype=np.float64)[order], same[order]
    # a threshold at s[i] calls pairs i.. same: different ones below are right, same ones from i on are right
    diff_below = np.concatenate([[0], np.cumsum(~truth)])[:-1]
    same_from = truth.sum() - np.concatenate([[0], np.cumsum(truth)])[:-1]
    balanced = 0.5 * (same_from / max(1, truth.sum()) + diff_below / max(1, (~truth).sum()))
    return float(s[int(np.argmax(balanced))])


class PlainReference:
    """A trained reference as real_data.py scores a model: prepare, embed, score pairs, a threshold."""

    def __init__(self, field: Field, trained: Trained, threshold: float = 0.0):
        self.field, self.net, self.steps, self.seconds = field, trained.net, trained.steps, trained.seconds
        self.threshold = threshold

    def prepare(self, source) -> np.ndarray:
        return prepare(source, self.field)

    def embed(self, pixels: np.ndarray) -> np.ndarray:
        return embed(self.net, np.asarray(pixels))

    def pair_scores(self, vectors_a, vectors_b) -> np.ndarray:
        return cosine(np.asarray(vectors_a), np.asarray(vectors_b))

    def score_pairs(self, images_a, images_b) -> np.ndarray:
        return self.pair_scores(self.embed(prepare_all(images_a, self.field)),
                                self.embed(prepare_all(images_b, self.field)))

    def describe(self) -> str:
        height, width = self.field.size
        extra = ", BN neck + identity loss" if self.field.neck else ""
        return (f"resnet18 {height}x{width} x{self.field.channels}, {self.field.name} input{extra}, "
                f"{self.steps} steps of {BATCH}")
