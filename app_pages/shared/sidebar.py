"""The sidebar every page shows under the navigation: the model in use, the device, runs training now."""

from __future__ import annotations

import os

import streamlit as st

from app_pages.shared import runs as shared_runs
from app_pages.shared import state, text
from app_pages.shared.models import current_model, model_choices, run_title, use_model
from siamese_core.runs import jobs
from siamese_core.runs.rundir import epoch_in_progress
from siamese_core.settings import runs_dir
from siamese_core.words import ordinal


def device_label() -> str:
    gpu = jobs.accelerator()
    return gpu if gpu else f"CPU ({os.cpu_count()} cores)"


def sidebar() -> None:
    with st.sidebar:
        runs = shared_runs.listed()
        model_in_use(runs)
        st.caption(f"**Device**  \n{device_label()}")
        unfinished = [info.name for info in runs if info.unfinished]
        if unfinished:  # redrawn on its own while runs wait or train, so its epoch keeps up with the page's progress bar
            st.fragment(_training_now, run_every=2.0)(unfinished)


def model_in_use(runs: list) -> None:
    """Which model every page uses, said where every page shows it, and changed there in one pick."""
    choices = model_choices(runs)
    chosen = current_model(choices)
    if len(choices) == 1:  # the demo alone: nothing to change to
        st.caption(f"**Model in use**  \n{text.plain(chosen.label)}")
        return
    widget = state.model_picker("sidebar")
    st.session_state[widget] = chosen.key  # the one model state of the app: this box shows it, never its own
    labels = {c.key: c.label for c in choices}
    st.selectbox("Model in use", list(labels), format_func=labels.get, key=widget, on_change=_picked, args=(widget,),
                 help="Every page (Verify, Explore, Evaluate) uses this model. Runs appear here once they finish.")


def _picked(widget: str) -> None:
    use_model(st.session_state[widget])


def _training_now(names: list) -> None:
    alone = shared_runs.redrawn_alone("sidebar")
    infos = [jobs.info(runs_dir() / name) for name in names]
    # The queue's order needs every run: on this part's own redraws, listed afresh only while one waits.
    places = jobs.queue_places(shared_runs.latest(alone)) if any(info.waiting for info in infos) else {}
    # Training runs first, then the waiting ones in the order they start.
    for info in sorted(infos, key=lambda i: places[i.name]["place"] if i.name in places else 0):
        if info.active:
            st.caption(f"**Training now**  \n{text.plain(run_title(info))}: epoch {epoch_in_progress(info.status)} "
                       f"of {info.status.total_epochs or '?'}")
        elif info.name in places:
            st.caption(f"**Waiting**  \n{text.plain(run_title(info))}: "
                       f"{ordinal(places[info.name]['place'])} in line")
