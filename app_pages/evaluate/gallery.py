"""The Evaluate page's gallery: evaluation pairs with both images, the truth and the score, mistakes first."""

from __future__ import annotations

import streamlit as st
from PIL import Image

from siamese_core.config import plural

PER_PAGE = 24
COLUMNS = 4
SIDE = 96  # pixels per image in the gallery
FILTERS = {"Mistakes": "mistakes", "False accepts": "false accepts", "False rejects": "false rejects",
           "All pairs": "all"}


def side_by_side(left: Image.Image, right: Image.Image) -> Image.Image:
    """Both images of a pair, enlarged without blurring (small digits stay crisp), with a gap."""
    canvas = Image.new("RGB", (2 * SIDE + 8, SIDE), "white")
    canvas.paste(left.convert("RGB").resize((SIDE, SIDE), Image.Resampling.NEAREST), (0, 0))
    canvas.paste(right.convert("RGB").resize((SIDE, SIDE), Image.Resampling.NEAREST), (SIDE + 8, 0))
    return canvas


def show(ev, threshold: float) -> None:
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
    columns = st.columns(COLUMNS)
    for n, i in enumerate(shown[start:start + PER_PAGE]):
        truth = bool(ev.same[i])
        said = bool(ev.scores[i] >= threshold)
        mark = ":green[:material/check_circle:]" if truth == said else ":red[:material/cancel:]"
        kind = "" if truth == said else (" (false accept)" if said else " (false reject)")
        with columns[n % COLUMNS].container(border=True):
            st.image(side_by_side(*ev.pair_pixels(i)))
            st.markdown(f"{mark} truth: **{f'same {word}' if truth else f'different {plural(word)}'}**  \nmodel: "
                        f"**{'same' if said else 'different'}**, score {100 * ev.scores[i]:.1f}%{kind}")
