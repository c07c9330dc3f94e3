"""The Train page's reading of the chosen images: what they look like and what that chooses, said before Start
(siamese_core.data.reading, the same call the trainer makes), and the image size setting as height x width."""

from __future__ import annotations

from typing import Optional

import streamlit as st

from siamese_core.config import TrainConfig, parse_image_size, size_words
from siamese_core.errors import UserError


@st.cache_data(max_entries=16, show_spinner="Looking at the images...")
def read_data(settings: tuple) -> Optional[dict]:
    """What reading the images of these TrainConfig fields (as sorted items) measured and chose (Reading.to_dict),
    or None for the built-in digits, MNIST, or data not ready. Read on a CPU's defaults, as the page's are."""
    from siamese_core.data.reading import read_images

    try:
        reading = read_images(TrainConfig(**dict(settings), recipe="default", device="cpu"))
    except UserError:  # the data step says what is wrong with the data
        return None
    return reading.to_dict() if reading else None


def reading_of(data_settings: dict) -> Optional[dict]:
    return read_data(tuple(sorted(data_settings.items()))) if data_settings else None


def size_setting(column, default, key: str, problems: list):
    """The image size as typed ('128x64', height x width, or '64' for a square), as image_size stores it; a bad
    value is said under the field and stops Start."""
    typed = column.text_input("Image size (height x width, pixels)", size_words(default), key=key,
                              help="The size the network sees, e.g. 80x64 for faces or 48x112 for signatures; one "
                                   "number is a square. Chosen from your images' usual shape; the image keeps its "
                                   "shape inside it.")
    try:
        return parse_image_size(typed.replace("--image-size", "").strip())
    except UserError as exc:
        column.error(str(exc).replace("--image-size ", "The image size "))
        problems.append("Give the image size as height x width, e.g. 80x64.")
        return default
