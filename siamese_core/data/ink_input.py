"""The "ink" input pipeline: any writing or drawing on paper (a signature, a word, a character) made into
light ink on black, its shape kept. It generalises the digit pipeline (siamese_core.data.digit_input).

Kept from the digit pipeline: grey; the paper's level and uneven light removed (a smooth surface fitted to the
background); ink made bright on black; specks and a photo's frame dropped. Changed: the ink's box keeps its own
shape and is fitted, centred, into a field of any height x width with a small margin (no 20-pixel digit box, no
square); faint strokes are stretched to full brightness after the resize. Measured on new signers' signatures
(issue 23's research, experiments/recipe/REPORT.md): at 48x112 this beat the whole scan squashed to a square by
+0.085 ROC AUC, and the paper's tint, which told genuine from forged scans there, no longer shows.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
from PIL import Image
from scipy import ndimage

from .digit_input import _along_the_frame, _ink_strength
from .images import to_mode

# Larger images are shrunk to this longer side first (a 64x160 field needs no more; it keeps the work fast).
WORK_SIDE = 384
# Ink after the paper is removed: values below this share of the ink's bright end are paper texture.
PAPER_FLOOR = 0.12
# Ink is where the cleaned image exceeds this (0-1).
INK_LEVEL = 0.25
# Ink components smaller than this share of the largest are specks; writing has many small parts (dots).
SPECK_SHARE = 0.02
MARGIN = 0.04  # share of the field's side left empty around the ink's box


def ink_strength(img: Image.Image) -> Optional[np.ndarray]:
    """Ink as 0-1 floats on a black field (paper and uneven light removed), at the work size; None if blank."""
    grey = to_mode(img, 1)
    if max(grey.size) > WORK_SIDE:
        scale = WORK_SIDE / max(grey.size)
        grey = grey.resize((max(1, round(grey.width * scale)), max(1, round(grey.height * scale))),
                           Image.Resampling.BOX)
    strength = _ink_strength(np.asarray(grey, dtype=np.float32))  # the digit pipeline's paper removal
    if strength is None:
        return None
    ink = np.clip((strength - PAPER_FLOOR) / (1.0 - PAPER_FLOOR), 0.0, 1.0)
    labels, count = ndimage.label(ink > INK_LEVEL, structure=np.ones((3, 3)))
    if count == 0:
        return None
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    frame = _along_the_frame(labels, count)
    if (sizes[~frame] > 0).any():
        sizes[frame] = 0  # a scan's or photo's edge, a table: not the writing
    strokes = (sizes >= max(3, SPECK_SHARE * sizes.max()))[labels]
    return ink * ndimage.maximum_filter(strokes, size=5)  # the strokes' soft edges kept, the rest dropped


def _box(ink: np.ndarray) -> Optional[tuple]:
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    if not len(rows):
        return None
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def normalize_ink(img: Image.Image, height: int, width: int) -> Image.Image:
    """A height x width grey image of the ink in `img`: light ink on black, its box kept at its own shape,
    scaled to fit and centred, with a margin. A blank picture gives a black field."""
    ink = ink_strength(img)
    box = _box(ink) if ink is not None else None
    if box is None:
        return Image.new("L", (width, height), 0)
    top, bottom, left, right = box
    ink = ink[top:bottom, left:right]
    h, w = ink.shape
    scale = min(height * (1 - 2 * MARGIN) / h, width * (1 - 2 * MARGIN) / w)
    size = (max(1, min(width, round(w * scale))), max(1, min(height, round(h * scale))))
    shrink = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
    patch = np.asarray(Image.fromarray((ink * 255).astype(np.uint8)).resize(size, shrink), dtype=np.float32)
    # Thin strokes come out faint when shrunk: stretch so the strokes are fully lit.
    lit = patch[patch > 0.2 * patch.max()] if patch.max() > 0 else patch
    level = float(np.percentile(lit, 75)) if lit.size else 0.0
    if level <= 0:
        return Image.new("L", (width, height), 0)
    patch = np.clip(patch * (255.0 / level), 0, 255)
    field = np.zeros((height, width), dtype=np.uint8)
    top, left = (height - size[1]) // 2, (width - size[0]) // 2
    field[top:top + size[1], left:left + size[0]] = patch.round().astype(np.uint8)
    return Image.fromarray(field)


def ink_box_shape(img: Image.Image) -> Optional[tuple]:
    """(height, width) of the ink's box at the work size, None if blank: what the data reading measures, since a
    scan's empty margins say nothing of the writing's shape."""
    ink = ink_strength(img)
    box = _box(ink) if ink is not None else None
    if box is None:
        return None
    top, bottom, left, right = box
    return int(bottom - top), int(right - left)
