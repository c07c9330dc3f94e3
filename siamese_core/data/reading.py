"""A recipe that reads the data: before training, a sample of the images is measured and the settings left open
(None) are chosen from what they measure, never from a data set's name. docs/recipe.md: "Reading the images".

    describe_images(paths, labels) -> dict       what a sample of at most 200 images measures (~1-2 s on 10,000 files)
    choose_recipe(description, ...) -> dict      the input pipeline, shape, channels, augmentation, flip test
    read_images(config) -> Reading | None        both, for the images a TrainConfig names (None: nothing to read)
    apply_reading(config) -> TrainConfig         the config with its open fields filled and `reading` recorded

Measured per sampled image, on a grey copy at most 128 pixels on its longer side (issue 23's research,
experiments/recipe/REPORT.md, where these thresholds were measured on signatures, MNIST, photographed digits,
8x8 digits, generated handwriting, faces, person crops and generated colour faces):
- colour: the mean distance of the colour channels from their mean (grey scans and grey photos: about 0);
- paper share: pixels within 15% of the image's range from the border's level; writing on paper (or light ink on
  dark, as MNIST) is mostly background, a photo is not (writing 0.56-0.94, photos 0.24-0.34);
- mid-tone share: pixels 25-75% of the way from the background to the far end; ink is near-binary, a photo is
  full of mid-tones (writing 0.02-0.19, photos 0.36-0.45);
- height and width; for writing, also the ink's box (a scan's empty margins say nothing of the writing's shape).

The rule. Writing = paper >= 0.45 and mid-tones <= 0.27. Small, about square crops of one character whose ink is
about as tall as wide: the digit pipeline, 28x28, the digit ConvNet. Other writing (a signature, a word): the ink
pipeline at 48 high and as wide as the ink's usual shape (at most 144), warps only, no mirror images (48x112 beat
64x64 on new signers by +0.018 ROC AUC). Photos: their own median shape at about 5,000 pixels, padded ("fit"),
grey photos in grey (faces 80x64 beat 64x64 squashed by +0.020 AUC). Torch-free: the Train page asks it too.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, ImageOps

from .. import settings
from ..config import CPU_BACKBONE, TrainConfig, default_backbone, image_size_value, size_words
from .paths import class_folder_files, inside
from .tables import read_csv_columns

SAMPLE = 200  # images measured
INK_SAMPLE = 50  # of them, images whose ink box is measured (writing only; slower: the paper is removed first)
SIDE = 128  # the longer side images are measured at
PHOTO_PIXELS = 5000  # a photo model's input, about (64x64 is 4,096): faces 80x64, people 96x48
# writing: mostly paper, few mid-tones (measured: writing 0.56-0.94 / 0.02-0.19; photos 0.24-0.34 / 0.36-0.45)
PAPER_AT_LEAST, MIDTONES_AT_MOST = 0.45, 0.27
GREY_BELOW = 3.0  # mean channel distance (0-255) under which colour images are grey
INK_HEIGHT, INK_LONGEST = 48, 144
ONE_GLYPH_ASPECT = 1.3  # ink at most this much wider than tall: one character
SMALL_CROP = 160  # images at most this many pixels on their longer side, about square: crops of one character


@dataclass
class Reading:
    """What a sample of the images measured, what that chose, and the sentence that says so."""
    measured: dict
    chose: dict  # TrainConfig field -> value
    sentence: str
    kept: list = field(default_factory=list)  # fields the person set, which the reading left as they were

    def to_dict(self) -> dict:
        return {"measured": self.measured, "chose": self.chose, "sentence": self.sentence, "kept": self.kept}


# ---------------------------------------------------------------- measuring

def _measure(path) -> Optional[dict]:
    """One image's measures, or None when it cannot be read (an unreadable file says nothing of the others)."""
    try:
        with Image.open(path) as img:
            if img.width * img.height > settings.max_image_pixels():
                return None
            img.draft("RGB", (SIDE, SIDE))  # JPEG: decoded at a reduced scale, much faster on large photos
            img = ImageOps.exif_transpose(img.convert("RGB"))
    except Exception:  # noqa: BLE001 - a malformed file can make a decoder fail in any way
        return None
    width, height = img.size  # after draft: the shape is what counts, and it is kept
    if max(img.size) > SIDE:
        scale = SIDE / max(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.Resampling.BOX)
    rgb = np.asarray(img, dtype=np.float32)
    colour = float(np.abs(rgb - rgb.mean(axis=2, keepdims=True)).mean())
    grey = rgb.mean(axis=2)
    level = float(np.median(np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])))
    low, high = np.percentile(grey, [1, 99])
    far = high if abs(high - level) >= abs(level - low) else low  # the end of the range away from the background
    distance = np.abs(grey - level) / max(abs(far - level), 1.0)
    return {"height": height, "width": width, "colour": colour, "paper": float((distance < 0.15).mean()),
            "midtones": float(((distance > 0.25) & (distance < 0.75)).mean())}


