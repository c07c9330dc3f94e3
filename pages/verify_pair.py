"""The Verify page's first tab: two images in, a plain verdict out, a threshold to move, a short history."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import streamlit as st

from pages import ui
from siamese_core.config import plural
from siamese_core.errors import UserError
from siamese_core.images import IMAGE_SUFFIXES, is_image_file, pixels_to_image

SOURCES = ["Sample", "Upload", "Camera"]
HISTORY = "verify-history"
HISTORY_LENGTH = 10
# Sample pairs to click for a first try: (digit, file) of image A and of image B; photo-*.jpg are
# photo-like (dark ink on paper, photographed), mnist-*.png held-out MNIST digits (assets/make_demo.py).
SAME_PAIRS = [(("4", "0014.png"), ("4", "0024.png")), (("0", "0048.png"), ("0", "0079.png")),
              (("7", "0017.png"), ("7", "0027.png")), (("7", "photo-8003.jpg"), ("7", "mnist-8008.png"))]
DIFFERENT_PAIRS = [(("1", "0001.png"), ("7", "0017.png")), (("3", "0023.png"), ("8", "0038.png")),
                   (("4", "0014.png"), ("9", "0009.png")), (("1", "photo-8004.jpg"), ("7", "photo-8003.jpg"))]


def shown(pixels: np.ndarray, side: int):
    """The model's input for a person: small images blown up with sharp pixels, not blurred by the browser."""
    from PIL import Image

    image = pixels_to_image(pixels)
    if image.width < side:
        image = image.resize((side, side), Image.Resampling.NEAREST)
    return image


@dataclass
class PickedImage:
    pixels: np.ndarray  # uint8 (C, S, S), as the model sees it
    name: str


def samples() -> list:
    """The sample digits: MNIST-style images and photo-like ones (photographed ink on paper)."""
    return sorted(p for p in ui.SAMPLES.glob("*/*") if is_image_file(p))


def model_id(choice: ui.ModelChoice) -> str:
    """Names one version of one model file: cached results stay valid while it does."""
    return f"{choice.path}@{choice.path.stat().st_mtime}"


@st.cache_data(max_entries=64, show_spinner=False)
def prepared(data: bytes, size: int, channels: int, pipeline: str):
    """Decode once per file content and model input: (pixels, notes in plain words)."""
    from siamese_core.images import conversion_notes, open_image_with_notes, to_pixels

    image, notes = open_image_with_notes(data)
    notes = notes + conversion_notes(image, channels, pipeline)
    if image.size != (size, size):
        notes.append(f"resized from {image.size[0]}x{image.size[1]} to {size}x{size}")
    return to_pixels(image, size, channels, pipeline), notes


@st.cache_data(max_entries=256, show_spinner=False)
def pair_score(_model, model_key: str, pixels_a: np.ndarray, pixels_b: np.ndarray) -> tuple:
    """(score, distance), once per pair and model: moving the slider reuses them.

    Plain floats, not the Verdict: cache_data pickles what it keeps, and a Verdict pickled before
    Streamlit reloads a changed siamese_core module no longer matches its class.
    """
    verdict = _model.verify(pixels_a, pixels_b)
    return verdict.score, verdict.distance


# ---------------------------------------------------------------- sample pair buttons

def _pick_pair(pairs: list, counter: str) -> None:
    """A button's callback: put the next sample pair of `pairs` into both inputs (before they are drawn)."""
    n = st.session_state.get(counter, 0)
    st.session_state[counter] = n + 1
    for side, (digit, name) in zip("AB", pairs[n % len(pairs)]):
        path = ui.SAMPLES / digit / name
        if path.is_file():
            st.session_state[f"source-{side}"] = "Sample"
            st.session_state[f"sample-{side}"] = path


def sample_buttons() -> None:
    left, right, _ = st.columns([1, 1, 2])
    left.button("Try: same digit", key="try-same", on_click=_pick_pair, args=(SAME_PAIRS, "try-same-n"),
                help="Two different handwritten images of one digit.")
    right.button("Try: different digits", key="try-different", on_click=_pick_pair,
                 args=(DIFFERENT_PAIRS, "try-different-n"), help="Two digits that are not the same.")


# ---------------------------------------------------------------- one image input

