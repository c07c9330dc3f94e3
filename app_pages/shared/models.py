"""The model in use on every page: the choices, the picker, the checkpoint uploader, the loaded model."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import streamlit as st

from app_pages.shared import runs as shared_runs
from app_pages.shared import state, text
from app_pages.shared.paths import DEMO_MODEL
from siamese_core.errors import UserError
from siamese_core.runs import jobs

DEMO_KEY = "demo"


@dataclass(frozen=True)
class ModelChoice:
    key: str  # "demo", "run:<run name>" or "upload:<hash>"
    label: str
    path: Path

    @property
    def version(self) -> tuple[str, int, int, int]:
        """(file, modification time in ns, size, inode): names this version of this model's file, for every cache
        keyed by the model (the loaded model, scores, embeddings; shared by every session), which stay valid while
        the file does not change. The inode too: a re-trained best.pt is renamed into place (a new inode), and a
        file system keeping times to the second would otherwise give it the old one's name."""
        stat = self.path.stat()
        return str(self.path), stat.st_mtime_ns, stat.st_size, stat.st_ino


def run_title(info: jobs.RunInfo) -> str:
    """A run as people name it: the label given at Start (else its folder) and when it started."""
    created = info.status.created_at
    when = time.strftime("%d %b %H:%M", time.localtime(created)) if created is not None else ""
    label = info.status.label or info.name
    return f"{label} · {when}" if when else str(label)


def usable_checkpoint(info: jobs.RunInfo) -> Optional[Path]:
    """The checkpoint a finished run offers: `best`; for a run stopped before its first epoch ended, `last`."""
    if info.active:
        return None
    best, last = info.run.checkpoint("best"), info.run.checkpoint("last")
    if best.is_file():
        return best
    return last if info.state == "stopped" and last.is_file() else None


def model_choices(runs: Optional[list] = None) -> list[ModelChoice]:
    """The demo model, then every run (of `runs`, else this page load's) with a usable checkpoint, newest first."""
    choices = [ModelChoice(DEMO_KEY, "Demo model: digits, small ConvNet", DEMO_MODEL)]
    for info in shared_runs.listed() if runs is None else runs:
        path = usable_checkpoint(info)
        if path is None:
            continue
        accuracy, epoch = info.status.best_accuracy, info.status.best_epoch
        if path.stem == "last":
            shown = " (stopped early: its last weights, not validated)"
        elif accuracy is not None:
            shown = f" ({100 * accuracy:.1f}% validation accuracy" + (f", epoch {epoch})" if epoch else ")")
        else:
            shown = ""
        choices.append(ModelChoice(f"run:{info.name}", f"Run {run_title(info)}{shown}", path))
    # Checkpoints uploaded on the Verify page in this session: usable on every page.
    choices += [c for c in st.session_state.get(state.UPLOADED_MODELS, []) if c.path.is_file()]
    return choices


MODEL_PARAM = "model"  # the URL's query parameter naming the model in use, so a reload keeps it


def default_choice(choices: list[ModelChoice]) -> ModelChoice:
    """What a session that chose nothing uses: the newest run's validated best model (a student opening the link
    after the teacher trained gets that run, not the demo), else the demo."""
    return next((c for c in choices if c.key.startswith("run:") and c.path.stem == "best"), choices[0])


def current_model(choices: Optional[list[ModelChoice]] = None) -> ModelChoice:
    choices = choices or model_choices()
    wanted = st.session_state.get(state.MODEL) or st.query_params.get(MODEL_PARAM)
    if wanted is None:
        chosen = default_choice(choices)
        use_model(chosen.key)  # kept for the session: a run finishing later does not swap the model under it
        return chosen
    return next((c for c in choices if c.key == wanted), choices[0])


def use_model(key: str) -> None:
    """Make a model the one in use on every page (kept outside widget state, which pages forget) and in the URL."""
    st.session_state[state.MODEL] = key
    keep_in_url()


def keep_in_url() -> None:
    """Put the model in use into the URL (a page switch clears it); the demo needs no parameter."""
    key = st.session_state.get(state.MODEL)
    if key is None and st.query_params.get(MODEL_PARAM):
        st.session_state[state.MODEL] = key = st.query_params[MODEL_PARAM]  # a reload: the URL remembers
    if key and key != DEMO_KEY and not key.startswith("upload:"):  # an upload lives only in its session
        if st.query_params.get(MODEL_PARAM) != key:
            st.query_params[MODEL_PARAM] = key
    elif MODEL_PARAM in st.query_params:
        del st.query_params[MODEL_PARAM]