def _full_size(path) -> Optional[tuple]:
    """(height, width) as stored, upright (the header only)."""
    try:
        with Image.open(path) as img:
            width, height = img.size
            if img.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # turned a quarter by its orientation tag
                width, height = height, width
            return height, width
    except Exception:  # noqa: BLE001
        return None


def describe_images(paths, labels=None, sample: int = SAMPLE, seed: int = 0) -> dict:
    """What a set of images measures, from a random sample of at most `sample` of them (medians). Counting
    classes needs no decoding; nothing else reads every file. `labels`: one per path, or None."""
    from .images import open_image
    from .ink_input import ink_box_shape

    started = time.perf_counter()
    paths = list(paths)
    rng = np.random.default_rng(seed)
    picked = rng.choice(len(paths), size=min(sample, len(paths)), replace=False) if paths else []
    rows, read = [], []
    for i in picked:
        row = _measure(paths[i])
        size = _full_size(paths[i]) if row is not None else None
        if row is not None and size is not None:
            row["height"], row["width"] = size
            rows.append(row)
            read.append(i)
    d = {"images": len(paths), "measured": len(rows)}
    if labels is not None:
        counts = Counter(labels)
        d["classes"] = len(counts)
        d["per_class"] = float(np.median(list(counts.values()))) if counts else 0.0
    if not rows:
        d["seconds"] = round(time.perf_counter() - started, 2)
        return d
    col = {k: np.array([r[k] for r in rows], dtype=np.float64) for k in rows[0]}
    d.update({
        "height": float(np.median(col["height"])),
        "width": float(np.median(col["width"])),
        "aspect": float(np.median(col["width"] / col["height"])),  # width over height
        "colour": float(np.median(col["colour"])),
        "paper": float(np.median(col["paper"])),
        "midtones": float(np.median(col["midtones"])),
    })
    d["writing"] = bool(d["paper"] >= PAPER_AT_LEAST and d["midtones"] <= MIDTONES_AT_MOST)
    if d["writing"]:
        shapes = []
        for i in read[:INK_SAMPLE]:
            try:
                shapes.append(ink_box_shape(open_image(paths[i])))
            except Exception:  # noqa: BLE001 - as above
                continue
        shapes = [s for s in shapes if s]
        if shapes:
            d["ink_aspect"] = float(np.median([w / h for h, w in shapes]))
    d = {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()}
    d["seconds"] = round(time.perf_counter() - started, 2)
    return d


# ---------------------------------------------------------------- choosing

def _round(x: float, step: int = 16, least: int = 16) -> int:
    return max(least, int(round(x / step)) * step)


def _shape_words(aspect: float) -> str:
    return "taller than wide" if aspect < 0.87 else "wider than tall" if aspect > 1.15 else "about square"


def choose_recipe(d: dict, backbone: Optional[str] = None, default_side: int = 64) -> dict:
    """The choices for a description (describe_images): {"fields": TrainConfig fields, "kind": "glyphs", "writing"
    or "photos", "aspect": the shape they follow (width over height), "grey"}. `backbone`: the one that will train
    (None: the rule may choose one); `default_side`: that backbone's default square side, whose pixels a photo's
    shape keeps for backbones other than the project's small ones (the 5,000-pixel rule was measured on the small
    ResNet)."""
    if not d.get("measured"):
        return {"fields": {}, "kind": None}
    own = backbone in (None, "convnet", CPU_BACKBONE)  # the project's own networks: any channels, any size
    grey = d.get("colour", 0.0) < GREY_BELOW
    if d.get("writing"):
        aspect = float(np.clip(d.get("ink_aspect", d.get("aspect", 1.0)), 1 / 3, 3.0))
        small_crop = max(d["height"], d["width"]) <= SMALL_CROP and 0.75 <= d["aspect"] <= 1.33
        if aspect <= ONE_GLYPH_ASPECT and small_crop:
            fields = {"input": "digit", "augment": "digits", "flip_test": False}
            if backbone in (None, "convnet"):
                fields.update(backbone="convnet", image_size=28, channels=1)
            elif own:
                fields["channels"] = 1
            return {"fields": fields, "kind": "glyphs", "aspect": aspect, "grey": True}
        if aspect >= 1:
            height, width = INK_HEIGHT, min(_round(INK_HEIGHT * aspect), INK_LONGEST)
        else:
            height, width = min(_round(INK_HEIGHT / aspect), INK_LONGEST), INK_HEIGHT
        fields = {"input": "ink", "augment": "ink", "flip_test": False}
        if own:
            fields.update(backbone=backbone or CPU_BACKBONE, image_size=image_size_value(height, width), channels=1)
        return {"fields": fields, "kind": "writing", "aspect": aspect, "grey": True}
    aspect = float(np.clip(d.get("aspect", 1.0), 1 / 3, 3.0))
    pixels = PHOTO_PIXELS if own else default_side * default_side
    width = _round((pixels * aspect) ** 0.5)
    height = _round(width / aspect)
    fields = {"input": "fit", "image_size": image_size_value(height, width), "augment": "photos"}
    if grey and own:
        fields["channels"] = 1
    return {"fields": fields, "kind": "photos", "aspect": aspect, "grey": grey}


