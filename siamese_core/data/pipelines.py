"""Input pipelines: how a decoded image becomes a model's input (a model records its pipeline as spec["input"]).

Every pipeline gives height x width pixels (image_size: a whole number for a square, or [height, width]):
- "resize" squashes the whole image to height x width (the old behaviour: old models keep their pixels);
- "fit" keeps the image's shape: resized to fit inside, the rest padded with its border's level (measured best for
  faces, issue 23's research: 80x64 padded beat 64x64 squashed by +0.020 ROC AUC);
- "digit" finds the digit and prepares it as MNIST's digits were (siamese_core.data.digit_input), then resizes that;
- "ink" cleans any writing on paper and fits the ink's own box (siamese_core.data.ink_input).

Every page and command prepares images through these functions, so an upload and a training image are
prepared alike.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..config import image_hw
from .digit_input import inverted, normalize_digit
from .images import SIXTEEN_BIT_MODES, ImageInput, has_alpha, open_image, to_mode
from .ink_input import normalize_ink

PIPELINES = ("resize", "fit", "digit", "ink")


def conversion_notes(img: Image.Image, channels: int, pipeline: str = "resize") -> list:
    """What to_mode (and the model's input `pipeline`) will change for a model with `channels`, in plain words."""
    notes = []
    if img.mode in SIXTEEN_BIT_MODES:
        notes.append("16-bit (or more) grey: brightness scaled to 8 bits by the image's own range")
    elif img.mode == "CMYK":
        notes.append("CMYK print colours: converted to screen colours")
    if has_alpha(img):
        notes.append("transparent parts put on white")
    colour = img.mode not in ("L", "1", "LA", "La") + SIXTEEN_BIT_MODES
    if channels == 1 and colour and pipeline != "ink":
        notes.append("colour turned to grey: this model works in grey")
    if pipeline == "digit":
        if inverted(img):
            notes.append("colours inverted to light ink on dark, as in MNIST")
        notes.append("digit found, centred and scaled as in MNIST")
    if pipeline == "ink":
        notes.append("paper and uneven light removed, ink made bright, its shape kept")
    if pipeline == "fit":
        notes.append("its shape kept: fitted inside the model's frame, the rest filled with its edge's colour")
    return notes


def _fit(img: Image.Image, height: int, width: int) -> np.ndarray:
    """Resized to fit inside height x width keeping its shape, centred, padded with the border's level."""
    scale = min(width / img.width, height / img.height)
    w, h = max(1, min(width, round(img.width * scale))), max(1, min(height, round(img.height * scale)))
    arr = np.array(img.resize((w, h), Image.Resampling.BILINEAR) if (w, h) != img.size else img, dtype=np.uint8)
    if (h, w) == (height, width):
        return arr
    top, left = (height - h) // 2, (width - w) // 2
    pads = [(top, height - h - top), (left, width - w - left)] + ([(0, 0)] if arr.ndim == 3 else [])
    return np.pad(arr, pads, mode="edge")


def to_pixels(img: Image.Image, size, channels: int, pipeline: str = "resize") -> np.ndarray:
    """Prepare a decoded image by `pipeline` and return uint8 pixels, shape (C, height, width); `size` is a whole
    number (a square) or (height, width)."""
    height, width = image_hw(size)
    if pipeline == "digit":
        img = normalize_digit(img)
    elif pipeline == "ink":
        img = normalize_ink(img, height, width)
    elif pipeline not in ("resize", "fit"):
        raise ValueError(f"unknown input pipeline {pipeline!r}")
    img = to_mode(img, channels)
    if pipeline == "fit":
        arr = _fit(img, height, width)
    else:
        if img.size != (width, height):
            img = img.resize((width, height), Image.Resampling.BILINEAR)
        arr = np.array(img, dtype=np.uint8)  # a writable copy: torch.from_numpy warns on read-only arrays
    return arr[None] if arr.ndim == 2 else np.ascontiguousarray(arr.transpose(2, 0, 1))


def load_pixels(source: ImageInput, size, channels: int, pipeline: str = "resize") -> np.ndarray:
    """Decode and prepare one image exactly as the model sees it: uint8 (C, height, width)."""
    return to_pixels(open_image(source), size, channels, pipeline)
