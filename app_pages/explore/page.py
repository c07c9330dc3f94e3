"""Explore: the images as the model places them, drawn in 3D or 2D; hover a point to see its image."""

import streamlit as st

from app_pages.explore import data as explore_data
from app_pages.explore import epochs as explore_epochs
from app_pages.explore import view as explore_view
from app_pages.shared.models import load_model, model_picker
from siamese_core.maps.projection import METHOD_NAMES  # numpy only: umap and sklearn load when used

st.title("Explore")
st.caption("Each dot is an image. The model turns every image into a list of numbers; images it finds alike "
           "get similar numbers, so they land close together here. Drag to turn the map, scroll to zoom, "
           "hover a dot to see its image, click it to see its nearest neighbours. Colour the dots by what you know "
           "about the images, search them by name, or show one image with only its nearest neighbours.")

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
controls = explore_view.map_controls(data, model.class_word)
map_area = st.container()  # the map goes here, drawn once the closer look below says whether to isolate a point
look = explore_view.closer_look(data, chosen, model.class_word, controls.matches)
with map_area:
    projected = explore_view.project(data, chosen)
    if projected is None:
        st.stop()
    positions, projection = projected
    if not explore_view.draw_map(data, chosen, model.class_word, positions, projection.coords, controls, look):
        st.stop()
    explore_view.pca_variance(projection, chosen.dims)
explore_view.exports(data, positions, projection.coords, METHOD_NAMES[chosen.method])
explore_epochs.show_for_model(model)  # how the map formed, for a run that kept its epochs


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
        from siamese_core.maps.projection import warm_umap

        warm_umap(background=True)


_warm_umap_once()
