"""The Verify page's third tab: one query image against a gallery, the k most similar first."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app_pages.shared import state, text
from app_pages.shared.models import ModelChoice, start_on_first_for_each_model
from app_pages.shared.uploads import staged_upload, unpack_zip
from app_pages.verify.inputs import image_input, sample_set, shown
from siamese_core.errors import UserError

DIGITS = "The built-in digits (1,797 images)"
VALIDATION = "Its validation images"
ZIP = "Upload a zip of images"
PER_ROW = 5


@st.cache_resource(max_entries=4, show_spinner="Reading the gallery...")  # not pickled: never changed once made
def gallery(key: str, size: int, channels: int, pipeline: str, _folder, _model=None):
    """The gallery named by `key`: the built-in digits, `_folder`'s images, or `_model`'s validation split."""
    from siamese_core.inference.gallery import digits_gallery, folder_gallery, image_set_gallery

    if _model is not None:
        from siamese_core.evaluation.evaluate import evaluation_set

        return image_set_gallery(evaluation_set(_model))
    if _folder is None:
        return digits_gallery(size, channels, pipeline)
    return folder_gallery(_folder, size, channels, pipeline)


@st.cache_data(max_entries=8, show_spinner="Computing the gallery's vectors (once per model and gallery)...")
def gallery_vectors(_model, model_version: tuple, gallery_key: str, _gallery):
    return _model.embed(_gallery.pixels)


@st.cache_resource(max_entries=4, show_spinner=False)  # not pickled: a large gallery's FAISS index is built once
def gallery_index(_vectors, model_version: tuple, gallery_key: str):
    from siamese_core.inference.index import VectorIndex

    return VectorIndex(_vectors)


def pick_gallery(model, choice: ModelChoice):
    """(gallery, its key) for the chosen source; None after saying what is missing or wrong.

    A run's model searches its own validation images first; the demo model the built-in digits."""
    own = choice.key.startswith("run:") and bool(model.checkpoint.get("config"))
    sources = [VALIDATION, DIGITS, ZIP] if own and model.class_word != "digit" else \
        [DIGITS, VALIDATION, ZIP] if own else [DIGITS, ZIP]
    start_on_first_for_each_model(state.GALLERY_SOURCE, sources, choice)
    source = st.radio("Search among", sources, key=state.GALLERY_SOURCE, horizontal=True)
    if source == DIGITS:
        try:
            return gallery("digits", model.image_size, model.channels, model.input_pipeline, None), "digits"
        except UserError as exc:  # more than the memory budget at this model's image size
            text.error(exc)
            return None
    if source == VALIDATION:
        key = f"validation:{choice.version}"
        try:
            return gallery(key, model.image_size, model.channels, model.input_pipeline, None, model), key
        except UserError as exc:
            text.error(exc)
            return None
    upload = st.file_uploader("Zip of images", type=["zip"], key="gallery-zip",
                              help="Images in one folder, or one folder per class (then each match shows its class).")
    if upload is None:
        st.info("Upload a zip of images to search among them.")
        return None
    try:
        folder = unpack_zip(upload, staged_upload(upload, kind="galleries"))  # hashed once per upload
        key = f"zip:{folder.name}"
        found = gallery(key, model.image_size, model.channels, model.input_pipeline, folder)
    except UserError as exc:
        text.error(exc)
        return None
    if found.skipped:
        st.warning(f"{len(found.skipped):,} files in the zip are not readable images and were left out "
                   f"(e.g. {Path(found.skipped[0][0]).name}).")
    return found, key


def show(model, choice: ModelChoice) -> None:
    st.caption("Pick one image: the images of the gallery the model finds most like it come first.")
    query_column, settings = st.columns([1, 2])
    query = image_input(query_column, "query", model, sample_set(model), 0, label="Image to look for")
    with settings:
        picked = pick_gallery(model, choice)
        k = st.slider("How many to show", 1, 20, 5, key="similar-k")
    if query is None or picked is None:
        return
    found, key = picked
    from siamese_core.inference.gallery import find_similar

    vectors = gallery_vectors(model, choice.version, key, found)
    try:
        matches, left_out = find_similar(model, query.pixels, found, gallery_index(vectors, choice.version, key), k)
    except UserError as exc:
        text.error(exc)
        return
    what = "embeddings" if model.is_embedding else "the features the model's backbone extracts (its pair head is not used here)"
    st.markdown(f"**The {len(matches)} most similar of {len(found):,} images**, nearest first")
    st.caption(f"Distance between {what}: smaller means more alike."
               + (" The image itself is in the gallery and is left out." if left_out else ""))
    for start in range(0, len(matches), PER_ROW):
        columns = st.columns(PER_ROW)
        for column, match in zip(columns, matches[start:start + PER_ROW]):
            # The model's own classes read 'digit 3', 'person s7'; an uploaded gallery's folders keep their own names.
            own = key == "digits" or key.startswith("validation:")
            label = f"{model.class_word + ' ' if own else ''}{match.label} · " if match.label else ""
            column.image(shown(found.pixels[match.index], 110), width=110)
            column.caption(f"{text.plain(label)}distance {match.distance:.2f}  \n{text.plain(match.name)}")
