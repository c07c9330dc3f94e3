"""The Train page's "make one here" data source: name classes, add webcam snapshots or image files to each,
see them as thumbnails and remove bad ones, then train on them like any zip of class folders.

The images live on the server (siamese_core.data.builder), not in the session: the address keeps the data
set's id, so a reload finds them again. Start takes a copy into the run; the data set stays to grow."""

from __future__ import annotations

import io
from typing import Optional

import streamlit as st
from PIL import Image

from app_pages.shared import state, text
from app_pages.train.choice import DataChoice
from siamese_core.data import builder
from siamese_core.data.builder import DatasetDraft
from siamese_core.data.images import IMAGE_SUFFIXES
from siamese_core.errors import UserError

PARAM = "dataset"  # the address remembers the data set: a reload finds its images again
NAME = "my-images"  # the data's name in the run's name
UPLOAD = "Uploading image files"
CAMERA = "Webcam snapshots"
THUMBNAILS = 40  # per class, newest first; the rest are counted
THUMB_SIDE = 72


def make_dataset(source: str):
    st.caption(f"Make one class per person, object or signature, then add images to each with the webcam or "
               f"from files. Each class needs at least {builder.MIN_IMAGES} images; {builder.GOOD_IMAGES} or "
               "more, from different angles and lighting, give a much better result. The images are kept on "
               "this server for a week after the last change; Start copies them into the run.")
    draft = _new_class(_draft())
    _show_message()
    classes = draft.classes() if draft else []
    if not classes:
        return DataChoice(source, problems=builder.problems({}), name=NAME)

    if st.session_state.get(state.BUILDER_TARGET) not in classes:
        st.session_state.pop(state.BUILDER_TARGET, None)  # renamed or removed: the first class is picked
    left, right = st.columns(2)
    target = left.radio("Add images to", classes, horizontal=True, key=state.BUILDER_TARGET)
    how = right.radio("Add them by", [UPLOAD, CAMERA], horizontal=True, key="builder-how")
    if how == CAMERA:
        key = state.builder_camera(state.count(state.BUILDER_SHOTS))  # a new key: the camera is ready again
        st.camera_input(f"Take a snapshot: each one is added to '{target}'", key=key,
                        on_change=_take_snapshot, args=(draft.id, target, key))
    else:
        files = st.file_uploader(f"Images for '{target}' (several at once)", accept_multiple_files=True,
                                 type=sorted(s.lstrip(".") for s in IMAGE_SUFFIXES),
                                 key=f"builder-files-{draft.id}-{target}")
        _add_uploads(draft, target, files or [])

    for name in classes:
        _class_view(draft, name)

    problems, advice = draft.problems(), draft.advice()
    for line in advice:
        st.warning(line)
    st.download_button("Download this dataset as a zip", draft.zip_bytes, file_name=f"{NAME}.zip",
                       mime="application/zip", icon=":material/download:", disabled=not draft.total,
                       key="builder-zip", on_click="ignore",
                       help="Class folders, ready to upload again with 'Upload a zip of class folders'.")
    if problems:
        return DataChoice(source, problems=problems, name=NAME)
    snapshot = draft.snapshot()  # start_training moves this copy into the run
    return DataChoice(source, {**builder.SETTINGS, "train_path": str(snapshot)}, snapshot, name=NAME)


# ---------------------------------------------------------------- the data set of this browser tab

def named_in_address() -> bool:
    """Whether the address names a data set being made (the page was reloaded while making one)."""
    return DatasetDraft.open(st.query_params.get(PARAM, "")) is not None


def leave_address() -> None:
    """Another source was picked: a reload should not bring the builder back."""
    if PARAM in st.query_params:
        del st.query_params[PARAM]


def _draft() -> Optional[DatasetDraft]:
    """This session's data set, or the one the address names (after a reload); None before the first class."""
    wanted = st.session_state.get(state.BUILDER_DATASET) or st.query_params.get(PARAM)
    draft = DatasetDraft.open(wanted) if wanted else None
    if draft is not None:
        st.session_state[state.BUILDER_DATASET] = draft.id
        if st.query_params.get(PARAM) != draft.id:
            st.query_params[PARAM] = draft.id
    return draft


def _open(dataset_id: str) -> DatasetDraft:
    draft = DatasetDraft.open(dataset_id)
    if draft is None:
        raise UserError("This data set is no longer on the server (a data set nobody changes for a week is "
                        "removed): make a new class to start again.")
    return draft


def _new_class(draft: Optional[DatasetDraft]) -> Optional[DatasetDraft]:
    """The form that makes a class (and the data set, with its first class); returns the data set."""
    with st.form("builder-new-class", clear_on_submit=True, border=False):
        left, right = st.columns([3, 1], vertical_alignment="bottom")
        name = left.text_input("New class", placeholder="a name: alice, red cup, my signature...",
                               key="builder-class-name", max_chars=builder.MAX_NAME)
        if right.form_submit_button("Add class", icon=":material/add:") and name.strip():
            try:
                draft = draft or DatasetDraft.create()
                st.session_state[state.BUILDER_DATASET] = draft.id
                st.query_params[PARAM] = draft.id
                added = draft.add_class(name)
                st.session_state[state.BUILDER_TARGET] = added  # images go to the new class next
                _say(f"Class '{added}' made: add its images below.", "success")
            except UserError as exc:
                _say(str(exc), "error")
    return draft


