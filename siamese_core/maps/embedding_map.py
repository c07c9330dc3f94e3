"""The embedding map: embed an image set in batches, draw it as an interactive Plotly page, export it.

`build_map_html` writes one self-contained HTML page: plotly.js from the installed plotly package
(inlined once, no network), the figure (one trace per class, so the legend hides and shows
classes), every drawn image as a small data-URI thumbnail in one JavaScript array, and a script
that shows the hovered point's thumbnail, label and file name in a corner panel, and the clicked
point large with its nearest neighbours (in the model's embedding space, not on the map).
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import math
import re
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import plotly.graph_objects as go
from PIL import Image
from plotly.offline import get_plotlyjs

from ..data.images import pixels_to_image
from ..files import csv_cell
from ..inference.index import VectorIndex
from ..words import plotly_text

THUMBNAIL_PX = 48  # the longest side of a hover thumbnail; smaller images are kept at their size
LEGEND_CLASSES = 30  # up to this many classes get a trace (and a legend entry) each
NEIGHBOURS_SHOWN = 6
ASSETS = Path(__file__).resolve().parents[2] / "assets" / "explore"
# Ten colours easy to tell apart (D3), then more for up to LEGEND_CLASSES classes.
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
           "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5", "#393b79", "#637939", "#8c6d31", "#843c39",
           "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363"]
UNKNOWN = "unknown"  # as map_metadata.UNKNOWN: points without a value, drawn grey
UNKNOWN_COLOUR = "#b4b4b4"
SCALE = "Viridis"  # the colour scale of a column of numbers: dark to light, readable in grey print too
FADED_OPACITY = 0.15  # the points a search does not match
HIGHLIGHT_SCALE = 2.2  # how much larger matching points are drawn
OUTLINE_COLOUR = "#111111"
FEW_POINTS = 100  # a map of at most this many points draws them larger


# ------------------------------------------------------------------ embedding

def embed_image_set(model, image_set, batch_size: int = 256,
                    progress: Optional[Callable[[float, str], None]] = None) -> np.ndarray:
    """Vectors (N, D) of every image in `image_set`, in batches, reporting progress after each one."""
    n = len(image_set)
    report = (lambda done: progress((done - 1) / max(n - 1, 1), f"Embedding images: {done:,} of {n:,}")) if progress else None
    return model.embed(image_set, batch_size=batch_size, on_batch=report).astype(np.float32, copy=False)


def label_names(image_set) -> np.ndarray:
    """Each image's class name ('(no label)' for images without one), as strings."""
    classes = np.array([str(c) for c in image_set.classes] + ["(no label)"], dtype=object)
    return classes[np.where(image_set.labels >= 0, image_set.labels, len(image_set.classes))]


# ------------------------------------------------------------------ neighbours and thumbnails

