"""How the map formed, epoch by epoch: a run's epoch snapshots as a map with a slider and Play.

Used on Explore (a finished run's model) and on the Train page (a run training now, or just finished).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import streamlit as st

from app_pages.shared import text

MAP_HEIGHT = 560
LIVE_HEIGHT = 420
NO_SNAPSHOTS = ("This model has no epoch-by-epoch map: only runs trained with this version of the app keep one "
                "(the demo model and older runs do not).")


def _stamp(run_path: Path) -> tuple:
    """Changes whenever the trainer adds (or a resume replaces) a snapshot: the cached pages' key."""
    from siamese_core.maps.snapshots import epoch_file, snapshot_epochs

    epochs = snapshot_epochs(run_path)
    if not epochs:
        return ()
    try:
        return tuple(epochs) + (epoch_file(run_path, epochs[-1]).stat().st_mtime,)
    except OSError:
        return tuple(epochs)


def _facts(run_path: Path) -> tuple[dict, Optional[int]]:
    """Each epoch's validation accuracy and the run's planned epochs, from its metrics and status."""
    from siamese_core.runs.rundir import RunDir

    run = RunDir(run_path)
    accuracies = {int(r["epoch"]): r["accuracy"] for r in run.read_metrics()
                  if r.get("type") == "epoch" and isinstance(r.get("epoch"), int)
                  and isinstance(r.get("accuracy"), (int, float))}
    return accuracies, run.status().total_epochs


@st.cache_resource(max_entries=6, show_spinner=False)
def _page(run_path: str, stamp: tuple, dims: int, class_word: str, height: int) -> Optional[tuple[str, str]]:
    """(the map page of a run's snapshots, its caption), built once per new epoch (the page is about 5 MB:
    plotly.js is inside)."""
    from siamese_core.maps.epoch_map import epoch_map_page
    from siamese_core.maps.snapshots import describe_features, read_snapshots, sample_words

    snapshots = read_snapshots(run_path)
    if snapshots is None:
        return None
    accuracies, total = _facts(Path(run_path))
    words = (f"{sample_words(snapshots)}, placed by {describe_features(snapshots.features)}. The layout is "
             "shared by the epochs, so a dot moves only as far as the model moved its image. "
             "Press Play or drag the slider; hover a dot to see its image.")
    return epoch_map_page(snapshots, dims, accuracies, total, class_word, height), words


def show_for_model(model) -> None:
    """Explore's section for the chosen model: its run's map, epoch by epoch, or a one-line note."""
    st.subheader("How the map formed, epoch by epoch")
    run_path = getattr(getattr(model, "context", None), "run", None)
    if run_path is None or not _stamp(Path(run_path)):
        st.caption(NO_SNAPSHOTS)
        return
    # On request: a second map page is another few megabytes to send.
    if st.toggle("Show it", key="explore-epochs-show",
                 help="The same validation images after every epoch of training, from the random start on."):
        show_map(Path(run_path), model.class_word, key="explore-epochs")


def show_map(run_path: Path, class_word: str, key: str, height: int = MAP_HEIGHT) -> None:
    """The map page (thumbnails on hover, 2D or 3D), for a run whose snapshots no longer change."""
    stamp = _stamp(run_path)
    if not stamp:
        return
    dims = 3 if st.radio("View", ["2D", "3D"], horizontal=True, key=f"{key}-dims",
                         label_visibility="collapsed") == "3D" else 2
    with st.spinner("Drawing the map of every epoch..."):
        drawn = _page(str(run_path), stamp, dims, class_word, height)
    if drawn is None:
        st.caption(NO_SNAPSHOTS)
        return
    page, words = drawn
    st.iframe(page, height=height + 10, alt=f"{dims}D map of the validation images, epoch by epoch")
    st.caption(text.plain(words))


def show_live(run_path: Path, class_word: str, training: bool) -> None:
    """The Train page's section: while the run trains, a light map that grows an epoch at a time (it is
    redrawn every few seconds, so no 5 MB page with thumbnails); once it has ended, the full map."""
    stamp = _stamp(run_path)
    if not stamp:
        return
    if not training:
        if st.toggle("Show how the map formed, epoch by epoch", key=f"run-epochs-show-{run_path.name}",
                     help="The same validation images after every epoch of training, from the random start on."):
            show_map(run_path, class_word, key=f"run-epochs-{run_path.name}", height=LIVE_HEIGHT + 60)
        return
    with st.expander("How the map is forming, epoch by epoch", expanded=True):
        figure = _live_figure(str(run_path), _live_stamp(run_path, stamp), class_word)
        if figure is None:
            return
        st.plotly_chart(figure, key=f"run-epochs-{run_path.name}", config={"displayModeBar": False})
        st.caption("Each dot is one validation image, placed where the model puts it after each epoch; a new "
                   "epoch is added as soon as it ends. Press Play to watch the classes gather. Once training "
                   "ends, a fuller map shows each dot's image on hover, in 2D or 3D.")


LIVE_REBUILD_SECONDS = 10.0  # a live map is rebuilt at most this often: a digit epoch can end every 2 s, and
# rebuilding on each kept the page busy without a pause (the sessions share the built figure)
_live_stamps: dict = {}  # run folder -> (the stamp its live figure was last built for, when)


def _live_stamp(run_path: Path, stamp: tuple) -> tuple:
    """The stamp to draw the live map for: the newest, unless the last one was taken less than
    LIVE_REBUILD_SECONDS ago (its figure is still cached)."""
    key = str(run_path)
    last = _live_stamps.get(key)
    if last is not None and last[0] != stamp and time.monotonic() - last[1] < LIVE_REBUILD_SECONDS:
        return last[0]
    if last is None or last[0] != stamp:
        _live_stamps[key] = (stamp, time.monotonic())
    return stamp


@st.cache_resource(max_entries=4, show_spinner=False)
def _live_figure(run_path: str, stamp: tuple, class_word: str):
    from siamese_core.maps.epoch_map import live_figure
    from siamese_core.maps.snapshots import read_snapshots

    snapshots = read_snapshots(run_path)
    return None if snapshots is None else live_figure(snapshots, class_word, LIVE_HEIGHT)
