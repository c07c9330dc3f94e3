"""The "digit" input pipeline: any picture of one handwritten digit made to look like an MNIST digit.

MNIST's digits were prepared in a fixed way: light ink on black, the digit's bounding box scaled to
20 pixels on its longer side (keeping its shape) and placed in a 28x28 field with its centre of mass
in the middle. normalize_digit applies that same preparation to any image (a phone photo of ink on
paper, a drawing, a scan, an 8x8 digit), so position, size, polarity, paper colour and uneven
lighting no longer matter. What it cannot remove (stroke width, blur, noise, small rotations) the
"digits" augmentation (siamese_core.data.augment.augment_digits) teaches the model to ignore.
photo_like makes the test case: a synthetic phone photo of a digit written on paper.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter
from scipy import ndimage

from .images import to_mode

CANVAS = 28  # MNIST's field
BOX = 20  # MNIST's digit box (longer side)
# Larger images are shrunk to this longer side first: a digit needs no more, and it keeps the work fast.
WORK_SIDE = 128
# Ink is where the contrast-stretched image exceeds this share of its bright end.
INK_LEVEL = 0.3
# Ink components smaller than this share of the largest are specks (noise, JPEG, dust), not strokes.
SPECK_SHARE = 0.08
# Ink running along more than this share of a photo's side is its frame (table, paper edge), not the digit.
FRAME_SHARE = 0.3
# Less contrast than this (grey levels, 0-255) means there is no ink: the result is a blank field.
MIN_CONTRAST = 12.0


def normalize_digit(img: Image.Image) -> Image.Image:
    """A 28x28 grey image of the digit in `img`, prepared as MNIST's digits are (light ink on black)."""
    grey = _grey_work_image(img)
    if _prepared_already(grey):
        return Image.fromarray(grey.astype(np.uint8))  # so preparing twice changes nothing
    ink = _ink_strength(grey)
    if ink is None:
        return Image.new("L", (CANVAS, CANVAS), 0)
    box = _ink_box(ink)
    if box is None:
        return Image.new("L", (CANVAS, CANVAS), 0)
    top, bottom, left, right = box
    return _place_in_field(ink[top:bottom, left:right])


def inverted(img: Image.Image) -> bool:
    """Whether normalize_digit turns this image's colours round (dark ink on light paper)."""
    grey = _grey_work_image(img)
    return _is_light_background(grey)


def _grey_work_image(img: Image.Image) -> np.ndarray:
    """Grey float pixels (0-255), transparent parts on white, longer side at most WORK_SIDE."""
    img = to_mode(img, 1)
    if max(img.size) > WORK_SIDE:
        scale = WORK_SIDE / max(img.size)
        size = (max(1, round(img.width * scale)), max(1, round(img.height * scale)))
        img = img.resize(size, Image.Resampling.BOX)
    return np.asarray(img, dtype=np.float32)


def _prepared_already(grey: np.ndarray) -> bool:
    """A 28x28 digit as MNIST's are (and as normalize_digit makes them): light ink inside a black frame,
    its box 20 pixels on the longer side, its mass in the middle."""
    if grey.shape != (CANVAS, CANVAS) or grey.max() < 128:
        return False
    if max(grey[0].max(), grey[-1].max(), grey[:, 0].max(), grey[:, -1].max()) > 0:
        return False
    rows, cols = np.flatnonzero(grey.any(axis=1)), np.flatnonzero(grey.any(axis=0))
    longer = max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1
    mass = np.array(ndimage.center_of_mass(grey))
    return BOX - 1 <= longer <= BOX + 1 and bool(np.abs(mass - CANVAS / 2).max() <= 1.0)


def _is_light_background(grey: np.ndarray) -> bool:
    """Paper lighter than the ink: the border (mostly background) lies nearer the bright end."""
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    low, high = np.percentile(grey, [1, 99])
    return float(np.median(border)) - low > high - float(np.median(border))


def _ink_strength(grey: np.ndarray):
    """Ink as bright values on zero background, 0-1, with the paper and uneven lighting removed; None if blank."""
    if _is_light_background(grey):
        grey = 255.0 - grey
    ink = grey - _background(grey)
    top = float(np.percentile(ink, 99.5))
    if top < MIN_CONTRAST:
        return None
    return np.clip(ink / top, 0.0, 1.0)


