"""Input pipelines: how a decoded image becomes a model's input (a model records its pipeline as spec["input"]).

- "resize" squashes the whole image to a square;
- "digit" finds the digit and prepares it as MNIST's digits were (siamese_core.data.digit_input), then resizes that.

Every page and command prepares images through these functions, so an upload and a training image are
prepared alike.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .digit_input import inverted, normalize_digit
from .images import SIXTEEN_BIT_MODES, ImageInput, has_alpha, open_image, to_mode


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
    if channels == 1 and colour:
        notes.append("colour turned to grey: this model works in grey")
    if pipeline == "digit":
        if inverted(img):
            notes.append("colours inverted to light ink on dark, as in MNIST")
        notes.append("digit found, centred and scaled as in MNIST")
    return notes


def to_pixels(img: Image.Image, size: int, channels: int, pipeline: str = "resize") -> np.ndarray:
    """Prepare a decoded image by `pipeline` and return uint8 pixels, shape (C, size, size)."""
    if pipeline == "digit":
        img = normalize_digit(img)
    elif pipeline != "resize":
        raise ValueError(f"unknown input pipeline {pipeline!r}")
    img = to_mode(img, channels)
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    arr = np.array(img, dtype=np.uint8)  # a writable copy: torch.from_numpy warns on read-only arrays
    return arr[None] if arr.ndim == 2 else np.ascontiguousarray(arr.transpose(2, 0, 1))


def load_pixels(source: ImageInput, size: int, channels: int, pipeline: str = "resize") -> np.ndarray:
    """Decode and prepare one image exactly as the model sees it: uint8 (C, size, size)."""
    return to_pixels(open_image(source), size, channels, pipeline)
