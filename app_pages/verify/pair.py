"""The Verify page's first tab: two images in, a plain verdict out, a threshold to move, a short history."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Optional

import numpy as np
import streamlit as st

from app_pages.shared import state, why
from app_pages.shared.models import DEMO_KEY, ModelChoice, load_quietly, model_choices, use_model
from app_pages.shared.text import plain
from app_pages.verify.inputs import PickedImage, image_input, sample_buttons, sample_set, shown
from siamese_core.errors import UserError
from siamese_core.inference.domain import images_word
from siamese_core.words import plural

HISTORY_LENGTH = 10


@st.cache_data(max_entries=256, show_spinner=False)
def pair_check(_model, model_version: tuple, data_a: bytes, data_b: bytes) -> dict:
    """The verdict's figures and its domain check, once per pair and model: moving the slider reuses them.

    The files as given, not the prepared pixels: the check measures each image before the model's input pipeline.
    Plain values, not the Verdict: cache_data pickles what it keeps, and a Verdict pickled before Streamlit reloads
    a changed siamese_core module no longer matches its class.
    """
    verdict = _model.verify(data_a, data_b)
    return {"score": verdict.score, "distance": verdict.distance, "outside": list(verdict.outside),
            "sentence": verdict.sentence, "checked": verdict.checked}


OFFERED_MODELS = 6  # other models asked whether they fit two images: the newest few (each loads once, then cached)


@st.cache_data(max_entries=64, show_spinner=False)
def fitting_model(others: tuple, data_a: bytes, data_b: bytes) -> Optional[tuple]:
    """(key, label, what it learnt) of the first of `others` ((key, label, *ModelChoice.version) of models) whose own
    images both files look like; None when none does (or none can tell)."""
    from siamese_core.inference.domain import what_of

    for key, label, path, *_stamp in others:
        choice = ModelChoice(key, label, Path(path))
        other = load_quietly(choice)
        if other is None:
            continue
        try:
            flags = other.outside([data_a, data_b])
        except UserError:
            continue
        if flags is not None and not flags.any():
            return choice.key, choice.label, what_of(other.domain, other.class_word) or "its own images"
    return None


def offer_other_model(model, choice: ModelChoice, image_a: PickedImage, image_b: PickedImage) -> None:
    """When another model on this server fits both images, one button to use it."""
    others = tuple((c.key, c.label, *c.version) for c in model_choices()
                   if c.key != choice.key and not c.key.startswith("upload:") and c.path.is_file())[:OFFERED_MODELS]
    if not others:
        st.caption("No other model on this server yet: a run trained on images like these would be offered here.")
        return
    with st.spinner("Looking for a model on this server that knows images like these..."):
        found = fitting_model(others, image_a.data, image_b.data)
    if found is None:
        st.caption("No other model on this server knows images like these either.")
        return
    key, label, what = found
    if key == DEMO_KEY:
        name = "the demo model"
    else:  # "Run people · 06 Dec 10:02 (98.9% validation accuracy...)": the run's title only
        title = label.removeprefix("Run ")
        name = f"the model of run {title.rsplit(' (', 1)[0] if title.endswith(')') else title}"
    st.button(f"Use {plain(name)}, which learnt {plain(what)}", key="use-fitting-model", type="primary",
              icon=":material/swap_horiz:", on_click=use_model, args=(key,))


# ---------------------------------------------------------------- verdict

def threshold_slider(model, choice: ModelChoice) -> float:
    """The decision threshold in score units (0-1), shown in percent; its default is the calibrated one."""
    calibrated = round(100 * model.threshold, 1)
    key = state.threshold(choice.key)
    left, right = st.columns([4, 1])
    percent = left.slider("Say 'same' from this score", 0.0, 100.0, calibrated, 0.1, format="%.1f%%", key=key,
                          help=f"The model's own threshold, {calibrated:.1f}%, was chosen on validation pairs when "
                               "it was trained. Move it to be stricter (higher) or more lenient (lower).")
    right.button("Reset", key=f"reset-{key}", on_click=st.session_state.__setitem__, args=(key, calibrated),
                 help="Back to the model's own threshold.", disabled=percent == calibrated)
    # At its default the slider shows the calibrated threshold rounded to 0.1%: use the exact one.
    return model.threshold if percent == calibrated else percent / 100.0


def gauge(score: float, threshold: float):
    import plotly.graph_objects as go

    figure = go.Figure(go.Indicator(
        mode="gauge+number", value=round(100 * score, 1), number={"suffix": "%", "font": {"size": 40}},
        title={"text": "how alike the model finds them"},
        gauge={"axis": {"range": [0, 100], "ticksuffix": "%", "tickfont": {"size": 10}},
               "bar": {"color": "#1f3b73", "thickness": 0.3},
               "steps": [{"range": [0, 100 * threshold], "color": "#dbe7f6"},
                         {"range": [100 * threshold, 100], "color": "#cdebd3"}],
               "threshold": {"line": {"color": "#c0392b", "width": 4}, "thickness": 0.9, "value": 100 * threshold}}))
    # The '100%' at the arc's right end overhangs it by half its width: side margins of 40 px and small
    # tick labels keep it whole when a phone's screen (390 px) leaves the chart about 350 px.
    figure.update_layout(height=240, autosize=True, margin={"l": 40, "r": 40, "t": 50, "b": 10})
    return figure


def verdict_words(same: bool, word: str) -> str:
    return f"Same {word}" if same else f"Different {plural(word)}"


def show_verdict(verdict, model) -> None:
    left, right = st.columns(2)
    with left:
        words = verdict_words(verdict.same, model.class_word)
        (st.success if verdict.same else st.info)(f"## {words}")
        st.metric("Score", f"{100 * verdict.score:.1f}%",
                  help="How alike the model finds the two images, from 0% to 100%."
                       + (f" Here: 100% minus half the distance between their embeddings ({verdict.distance:.2f})."
                          if model.is_embedding else ""))
        st.caption(f"The model says 'same' from {100 * verdict.threshold:.1f}% up: the red line on the gauge.")
    right.plotly_chart(gauge(verdict.score, verdict.threshold), key="verdict-gauge",
                       config={"displayModeBar": False})


def show_why(model, choice: ModelChoice, image_a: PickedImage, image_b: PickedImage, threshold: float) -> None:
    """The maps of which parts made the verdict, worked out only while the expander is open."""
    box = st.expander("Why this verdict?", key=state.WHY_VERDICT, on_change="rerun", icon=":material/search:")
    with box:
        if box.open:
            why.show_pair(model, choice.version, image_a.pixels, image_b.pixels, threshold)


# ---------------------------------------------------------------- history

def _thumbnail(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    shown(pixels, 56).save(buffer, format="PNG")
    return buffer.getvalue()


def remember(key: str, a: PickedImage, b: PickedImage, verdict, model, label: str) -> None:
    """Add a check to the session's history, unless it is the same check as the last one."""
    history = state.verify_history()
    entry = {"key": key, "a": _thumbnail(a.pixels), "b": _thumbnail(b.pixels), "names": (a.name, b.name),
             "words": (verdict_words(verdict.same, model.class_word) if not verdict.outside
                       else f"No verdict: {images_word(verdict.outside)} unlike the model's images"),
             "score": verdict.score,
             "threshold": verdict.threshold, "model": label}
    if history and history[-1]["key"] == key:
        history[-1] = entry  # the same pair again (e.g. the threshold moved): keep the latest verdict
    else:
        history.append(entry)
    del history[:-HISTORY_LENGTH]


