"""'Why this verdict?': which parts of two images made the model find them alike or different
(siamese_core.inference.explain), computed once per pair and model, shown as hoverable maps or as pictures."""

from __future__ import annotations

import numpy as np
import streamlit as st

from app_pages.shared import text
from siamese_core.errors import UserError

LEGEND = (":red[**Red**]: parts that made the model find the two images alike. "
          ":blue[**Blue**]: parts that made them look different. Clear: little effect either way.")


@st.cache_data(max_entries=64, show_spinner="Working out which parts of the images mattered...")
def _explanations(_model, model_version: tuple, pixels_a: np.ndarray, pixels_b: np.ndarray) -> list:
    """Plain dicts, not Explanations: cache_data pickles what it keeps (see verify.pair.pair_score)."""
    from siamese_core.inference.explain import explain_pairs

    return [e.to_dict() for e in explain_pairs(_model, pixels_a, pixels_b)]


def explanations(model, model_version: tuple, pixels_a: np.ndarray, pixels_b: np.ndarray):
    """One Explanation per pair (prepared uint8 pixels, (N, C, S, S) each side), or None after saying why not."""
    from siamese_core.inference.explain import Explanation

    try:
        return [Explanation(**d) for d in _explanations(model, model_version, np.ascontiguousarray(pixels_a),
                                                         np.ascontiguousarray(pixels_b))]
    except UserError as exc:
        text.error(exc)
        return None


def kind_words(explanation, threshold: float, figures: bool = True) -> str:
    """What the map is, in plain words; with `figures`, those of this pair (what it adds up to)."""
    from siamese_core.inference.explain import KIND_WORDS, line_similarity

    words = KIND_WORDS[explanation.kind]
    if explanation.exact:
        words += (" Each region is coloured against its even share of what a 'same' verdict needs (a similarity "
                  f"of {line_similarity(threshold):.3f} at this threshold): red regions gave more than their "
                  "share, blue ones less.")
    if not figures:
        return f"{explanation.note} {words}".strip()
    if explanation.exact:
        return (f"{words} Here the similarity is {explanation.target:.3f} (score {100 * explanation.score:.1f}%); "
                f"the part that belongs to no region (the network's fixed offset) is {explanation.bias_a:+.3f} on "
                f"image A and {explanation.bias_b:+.3f} on B.")
    if explanation.scale == 0:
        return f"{words} Nothing moved the score here: the two images look the same to the model."
    return f"{explanation.note} {words}".strip()


def _hover(explanation, cells: np.ndarray, shown: np.ndarray, scale: float) -> np.ndarray:
    """A sentence per region: its share of the similarity and against the line (exact), or its push (gradient)."""
    if explanation.exact:
        total = explanation.target
        return np.vectorize(lambda v, d: f"Adds {v:+.4f} to the similarity ({total:.3f} in all)<br>"
                                         + (f"{d:+.4f} above" if d >= 0 else f"{d:+.4f} below")
                                         + " its share of the similarity 'same' needs")(cells, shown)
    strongest = scale or 1.0
    return np.vectorize(lambda v: (f"Pushed towards 'same': {100 * v / strongest:.0f}%" if v >= 0
                                   else f"Pushed towards 'different': {100 * -v / strongest:.0f}%")
                        + "<br>of the strongest push on this pair")(shown)


def figure(explanation, pixels: np.ndarray, cells: np.ndarray, shown: np.ndarray, scale: float):
    """The image with its map (`shown`, coloured on `scale`), and a value to read under the pointer on every region."""
    import plotly.graph_objects as go

    from siamese_core.inference.explain import display_shape, overlay

    tall, wide = display_shape(*pixels.shape[-2:])  # the image's own shape, at least 224 pixels on its shorter side
    picture = np.asarray(overlay(pixels, shown, scale, (tall, wide)))
    h, w = cells.shape
    figure = go.Figure(go.Image(z=picture, hoverinfo="skip"))
    # An invisible heatmap on top, one brick per region of the feature map: it carries the hover values.
    figure.add_trace(go.Heatmap(
        z=shown, x=(np.arange(w) + 0.5) * wide / w, y=(np.arange(h) + 0.5) * tall / h,
        customdata=_hover(explanation, cells, shown, scale), hovertemplate="%{customdata}<extra></extra>",
        colorscale=[[0, "rgba(0,0,0,0)"], [1, "rgba(0,0,0,0)"]], showscale=False))
    figure.update_xaxes(visible=False, range=[0, wide])
    figure.update_yaxes(visible=False, range=[tall, 0], scaleanchor="x")
    figure.update_layout(height=300, margin={"l": 0, "r": 0, "t": 0, "b": 0}, dragmode=False,
                         hoverlabel={"bgcolor": "white", "font": {"size": 13}})
    return figure


def show_pair(model, model_version: tuple, pixels_a: np.ndarray, pixels_b: np.ndarray, threshold: float) -> None:
    """Both maps of one pair side by side, hoverable, with the legend and what kind of map they are; exact maps
    are coloured against the 'same' line of `threshold` (the slider's)."""
    from siamese_core.inference.explain import scale_of

    found = explanations(model, model_version, pixels_a[None], pixels_b[None])
    if not found:
        return
    explanation = found[0]
    shown = explanation.shown(threshold)
    scale = scale_of(*shown)
    st.markdown(LEGEND)
    columns = st.columns(2)
    for column, side, pixels, cells, colours in ((columns[0], "A", pixels_a, explanation.cells_a, shown[0]),
                                                 (columns[1], "B", pixels_b, explanation.cells_b, shown[1])):
        column.caption(f"Image {side}")
        column.plotly_chart(figure(explanation, pixels, cells, colours, scale), key=f"why-map-{side}",
                            config={"displayModeBar": False, "scrollZoom": False})
    st.caption(kind_words(explanation, threshold) + " Point at a region to read its value.")
