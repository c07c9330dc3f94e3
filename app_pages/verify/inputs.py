"""The Verify page's image inputs, shared by its tabs: a sample, an upload, the camera or (for digit models) a
drawing, as the model sees it."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import streamlit as st

from app_pages.shared import state
from app_pages.shared.images import enlarged
from app_pages.shared.paths import SAMPLES
from siamese_core.config import size_words
from siamese_core.data.images import IMAGE_SUFFIXES, is_image_file, pixels_to_image
from siamese_core.errors import UserError
from siamese_core.words import plural

SOURCES = ["Sample", "Upload", "Camera"]
DRAW = "Draw"  # offered to digit models only: a drawing pad, its strokes read like an uploaded picture
PAD_SIDE = 280  # pixels: room for a finger or a mouse, and inside a phone's column (390 px screens)
PAD_STROKE = 18  # about MNIST's stroke for its 20-pixel digit box, at this pad's scale
# Below this grey level (0-255) a pixel of the pad is ink: its strokes are black on white.
INK_LEVEL = 128
# The demo's sample pairs to click for a first try: (digit, file) of image A and of image B; photo-*.jpg are
# photo-like (dark ink on paper, photographed), mnist-*.png held-out MNIST digits (assets/make_demo.py).
SAME_PAIRS = [(("4", "0014.png"), ("4", "0024.png")), (("0", "0048.png"), ("0", "0079.png")),
              (("7", "0017.png"), ("7", "0027.png")), (("7", "photo-8003.jpg"), ("7", "mnist-8008.png"))]
DIFFERENT_PAIRS = [(("1", "0001.png"), ("7", "0017.png")), (("3", "0023.png"), ("8", "0038.png")),
                   (("4", "0014.png"), ("9", "0009.png")), (("1", "photo-8004.jpg"), ("7", "photo-8003.jpg"))]


@dataclass(frozen=True)
class SampleSet:
    """The sample images a model offers: its run's own validation images, else (for a digit model) the built-in
    digits; and pairs of them for the 'Try' buttons."""

    images: tuple  # Paths
    labels: dict  # Path -> class name
    same: tuple  # (Path, Path) pairs of one class
    different: tuple  # (Path, Path) pairs of two classes
    key: str  # names the set, for the widgets that pick from it


def sample_set(model) -> SampleSet:
    context = model.context
    if context.samples:
        pairs = lambda found: tuple((a.path, b.path) for a, b in found)  # noqa: E731
        return SampleSet(tuple(s.path for s in context.samples), {s.path: s.label for s in context.samples},
                         pairs(context.same_pairs()), pairs(context.different_pairs()), str(context.run))
    if model.class_word == "digit":  # the demo model, or a digit model from elsewhere: the built-in digits
        images = tuple(sorted(p for p in SAMPLES.glob("*/*") if is_image_file(p)))
        demo = lambda found: tuple((SAMPLES / a[0] / a[1], SAMPLES / b[0] / b[1]) for a, b in found)  # noqa: E731
        return SampleSet(images, {p: p.parent.name for p in images}, demo(SAME_PAIRS), demo(DIFFERENT_PAIRS),
                         "digits")
    return SampleSet((), {}, (), (), "none")


def shown(pixels: np.ndarray, side: int):
    """The model's input for a person: small images blown up with sharp pixels, not blurred by the browser."""
    return enlarged(pixels_to_image(pixels), side)


@dataclass
class PickedImage:
    pixels: np.ndarray  # uint8 (C, H, W), as the model sees it
    name: str
    pad: Optional[str] = None  # the drawing pad it comes from (a new one after Clear): it changes with every stroke


@st.cache_data(max_entries=64, show_spinner=False)
def prepared(data: bytes, size, channels: int, pipeline: str):
    """Decode once per file content and model input (`size` a whole number or [height, width]): (pixels, notes
    in plain words)."""
    from siamese_core.config import image_hw
    from siamese_core.data.images import open_image_with_notes
    from siamese_core.data.pipelines import conversion_notes, to_pixels

    image, notes = open_image_with_notes(data)
    notes = notes + conversion_notes(image, channels, pipeline)
    height, width = image_hw(size)
    if image.size != (width, height):
        notes.append(f"resized from {image.size[1]}x{image.size[0]} to {height}x{width} (height x width)")
    return to_pixels(image, size, channels, pipeline), notes


def draws_digits(model) -> bool:
    """Whether the model is offered the drawing pad: its input pipeline finds and centres the ink of a digit,
    as it does in an uploaded picture; a photo model would see a white square with a few black lines."""
    return model.input_pipeline == "digit"


def canvas_png(image_data: Optional[np.ndarray]) -> Optional[bytes]:
    """The drawing pad's picture (RGBA pixels, transparent where nothing was painted) as the PNG file an upload
    would be: grey, on white; None while the pad holds no ink (nothing drawn yet, or cleared)."""
    if image_data is None or np.asarray(image_data).ndim != 3:
        return None
    from PIL import Image

    rgba = Image.fromarray(np.ascontiguousarray(image_data, dtype=np.uint8)).convert("RGBA")
    grey = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("L")
    if np.asarray(grey).min() >= INK_LEVEL:
        return None
    buffer = io.BytesIO()
    grey.save(buffer, format="PNG")
    return buffer.getvalue()