def show_history() -> None:
    history = st.session_state.get(state.VERIFY_HISTORY, [])
    if not history:
        return
    with st.expander(f"Checked in this session ({len(history)})", expanded=False):
        for entry in reversed(history):
            a, b, text = st.columns([1, 1, 6])
            a.image(entry["a"], width=56)
            b.image(entry["b"], width=56)
            text.markdown(f"**{entry['words']}**, {100 * entry['score']:.1f}% (same from "
                          f"{100 * entry['threshold']:.1f}%) · {plain(entry['names'][0])} and "
                          f"{plain(entry['names'][1])} · {plain(entry['model'])}")  # file and run names: the user's words
        st.button("Clear the history", key="clear-history", on_click=st.session_state.__setitem__,
                  args=(state.VERIFY_HISTORY, []))


# ---------------------------------------------------------------- the tab

def show(model, choice: ModelChoice) -> float:
    """The tab; returns the threshold its slider sets, which the other tabs use too."""
    samples = sample_set(model)
    sample_buttons(model, samples)
    left, right = st.columns(2)
    # A first try that works: two different images of one class (the first two samples).
    image_a = image_input(left, "A", model, samples, 0)
    image_b = image_input(right, "B", model, samples, 1)
    threshold = threshold_slider(model, choice)
    if image_a is None or image_b is None:
        st.caption("The verdict appears here once both images can be read.")
    else:
        from siamese_core.inference.model import Verdict

        checked = pair_check(model, choice.version, image_a.data, image_b.data)
        verdict = Verdict(same=checked["score"] >= threshold, score=checked["score"], threshold=threshold,
                          distance=checked["distance"], outside=checked["outside"], sentence=checked["sentence"],
                          checked=checked["checked"])
        if verdict.outside:  # no confident verdict on images the model knows nothing about: the sentence instead
            st.warning(verdict.sentence, icon=":material/help:")
            offer_other_model(model, choice, image_a, image_b)
            with st.expander("Show the score anyway"):
                show_verdict(verdict, model)
        else:
            show_verdict(verdict, model)
            if verdict.note:
                st.caption(verdict.note)
        show_why(model, choice, image_a, image_b, threshold)
        # A drawing gives a verdict at every stroke: the history keeps one entry per drawing, its latest.
        key = hashlib.sha256(str(choice.version).encode()
                             + (image_a.pad.encode() if image_a.pad else image_a.pixels.tobytes())
                             + (image_b.pad.encode() if image_b.pad else image_b.pixels.tobytes())).hexdigest()
        remember(key, image_a, image_b, verdict, model, choice.label)
    show_history()
    return threshold
