"""Explore: the images as the model places them, drawn in 3D or 2D; hover a point to see its image."""

import streamlit as st

from app_pages.explore import data as explore_data, view as explore_view
from app_pages.shared.models import load_model, model_picker
from app_pages.shared.text import plain
from siamese_core.projection import METHOD_NAMES  # numpy only: umap and sklearn load when used

st.title("Explore")
st.caption("Each dot is an image. The model turns every image into a list of numbers; images it finds alike "
           "get similar numbers, so they land close together here. Drag to turn the map, scroll to zoom, "
           "hover a dot to see its image, click it to see its nearest neighbours.")

choice = model_picker("explore")
model = load_model(choice)
if model is None:
    st.stop()

source = explore_data.pick_images(choice, model)
if source is None:
    st.stop()
data = explore_data.embedded(model, choice, source)
if data is None:
    st.stop()

chosen = explore_view.settings(data)
keep, search = explore_view.filter_points(data)
projected = explore_view.project(data, chosen)
if projected is None:
    st.stop()
positions, coords = projected
rows = explore_view.drawn_points(positions, keep, data.labels, chosen.max_points, chosen.seed)
if len(rows) == 0:
    st.warning("No image matches the filter: clear the search or pick other classes.")
    st.stop()

method_name = METHOD_NAMES[chosen.method]
st.iframe(explore_view.map_page(data, positions, coords, rows, chosen, model.class_word),
          height=explore_view.MAP_HEIGHT + 10, alt=f"{chosen.dims}D embedding map of {data.title}")
kept = int(keep[positions].sum())
capped = (f" {len(rows):,} of them are drawn, chosen evenly from each class; raise 'Most points drawn' under "
          "Advanced settings to draw more." if len(rows) < kept else "")
mapped = data.title if len(positions) == len(data.labels) else f"{len(positions):,} of {data.title}"
st.caption(f"{plain(mapped[:1].upper() + mapped[1:])}: the model's {data.vectors.shape[1]} numbers per image, laid out "
           f"in {chosen.dims}D with {method_name}"
           + (f"; {kept:,} match the filter." if kept < len(positions) else ".") + capped
           + " Click a class in the legend to hide or show it.")

explore_view.closer_look(data, chosen, model.class_word, search)
explore_view.exports(data, positions, coords, method_name)
from app_pages.explore import epochs as explore_epochs  # noqa: E402  (the epoch map: issue 16, item 4)
explore_epochs.show_for_model(model)


@st.cache_resource(show_spinner=False)
def _warm_umap_once() -> None:
    """Compile UMAP in the background while the person looks at the first map (once per server).

    Started after the first map is sent, so its compiling does not slow that map down.
    SIAMESE_WARM_UMAP=0 turns it off (a server stopped while it compiles takes seconds to exit).
    """
    from streamlit import runtime

    from siamese_core import settings

    # A real server only: AppTest runs (tests) have no runtime and skip the warm-up.
    if runtime.exists() and settings.warm_umap():
        from siamese_core.projection import warm_umap

        warm_umap(background=True)


_warm_umap_once()
