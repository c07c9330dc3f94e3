"""Every key the app keeps in st.session_state, named once and spelt one way (lower case, words joined by '-').

Pages read and write session state only through these names: constants for fixed keys, small functions for
keys made per page, side or class, and typed accessors for keys that hold more than one value. Widget keys
belong here too when the page reads or sets the widget's value through session state (a `key=` used only to
tell two widgets apart stays beside its widget). AppTest-based tests poke session state with these names.
"""

from __future__ import annotations

import streamlit as st

# ---------------------------------------------------------------- the model in use (shared/models.py)

MODEL = "model"  # the key of the model in use on every page: "demo", "run:<name>" or "upload:<hash>"
UPLOADED_MODELS = "uploaded-models"  # checkpoints uploaded in this session, as ModelChoices
CHECKED_CHECKPOINTS = "checkpoint-uploads-checked"  # uploaded file id -> the ModelChoice key it was checked as


def model_picker(page: str) -> str:
    """The model selectbox of a page (its value: a ModelChoice)."""
    return f"model-picker-{page}"


def model_picker_uploaded(page: str) -> str:
    """Set for one rerun after a checkpoint upload on `page`, so its picker shows the new model."""
    return f"{model_picker(page)}-uploaded"


def first_for_model(widget: str) -> str:
    """The model a radio of image sources was last reset for: each model starts on its own images."""
    return f"{widget}-model"


def uploaded_models() -> list:
    """The session's uploaded checkpoints (ModelChoices), kept in place: append to it."""
    return st.session_state.setdefault(UPLOADED_MODELS, [])


def checked_checkpoints() -> dict[str, str]:
    return st.session_state.setdefault(CHECKED_CHECKPOINTS, {})


# ---------------------------------------------------------------- uploads (shared/uploads.py)

UPLOAD_DIGESTS = "upload-digests"  # uploaded files' ids -> their content hash, hashed once per session


def upload_digests() -> dict:
    return st.session_state.setdefault(UPLOAD_DIGESTS, {})


# ---------------------------------------------------------------- runs (train/page.py, shared/run_view.py)

WATCHED_RUN = "watched-run"  # the run the Train page shows, kept once it finishes
CONFIRM_DELETE = "confirm-delete"  # the run whose Delete asks 'Yes, delete it?'
DELETED_RUN = "deleted-run"  # the run deleted by the last click, for the page to say so after its rerun
ONNX_PREPARED = "onnx-prepared"  # (checkpoint, modification time) exported for other apps in this session


def onnx_prepared() -> set[tuple[str, float]]:
    return st.session_state.setdefault(ONNX_PREPARED, set())

# ---------------------------------------------------------------- making a data set (train/builder.py)

BUILDER_DATASET = "builder-dataset"  # the id of this session's data set
BUILDER_TARGET = "builder-target"  # radio: the class images are added to
BUILDER_MESSAGE = "builder-message"  # (kind, sentence) said once after a callback
BUILDER_SHOTS = "builder-shots"  # snapshots taken: each gets a fresh camera widget
BUILDER_ADDED = "builder-added"  # uploaded file ids already added (a removed image stays removed)


def builder_camera(shots: int) -> str:
    return f"builder-camera-{shots}"


def builder_rename(class_name: str) -> str:
    """The text input holding a class's new name."""
    return f"builder-rename-{class_name}"


def builder_added() -> set[str]:
    return st.session_state.setdefault(BUILDER_ADDED, set())


# ---------------------------------------------------------------- Verify (verify/*.py)

VERIFY_HISTORY = "verify-history"  # the session's last checks: dicts of thumbnails, names, words and score
WHY_VERDICT = "why-verdict"  # expander: open when the explanation is asked for
BATCH_SCORED = "batch-scored"  # ((model version, zip, csv), table): the last batch scored
GALLERY_SOURCE = "gallery-source"  # radio: the images 'Find similar' searches among
TRY_SAME_SHOWN = "try-same-n"  # how many 'Try: same' pairs were shown: the next click shows the next one
TRY_DIFFERENT_SHOWN = "try-different-n"


def source(side: str) -> str:
    """The radio of image sources (Sample, Upload, Camera, Draw) of image `side` ('A', 'B', 'query')."""
    return f"source-{side}"


def sample(side: str, set_digest: str) -> str:
    """The sample selectbox of `side`, one per sample set (a set's files are no options of another's)."""
    return f"sample-{side}-{set_digest}"


def pad_cleared(side: str) -> str:
    """How many times the drawing pad of `side` was cleared: each clear makes a new, empty pad."""
    return f"pad-{side}-cleared"


def drawing_pad(side: str, cleared: int) -> str:
    """The drawing pad of `side` after `cleared` clears (the component keeps its strokes under its key)."""
    return f"pad-{side}-{cleared}"


def threshold(model_key: str) -> str:
    """Verify's threshold slider for one model, in percent."""
    return f"threshold-{model_key}"


def verify_history() -> list[dict]:
    return st.session_state.setdefault(VERIFY_HISTORY, [])


# ---------------------------------------------------------------- Explore (explore/*.py)

EXPLORE_IMAGES = "explore-images"  # radio: the images mapped
EXPLORE_COLOUR = "explore-colour"  # selectbox: what the points are coloured by
EXPLORE_ATTRIBUTES = "explore-attributes"  # uploader: a CSV of the person's own attributes
EXPLORE_ISOLATE = "explore-isolate"  # toggle: only the picked image and its neighbours on the map

# ---------------------------------------------------------------- Evaluate (evaluate/*.py)

EVAL_THRESHOLD = "eval-threshold"  # slider, in percent
EVAL_THRESHOLD_ORIGIN = "eval-threshold-origin"  # "model", "kfold" or "hand": who set the slider
EVAL_THRESHOLD_FOR = "eval-threshold-for"  # the model and set the slider was last reset for
EVAL_COMPARED = "eval-compare-evaluated"  # the model keys last evaluated together


# ---------------------------------------------------------------- counters

def count(key: str) -> int:
    return st.session_state.get(key, 0)


def bump(key: str) -> int:
    """Add one to a counter; returns its value before."""
    before = count(key)
    st.session_state[key] = before + 1
    return before
