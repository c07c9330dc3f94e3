"""Verify: two images in, a plain verdict out: the same or different, with a score."""

import streamlit as st

from pages import ui
from siamese_core.errors import UserError
from siamese_core.images import IMAGE_SUFFIXES, pixels_to_image

st.title("Verify")
st.caption("Give the model two images: it says whether they show the same thing, and how sure it is.")

model = ui.load_model(ui.model_picker("verify"))
if model is None:
    st.stop()
samples = sorted(ui.SAMPLES.glob("*/*.png"))


def image_input(column, side: str, default_sample: int):
    """One image, uploaded or picked from the samples, as the model sees it; None with a message if unusable."""
    source = column.radio(f"Image {side}", ["Sample", "Upload"], horizontal=True, key=f"source-{side}")
    if source == "Upload":
        upload = column.file_uploader(f"Image {side}", type=sorted(s.lstrip(".") for s in IMAGE_SUFFIXES),
                                      key=f"upload-{side}", label_visibility="collapsed")
        if upload is None:
            column.info("Drop an image here.")
            return None
        image = upload.getvalue()
    else:
        image = column.selectbox("Sample", samples, index=default_sample, key=f"sample-{side}",
                                 format_func=lambda p: f"digit {p.parent.name} ({p.name})")
    try:
        pixels = model.prepare(image)
    except UserError as exc:
        column.error(str(exc))
        return None
    column.image(pixels_to_image(pixels), width=180,
                 caption=f"as the model sees it: {model.image_size}x{model.image_size} pixels")
    return pixels


left, right = st.columns(2)
# A first try that works: two different images of the same digit.
pixels_a = image_input(left, "A", 0)
pixels_b = image_input(right, "B", min(1, len(samples) - 1))
if pixels_a is None or pixels_b is None:
    st.stop()

verdict = model.verify(pixels_a, pixels_b)
word = model.class_word
if verdict.same:
    st.success(f"## Same {word}")
else:
    st.error(f"## Different {word}s")
st.metric("Score", f"{100 * verdict.score:.1f}%",
          help=f"How alike the model finds the two images. It says 'same' from {100 * verdict.threshold:.1f}% "
               "up: the threshold chosen on validation pairs when it was trained.")
st.progress(verdict.score, text=f"score {100 * verdict.score:.1f}% · 'same' from {100 * verdict.threshold:.1f}%")
