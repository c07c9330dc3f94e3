"""The Explore page's map: settings, the projection (with progress), the drawn page, a closer look, exports."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Optional

import numpy as np
import streamlit as st

from app_pages.explore.data import MapData
from app_pages.shared import state, text
from app_pages.shared.images import enlarged
from app_pages.shared.once import filled
from siamese_core.words import ordinal

METHOD_LABELS = {"pca": "PCA (instant)", "umap": "UMAP (seconds)", "tsne": "t-SNE (slow)"}
DRAWN_DEFAULT = 5000  # points drawn by default: smooth to turn even on a laptop
MAP_HEIGHT = 640
PAGES_KEPT = 4
ANSWERS_KEPT = 64  # searches and CSV readings kept for the whole server


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
    from siamese_core.maps.projection import DEFAULTS, METHOD_NAMES, TSNE_SAMPLE

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
    from siamese_core.maps.projection import ProjectionCache

    return ProjectionCache(max_entries=16)


@st.cache_resource(max_entries=PAGES_KEPT, show_spinner=False)
def _kept_page(key: tuple) -> dict:
    """Where one drawn map's HTML is kept; Streamlit keeps the PAGES_KEPT used last. An empty box that
    `map_page` fills (a cached function's elements would be replayed on every call: its spinner too)."""
    return {}


def project(data: MapData, chosen: MapSettings):
    """(positions fitted, their siamese_core.maps.projection.Projection): the map, computed under a progress bar or
    kept from before."""
    from siamese_core.errors import UserError
    from siamese_core.maps.projection import METHOD_NAMES, TSNE_SAMPLE, cache_key, project_detailed, sample_per_class

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

    def lay_out():
        bar = st.progress(0.0, text=f"Laying out {len(positions):,} points with {METHOD_NAMES[chosen.method]}...")
        try:
            projection = project_detailed(vectors, chosen.method, chosen.dims, chosen.params, chosen.seed,
                                          progress=lambda done, words: bar.progress(min(1.0, max(0.0, done)), words))
        except UserError as exc:
            text.error(exc)
            return None
        finally:
            bar.empty()
        cache.put(key, projection)
        return projection

    # One session lays the map out; the others asking for the same map at the same time wait for it.
    projection = filled(_laying_out(key), "projection", lambda: cache.get(key) or lay_out(),
                        f"Someone else on this server is already laying out this map with "
                        f"{METHOD_NAMES[chosen.method]}: it shows here as soon as it is ready...")
    return None if projection is None else (positions, projection)


@st.cache_resource(max_entries=PAGES_KEPT, show_spinner=False)
def _laying_out(key) -> dict:
    """The box (and its lock) of one projection being made, so that sessions asking together make it once; the
    projection itself is kept in `_projections()`."""
    return {}


@dataclass
class MapControls:
    keep: np.ndarray  # images of the classes shown (all, by default)
    colour: Optional[object]  # the siamese_core.maps.metadata.Column the points are coloured by; None: the class
    search: str  # the search as typed ('' for none)
    matches: Optional[np.ndarray]  # images the search matches; None without a (valid) search


def _digest(texts) -> str:
    return hashlib.sha256("\x00".join(map(str, texts)).encode("utf-8", "surrogatepass")).hexdigest()


def map_controls(data: MapData, class_word: str) -> MapControls:
    """Which classes to show, what to colour the points by (the class, the folder, file-name parts, a CSV's
    columns) and what to search for."""
    top_left, top_right = st.columns([2, 1])
    # The key names the classes: another image set gets a fresh filter, not one naming classes it lacks.
    classes_key = "explore-classes-" + hashlib.sha256("\n".join(data.classes).encode()).hexdigest()[:8]
    shown = top_left.multiselect(f"Show only these ({len(data.classes):,} in all)", data.classes, key=classes_key,
                                 placeholder="All classes", help="Leave empty to show every class.")
    colour_slot = top_right.container()  # filled once the CSV's columns are known
    left, right = st.columns([2, 1])
    search = left.text_input(
        "Search the map", key="explore-search", placeholder="e.g. 0042, or a pattern like ^digits/[38]/",
        help="Plain text or a regular expression, matched against each image's file name, its "
             f"{class_word} and the value it is coloured by; upper and lower case alike. Matching points "
             "are drawn larger, the others faded.")
    # Open while a CSV is loaded, so what was found in it (or what is wrong with it) stays in sight.
    loaded = bool(st.session_state.get(state.EXPLORE_ATTRIBUTES))
    with right.expander("Colour by your own attributes (CSV)", expanded=loaded):
        attributes = _attribute_columns(data)
    options = {class_word: None}
    for column in data.columns + attributes:
        name = column.name
        while name in options:
            name += " (CSV)"
        options[name] = column
    if st.session_state.get(state.EXPLORE_COLOUR) not in options:  # a CSV's column, and the CSV was removed
        st.session_state[state.EXPLORE_COLOUR] = class_word
    colour_name = colour_slot.selectbox(
        "Colour by", list(options), key=state.EXPLORE_COLOUR,
        help=f"The {class_word}; the folder each image is in (where it is not the {class_word}); parts of the "
             "file names that group the images (split at _ - . and spaces); and the columns of a CSV you add.")
    colour = options.get(colour_name)
    keep = np.ones(len(data.labels), dtype=bool)
    if shown:
        keep &= np.isin(data.labels, shown)
    matches = None
    if search.strip():
        matches, problem = _search(data, search.strip(), colour)
        if problem:
            with left:
                text.error(problem)
    return MapControls(keep, colour, search.strip(), matches)


def _search(data: MapData, pattern: str, colour) -> tuple[Optional[np.ndarray], str]:
    """(which images match the pattern, '') or (None, why it cannot be searched)."""
    fields = [data.names, data.labels.tolist()] + ([colour.values.tolist()] if colour is not None else [])
    return _searched(pattern, _digest(value for field in fields for value in field), list(zip(*fields)))


@st.cache_data(max_entries=ANSWERS_KEPT, show_spinner=False)
def _searched(pattern: str, texts_digest: str, _rows: list) -> tuple[Optional[np.ndarray], str]:
    """Kept by the pattern and the texts' digest for every session: a rerun for another widget does not search
    again, and a slow pattern is refused once, not on every click."""
    from siamese_core.errors import UserError
    from siamese_core.maps.metadata import search

    try:
        return search(pattern, _rows), ""
    except UserError as exc:
        return None, str(exc)


def _attribute_columns(data: MapData) -> list:
    """The columns of the CSV the person uploads (none until then), matched to the images by name."""
    example = data.names[0] if data.names else "photo.jpg"
    upload = st.file_uploader(
        "A CSV file, one row per image", type=["csv", "tsv", "txt"], key=state.EXPLORE_ATTRIBUTES,
        help=f"The first column names each image as the map shows it (like {example}) or by its file name; "
             "the other columns hold what you know about the images (age, camera, light...).")
    st.caption("Columns of many numbers get a colour scale; other columns a colour per value. Images the CSV "
               "does not name show as 'unknown'.")
    if upload is None:
        return []
    found, problem = _read_attributes(upload.getvalue(), upload.name, _digest(data.names), data.names)
    if problem:
        text.error(problem)
        return []
    st.caption(text.plain(f"{found.matched:,} of the {len(data.names):,} images found in {upload.name}. "
                          + " ".join(found.notes)))
    return found.columns


@st.cache_data(max_entries=ANSWERS_KEPT, show_spinner=False)
def _read_attributes(content: bytes, file_name: str, names_digest: str, _names: list) -> tuple:
    """(siamese_core.maps.metadata.Attributes, '') or (None, why not), read once per CSV and image set."""
    from siamese_core.errors import UserError
    from siamese_core.maps.metadata import read_attributes

    try:
        return read_attributes(content, _names, file_name), ""
    except UserError as exc:
        return None, str(exc)


def drawn_points(positions: np.ndarray, keep: np.ndarray, labels: np.ndarray, limit: int, seed: int) -> np.ndarray:
    """Rows of the projection to draw: those kept by the filter, capped evenly per class."""
    from siamese_core.maps.projection import sample_per_class

    rows = np.flatnonzero(keep[positions])
    return rows[sample_per_class(labels[positions[rows]], limit, seed)]


@st.cache_resource(max_entries=PAGES_KEPT, show_spinner=False)
def _kept_points(key: tuple) -> dict:
    """Where one drawn set's thumbnails and neighbours are kept (the slow part of a page): recolouring,
    searching or isolating does not make them again. An empty box that `map_page` fills."""
    return {}


def map_page(data: MapData, positions, coords, rows, chosen: MapSettings, class_word: str, colour=None,
             highlight: Optional[np.ndarray] = None, focus: Optional[int] = None, note: Optional[str] = None) -> str:
    """The HTML of the map (thumbnails, neighbours, plotly.js), built once per drawn set and look, and kept;
    `colour` (a Column over all images), `highlight` (a mask over `rows`), `focus` (a row's place in `rows`)
    and `note` as for siamese_core.maps.embedding_map.build_figure."""
    from siamese_core.maps.embedding_map import MapPoints, build_map_html, nearest_table, thumbnail_uris
    from siamese_core.maps.projection import vectors_digest

    picked = positions[rows]
    drawn = (vectors_digest(coords), vectors_digest(data.vectors[picked]), tuple(data.names[:3]), rows.tobytes(),
             chosen.metric)
    look = (class_word, None if colour is None else (colour.name, _digest(colour.values)),
            None if highlight is None else np.packbits(highlight).tobytes(), focus, note)
    def points():
        with st.spinner(f"Drawing {len(rows):,} points with their thumbnails..."):
            neighbours, distances = nearest_table(data.vectors[picked], metric=chosen.metric)
            return MapPoints(coords[rows], data.labels[picked].tolist(), [data.names[i] for i in picked],
                             thumbnail_uris(data.image_set, picked), picked.tolist(), neighbours, distances)

    def page():
        drawn_points = filled(_kept_points(drawn), "points", points,
                              "Someone else on this server is already drawing these points...")
        return build_map_html(drawn_points, class_word, data.classes, MAP_HEIGHT, chosen.metric,
                              None if colour is None else colour.take(picked), highlight, focus, note)

    # Made once for every session that draws the same map (a class opening it together): the others wait for it.
    return filled(_kept_page(drawn + look), "page", page,
                  "Someone else on this server is already drawing this map...")


def draw_map(data: MapData, chosen: MapSettings, class_word: str, positions: np.ndarray, coords: np.ndarray,
             controls: MapControls, look: "CloserLook") -> bool:
    """The map in its frame and a caption saying what it shows; False (after saying why) when nothing is left
    to draw."""
    from siamese_core.maps.embedding_map import isolated_rows
    from siamese_core.maps.projection import METHOD_NAMES

    n = len(positions)
    focus, notes, captions = None, [], []
    isolated = None
    if look.isolate:
        isolated, missing = isolated_rows(positions, [look.number, *look.neighbours])
        if len(isolated) and positions[isolated[0]] == look.number:
            focus = 0
            k = len(isolated) - 1
            notes.append(f"#{look.number} and its {k} nearest")
            captions.append(f"Only image #{look.number} and its {k} nearest images in the model's own numbers "
                            "(those under 'A closer look') are drawn, where the full map puts them"
                            + (f"; {missing} of them are not on this map" if missing else "")
                            + ". The class filter is set aside while only these are drawn.")
        else:
            st.warning(f"Image #{look.number} is not among the {n:,} images on this map, so all of them are drawn: "
                       "pick another image, or tick 'Use all' for t-SNE.")
            isolated = None
    rows = isolated if isolated is not None else drawn_points(positions, controls.keep, data.labels,
                                                              chosen.max_points, chosen.seed)
    if len(rows) == 0:
        st.warning("No image matches the filter: pick other classes.")
        return False
    highlight = None
    if controls.matches is not None:
        highlight = controls.matches[positions[rows]]
        notes.append(f"{int(highlight.sum()):,} of {len(rows):,} match")
    if isolated is not None:
        st.button("Show all points again", key="explore-show-all", on_click=_stop_isolating,
                  help="Back to the whole map (the same as turning off 'Show only these on the map' below).")
    note = " · ".join(notes) or None
    st.iframe(map_page(data, positions, coords, rows, chosen, class_word, controls.colour, highlight, focus, note),
              height=MAP_HEIGHT + 10, alt=f"{chosen.dims}D embedding map of {data.title}")
    if highlight is not None:
        everywhere = int(controls.matches.sum())
        more = (f" ({everywhere:,} of all {len(data.labels):,} images)" if len(rows) < len(data.labels) else "")
        st.caption(f"Search {_code(controls.search)}: {int(highlight.sum()):,} of {len(rows):,} match{more}. "
                   + ("Matching points are drawn larger with a dark outline, the others faded." if highlight.any()
                      else "No point drawn matches." if isolated is not None
                      else "Nothing on the map matches: try fewer letters, or plain text."))
    if isolated is None:
        kept = int(controls.keep[positions].sum())
        capped = (f" {len(rows):,} of them are drawn, chosen evenly from each class; raise 'Most points drawn' under "
                  "Advanced settings to draw more." if len(rows) < kept else "")
        captions.append(("" if kept == n else f"{kept:,} match the filter.") + capped)
    mapped = data.title if n == len(data.labels) else f"{n:,} of {data.title}"
    colour_words = "" if controls.colour is None else f"Colours show '{text.plain(controls.colour.name)}'."
    st.caption(f"{text.plain(mapped[:1].upper() + mapped[1:])}: the model's {data.vectors.shape[1]} numbers per image, "
               f"laid out in {chosen.dims}D with {METHOD_NAMES[chosen.method]}. "
               + " ".join(c for c in captions + [colour_words, "Click a name in the legend to hide or show its points."]
                          if c))
    return True


def _code(typed: str) -> str:
    """What the person typed, shown as code: markdown leaves it as it is (a regex's * or [ included)."""
    return f"`` {typed} ``" if "`" in typed else f"`{typed}`"


def _stop_isolating() -> None:
    st.session_state[state.EXPLORE_ISOLATE] = False


def pca_variance(projection, dims: int) -> None:
    """How much of the images' differences PCA's first directions hold: a line and a small bar chart."""
    import plotly.graph_objects as go

    shares = projection.explained_variance
    if shares is None or not len(shares):
        return
    drawn = shares[:dims]
    each = ", ".join(f"{ordinal(i + 1)} {s:.1%}" for i, s in enumerate(drawn))
    st.caption(f"PCA's {len(drawn)} directions on this map hold {drawn.sum():.1%} of how much the images' numbers "
               f"vary ({each}); the chart shows its first {len(shares)} directions. The rest of the differences "
               "are flattened away: UMAP or t-SNE may separate what PCA overlaps.")
    figure = go.Figure(go.Bar(x=[ordinal(i + 1) for i in range(len(shares))], y=np.round(shares * 100, 2),
                              marker_color=["#1f77b4" if i < dims else "#c7c7c7" for i in range(len(shares))],
                              hovertemplate="%{x} direction: %{y:.1f}%<extra></extra>"))
    figure.update_layout(height=190, margin={"l": 0, "r": 24, "t": 24, "b": 0}, showlegend=False,
                         title={"text": "Share of the variance per PCA direction (%)", "font": {"size": 13}},
                         yaxis={"rangemode": "tozero"})
    left, _ = st.columns([1, 1])
    left.plotly_chart(figure, key="explore-pca-variance", config={"displayModeBar": False})


@dataclass
class CloserLook:
    number: int  # the image looked at
    neighbours: np.ndarray  # its nearest images, nearest first
    isolate: bool  # draw only it and them on the map


def closer_look(data: MapData, chosen: MapSettings, class_word: str, matches: Optional[np.ndarray] = None) -> CloserLook:
    """One image large and its nearest images among all of them, in the model's own space; the files the
    map's search matches can be picked by name; a switch draws only them on the map."""
    from siamese_core.data.images import pixels_to_image

    st.subheader("A closer look")
    n = len(data.labels)
    left, middle, right = st.columns([1, 2, 1])
    number = int(left.number_input("Image number", 0, None, 0, key="explore-pick",
                                   help="The # shown when you hover or click a point on the map."))
    if number >= n:  # kept from a larger image set
        left.caption(f"These images are numbered 0 to {n - 1:,}: showing #{n - 1:,}.")
        number = n - 1
    found_matches = np.flatnonzero(matches)[:200].tolist() if matches is not None else []
    if found_matches:
        picked = middle.selectbox("Or pick one the search found", [None] + found_matches, key="explore-pick-file",
                                  format_func=lambda i: "-" if i is None else f"#{i}  {data.names[i]}")
        if picked is not None:
            number = picked
    k = int(right.slider("Neighbours shown", 1, 20, 8, key="explore-k"))
    isolate = middle.toggle("Show only these on the map", key=state.EXPLORE_ISOLATE,
                            help="Draws only this image and its nearest neighbours on the map above, where the "
                                 "full map puts them. Turn it off to see every point again.")
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
    return CloserLook(number, indices, isolate)


def exports(data: MapData, positions, coords, method_name: str) -> None:
    from siamese_core.maps.embedding_map import coordinates_csv, projector_zip

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
