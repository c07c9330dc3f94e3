"""Find similar: one query image against a gallery of images, nearest first.

A gallery is decoded once at the model's size; its vectors are computed once per model
(the caller caches them: the app with st.cache_data keyed by model file and gallery hash).
Embedding models compare embeddings; pair-head models compare backbone features, so their
distances are between features, not the score the pair head would give.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .data import load_digits, load_image_folder
from .errors import UserError
from .inference import nearest_vectors
from .uploads import find_class_root


@dataclass
class Gallery:
    pixels: np.ndarray  # uint8 (N, C, S, S), as the model sees each image
    labels: list  # class name per image, "" when unknown
    names: list  # file name (relative) per image
    skipped: list  # (name, reason) of files that could not be read

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class Match:
    index: int
    name: str
    label: str
    distance: float


def digits_gallery(size: int, channels: int, pipeline: str = "resize") -> Gallery:
    """The built-in 1,797 handwritten digits, prepared by a model's input `pipeline`."""
    digits = load_digits(size, channels, pipeline)
    return Gallery(digits.pixels.numpy(), [digits.classes[i] for i in digits.labels], list(digits.names), [])


def folder_gallery(root, size: int, channels: int, pipeline: str = "resize") -> Gallery:
    """Images in a folder: class folders (labels known), or loose images (no labels)."""
    root = find_class_root(Path(root))
    return image_set_gallery(load_image_folder(root, size, channels, pipeline))


def image_set_gallery(image_set) -> Gallery:
    """A loaded ImageSet (a folder, a model's validation split) as a gallery."""
    pixels = image_set.batch(np.arange(len(image_set)))
    pixels = pixels.numpy() if hasattr(pixels, "numpy") else np.asarray(pixels)
    labels = [image_set.classes[i] if i >= 0 else "" for i in image_set.labels]
    return Gallery(pixels, labels, list(image_set.names), list(image_set.skipped))


def find_similar(model, query_pixels: np.ndarray, gallery: Gallery, vectors: np.ndarray, k: int = 5):
    """The k gallery images nearest the query, nearest first, leaving out the query itself.

    "The query itself" is any gallery image whose pixels, as the model sees them, are identical
    to the query's: the same file uploaded again, whatever its name. Returns (matches, left out).
    """
    if len(gallery) == 0:
        raise UserError("The gallery holds no images.")
    query_pixels = model.prepare(query_pixels)
    same = np.flatnonzero((gallery.pixels == query_pixels[None]).reshape(len(gallery), -1).all(axis=1))
    query = model.embed(query_pixels[None])[0]
    candidates = np.setdiff1d(np.arange(len(gallery)), same)
    if len(candidates) == 0:
        return [], len(same)
    top, distances = nearest_vectors(query, vectors[candidates].astype(np.float32), k)
    matches = [Match(int(candidates[i]), gallery.names[candidates[i]], gallery.labels[candidates[i]], float(d))
               for i, d in zip(top, distances)]
    return matches, len(same)
