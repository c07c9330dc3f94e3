"""The Explore page's map: settings, the projection (with progress), the drawn page, a closer look, exports."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import streamlit as st

from app_pages.shared import text
from app_pages.explore.data import MapData
from app_pages.shared.images import enlarged

METHOD_LABELS = {"pca": "PCA (instant)", "umap": "UMAP (seconds)", "tsne": "t-SNE (slow)"}
DRAWN_DEFAULT = 5000  # points drawn by default: smooth to turn even on a laptop
MAP_HEIGHT = 640
PAGES_KEPT = 4


@dataclass
class MapSettings:
    method: str
    dims: int
    params: dict
    seed: int
    max_points: int
    tsne_all: bool
    metric: str


def settings(data: MapData) -> MapSettings:
    from siamese_core.projection import DEFAULTS, METHOD_NAMES, TSNE_SAMPLE

    n = len(data.labels)
    left, right = st.columns([3, 1])
    method = left.radio("How to lay out the map", list(METHOD_LABELS), format_func=METHOD_LABELS.get,
                        horizontal=True, key="explore-method",
                        help="PCA keeps the biggest differences and is instant. UMAP and t-SNE keep "
                             "neighbours together, so classes show as separate clusters; they take longer.")
    dims = 3 if right.radio("View", ["3D", "2D"], horizontal=True, key="explore-dims") == "3D" else 2
    tsne_all = False
    if method == "tsne" and n > TSNE_SAMPLE:
        tsne_all = st.checkbox(f"Use all {n:,} images (slower: minutes)", key="explore-tsne-all",
                               help=f"By default t-SNE maps {TSNE_SAMPLE:,} images chosen evenly from each class.")
    with st.expander("Advanced settings"):
        params = {}
        if method == "tsne":
            params["perplexity"] = float(st.slider(
                "Perplexity", 5, 100, int(DEFAULTS["tsne"]["perplexity"]), key="explore-perplexity",
                help="About how many neighbours each image pays attention to. Larger shows more of the big picture."))
        if method == "umap":
            params["n_neighbors"] = int(st.slider(
                "Neighbours", 2, 100, DEFAULTS["umap"]["n_neighbors"], key="explore-neighbours",
                help="Fewer keeps small groups apart; more shows how the groups sit against each other."))
            params["min_dist"] = float(st.slider(
                "Minimum distance", 0.0, 0.99, DEFAULTS["umap"]["min_dist"], 0.01, key="explore-min-dist",
                help="How tightly points may pack together on the map."))
        if method == "pca":
            st.caption(f"{METHOD_NAMES['pca']} has no settings.")
        seed = int(st.number_input("Seed", 0, 2**31 - 1, 0, key="explore-seed",
                                   help="The same seed draws the same map again."))
        # Bounds that do not depend on the images: a keyed widget keeps its value when the images change.
        max_points = int(st.number_input(
            "Most points drawn", 100, 1_000_000, DRAWN_DEFAULT, 500, key="explore-max-points",
            help="More points show more, but turn less smoothly. Points are chosen evenly from each class."))
        metric = st.radio("Nearness for neighbours", ["euclidean", "cosine"], horizontal=True,
                          format_func={"euclidean": "Straight-line distance", "cosine": "Angle (cosine)"}.get,
                          key="explore-metric")
    return MapSettings(method, dims, params, seed, max_points, tsne_all, metric)


@st.cache_resource
def _projections():
    from siamese_core.projection import ProjectionCache

    return ProjectionCache(max_entries=16)


@st.cache_resource(max_entries=PAGES_KEPT, show_spinner=False)
def _kept_page(key: tuple) -> dict:
    """Where one drawn map's HTML is kept; Streamlit keeps the PAGES_KEPT used last. An empty box that
    `map_page` fills (a cached function's elements would be replayed on every call: its spinner too)."""
    return {}


def project(data: MapData, chosen: MapSettings):
    """(positions fitted, their coordinates): the map, computed under a progress bar or kept from before."""
    from siamese_core.errors import UserError
    from siamese_core.projection import METHOD_NAMES, TSNE_SAMPLE, cache_key, sample_per_class
    from siamese_core.projection import project as project_points

    n = len(data.labels)
    positions = np.arange(n)
    if chosen.method == "tsne" and not chosen.tsne_all and n > TSNE_SAMPLE:
        positions = sample_per_class(data.labels, TSNE_SAMPLE, chosen.seed)
        st.caption(f"t-SNE maps {TSNE_SAMPLE:,} of the {n:,} images, chosen evenly from each class, so the map "
                   f"is ready in a fraction of the time all {n:,} would take. Tick 'Use all' above for every image.")
    cache = _projections()
    vectors = data.vectors[positions]
    key = cache_key(vectors, chosen.method, chosen.dims, chosen.params, chosen.seed)  # hashes the vectors once
    kept = cache.get(key)
    if kept is not None:  # no progress bar flashing on every click
        return positions, kept
    bar = st.progress(0.0, text=f"Laying out {len(positions):,} points with {METHOD_NAMES[chosen.method]}...")
    try:
        coords = project_points(vectors, chosen.method, chosen.dims, chosen.params, chosen.seed,
                                progress=lambda done, words: bar.progress(min(1.0, max(0.0, done)), words))
    except UserError as exc:
        bar.empty()
        text.error(exc)
        return None
    bar.empty()
    cache.put(key, coords)
    return positions, coords


def filter_points(data: MapData) -> tuple[np.ndarray, str]:
    """(a mask of the images whose label was picked and whose file name holds the search text (all, by
    default), that text)."""
    left, right = st.columns([2, 1])
    # The key names the classes: another image set gets a fresh filter, not one naming classes it lacks.
    classes_key = "explore-classes-" + hashlib.sha256("\n".join(data.classes).encode()).hexdigest()[:8]
    shown = left.multiselect(f"Show only these ({len(data.classes):,} in all)", data.classes, key=classes_key,
                             placeholder="All classes", help="Leave empty to show every class.")
    search = right.text_input("File name contains", key="explore-search", placeholder="e.g. 0042")
    keep = np.ones(len(data.labels), dtype=bool)
    if shown:
        keep &= np.isin(data.labels, shown)
    if search.strip():
        needle = search.strip().lower()
        keep &= np.array([needle in name.lower() for name in data.names])
    return keep, search


def drawn_points(positions: np.ndarray, keep: np.ndarray, labels: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Rows of the projection to draw: those kept by the filter, capped evenly per class."""
    from siamese_core.projection import sample_per_class

    rows = np.flatnonzero(keep[positions])
    return rows[sample_per_class(labels[positions[rows]], limit, seed)]


def map_page(data: MapData, positions, coords, rows, chosen: MapSettings, class_word: str) -> str:
    """The HTML of the map (thumbnails, neighbours, plotly.js), built once per drawn set and kept."""
    from siamese_core.embedding_map import MapPoints, build_map_html, nearest_table, thumbnail_uris
    from siamese_core.projection import vectors_digest

    kept = _kept_page((vectors_digest(coords), vectors_digest(data.vectors[positions[rows]]),
                       tuple(data.names[:3]), rows.tobytes(), chosen.metric, class_word))
    if "page" in kept:
        return kept["page"]
    with st.spinner(f"Drawing {len(rows):,} points with their thumbnails..."):
        picked = positions[rows]
        neighbours, distances = nearest_table(data.vectors[picked], metric=chosen.metric)
        points = MapPoints(coords[rows], data.labels[picked].tolist(), [data.names[i] for i in picked],
                           thumbnail_uris(data.image_set, picked), picked.tolist(), neighbours, distances)
        page = build_map_html(points, class_word, data.classes, MAP_HEIGHT, chosen.metric)
    kept["page"] = page
    return page


def closer_look(data: MapData, chosen: MapSettings, class_word: str, search: str = "") -> None:
    """One image large and its nearest images among all of them, in the model's own space; the files whose
    name holds `search` (the map's filter) can be picked by name."""
    from siamese_core.images import pixels_to_image

    st.subheader("A closer look")
    n = len(data.labels)
    left, middle, right = st.columns([1, 2, 1])
    number = int(left.number_input("Image number", 0, None, 0, key="explore-pick",
                                   help="The # shown when you hover or click a point on the map."))
    if number >= n:  # kept from a larger image set
        left.caption(f"These images are numbered 0 to {n - 1:,}: showing #{n - 1:,}.")
        number = n - 1
    search = search.strip().lower()
    matches = [i for i, name in enumerate(data.names) if search in name.lower()][:200] if search else []
    if matches:
        picked = middle.selectbox("Or pick a file from the search", [None] + matches, key="explore-pick-file",
                                  format_func=lambda i: "-" if i is None else f"#{i}  {data.names[i]}")
        if picked is not None:
            number = picked
    k = int(right.slider("Neighbours shown", 1, 20, 8, key="explore-k"))
    found, found_distances = data.index(chosen.metric).search(data.vectors[number], k, exclude_self=True)
    indices, distances = found[0][found[0] >= 0], found_distances[0][found[0] >= 0]
    big, rest = st.columns([1, 4])
    image = pixels_to_image(data.image_set.batch([number]).numpy()[0])
    big.image(enlarged(image, 160), caption=f"#{number} · {class_word} {text.plain(data.labels[number])} · {text.plain(data.names[number])}")
    if len(indices):
        pixels = data.image_set.batch(indices).numpy()
        distance_word = "cosine distance" if chosen.metric == "cosine" else "distance"
        rest.image([enlarged(pixels_to_image(p), 96) for p in pixels], width=96,
                   caption=[f"#{i} · {text.plain(data.labels[i])} · {distance_word} {d:.3f}" for i, d in zip(indices, distances)])
        same = sum(data.labels[i] == data.labels[number] for i in indices)
        rest.caption(f"{same} of the {len(indices)} nearest images have the same {class_word} "
                     f"({text.plain(data.labels[number])}).")


def exports(data: MapData, positions, coords, method_name: str) -> None:
    from siamese_core.embedding_map import coordinates_csv, projector_zip

    left, right = st.columns(2)
    left.download_button(
        "Download the map as CSV", lambda: coordinates_csv(coords, data.labels[positions].tolist(),
                                                           [data.names[i] for i in positions], positions),
        file_name=f"embedding-map-{method_name.lower()}.csv", mime="text/csv", on_click="ignore",
        key="explore-csv", help="One row per image: its number, its place on the map, its label and file name.")
    right.download_button(
        "Download for TensorBoard's projector", lambda: projector_zip(data.vectors, data.labels.tolist(),
                                                                       data.names, data.image_set),
        file_name="projector.zip", mime="application/zip", on_click="ignore", key="explore-projector",
        help="vectors.tsv, metadata.tsv and a sprite image of every image: unzip into a folder and run "
             "`tensorboard --logdir` on it, or load the two .tsv files at projector.tensorflow.org.")
