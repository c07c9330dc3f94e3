"""The Verify page's image inputs, shared by its tabs: a sample, an upload or the camera, as the model sees it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import streamlit as st

from app_pages.shared.images import enlarged
from app_pages.shared.paths import SAMPLES
from siamese_core.errors import UserError
from siamese_core.images import IMAGE_SUFFIXES, is_image_file, pixels_to_image

SOURCES = ["Sample", "Upload", "Camera"]
# Sample pairs to click for a first try: (digit, file) of image A and of image B; photo-*.jpg are
# photo-like (dark ink on paper, photographed), mnist-*.png held-out MNIST digits (assets/make_demo.py).
SAME_PAIRS = [(("4", "0014.png"), ("4", "0024.png")), (("0", "0048.png"), ("0", "0079.png")),
              (("7", "0017.png"), ("7", "0027.png")), (("7", "photo-8003.jpg"), ("7", "mnist-8008.png"))]
DIFFERENT_PAIRS = [(("1", "0001.png"), ("7", "0017.png")), (("3", "0023.png"), ("8", "0038.png")),
                   (("4", "0014.png"), ("9", "0009.png")), (("1", "photo-8004.jpg"), ("7", "photo-8003.jpg"))]


def shown(pixels: np.ndarray, side: int):
    """The model's input for a person: small images blown up with sharp pixels, not blurred by the browser."""
    return enlarged(pixels_to_image(pixels), side)


@dataclass
class PickedImage:
    pixels: np.ndarray  # uint8 (C, S, S), as the model sees it
    name: str


def samples() -> list:
    """The sample digits: MNIST-style images and photo-like ones (photographed ink on paper)."""
    return sorted(p for p in SAMPLES.glob("*/*") if is_image_file(p))


@st.cache_data(max_entries=64, show_spinner=False)
def prepared(data: bytes, size: int, channels: int, pipeline: str):
    """Decode once per file content and model input: (pixels, notes in plain words)."""
    from siamese_core.images import conversion_notes, open_image_with_notes, to_pixels

    image, notes = open_image_with_notes(data)
    notes = notes + conversion_notes(image, channels, pipeline)
    if image.size != (size, size):
        notes.append(f"resized from {image.size[0]}x{image.size[1]} to {size}x{size}")
    return to_pixels(image, size, channels, pipeline), notes


# ---------------------------------------------------------------- sample pair buttons

def _pick_pair(pairs: list, counter: str) -> None:
    """A button's callback: put the next sample pair of `pairs` into both inputs (before they are drawn)."""
    n = st.session_state.get(counter, 0)
    st.session_state[counter] = n + 1
    for side, (digit, name) in zip("AB", pairs[n % len(pairs)]):
        path = SAMPLES / digit / name
        if path.is_file():
            st.session_state[f"source-{side}"] = "Sample"  # the widgets of image_input(side=...) below
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