def image_input(column, side: str, model, default_sample: int, label: Optional[str] = None) -> Optional[PickedImage]:
    """One image from a sample, an upload or the camera, shown as the model sees it; None with a message."""
    label = label or f"Image {side}"
    source = column.radio(label, SOURCES, horizontal=True, key=f"source-{side}",
                          help="Camera asks the browser for the camera only when you pick it.")
    if source == "Upload":
        upload = column.file_uploader(label, type=sorted(s.lstrip(".") for s in IMAGE_SUFFIXES),
                                      key=f"upload-{side}", label_visibility="collapsed")
        if upload is None:
            column.info("Drop an image on the box above, or click Upload.")
            return None
        data, name = upload.getvalue(), upload.name
    elif source == "Camera":
        shot = column.camera_input(label, key=f"camera-{side}", label_visibility="collapsed")
        if shot is None:
            column.info("Take a picture with the button under the camera view.")
            return None
        data, name = shot.getvalue(), "camera snapshot"
    else:
        options = samples()
        path = column.selectbox("Sample", options, index=min(default_sample, len(options) - 1), key=f"sample-{side}",
                                format_func=lambda p: f"digit {p.parent.name} ({p.name})")
        data, name = Path(path).read_bytes(), f"sample digit {Path(path).parent.name}"
    try:
        pixels, notes = prepared(data, model.image_size, model.channels, model.input_pipeline)
    except UserError as exc:
        column.error(str(exc))
        return None
    column.image(shown(pixels, 180), width=180,
                 caption=f"as the model sees it: {model.image_size}x{model.image_size} pixels"
                         + ("" if model.channels == 3 else ", grey"))
    if notes:
        column.caption("Changed on the way in: " + "; ".join(notes) + ".")
    return PickedImage(pixels, name)


# ---------------------------------------------------------------- verdict

def threshold_slider(model, choice: ui.ModelChoice) -> float:
    """The decision threshold in score units (0-1), shown in percent; its default is the calibrated one."""
    calibrated = round(100 * model.threshold, 1)
    key = f"threshold-{choice.key}"
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
        gauge={"axis": {"range": [0, 100], "ticksuffix": "%"}, "bar": {"color": "#1f3b73", "thickness": 0.3},
               "steps": [{"range": [0, 100 * threshold], "color": "#dbe7f6"},
                         {"range": [100 * threshold, 100], "color": "#cdebd3"}],
               "threshold": {"line": {"color": "#c0392b", "width": 4}, "thickness": 0.9, "value": 100 * threshold}}))
    figure.update_layout(height=240, margin={"l": 30, "r": 30, "t": 50, "b": 10})
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


# ---------------------------------------------------------------- history

def _thumbnail(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    shown(pixels, 56).save(buffer, format="PNG")
    return buffer.getvalue()


def remember(key: str, a: PickedImage, b: PickedImage, verdict, model, label: str) -> None:
    """Add a check to the session's history, unless it is the same check as the last one."""
    history = st.session_state.setdefault(HISTORY, [])
    entry = {"key": key, "a": _thumbnail(a.pixels), "b": _thumbnail(b.pixels), "names": (a.name, b.name),
             "words": verdict_words(verdict.same, model.class_word), "score": verdict.score,
             "threshold": verdict.threshold, "model": label}
    if history and history[-1]["key"] == key:
        history[-1] = entry  # the same pair again (e.g. the threshold moved): keep the latest verdict
    else:
        history.append(entry)
    del history[:-HISTORY_LENGTH]


def show_history() -> None:
    history = st.session_state.get(HISTORY, [])
    if not history:
        return
    with st.expander(f"Checked in this session ({len(history)})", expanded=False):
        for entry in reversed(history):
            a, b, text = st.columns([1, 1, 6])
            a.image(entry["a"], width=56)
            b.image(entry["b"], width=56)
            text.markdown(f"**{entry['words']}**, {100 * entry['score']:.1f}% (same from "
                          f"{100 * entry['threshold']:.1f}%) · {entry['names'][0]} and {entry['names'][1]} · "
                          f"{entry['model']}")
        st.button("Clear the history", key="clear-history", on_click=st.session_state.__setitem__, args=(HISTORY, []))


# ---------------------------------------------------------------- the tab

def show(model, choice: ui.ModelChoice) -> None:
    sample_buttons()
    left, right = st.columns(2)
    # A first try that works: two different images of the same digit.
    image_a = image_input(left, "A", model, 0)
    image_b = image_input(right, "B", model, 1)
    threshold = threshold_slider(model, choice)
    if image_a is None or image_b is None:
        st.caption("The verdict appears here once both images can be read.")
    else:
        from siamese_core.inference import Verdict

        score, distance = pair_score(model, model_id(choice), image_a.pixels, image_b.pixels)
        verdict = Verdict(same=score >= threshold, score=score, threshold=threshold, distance=distance)
        show_verdict(verdict, model)
        key = hashlib.sha256(model_id(choice).encode() + image_a.pixels.tobytes() + image_b.pixels.tobytes()).hexdigest()
        remember(key, image_a, image_b, verdict, model, choice.label)
    show_history()
