"""The Train page's word on time before Start: how long these settings take on this machine, from a few timed steps
(siamese_core.training.estimate), timed in the background so the page never waits for it."""

from __future__ import annotations

import threading

import streamlit as st

from app_pages.shared import text
from siamese_core.config import TrainConfig, duration_words
from siamese_core.errors import UserError

POLL_SECONDS = 1.0
_imported = threading.Event()  # the estimate module (torch with it) is loaded: imported off the page's own thread
_importing = threading.Lock()


def _estimate_later(config: TrainConfig):
    """siamese_core.training.estimate.estimate_later, once its module is loaded; until then None, the module being
    imported in the background (torch takes seconds to import, more on a busy machine: the page never waits)."""
    if not _imported.is_set():
        if _importing.acquire(blocking=False):
            threading.Thread(target=_import_then_time, args=(config,), daemon=True).start()
        return None
    from siamese_core.training.estimate import estimate_later

    return estimate_later(config)


def _import_then_time(config: TrainConfig) -> None:
    try:
        from siamese_core.training.estimate import estimate_later

        _imported.set()
        estimate_later(config)  # starts the timing of these settings
    finally:
        _importing.release()


def show_estimate(config: TrainConfig, training_now: bool = False) -> None:
    """A line saying how long the run will take (or, under a time budget, how much training its time holds here);
    redrawn alone until the timing is done. Not while a run trains here: timing steps beside it would slow it down
    and measure a machine it fills (a new run waits for it anyway)."""
    try:
        config = config.resolve()
    except UserError:
        return  # the settings' own fault is said where Start is refused
    if training_now:
        st.caption(":material/timer: A run is training on this machine now: how long these settings take is timed "
                   "once it has finished (timing them beside it would slow it down).")
        return
    def note() -> None:
        estimate = _estimate_later(config)
        if estimate is None:
            st.caption(":material/timer: Timing a few training steps on this machine, to say how long this takes...")
            return
        if isinstance(estimate, str):
            st.caption(f":material/timer: {text.plain(estimate)}")
            return
        st.markdown(f":material/timer: {words(estimate)}")
        if not ready:
            st.rerun()  # once: the page is drawn again with the answer, and this part stops asking

    ready = False
    if _imported.is_set():
        from siamese_core.training.estimate import estimate_ready

        ready = estimate_ready(config)
    st.fragment(note, run_every=None if ready else POLL_SECONDS)()


def words(estimate) -> str:
    """The estimate in a sentence a person can plan by."""
    passes = estimate.epochs
    if estimate.budget is not None:
        held = (f"about {passes:.1f} passes over the data ({estimate.steps:,} steps)" if passes >= 1
                else f"about {max(0, estimate.steps):,} steps, {100 * passes:.0f}% of one pass over the data")
        if estimate.fixed_seconds >= estimate.budget or estimate.steps < 1:
            return (f"On this machine, as busy as it is now, starting, loading the images and finishing take about "
                    f"**{duration_words(estimate.fixed_seconds)}** on their own: {duration_words(estimate.budget)} "
                    f"cannot be kept, and the run would train only a few steps. Choose a longer time.")
        line = (f"Ends within **{duration_words(estimate.budget)}**: on this machine, as busy as it is now, that "
                f"time holds {held}.")
        if passes < 0.5:
            line += " That is little: a longer time trains a better model."
        return line
    return (f"Takes about **{duration_words(estimate.seconds)}** on this machine, as busy as it is now "
            f"({estimate.epochs:g} epochs of {estimate.steps_per_epoch:,} steps, timed just now).")