def _background(grey: np.ndarray) -> np.ndarray:
    """The paper's level under uneven light: a quadratic surface fitted to the darker half of the pixels
    (after inversion the background is dark and covers most of a digit picture)."""
    h, w = grey.shape
    step = max(1, max(h, w) // 32)  # fit on a coarse grid: a smooth surface needs no more
    sample = grey[::step, ::step]
    rows = (np.arange(0, h, step, dtype=np.float32) / h - 0.5)[:, None] + np.zeros(sample.shape[1], np.float32)
    cols = (np.arange(0, w, step, dtype=np.float32) / w - 0.5)[None, :] + np.zeros((sample.shape[0], 1), np.float32)
    dark = sample <= np.median(sample)
    if dark.sum() < 12:
        return np.float32(np.median(grey))
    r, c = rows[dark], cols[dark]
    basis = np.stack([np.ones_like(r), r, c, r * r, c * c, r * c], axis=1)
    k = np.linalg.lstsq(basis, sample[dark], rcond=None)[0].astype(np.float32)
    r = (np.arange(h, dtype=np.float32) / h - 0.5)[:, None]
    c = (np.arange(w, dtype=np.float32) / w - 0.5)[None, :]
    return k[0] + k[1] * r + k[2] * c + k[3] * r * r + k[4] * c * c + k[5] * r * c


def _ink_box(ink: np.ndarray):
    """(top, bottom, left, right) of the digit's strokes, ignoring specks; zeroes what lies outside them."""
    mask = ink > INK_LEVEL
    labels, count = ndimage.label(mask)
    if count == 0:
        return None
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0  # the background
    frame = _along_the_frame(labels, count)
    if (sizes[~frame] > 0).any():
        sizes[frame] = 0  # a table, a paper edge or a shadow along the photo's edge: not the digit
    strokes = (sizes >= SPECK_SHARE * sizes.max())[labels]
    # Keep the soft edges of the strokes (anti-aliasing, blur) and drop everything else.
    ink *= ndimage.maximum_filter(strokes, size=5)
    rows, cols = np.flatnonzero(strokes.any(axis=1)), np.flatnonzero(strokes.any(axis=0))
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def _along_the_frame(labels: np.ndarray, count: int) -> np.ndarray:
    """Which components run along the image's edge for more than FRAME_SHARE of a side, in a photo
    (larger than MNIST's field; a digit cropped tightly touches the edge, it does not run along it)."""
    frame = np.zeros(count + 1, dtype=bool)
    if max(labels.shape) <= CANVAS:
        return frame
    for side in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
        frame |= np.bincount(side, minlength=count + 1) > FRAME_SHARE * len(side)
    frame[0] = False
    return frame


def _place_in_field(digit: np.ndarray) -> Image.Image:
    """Scale the digit's box to BOX pixels on its longer side and centre its mass in a CANVAS field."""
    h, w = digit.shape
    scale = BOX / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    patch = Image.fromarray((digit * 255).astype(np.uint8)).resize(size, Image.Resampling.BILINEAR)
    patch = np.asarray(patch, dtype=np.float32)
    # Thin strokes come out faint when shrunk: stretch so the strokes are fully lit, as in MNIST.
    lit = patch[patch > 0.2 * patch.max()] if patch.max() > 0 else patch
    level = float(np.percentile(lit, 75)) if lit.size else 0.0
    if level <= 0:
        return Image.new("L", (CANVAS, CANVAS), 0)
    patch = np.clip(patch * (255.0 / level), 0, 255)
    mass_row, mass_col = ndimage.center_of_mass(patch)
    ph, pw = patch.shape
    # Inside a one-pixel black frame, so that the result is recognised as prepared (_prepared_already).
    top = int(np.clip(round(CANVAS / 2 - mass_row), 1, CANVAS - 1 - ph))
    left = int(np.clip(round(CANVAS / 2 - mass_col), 1, CANVAS - 1 - pw))
    field = np.zeros((CANVAS, CANVAS), dtype=np.uint8)
    field[top:top + ph, left:left + pw] = patch.round().astype(np.uint8)
    return Image.fromarray(field)


# ---------------------------------------------------------------- photo-like test images

def photo_like(digit28: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """A synthetic phone photo of this digit (uint8 28x28, light ink on black as MNIST) written in dark
    ink on paper: grey, white or cream paper, 96-128 pixels, the digit off-centre at a random size and
    slightly turned, uneven light, slight blur, sensor noise, and saved as a JPEG (returned decoded, RGB)."""
    side = int(rng.integers(96, 129))
    patch_side = int(rng.integers(56, min(side, 112) + 1))
    stroke = Image.fromarray(np.asarray(digit28, dtype=np.uint8)).resize((patch_side, patch_side),
                                                                       Image.Resampling.BICUBIC)
    stroke = stroke.rotate(float(rng.uniform(-8, 8)), resample=Image.Resampling.BILINEAR)
    alpha = np.zeros((side, side), dtype=np.float32)
    top, left = rng.integers(0, side - patch_side + 1, size=2)
    alpha[top:top + patch_side, left:left + patch_side] = np.asarray(stroke, dtype=np.float32) / 255.0

    paper_level = rng.uniform(150, 250)
    tint = np.array([1.0, rng.uniform(0.96, 1.0), rng.uniform(0.85, 1.0)])  # white to cream
    rows, cols = np.mgrid[0:side, 0:side] / side - 0.5
    slope = rng.uniform(-0.25, 0.25, size=2)
    light = 1.0 + slope[0] * rows + slope[1] * cols - rng.uniform(0, 0.3) * (rows ** 2 + cols ** 2)
    paper = paper_level * light[..., None] * tint
    ink = rng.uniform(10, 70) * np.array([1.0, 1.0, rng.uniform(1.0, 1.8)])  # black or blue-black pen
    pixels = paper * (1 - alpha[..., None]) + ink * alpha[..., None]
    img = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.2))))
    noisy = np.asarray(img, dtype=np.float32) + rng.normal(0, rng.uniform(1, 6), size=(side, side, 3))
    img = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=int(rng.integers(40, 86)))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def paper_share(img: Image.Image, level: float = 0.1) -> float:
    """How much of an image is paper as normalize_digit sees it: the share of its work image within `level` of
    the paper once the paper's level and uneven light are removed (1.0 when it holds no ink at all). Ink on
    paper is mostly paper; a face or a street is not (siamese_core.inference.domain uses this)."""
    ink = _ink_strength(_grey_work_image(img))
    return 1.0 if ink is None else float((ink < level).mean())
