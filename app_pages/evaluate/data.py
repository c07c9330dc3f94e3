"""The Evaluate page's evaluation set: the model's validation split or an uploaded zip, scored once and cached."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import streamlit as st

from app_pages.shared import text
from app_pages.shared.models import ModelChoice
from app_pages.shared.uploads import staged_upload, unpack_zip
from siamese_core.data import uploads
from siamese_core.errors import UserError
from siamese_core.evaluation.evaluate import named_identities
from siamese_core.runs.context import data_words

VALIDATION = "Its validation split"
ZIP = "Upload a zip of class folders (images it has never seen)"


@dataclass(frozen=True)
class EvalSet:
    """What to evaluate on: `path` None means the model's own validation split."""

    label: str  # in words, for the page and for the report
    path: Optional[str] = None

    @property
    def own_split(self) -> bool:
        return self.path is None


def pick_set(model) -> Optional[EvalSet]:
    """The evaluation set chosen on the page, or None (with the reason shown) when there is none yet."""
    source = st.radio("Evaluate on", [VALIDATION, ZIP], key="eval-source", horizontal=True,
                      help="The validation split holds images the model did not train on (for the demo: 30% of "
                           "the built-in digits). A zip of class folders can hold people, products or signatures "
                           "it has never seen at all: the honest test of a Siamese network.")
    if source == VALIDATION:
        config = model.checkpoint.get("config") or {}
        if not config:
            st.error("This model does not say what it was validated on: upload a zip of class folders instead.")
            return None
        split = "classes it never saw in training" if config.get("split") == "class" else "unseen images of its classes"
        st.caption(f"The images held out when this model was trained ({split}), from "
                   f"{text.plain(data_words(config))}.")
        return EvalSet("the model's validation split")
    upload = st.file_uploader("Zip of class folders", type=["zip"], key="eval-zip",
                              help="One folder per class, each holding that class's images, e.g. alice/1.jpg, "
                                   "alice/2.jpg, bob/1.jpg ... At least two classes, two images each. Person "
                                   "re-identification crops named like Market-1501's (0002_c1s1_000451_03.jpg: "
                                   "person 2, camera 1) may also lie loose in the zip; they add re-id figures.")
    if upload is None:
        st.info("Upload a zip of class folders to evaluate on.")
        return None
    try:
        with st.spinner(f"Unpacking {text.plain(upload.name)} and counting its images..."):  # seconds for a big zip
            root = uploads.find_class_root(unpack_zip(upload, staged_upload(upload, kind="evaluate")))
            summary = uploads.describe_class_folders(root)
            people = named_identities(root) if summary.total == 0 and summary.loose_images else 0
    except UserError as exc:
        text.error(exc)
        return None
    if people >= 2:
        st.caption(f"Found {summary.loose_images:,} images of {people:,} people, named by person and camera, "
                   f"in {upload.name}.")
        return EvalSet(f"the uploaded {upload.name}", str(root))
    if summary.problems:
        for problem in summary.problems:
            st.error(problem)
        return None
    st.caption(f"Found {summary.total:,} images in {len(summary.classes):,} classes in {text.plain(upload.name)}.")
    return EvalSet(f"the uploaded {upload.name}", str(root))


@st.cache_resource(show_spinner="Reading every image of the set and scoring the evaluation pairs: up to a minute "
                                 "for a big set (once: the slider then moves everything instantly)...", max_entries=6)
def _scored(_model, model_version: tuple, set_path: Optional[str], set_label: str,
            n_pairs: int, seed: int, sequential: bool):
    """The model's scores on the set: computed once per (model file and version, set, pairs, seed).

    Kept as a shared resource rather than cache_data: the result is read-only and holds the set's
    images and an images x images score matrix, which cache_data would copy on every slider move.
    """
    from siamese_core.evaluation.evaluate import evaluation_set, score_evaluation

    image_set = evaluation_set(_model, set_path)
    return score_evaluation(_model, image_set, n_pairs, seed, sequential, set_name=set_label,
                            own_validation_split=set_path is None)


def scored(model, choice: ModelChoice, eval_set: EvalSet, n_pairs: int, seed: int, sequential: bool):
    """The cached evaluation, or None after showing why this set cannot be used."""
    try:
        return _scored(model, choice.version, eval_set.path, eval_set.label,
                       n_pairs, seed, sequential)
    except UserError as exc:
        text.error(exc)
        return None