def _say(message: str, kind: str = "success") -> None:
    st.session_state[state.BUILDER_MESSAGE] = (kind, message)


def _show_message() -> None:
    kind, message = st.session_state.pop(state.BUILDER_MESSAGE, (None, None))
    if kind == "error":
        text.error(message)
    elif message:
        st.success(message, icon=":material/check:")


# ---------------------------------------------------------------- adding images

def _take_snapshot(dataset_id: str, target: str, key: str) -> None:
    photo = st.session_state.get(key)
    if photo is None:  # the photo was cleared
        return
    try:
        _, new = _open(dataset_id).add_image(target, photo.getvalue(), "The snapshot")
        _say(f"Snapshot added to '{target}'." if new else f"That snapshot is in '{target}' already.")
    except UserError as exc:
        _say(str(exc), "error")
    state.bump(state.BUILDER_SHOTS)


def _add_uploads(draft: DatasetDraft, target: str, files: list) -> None:
    """Add the uploaded files not added before (each once: a file removed from the class stays removed)."""
    done = state.builder_added()
    fresh = [f for f in files if f.file_id not in done]
    if not fresh:
        return
    added = again = 0
    bar = st.progress(0.0, text=f"Adding {len(fresh)} image{'s' if len(fresh) != 1 else ''} to '{target}'...")
    for n, upload in enumerate(fresh, 1):  # each is decoded, made smaller and saved: seconds for many photos
        done.add(upload.file_id)
        try:
            _, new = draft.add_image(target, upload.getvalue(), f"'{upload.name}'")
        except UserError as exc:
            text.error(exc)
            continue
        finally:
            bar.progress(n / len(fresh), text=f"Adding images to '{target}': {n} of {len(fresh)}...")
        added += new
        again += not new
    bar.empty()
    if added or again:
        st.success(f"{added} image{'s' if added != 1 else ''} added to '{target}'"
                   + (f" ({again} {'was' if again == 1 else 'were'} there already)." if again else "."),
                   icon=":material/check:")


# ---------------------------------------------------------------- one class

def _class_view(draft: DatasetDraft, name: str) -> None:
    images = draft.images(name)
    head = st.container(horizontal=True, vertical_alignment="center", key=f"builder-head-{name}")
    count = len(images)
    mark = ("" if count >= builder.GOOD_IMAGES else " :orange[(few)]" if count >= builder.MIN_IMAGES
            else " :red[(too few)]")
    head.markdown(f"**{text.plain(name)}**: {count} image{'s' if count != 1 else ''}{mark}")
    with head.popover("Rename or remove", icon=":material/edit:"):
        st.text_input("New name", name, key=state.builder_rename(name), max_chars=builder.MAX_NAME)
        st.button("Rename", key=f"builder-rename-go-{name}", on_click=_rename, args=(draft.id, name))
        st.button(f"Remove '{name}' and its {count} images", key=f"builder-remove-{name}", type="primary",
                  icon=":material/delete:", on_click=_remove_class, args=(draft.id, name))
    shown = images[::-1][:THUMBNAILS]
    if not shown:
        st.caption("No images yet.")
        return
    grid = st.container(horizontal=True, gap="small", key=f"builder-grid-{name}")
    for image in shown:
        cell = grid.container(width=THUMB_SIDE + 8, gap=None, horizontal_alignment="center")
        cell.image(_thumbnail(str(image)), width=THUMB_SIDE)
        cell.button(":material/close:", key=f"builder-drop-{name}-{image.name}", type="tertiary",
                    help="Remove this image", on_click=_remove_image, args=(draft.id, name, image.name))
    if len(images) > len(shown):
        st.caption(f"... and {len(images) - len(shown)} older images.")


@st.cache_data(max_entries=4000, show_spinner=False)
def _thumbnail(path: str) -> bytes:
    """A small copy to show (the stored image is up to 512 pixels a side; its name holds its content's hash)."""
    with Image.open(path) as image:
        image.thumbnail((2 * THUMB_SIDE, 2 * THUMB_SIDE))
        buffer = io.BytesIO()
        image.convert("RGB").save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _rename(dataset_id: str, name: str) -> None:
    try:
        new = _open(dataset_id).rename_class(name, st.session_state.get(state.builder_rename(name), name))
        if new != name:
            if st.session_state.get(state.BUILDER_TARGET) == name:
                st.session_state[state.BUILDER_TARGET] = new
            _say(f"'{name}' is now '{new}'.")
    except UserError as exc:
        _say(str(exc), "error")


def _remove_class(dataset_id: str, name: str) -> None:
    try:
        _open(dataset_id).remove_class(name)
        _say(f"Class '{name}' removed, with its images.")
    except UserError as exc:
        _say(str(exc), "error")


def _remove_image(dataset_id: str, name: str, image_name: str) -> None:
    try:
        _open(dataset_id).remove_image(name, image_name)
    except UserError as exc:
        _say(str(exc), "error")