def sentence(choice: dict, values: dict) -> str:
    """The reading in one plain sentence, for the `values` that will run (the choices, and what the person set):
    "These look like writing on paper, wider than tall: ink cleaned, 48x112, no mirror images." """
    size = f", {size_words(values['image_size'])}" if values.get("image_size") is not None else ""
    shape = _shape_words(choice["aspect"])
    if choice["kind"] == "glyphs":
        seen = f"single handwritten characters: found, centred and scaled as MNIST's digits{size}"
    elif choice["kind"] == "writing":
        seen = f"writing on paper, {shape}: " + ("ink cleaned" if values.get("input") == "ink" else
                                                  f"{values.get('input')} input") + size
    else:
        kept = {"fit": ", shape kept", "resize": ", squashed to the size"}.get(values.get("input"), "")
        seen = f"photos{' in grey' if choice['grey'] else ''}, {shape}{(':' + size[1:]) if size else ''}{kept}"
    mirror = values.get("flip_test") is False or values.get("augment") in ("ink", "digits", "none")
    return f"These look like {seen}, {'no mirror images' if mirror else 'mirror images allowed'}."


# ---------------------------------------------------------------- the images a config names

def config_images(config: TrainConfig) -> Optional[tuple]:
    """(paths, labels or None) of the training images a config names, not decoded; None for the built-in
    digits and MNIST (they keep their own recipe) or when nothing readable is named. Nothing outside the folder
    named is listed (class_folder_files and the triplet names are confined as the loaders confine them)."""
    if config.dataset == "folder" and config.train_path and Path(config.train_path).is_dir():
        found, _ = class_folder_files(config.train_path)
        return [p for _, members in found for p in members], [c for c, members in found for _ in members]
    if config.dataset == "triplets" and config.triplets and Path(config.triplets).is_file():
        folder = Path(config.images) if config.images else Path(config.triplets).parent
        if not folder.is_dir():
            return None
        table, columns = read_csv_columns(config.triplets, ("Anchor", "Positive", "Negative"), "triplet file")
        names = sorted({str(v).strip() for key in ("anchor", "positive", "negative") for v in table[columns[key]]})
        paths = [folder / n for n in names if n and inside(folder, folder / n)]
        labels = _identities([p.name for p in paths], config.identity_pattern)
        return paths, labels
    return None


def _identities(names: list, pattern: Optional[str]) -> Optional[list]:
    try:
        regex = re.compile(pattern) if pattern else None
    except re.error:
        return None
    found = [regex.search(n) if regex else None for n in names]
    if not names or not all(m and m.groups() for m in found):
        return None
    return [m.group(1) for m in found]


def _backbone_for_rule(config: TrainConfig) -> Optional[str]:
    """The backbone the rule works for: the one named; None when resolve would choose the small ResNet (this
    machine's default: the rule may then choose the digit ConvNet for digits); else resolve's (a GPU's)."""
    if config.backbone:
        return config.backbone
    machine = default_backbone(config.device)
    return None if machine == CPU_BACKBONE else machine


def read_images(config: TrainConfig) -> Optional[Reading]:
    """Measure a sample of the images `config` names and choose its open settings; None when there is nothing to
    read (the built-in digits and MNIST, the classic recipe, a path that is not there: resolve() says why)."""
    classic = config.recipe == "classic" or (config.recipe is None and config.mode is not None)
    if config.dataset in ("digits", "mnist") or classic:
        return None
    found = config_images(config)
    if not found or not found[0]:
        return None
    paths, labels = found
    measured = describe_images(paths, labels, seed=config.seed)
    backbone = _backbone_for_rule(config)
    side = TrainConfig.default("image_size", backbone=backbone or CPU_BACKBONE)
    choice = choose_recipe(measured, backbone, side)
    if not choice["fields"]:
        return None
    chose, kept = {}, []
    for name, value in choice["fields"].items():
        if getattr(config, name) is None:
            chose[name] = value
        elif getattr(config, name) != value:
            kept.append(name)
    values = {name: getattr(config, name) for name in _FIELD_WORDS}
    values.update(chose)
    said = sentence(choice, values)
    kept = [k for k in _FIELD_WORDS if k in kept]
    if kept:
        said += " Kept as set: " + ", ".join(_FIELD_WORDS[k] for k in kept) + "."
    return Reading(measured, chose, said, kept)


_FIELD_WORDS = {"image_size": "the image size", "input": "the input", "channels": "the colours",
                "augment": "the augmentation", "flip_test": "the mirror-image test", "backbone": "the backbone"}  # in
# the order "Kept as set" names them


def apply_reading(config: TrainConfig, reading: Optional[Reading] = None) -> TrainConfig:
    """`config` with the fields it left open (None) filled from reading its images (read here unless given), and
    what was measured and chosen kept in `config.reading` and its notes; a field set by the person is never
    changed. A config that was read already, or names nothing to read, comes back as it was."""
    import dataclasses

    if config.reading is not None:
        return config
    reading = reading if reading is not None else read_images(config)
    if reading is None:
        return config
    return dataclasses.replace(config, **reading.chose, reading=reading.to_dict(),
                               notes=list(config.notes) + [reading.sentence])
