"""Find similar: one query image against a gallery of images, nearest first.

A gallery is decoded once at the model's size; its vectors are computed once per model
(the caller caches them: the app with st.cache_data keyed by model file and gallery hash).
A gallery embedded once by `embed --index` is read back from its saved index instead: names,
labels and pixel fingerprints from the sidecar, no image decoded.
Embedding models compare embeddings; pair-head models compare backbone features, so their
distances are between features, not the score the pair head would give.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..data.sources import DIGITS_COUNT, folder_images, load_digits, load_image_folder
from ..data.uploads import find_class_root
from ..errors import UserError
from ..models.memory import check_images_kept
from .index import VectorIndex
from .model import pixel_digest


@dataclass
class Gallery:
    pixels: Optional[np.ndarray]  # uint8 (N, C, H, W), as the model sees each image; None when read from an index
    labels: list  # class name per image, "" when unknown
    names: list  # file name (relative) per image
    skipped: list  # (name, reason) of files that could not be read
    digests: Optional[list] = None  # inference.pixel_digest of each image, when there are no pixels

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class Match:
    index: int
    name: str
    label: str
    distance: float


def digits_gallery(size: int, channels: int, pipeline: str = "resize") -> Gallery:
    """The built-in 1,797 handwritten digits, prepared by a model's input `pipeline`; refused with a sentence
    when they would take more memory than the budget (a 1024 px model: 5.6 GB)."""
    check_images_kept(DIGITS_COUNT, size, channels, f"The {DIGITS_COUNT:,} built-in digits")
    digits = load_digits(size, channels, pipeline)
    return Gallery(digits.pixels.numpy(), [digits.classes[i] for i in digits.labels], list(digits.names), [])


def folder_gallery(root, size: int, channels: int, pipeline: str = "resize") -> Gallery:
    """Images in a folder: class folders (labels known), or loose images (no labels); refused with a sentence,
    before any is decoded, when they would take more memory than the budget."""
    root = find_class_root(Path(root))
    files = folder_images(root)[0]
    check_images_kept(len(files), size, channels, f"The {len(files):,} images of the gallery")
    return image_set_gallery(load_image_folder(root, size, channels, pipeline))


def image_set_gallery(image_set) -> Gallery:
    """A loaded ImageSet (a folder, a model's validation split) as a gallery: every image's pixels, in memory
    (refused with a sentence beyond the memory budget)."""
    check_images_kept(len(image_set), image_set.image_hw, _channels(image_set),
                      f"The {len(image_set):,} images of the gallery")
    pixels = image_set.batch(np.arange(len(image_set)))
    pixels = pixels.numpy() if hasattr(pixels, "numpy") else np.asarray(pixels)
    labels = [image_set.classes[i] if i >= 0 else "" for i in image_set.labels]
    return Gallery(pixels, labels, list(image_set.names), list(image_set.skipped))


def _channels(image_set) -> int:
    pixels = image_set.pixels
    return int(pixels.channels if hasattr(pixels, "channels") else pixels.shape[1])


def saved_gallery(path, model, checkpoint_digest: str) -> tuple[Gallery, VectorIndex]:
    """A gallery `embed --index` saved: (its names and labels, its index), refused with a sentence when
    it was written with another model (vectors of another size, or another checkpoint file)."""
    index, facts = VectorIndex.load(path)
    name = Path(path).name
    blank = np.zeros((1, model.channels, *model.image_hw), dtype=np.uint8)
    dimension = model.embed(blank).shape[1]
    if index.dimension != dimension:
        raise UserError(f"'{name}' holds vectors of {index.dimension} numbers and this model gives {dimension}: "
                        "it was written with another model, so search it with that model's checkpoint or run "
                        "embed --index again with this one.")
    if facts.get("checkpoint_sha256") != checkpoint_digest:
        raise UserError(f"'{name}' was written with another checkpoint ('{facts.get('checkpoint', 'unknown')}'), "
                        "whose distances mean nothing to this one: search it with that checkpoint or run "
                        "embed --index again with this one.")
    names, labels, digests = facts.get("names"), facts.get("labels"), facts.get("pixel_digests")
    if not (isinstance(names, list) and len(names) == len(labels or ()) == len(digests or ()) == len(index)):
        raise UserError(f"The sidecar of '{name}' does not name each of its {len(index)} images: "
                        "write it again with embed --index.")
    return Gallery(None, labels, names, [], digests), index


def find_similar(model, query_pixels: np.ndarray, gallery: Gallery, vectors, k: int = 5):
    """The k gallery images nearest the query, nearest first, leaving out the query itself.

    `vectors` are the gallery's, (N, D), or a VectorIndex of them (kept by the caller, so a large
    gallery's FAISS index is built once; its metric is used). "The query itself" is any gallery image
    whose pixels, as the model sees them, are identical to the query's: the same file uploaded again,
    whatever its name. Returns (matches, left out).
    """
    if len(gallery) == 0:
        raise UserError("The gallery holds no images.")
    query_pixels = model.prepare(query_pixels)
    if gallery.pixels is not None:
        same = np.flatnonzero((gallery.pixels == query_pixels[None]).reshape(len(gallery), -1).all(axis=1))
    else:
        same = np.flatnonzero(np.asarray(gallery.digests) == pixel_digest(query_pixels))
    query = model.embed(query_pixels[None])[0]
    index = vectors if isinstance(vectors, VectorIndex) else VectorIndex(np.asarray(vectors, dtype=np.float32))
    top, distances = index.search(query, k, leave_out=same)
    matches = [Match(int(i), gallery.names[i], gallery.labels[i], float(d))
               for i, d in zip(top[0], distances[0]) if i >= 0]
    return matches, len(same)
