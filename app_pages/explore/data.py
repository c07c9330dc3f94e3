"""The Explore page's images: which ones to map, and their embeddings (computed once, with progress)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import streamlit as st

from app_pages.shared import state, text
from app_pages.shared.models import ModelChoice, start_on_first_for_each_model
from app_pages.shared.once import filled
from app_pages.shared.paths import mnist_root
from app_pages.shared.uploads import staged_upload, unpack_zip
from siamese_core.data import uploads
from siamese_core.errors import UserError

DIGITS = "Built-in handwritten digits"
MNIST = "MNIST test digits"
VALIDATION = "This run's validation images"
ZIP = "Upload a zip of class folders"
EMBEDDINGS_KEPT = 6  # embedded image sets kept in memory for the whole server


@dataclass
class ImageSource:
    key: str  # names the images for the cache: the same key means the same images
    title: str  # in words, for captions: "1,797 built-in digits"
    load: Callable  # () -> ImageSet at the model's size
    count: Optional[int] = None  # how many images it holds, when known before loading (checked against the memory budget)


@dataclass
class MapData:
    """Embedded images: everything the map, the closer look and the exports need."""

    image_set: object  # siamese_core.data.sources.ImageSet
    vectors: np.ndarray  # (N, D)
    labels: np.ndarray  # class name of each image (str)
    names: list  # file name of each image
    classes: list  # class names in their natural order
    title: str
    indexes: dict = field(default_factory=dict, repr=False)  # metric -> siamese_core.inference.index.VectorIndex
    _index_lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def index(self, metric: str):
        """The vectors ready to search by `metric`, built on first use and kept with them (a large set's
        FAISS index is built once, not on every click, nor once per session: every session shares a MapData)."""
        with self._index_lock:
            if metric not in self.indexes:
                from siamese_core.inference.index import VectorIndex

                self.indexes[metric] = VectorIndex(self.vectors, metric)
            return self.indexes[metric]

    @cached_property
    def columns(self) -> list:
        """What the images' names say about them, to colour the map by (siamese_core.maps.metadata.Column):
        their folder, where it is not just the class, and the parts of their file names that group them.
        Found once per image set."""
        from siamese_core.maps.metadata import folder_column, name_part_columns

        folder = folder_column(self.names, self.labels.tolist())
        return ([folder] if folder is not None else []) + name_part_columns(self.names)


def pick_images(choice: ModelChoice, model) -> Optional[ImageSource]:
    """Radio of the image sources this model can map; None (after saying why) until one is ready."""
    # A run's model maps its own validation images first: the images it was checked on, of its own kind.
    sources = ([VALIDATION] if _has_validation(choice, model) else []) + [DIGITS, MNIST, ZIP]
    start_on_first_for_each_model(state.EXPLORE_IMAGES, sources, choice)
    source = st.radio("Images to map", sources, horizontal=True, key=state.EXPLORE_IMAGES,
                      help="A zip of class folders holds one folder per class (person, product, signature), "
                           "each with that class's images.")
    size, channels, pipeline = model.image_size, model.channels, model.input_pipeline
    if source == DIGITS:
        from siamese_core.data.sources import load_digits

        return ImageSource(f"digits:{size}:{channels}:{pipeline}", "1,797 built-in digits",
                           lambda: load_digits(size, channels, pipeline), 1797)
    if source == MNIST:
        return _mnist(size, channels, pipeline)
    if source == VALIDATION:
        from siamese_core.evaluation.evaluate import evaluation_set

        return ImageSource(f"validation:{choice.version}", f"the validation images of {choice.label}",
                           lambda: evaluation_set(model))
    return _zip(size, channels, pipeline)


def _has_validation(choice: ModelChoice, model) -> bool:
    """Runs of this app whose checkpoint says what they were trained on can show their validation split.

    Not the demo or an uploaded checkpoint: their training data was on another machine.
    """
    return choice.key.startswith("run:") and bool(model.checkpoint.get("config"))


def _mnist(size: int, channels: int, pipeline: str) -> Optional[ImageSource]:
    from siamese_core.data.sources import load_mnist, mnist_parts_available

    root = mnist_root()
    if "test" not in mnist_parts_available(root):
        st.warning(f"The MNIST test files are not in `{root}`. Put `t10k-images-idx3-ubyte.gz` and "
                   "`t10k-labels-idx1-ubyte.gz` there, or set SIAMESE_MNIST_DIR to the folder that holds them.")
        return None
    return ImageSource(f"mnist-test:{root.resolve()}:{size}:{channels}:{pipeline}", "the 10,000 MNIST test digits",
                       lambda: load_mnist(root, "test", size, channels, pipeline), 10_000)


def _zip(size: int, channels: int, pipeline: str) -> Optional[ImageSource]:
    from siamese_core.data.sources import load_class_folders

    upload = st.file_uploader("Zip of class folders", type=["zip"], key="explore-zip",
                              help="For example people.zip holding alice/1.jpg, alice/2.jpg, bob/1.jpg ...")
    if upload is None:
        st.info("Upload a zip of class folders to map its images.")
        return None
    try:
        staged = unpack_zip(upload, staged_upload(upload, kind="explore"))
        root = uploads.find_class_root(staged)
        summary = uploads.describe_class_folders(root)
    except UserError as exc:
        text.error(exc)
        return None
    if summary.total == 0:
        st.error(summary.problems[0])
        return None
    return ImageSource(f"zip:{staged.name}:{size}:{channels}:{pipeline}",
                       f"{summary.total:,} images in {len(summary.classes):,} classes from {upload.name}",
                       lambda: load_class_folders(root, size, channels, pipeline), summary.total)



# ------------------------------------------------------------------ embeddings, kept for the whole server

@st.cache_resource(max_entries=EMBEDDINGS_KEPT, show_spinner=False)
def _kept(model_version: tuple, source_key: str) -> dict:
    """Where one (model, image set)'s MapData is kept; Streamlit keeps the EMBEDDINGS_KEPT used last.

    An empty box that `embedded` fills, rather than the embedding itself: a cached function's
    elements are replayed on every later call, and the progress bar belongs to the first only.
    """
    return {}


def embedded(model, choice: ModelChoice, source: ImageSource) -> Optional[MapData]:
    """The source's images and their embeddings, computed in batches under a progress bar, kept per (model, images)
    for every session: a class opening the same map together embeds it once."""
    return filled(_kept(choice.version, source.key), "data", lambda: _embed(model, source),
                  f"Someone else on this server is already reading {source.title}: this map uses them as soon as "
                  "they are ready...")


def _embed(model, source: ImageSource) -> Optional[MapData]:
    from siamese_core.maps.embedding_map import embed_image_set, label_names

    try:
        if source.count:  # refused with a sentence before decoding what would not fit in memory
            from siamese_core.models.memory import check_images_kept

            check_images_kept(source.count, model.image_size, model.channels, f"The {source.count:,} images to map")
        with st.spinner(f"Reading {source.title}..."):
            image_set = source.load()
    except UserError as exc:
        text.error(exc)
        return None
    if len(image_set) < 3:
        st.error(f"Only {len(image_set)} image(s) could be read: a map needs at least 3.")
        return None
    bar = st.progress(0.0, text=f"Embedding {len(image_set):,} images...")
    vectors = embed_image_set(model, image_set, progress=lambda done, words: bar.progress(min(1.0, done), words))
    bar.empty()
    if image_set.skipped:
        st.warning(f"{len(image_set.skipped):,} files could not be read as images and are left out "
                   f"(the first: {Path(image_set.skipped[0][0]).name}).")
    present = set(image_set.labels.tolist())  # a split keeps the whole class list; offer only what is on the map
    classes = [str(c) for i, c in enumerate(image_set.classes) if i in present] + (["(no label)"] if -1 in present else [])
    return MapData(image_set, vectors, label_names(image_set), list(image_set.names), classes, source.title)
