"""Explore: the images as the model places them, drawn in 3D (PCA of their embeddings)."""

import numpy as np
import plotly.express as px
import streamlit as st

from pages import ui

st.title("Explore")
st.caption("Each dot is an image. The model turns every image into a list of numbers; images it finds alike "
           "get similar numbers, so they land close together here. Drag to turn the map, scroll to zoom.")

choice = ui.model_picker("explore")
model = ui.load_model(choice)
if model is None:
    st.stop()


@st.cache_data(show_spinner="Embedding the built-in digits...", max_entries=8)
def digit_map(_model, path: str, modified: float):  # cached per model file and version
    from sklearn.decomposition import PCA

    from siamese_core.data import load_digits

    digits = load_digits(_model.image_size, _model.channels)
    vectors = _model.embed(digits.pixels.numpy())
    points = PCA(n_components=3, random_state=0).fit_transform(vectors)
    return points, np.array([digits.classes[i] for i in digits.labels]), digits.names, vectors.shape[1]


points, labels, names, dimensions = digit_map(model, str(choice.path), choice.path.stat().st_mtime)
order = np.argsort(labels, kind="stable")  # legend in digit order
figure = px.scatter_3d(x=points[order, 0], y=points[order, 1], z=points[order, 2], color=labels[order],
                       color_discrete_sequence=px.colors.qualitative.D3,  # ten colours easy to tell apart
                       hover_name=np.array(names)[order], labels={"color": model.class_word},
                       height=650, opacity=0.8)
figure.update_traces(marker={"size": 3})
figure.update_layout(margin={"l": 0, "r": 0, "t": 0, "b": 0}, legend={"itemsizing": "constant"})
st.plotly_chart(figure, key="map")
st.caption(f"{len(labels):,} built-in digits: the model's {dimensions} numbers per image, projected to 3D with "
           "PCA. Click a class in the legend to hide or show it.")
