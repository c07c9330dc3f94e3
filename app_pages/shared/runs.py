"""The runs folder, read once per page load: app.py moves the queue on and lists the runs before the page, and
the sidebar, the model picker and the pages all draw from that one list."""

from __future__ import annotations

import logging

import streamlit as st

from siamese_core.errors import UserError, plain_words
from siamese_core.runs import jobs
from siamese_core.settings import runs_dir

_LISTED = "runs-listed"  # session state: this page load's list of runs, or the exception listing them raised
_LOADS = "runs-page-loads"  # session state: page loads so far, so a part that redraws alone knows it does


def advance_and_list() -> list[jobs.RunInfo]:
    """Start the waiting runs a free slot allows (no trainer may be left to: after a restart, or a trainer that
    was killed), then list every run, newest first."""
    root = runs_dir()
    runs = jobs.list_runs(root)
    if jobs.advance_queue(root, runs):
        runs = jobs.list_runs(root)
    return runs


def load() -> None:
    """app.py, once per page load, before the sidebar and the page. A failure (a folder that cannot be read) is
    kept for whoever asks for the runs: each part that shows them says so in its own place, as it always did."""
    st.session_state[_LOADS] = st.session_state.get(_LOADS, 0) + 1
    try:
        st.session_state[_LISTED] = advance_and_list()
    except Exception as exc:  # noqa: BLE001  shown by each caller of listed(), through its own error boundary
        logging.getLogger("siamese_core").exception("Listing the runs failed")
        st.session_state[_LISTED] = exc


def listed() -> list[jobs.RunInfo]:
    """The runs this page load listed (see load()); listed now where nothing was (a page run on its own)."""
    runs = st.session_state.get(_LISTED)
    if isinstance(runs, Exception):
        raise UserError(plain_words(runs))
    return jobs.list_runs(runs_dir()) if runs is None else runs


def redrawn_alone(part: str) -> bool:
    """Whether `part` of a page, an st.fragment, is drawn on a redraw of its own (app.py did not run first)
    rather than with its page load. The part calls this on every draw."""
    seen, load = f"runs-seen-by-{part}", st.session_state.get(_LOADS)
    if load is None or st.session_state.get(seen) == load:
        return True
    st.session_state[seen] = load
    return False


def latest(alone: bool) -> list[jobs.RunInfo]:
    """The runs for a part that redraws on its own: on such a redraw the queue moved on (a waiting run starts
    when a slot frees, with no page load) and the runs listed afresh; with its page load, that load's list."""
    return advance_and_list() if alone else listed()