def nearest_table(vectors: np.ndarray, k: int = NEIGHBOURS_SHOWN, metric: str = "euclidean",
                  chunk: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
    """For every row, its k nearest other rows and their distances, nearest first: (N, k) each.

    The same search as inference.nearest_vectors (siamese_core.inference.index: exact, cosine is 1 - cosine
    similarity), all rows at once in blocks of `chunk` queries, so 10,000 rows take seconds.
    """
    x = np.asarray(vectors, dtype=np.float32)
    n = len(x)
    k = min(k, n - 1)
    if k <= 0:
        return np.zeros((n, 0), dtype=np.int64), np.zeros((n, 0), dtype=np.float32)
    return VectorIndex(x, metric).search(x, k, own=np.arange(n), block=chunk)


def thumbnail_bytes(pixels: np.ndarray, size: int = THUMBNAIL_PX) -> tuple[bytes, str]:
    """A small image file of uint8 (C, H, W) pixels: PNG for grey (lossless and tiny), WebP for colour."""
    image = pixels_to_image(pixels)
    if max(image.size) > size:
        image.thumbnail((size, size), Image.LANCZOS)
    buffer = io.BytesIO()
    if image.mode == "L":
        image.save(buffer, "PNG", optimize=True)
        return buffer.getvalue(), "image/png"
    image.convert("RGB").save(buffer, "WEBP", quality=75)
    return buffer.getvalue(), "image/webp"


def thumbnail_uri(pixels: np.ndarray, size: int = THUMBNAIL_PX) -> str:
    data, mime = thumbnail_bytes(pixels, size)
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def thumbnail_uris(image_set, positions: Sequence[int], size: int = THUMBNAIL_PX, batch: int = 512) -> list:
    positions = np.asarray(positions, dtype=np.int64)
    uris = []
    for start in range(0, len(positions), batch):
        pixels = image_set.batch(positions[start:start + batch]).numpy()
        uris.extend(thumbnail_uri(p, size) for p in pixels)
    return uris


def isolated_rows(positions: Sequence[int], picked: Sequence[int]) -> tuple[np.ndarray, int]:
    """(rows of a map to draw, how many picked images are not on it) for a map that shows only `picked`
    (an image and its nearest neighbours, image numbers); `positions` are the image numbers the map's rows
    hold, in increasing order (every image, or t-SNE's sample). The rows keep the order of `picked`."""
    positions = np.asarray(positions, dtype=np.int64)
    picked = np.asarray(picked, dtype=np.int64)
    rows = np.searchsorted(positions, picked).clip(0, max(len(positions) - 1, 0))
    on_map = (positions[rows] == picked) if len(positions) else np.zeros(len(picked), dtype=bool)
    return rows[on_map], int((~on_map).sum())


# ------------------------------------------------------------------ the page

@dataclass
class MapPoints:
    """What gets drawn: coordinates and facts of each point, in drawing order."""

    coords: np.ndarray  # (N, 2|3)
    labels: Sequence[str]  # class name of each point
    names: Sequence[str]  # file name of each point
    thumbnails: Sequence[str]  # data URI of each point's image
    index: Sequence[int]  # each point's position in the full image set (shown, and used on the page)
    neighbours: Optional[np.ndarray] = None  # (N, k) positions in these points, nearest first
    neighbour_distances: Optional[np.ndarray] = None  # (N, k)


@lru_cache(maxsize=1)
def plotly_js() -> str:
    """plotly.js from the installed plotly package (about 4.8 MB), read once per process."""
    return get_plotlyjs()


def _json_for_script(value) -> str:
    """JSON safe inside a <script> element: '</script>' or '<!--' in a file name cannot end it early."""
    return (json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def build_figure(points: MapPoints, class_word: str = "class", class_order: Optional[Sequence[str]] = None,
                 height: int = 640, colour=None, highlight: Optional[np.ndarray] = None,
                 focus: Optional[int] = None, note: Optional[str] = None):
    """The Plotly figure: one trace per class (legend hides and shows it), or one coloured trace for many.

    `colour` (a siamese_core.maps.metadata.Column, one value per drawn point) colours by that column instead of
    the class: a trace per category, or a colour scale for a column of numbers. `highlight` (a mask over the
    drawn points) draws those points larger and outlined in a trace of their own and fades the rest; `focus`
    (a drawn point) is drawn as a large diamond; `note` is written at the top of the map.
    """
    coords = np.asarray(points.coords, dtype=np.float32)
    dims = coords.shape[1]
    labels = np.asarray(points.labels, dtype=object)
    # Every name a folder, file or CSV gives reaches Plotly through plotly_text: it renders some HTML in trace
    # names, hover text and titles, so a class folder named '<a href=...>Sign in' would be a live link.
    if colour is None:
        groups, title, order = labels, class_word, list(class_order or [])
        text = [plotly_text(label) for label in labels]
    else:
        groups, title, order = np.asarray(colour.values, dtype=object), colour.name, colour.categories()
        text = [plotly_text(f"{label} · {colour.name}: {value}") for label, value in zip(labels, groups)]
    present = groups_in_order(groups, order)
    scatter = go.Scatter3d if dims == 3 else go.Scattergl
    marker_size = 3 if dims == 3 else 5
    if len(labels) <= FEW_POINTS:  # a point and its neighbours, or a tiny set: dots big enough to see and hover
        marker_size += 4
    highlighted = highlight is not None and bool(np.any(highlight))
    opacity = FADED_OPACITY if highlighted else 0.85
    hover = "<b>%{text}</b><extra></extra>"
    figure = go.Figure()
    rounded = np.round(coords, 4)  # four digits are plenty on screen and keep the page small

    def add(members, name, marker, **extra):
        xyz = {axis: rounded[members, j] for j, axis in enumerate("xyz"[:dims])}
        figure.add_trace(scatter(**xyz, mode="markers", name=plotly_text(name), text=[text[i] for i in members],
                                 customdata=members, hovertemplate=hover, marker=marker, **extra))

    point_colours = _point_colours(groups, present, colour)
    if colour is not None and colour.continuous:
        numbers = np.asarray(colour.numbers, dtype=np.float64)
        known = np.flatnonzero(~np.isnan(numbers))
        low, high = (float(numbers[known].min()), float(numbers[known].max())) if len(known) else (0.0, 1.0)
        add(known, colour.name, {"size": marker_size, "color": numbers[known], "colorscale": SCALE, "cmin": low,
                                 "cmax": high, "opacity": opacity, "showscale": True,
                                 "colorbar": {"title": {"text": plotly_text(colour.name)}, "len": 0.45, "thickness": 12,
                                              "y": 0.02, "yanchor": "bottom", "x": 0.99, "xanchor": "right"}},
            showlegend=False)
        unknown = np.flatnonzero(np.isnan(numbers))
        if len(unknown):
            add(unknown, UNKNOWN, {"size": marker_size, "color": UNKNOWN_COLOUR, "opacity": opacity})
    elif len(present) <= LEGEND_CLASSES:
        for name in present:
            members = np.flatnonzero(groups == name)
            add(members, name, {"size": marker_size, "color": point_colours[members[0]], "opacity": opacity})
    else:
        members = np.arange(len(groups))
        add(members, title, {"size": marker_size, "color": point_colours, "opacity": opacity}, showlegend=False)
    if highlighted:
        members = np.flatnonzero(highlight)
        add(members, f"Matches ({len(members):,})",
            {"size": round(marker_size * HIGHLIGHT_SCALE, 1), "color": [point_colours[i] for i in members],
             "opacity": 1.0, "line": {"color": OUTLINE_COLOUR, "width": 1.5}})
    if focus is not None:
        index = points.index[focus] if len(points.index) > focus else focus
        add(np.array([focus]), f"Picked #{index}",
            {"size": marker_size + 5, "color": point_colours[focus], "symbol": "diamond", "opacity": 1.0,
             "line": {"color": OUTLINE_COLOUR, "width": 2}})
    layout = {"margin": {"l": 0, "r": 0, "t": 0, "b": 0}, "height": height, "uirevision": "keep",
              "legend": {"itemsizing": "constant", "title": {"text": plotly_text(title)}, "x": 0, "y": 1,
                         "bgcolor": "rgba(255,255,255,0.7)"},
              "hoverlabel": {"namelength": 0}, "paper_bgcolor": "white"}
    if note:
        layout["annotations"] = [{"text": plotly_text(note), "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.995,
                                  "xanchor": "center", "yanchor": "top", "showarrow": False,
                                  "bgcolor": "rgba(255,255,255,0.9)", "bordercolor": "#d0d3da", "borderwidth": 1,
                                  "borderpad": 4, "font": {"size": 13, "color": "#262730"}}]
    layout.update(axes_layout(dims))
    figure.update_layout(**layout)
    return figure


def groups_in_order(groups, order: Sequence[str]) -> list:
    """The groups present, those `order` names first and in its order, then the rest naturally sorted
    (a class the order does not name still gets drawn)."""
    found = set(groups)
    present = [c for c in dict.fromkeys(order) if c in found]
    return present + sorted(found - set(present), key=_natural)


def axes_layout(dims: int, **axis_settings) -> dict:
    """A map's axes: no ticks or titles (the positions mean nothing on their own), plus `axis_settings` on
    each; a cube in 3D, a square grid that pans in 2D."""
    axis = {"showticklabels": False, "title": {"text": ""}, **axis_settings}
    if dims == 3:
        return {"scene": {"xaxis": axis, "yaxis": axis, "zaxis": axis, "aspectmode": "cube"}}
    return {"xaxis": axis, "yaxis": {**axis, "scaleanchor": "x"}, "plot_bgcolor": "#fafafa", "dragmode": "pan"}


def _point_colours(groups: np.ndarray, present: list, colour) -> list:
    """The colour of each point as a CSS string: as its trace draws it (the highlight trace repeats it)."""
    from plotly.colors import sample_colorscale

    if colour is not None and colour.continuous:
        numbers = np.asarray(colour.numbers, dtype=np.float64)
        known = ~np.isnan(numbers)
        low, high = (numbers[known].min(), numbers[known].max()) if known.any() else (0.0, 1.0)
        share = np.where(known, (numbers - low) / (high - low if high > low else 1.0), 0.0)
        sampled = sample_colorscale(SCALE, share.tolist())
        return [c if k else UNKNOWN_COLOUR for c, k in zip(sampled, known)]
    # Points without a value are grey; a class called "unknown" is a class like any other.
    known = [c for c in present if colour is None or c != UNKNOWN]
    if len(present) <= LEGEND_CLASSES:
        table = {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(known)}
    else:
        table = dict(zip(known, sample_colorscale("Turbo", np.linspace(0, 1, len(known)).tolist())))
    table.setdefault(UNKNOWN, UNKNOWN_COLOUR)
    return [table[g] for g in groups]


def _natural(text: str):
    """'2' before '10': class names that are numbers sort as numbers."""
    return (0, int(text), "") if str(text).isdigit() else (1, 0, str(text))


def build_map_html(points: MapPoints, class_word: str = "class", class_order: Optional[Sequence[str]] = None,
                   height: int = 640, metric: str = "euclidean", colour=None, highlight: Optional[np.ndarray] = None,
                   focus: Optional[int] = None, note: Optional[str] = None) -> str:
    """A complete HTML page (no network needed) for `st.iframe`, or to save and open in a browser; `colour`,
    `highlight`, `focus` and `note` as for build_figure."""
    figure = build_figure(points, class_word, class_order, height, colour, highlight, focus, note)
    data = {
        "thumbs": list(points.thumbnails),
        "labels": [str(s) for s in points.labels],
        "names": [str(s) for s in points.names],
        "index": [int(i) for i in points.index],
        "neighbours": [] if points.neighbours is None else points.neighbours.tolist(),
        "distances": [] if points.neighbour_distances is None
        else np.round(points.neighbour_distances, 4).tolist(),
        "metric": "cosine distance" if metric == "cosine" else "distance",
        "classWord": class_word,
    }
    return page_from_template(ASSETS / "map.html", f"Embedding map of {len(points.labels):,} images", height,
                              figure, data, HOVER_JS=ASSETS / "hover.js")


def page_from_template(template: Path, title: str, height: int, figure, data: dict, **scripts: Path) -> str:
    """A complete HTML page (no network needed): the template's /*TITLE*/, /*HEIGHT*/, /*PLOTLY_JS*/, /*FIGURE*/
    and /*POINTS*/ slots filled, and one slot per script file named in `scripts`."""
    parts = {
        "TITLE": html.escape(title),
        "HEIGHT": str(int(height)),
        "PLOTLY_JS": plotly_js().replace("</script", "<\\/script"),
        "FIGURE": figure.to_json().replace("</", "<\\/"),
        "POINTS": _json_for_script(data),
        **{slot: path.read_text(encoding="utf-8") for slot, path in scripts.items()},
    }
    page = template.read_text(encoding="utf-8")
    # One pass over the template only: nothing inserted (plotly.js, file names) is scanned again.
    return re.sub(r"/\*(" + "|".join(parts) + r")\*/", lambda found: parts[found.group(1)], page)


# ------------------------------------------------------------------ exports

def coordinates_csv(coords: np.ndarray, labels: Sequence[str], names: Sequence[str],
                    index: Optional[Sequence[int]] = None) -> bytes:
    """The projected points as CSV: index, x, y[, z], label, path (UTF-8, one row per image); a label or path a
    spreadsheet would run as a formula (=HYPERLINK(...)) starts with an apostrophe (siamese_core.files.csv_cell)."""
    coords = np.asarray(coords)
    axes = ["x", "y", "z"][:coords.shape[1]]
    index = range(len(coords)) if index is None else index
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["index", *axes, "label", "path"])
    for i, row, label, name in zip(index, coords, labels, names):
        writer.writerow([int(i), *(f"{v:.6g}" for v in row), csv_cell(str(label)), csv_cell(str(name))])
    return buffer.getvalue().encode("utf-8")


def _tsv_cell(value) -> str:
    """One cell of metadata.tsv: on one line, and not a formula should a spreadsheet open it."""
    return csv_cell(str(value).replace("\t", " ").replace("\n", " ").replace("\r", " "))


def sprite_sheet(image_set, positions: Optional[Sequence[int]] = None, max_side: int = 8192):
    """All images tiled in a square grid for TensorBoard's projector: (PNG bytes, cell size in px).

    The projector reads at most 8192 x 8192 pixels, so cells shrink as the number of images grows.
    """
    positions = np.arange(len(image_set)) if positions is None else np.asarray(positions, dtype=np.int64)
    per_row = max(1, math.ceil(math.sqrt(len(positions))))
    cell = max(1, min(int(image_set.image_size), max_side // per_row))
    first = pixels_to_image(image_set.batch(positions[:1]).numpy()[0]) if len(positions) else None
    mode = "L" if first is None or first.mode == "L" else "RGB"
    sheet = Image.new(mode, (per_row * cell, max(1, math.ceil(len(positions) / per_row)) * cell), 0)
    for start in range(0, len(positions), 512):
        for j, pixels in enumerate(image_set.batch(positions[start:start + 512]).numpy()):
            tile = pixels_to_image(pixels).convert(mode).resize((cell, cell), Image.BILINEAR)
            k = start + j
            sheet.paste(tile, ((k % per_row) * cell, (k // per_row) * cell))
    buffer = io.BytesIO()
    sheet.save(buffer, "PNG", optimize=True)
    return buffer.getvalue(), cell


def projector_zip(vectors: np.ndarray, labels: Sequence[str], names: Sequence[str], image_set=None,
                  positions: Optional[Sequence[int]] = None, tensor_name: str = "embeddings") -> bytes:
    """A zip for TensorBoard's projector: vectors.tsv, metadata.tsv, sprite.png, projector_config.pbtxt.

    Unzip it into a log folder and run `tensorboard --logdir FOLDER` (Projector tab), or load
    vectors.tsv and metadata.tsv at projector.tensorflow.org. `positions` are the images of
    `image_set` the rows belong to (default: all, in order); without `image_set` there is no sprite.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    rows = "\n".join("\t".join(f"{v:.6g}" for v in row) for row in vectors) + "\n"
    metadata = "label\tpath\n" + "".join(f"{_tsv_cell(a)}\t{_tsv_cell(b)}\n" for a, b in zip(labels, names))
    config = [f"embeddings {{\n  tensor_name: \"{tensor_name}\"\n  tensor_path: \"vectors.tsv\"\n"
              "  metadata_path: \"metadata.tsv\"\n"]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("vectors.tsv", rows)
        archive.writestr("metadata.tsv", metadata)
        if image_set is not None and len(vectors):
            sprite, cell = sprite_sheet(image_set, positions)
            archive.writestr("sprite.png", sprite)
            config.append(f"  sprite {{\n    image_path: \"sprite.png\"\n    single_image_dim: {cell}\n"
                          f"    single_image_dim: {cell}\n  }}\n")
        config.append("}\n")
        archive.writestr("projector_config.pbtxt", "".join(config))
    return buffer.getvalue()
