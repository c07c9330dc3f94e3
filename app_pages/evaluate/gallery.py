"""The Evaluate page's gallery: evaluation pairs with both images, the truth and the score, mistakes first."""

from __future__ import annotations

from typing import Optional

import numpy as np
import streamlit as st
from PIL import Image

from app_pages.shared import why
from siamese_core.words import plural

PER_PAGE = 24
COLUMNS = 4
SIDE = 96  # pixels per image in the gallery
FILTERS = {"Mistakes": "mistakes", "False accepts": "false accepts", "False rejects": "false rejects",
           "All pairs": "all"}


def side_by_side(left: Image.Image, right: Image.Image) -> Image.Image:
    """Both images of a pair, enlarged without blurring (small digits stay crisp), their longer side SIDE pixels
    and their shape kept (the model's height x width), with a gap."""
    scale = SIDE / max(left.size)
    width, height = max(1, round(left.width * scale)), max(1, round(left.height * scale))
    canvas = Image.new("RGB", (2 * width + 8, height), "white")
    canvas.paste(left.convert("RGB").resize((width, height), Image.Resampling.NEAREST), (0, 0))
    canvas.paste(right.convert("RGB").resize((width, height), Image.Resampling.NEAREST), (width + 8, 0))
    return canvas


def pair_maps(ev, pairs: np.ndarray, model, model_version: tuple, threshold: float) -> Optional[tuple]:
    """(each pair's two maps as one picture the size of side_by_side's, the Explanations), or None after
    saying why not: the page's pairs go through the model in one batch, cached."""
    from siamese_core.inference.explain import render_pair

    pixels_a, pixels_b = ev.image_set.batch(ev.a[pairs]).numpy(), ev.image_set.batch(ev.b[pairs]).numpy()
    found = why.explanations(model, model_version, pixels_a, pixels_b)
    if found is None:
        return None
    return [render_pair(e, a, b, side=SIDE, with_legend=False, threshold=threshold)
            for e, a, b in zip(found, pixels_a, pixels_b)], found


def show(ev, threshold: float, model=None, model_version: Optional[tuple] = None) -> None:
    """The gallery; with the model, a toggle swaps each pair's images for maps of why it was judged so."""
    word = ev.class_word
    st.caption(f"The pairs the model got wrong at the threshold ({100 * threshold:.1f}%), the most confident "
               "mistakes first: those are what to look at to see how the model fails.")
    picked = st.radio("Show", list(FILTERS), horizontal=True, key="eval-gallery-filter",
                      help=f"A false accept is two different {plural(word)} called 'same'; a false reject is one {word} "
                           "called 'different'.")
    shown = ev.pairs_shown(threshold, FILTERS[picked])
    if len(shown) == 0:
        st.success(f"No {picked.lower()} at this threshold.")
        return
    pages = (len(shown) + PER_PAGE - 1) // PER_PAGE
    page = 1
    if pages > 1:
        page = st.number_input(f"Page (of {pages}; {len(shown):,} pairs)", 1, pages, 1, key="eval-gallery-page")
    start = (page - 1) * PER_PAGE
    st.caption(f"{picked}: {len(shown):,} pairs; showing {start + 1}-{min(start + PER_PAGE, len(shown))}.")
    on_page = shown[start:start + PER_PAGE]
    maps = None
    if model is not None and st.toggle("Show why", key="eval-gallery-why",
                                       help="Colour each pair by the parts of the images that made the model "
                                            "find them alike or different."):
        found = pair_maps(ev, on_page, model, model_version, threshold)
        if found:
            maps = found[0]
            st.markdown(why.LEGEND)
            st.caption(why.kind_words(found[1][0], threshold, figures=False)
                       + " Each pair's colours are on a scale of its own.")
    columns = st.columns(COLUMNS)
    for n, i in enumerate(on_page):
        truth = bool(ev.same[i])
        said = bool(ev.scores[i] >= threshold)
        mark = ":green[:material/check_circle:]" if truth == said else ":red[:material/cancel:]"
        kind = "" if truth == said else (" (false accept)" if said else " (false reject)")
        with columns[n % COLUMNS].container(border=True):
            st.image(maps[n] if maps else side_by_side(*ev.pair_pixels(i)))
            st.markdown(f"{mark} truth: **{f'same {word}' if truth else f'different {plural(word)}'}**  \nmodel: "
                        f"**{'same' if said else 'different'}**, score {100 * ev.scores[i]:.1f}%{kind}")