def _clear_pad(counter: str) -> None:
    state.bump(counter)  # a new key is a new, empty pad (the component keeps its strokes under its key)


def _pad_key(side: str) -> str:
    return state.drawing_pad(side, state.count(state.pad_cleared(side)))


def _drawing(column, side: str, word: str) -> Optional[bytes]:
    """A drawing pad and its Clear button; the drawing as PNG bytes, or None while the pad is empty."""
    from streamlit_drawable_canvas import st_canvas  # a component: it can only be imported inside a running app

    counter = state.pad_cleared(side)
    with column:
        # Also room for the pad's own toolbar, which shows above it on hover, off the choices above.
        st.caption(f"Write one {word} with the mouse or a finger.")
        result = st_canvas(stroke_width=PAD_STROKE, stroke_color="#000000", background_color="#ffffff",
                           height=PAD_SIDE, width=PAD_SIDE, drawing_mode="freedraw", return_image_data=True,
                           key=_pad_key(side))
        st.button("Clear the pad", key=f"clear-pad-{side}", icon=":material/ink_eraser:", on_click=_clear_pad,
                  args=(counter,))
    return canvas_png(result.image_data if result is not None else None)


# ---------------------------------------------------------------- sample pair buttons

def _pick_pair(pairs: tuple, counter: str, set_key: str) -> None:
    """A button's callback: put the next sample pair of `pairs` into both inputs (before they are drawn)."""
    n = state.bump(counter)
    for side, path in zip("AB", pairs[n % len(pairs)]):
        if path.is_file():
            st.session_state[state.source(side)] = "Sample"  # the widgets of image_input(side=...) below
            st.session_state[_sample_widget(side, set_key)] = path


def sample_buttons(model, samples: SampleSet) -> None:
    """'Try' buttons with pairs of the model's own kind of image; none when it has no samples to pair."""
    if not samples.same and not samples.different:
        return
    word = model.class_word
    left, right, _ = st.columns([1, 1, 2])
    if samples.same:
        left.button(f"Try: same {word}", key="try-same", on_click=_pick_pair,
                    args=(samples.same, state.TRY_SAME_SHOWN, samples.key),
                    help=f"Two different images of one {word}.")
    if samples.different:
        right.button(f"Try: different {plural(word)}", key="try-different", on_click=_pick_pair,
                     args=(samples.different, state.TRY_DIFFERENT_SHOWN, samples.key),
                     help=f"Images of two different {plural(word)}.")


def _sample_widget(side: str, set_key: str) -> str:
    # One widget per sample set: a set's files are not options of another's (e.g. after switching model).
    return state.sample(side, hashlib.sha256(set_key.encode()).hexdigest()[:10])


# ---------------------------------------------------------------- one image input

def image_input(column, side: str, model, samples: SampleSet, default_sample: int,
                label: Optional[str] = None) -> Optional[PickedImage]:
    """One image from a sample, an upload, the camera or the drawing pad, shown as the model sees it; None with
    a message."""
    label = label or f"Image {side}"
    sources = (SOURCES if samples.images else SOURCES[1:]) + ([DRAW] if draws_digits(model) else [])
    if st.session_state.get(state.source(side)) not in sources:
        st.session_state[state.source(side)] = sources[0]  # e.g. 'Sample' after switching to a model without samples
    source = column.radio(label, sources, horizontal=True, key=state.source(side),
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
    elif source == DRAW:
        data = _drawing(column, side, model.class_word)
        if data is None:
            column.info(f"Draw a {model.class_word} on the pad.")
            return None
        name = f"drawn {model.class_word}"
    else:
        word, widget = model.class_word, _sample_widget(side, samples.key)
        if st.session_state.get(widget) not in samples.images:  # its first draw: set here, so a 'Try' button may too
            st.session_state[widget] = samples.images[min(default_sample, len(samples.images) - 1)]
        path = column.selectbox("Sample", samples.images, key=widget,
                                format_func=lambda p: f"{word} {samples.labels.get(p) or '?'} ({p.name})")
        data, name = Path(path).read_bytes(), f"sample {word} {samples.labels.get(path) or ''}".strip()
    try:
        pixels, notes = prepared(data, model.image_size, model.channels, model.input_pipeline)
    except UserError as exc:
        column.error(str(exc))
        return None
    column.image(shown(pixels, 180), width=180,
                 caption=f"as the model sees it: {size_words(model.image_size)} pixels"
                         + ("" if model.channels == 3 else ", grey"))
    if notes:
        column.caption("Changed on the way in: " + "; ".join(notes) + ".")
    return PickedImage(pixels, name, pad=_pad_key(side) if source == DRAW else None)