def start_on_first_for_each_model(widget: str, options: list, choice: ModelChoice) -> None:
    """Before drawing a radio of image sources: each model starts on its first option (its own images); the
    person's pick then stays while that model stays in use."""
    marker = state.first_for_model(widget)
    if st.session_state.get(widget) not in options or st.session_state.get(marker) != choice.key:
        st.session_state[widget] = options[0]
        st.session_state[marker] = choice.key


UPLOAD_CHOICE = ModelChoice("upload", "Upload a checkpoint file (.pt)...", Path())


def model_picker(page: str, allow_upload: bool = False) -> ModelChoice:
    """The model selectbox; with `allow_upload`, also a checkpoint uploader.

    A refused upload shows why next to the uploader and leaves the previous model in use.
    """
    choices = model_choices()
    chosen = current_model(choices)
    options = choices + ([UPLOAD_CHOICE] if allow_upload else [])
    widget = state.model_picker(page)
    if st.session_state.get(widget) != UPLOAD_CHOICE or st.session_state.pop(state.model_picker_uploaded(page), False):
        st.session_state[widget] = chosen  # the one model state of the app: the picker shows it, never its own
    # The change is taken in a callback, which runs before the script: the sidebar, drawn first, agrees at once.
    picked = st.selectbox("Model", options, format_func=lambda c: c.label, key=widget, on_change=_picked,
                          args=(widget,),
                          help="The demo model ships with the app; runs appear here once they finish."
                               + (" A checkpoint from elsewhere can be uploaded." if allow_upload else ""))
    if picked == UPLOAD_CHOICE:
        uploaded = checkpoint_uploader(page)
        if uploaded is None:
            st.caption(f"Until then: {text.plain(chosen.label)}.")
            return chosen
        use_model(uploaded.key)
        st.session_state[state.model_picker_uploaded(page)] = True
        st.rerun()  # so that the picker lists the new model and shows it as the one in use
    return picked


def _picked(widget: str) -> None:
    picked = st.session_state.get(widget)
    if picked is not None and picked != UPLOAD_CHOICE:
        use_model(picked.key)


def checkpoint_uploader(page: str) -> Optional[ModelChoice]:
    """A checkpoint uploaded and checked (never unpickled), as a ModelChoice; None with a message otherwise."""
    from siamese_core.inference.verification import store_checkpoint

    upload = st.file_uploader("Checkpoint file", type=["pt", "pth"], key=f"checkpoint-upload-{page}",
                              help="A best.pt or last.pt from a run's checkpoints/ folder, made by this app "
                                   "or its command line. It is read safely: nothing in it is run.")
    if upload is None:
        return None
    known, checked = state.uploaded_models(), state.checked_checkpoints()
    done = next((c for c in known if c.key == checked.get(upload.file_id)), None)
    if done is not None:
        return done  # checked on an earlier run of the page: not hashed and read again
    path = None
    try:
        with st.spinner("Checking the checkpoint..."):
            path = store_checkpoint(upload.getvalue(), f"'{upload.name}'")
            choice = ModelChoice(f"upload:{path.stem}", f"Uploaded: {upload.name}", path)
            _load(*choice.version)  # a damaged network is refused here, next to the uploader
    except UserError as exc:
        message = str(exc)
        text.error(message.replace(f"'{path}'", f"'{upload.name}'") if path else message)
        return None
    if choice.key not in {c.key for c in known}:
        known.append(choice)
    checked[upload.file_id] = choice.key
    return next(c for c in known if c.key == choice.key)


@st.cache_resource(show_spinner="Loading the model...", max_entries=4)
def _load(path: str, *stamp):  # ModelChoice.version: one load per file version for every session
    from siamese_core.inference.model import SiameseModel  # torch is imported here, on first use only

    return SiameseModel.load(path)


def load_quietly(choice: ModelChoice):
    """The loaded model, or None when it cannot load (said where it is the model in use, not here)."""
    try:
        return _load(*choice.version)
    except (OSError, UserError):
        return None


def load_model(choice: ModelChoice):
    """The loaded model (cached per file and version), or None after showing why it cannot load."""
    try:
        model = _load(*choice.version)
    except FileNotFoundError:  # deleted since the list was drawn (or the demo never made): no path shown
        if choice.key == DEMO_KEY:
            st.error("The demo model's file is missing: run `python assets/make_demo.py` to make it again.")
        else:
            text.error(f"The file of the model '{choice.label}' is no longer on the server: pick another model.")
        return None
    except UserError as exc:
        text.error(exc)
        return None
    from siamese_core.runs.context import context_of

    # Read afresh on each run (two small files): a class word renamed on the Runs page shows at once,
    # without loading the weights again.
    model.context = context_of(choice.path, model.checkpoint)
    return model
