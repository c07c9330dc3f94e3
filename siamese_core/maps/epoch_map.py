"""The map, epoch by epoch: a run's snapshots (siamese_core.maps.snapshots) laid out in 2D or 3D so that the
points move smoothly from one epoch to the next, drawn as one HTML page with an epoch slider and Play.

Alignment. Each epoch is centred and scaled to unit spread (its scale is not news). One PCA is fitted
on all the epochs it shows faithfully (at least FAITHFUL of the variance each one's own PCA keeps), so
on those shared axes a point moves only as far as the model moved its image. An epoch the shared
axes would show badly, typically the random start (one PCA on everything is fitted to the late,
well-spread epochs and squashes it to 2-3% of its variance), gets its own PCA instead, turned by the
orthogonal Procrustes rotation onto its neighbour. Measured with `alignment_report` on the built-in
digits (convnet, 6 epochs, embedding; mean point displacement between consecutive epochs, each
layout at unit spread): 2D 1.14 with each epoch's own PCA unaligned, 0.37 own PCA + Procrustes,
0.27 one PCA on all epochs (the random start at 3% of its variance), 0.23 shared (every epoch at
0.31 or more of its variance, own PCA: 0.33); 3D 1.11, 0.32, 0.28, 0.23.

The page reuses the embedding map's pieces (plotly.js inlined, thumbnails as data URIs, JSON safe in a
script) and its look: hover a point to see its image in the corner panel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..words import plotly_text
from .embedding_map import LEGEND_CLASSES, PALETTE, axes_layout, groups_in_order, page_from_template

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "epoch_map"
TWEENS = 10  # in-between frames when playing from one epoch to the next (plotly does not tween 3D or WebGL)
STEP_MS = 45  # one in-between frame
HOLD_MS = 700  # each epoch stays this long while playing


# ------------------------------------------------------------------ alignment

def _unit_spread(x: np.ndarray) -> np.ndarray:
    """Centred, and scaled so the mean squared distance to the centre is 1 (an epoch's scale is not news)."""
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean(axis=0)
    scale = np.sqrt((x ** 2).sum(axis=1).mean())
    return x / scale if scale > 0 else x


def _pca(x: np.ndarray, dims: int) -> np.ndarray:
    """Coordinates of centred rows on their first `dims` principal axes (zeros where there are fewer)."""
    u, s, _ = np.linalg.svd(x, full_matrices=False)
    coords = u[:, :dims] * s[:dims]
    if coords.shape[1] < dims:
        coords = np.hstack([coords, np.zeros((len(x), dims - coords.shape[1]))])
    return coords


def _procrustes(moving: np.ndarray, target: np.ndarray) -> np.ndarray:
    """`moving` turned (an orthogonal matrix: rotation or reflection) to lie closest to `target`."""
    from scipy.linalg import orthogonal_procrustes

    rotation, _ = orthogonal_procrustes(moving, target)
    return moving @ rotation


FAITHFUL = 0.8  # an epoch is drawn on the shared axes when they keep at least this share of what its own PCA keeps


def _shared_axes(spread: Sequence[np.ndarray], which: Sequence[int], dims: int) -> np.ndarray:
    """(dims, D) principal axes of the epochs `which`, stacked."""
    stacked = np.vstack([spread[i] for i in which])
    _, _, axes = np.linalg.svd(stacked - stacked.mean(axis=0), full_matrices=False)
    return axes[:dims]


def _on_axes(x: np.ndarray, axes: np.ndarray, dims: int) -> np.ndarray:
    coords = x @ axes.T
    return np.hstack([coords, np.zeros((len(x), dims - coords.shape[1]))]) if coords.shape[1] < dims else coords


def align_epochs(vectors: Sequence[np.ndarray], dims: int = 2, method: str = "shared") -> list:
    """(N, dims) coordinates per epoch, aligned so consecutive epochs are close.

    'shared' (default): one PCA fitted on the epochs it shows faithfully (at least FAITHFUL of what
    each one's own PCA keeps), so those move only as much as the points really move; an epoch it
    would show badly (typically the random start) gets its own PCA, turned onto its neighbour.
    'joint': one PCA on all epochs. 'procrustes': each epoch's own PCA turned onto the previous
    epoch's. 'separate': each epoch's own PCA, not aligned (the baseline)."""
    spread = [_unit_spread(v) for v in vectors]
    if method == "joint":
        axes = _shared_axes(spread, range(len(spread)), dims)
        return [_on_axes(x, axes, dims) for x in spread]
    own = [_pca(x, dims) for x in spread]
    if method == "separate":
        return own
    if method == "procrustes":
        aligned = own[:1]
        for c in own[1:]:
            aligned.append(_procrustes(c, aligned[-1]))
        return aligned
    if method != "shared":
        raise ValueError(f"unknown alignment {method!r}")
    kept = list(range(len(spread)))
    for _ in range(2):  # fit, drop the epochs it shows badly, fit again on the rest
        axes = _shared_axes(spread, kept, dims)
        kept = [i for i, x in enumerate(spread)
                if (_on_axes(x, axes, dims) ** 2).sum() >= FAITHFUL * (own[i] ** 2).sum()]
        if not kept:
            return align_epochs(vectors, dims, "procrustes")
    axes = _shared_axes(spread, kept, dims)
    coords = [_on_axes(x, axes, dims) if i in kept else None for i, x in enumerate(spread)]
    for i in range(kept[0] + 1, len(coords)):  # after the first shared epoch: turned onto the one before
        if coords[i] is None:
            coords[i] = _procrustes(own[i], coords[i - 1])
    for i in range(kept[0] - 1, -1, -1):  # before it (the random start): turned onto the one after
        coords[i] = _procrustes(own[i], coords[i + 1])
    return coords


def mean_displacement(coords: Sequence[np.ndarray]) -> list:
    """Per pair of consecutive epochs: the mean distance a point moves, with each epoch's layout scaled to a
    unit spread (so 1.0 is as far as the points typically lie from the centre)."""
    scaled = [_unit_spread(c) for c in coords]
    return [float(np.linalg.norm(b - a, axis=1).mean()) for a, b in zip(scaled, scaled[1:])]


def shown_variance(vectors: Sequence[np.ndarray], coords: Sequence[np.ndarray]) -> list:
    """Per epoch: the share of its (unit-spread) variance the drawn layout keeps; its own PCA keeps the most."""
    return [float((c ** 2).sum() / max((_unit_spread(v) ** 2).sum(), 1e-12)) for v, c in zip(vectors, coords)]


def alignment_report(vectors: Sequence[np.ndarray], dims: int = 2) -> dict:
    """For each method: mean displacement between consecutive epochs and the least variance shown in an epoch."""
    report = {}
    for method in ("separate", "joint", "procrustes", "shared"):
        coords = align_epochs(vectors, dims, method)
        moves = mean_displacement(coords)
        report[method] = {"mean_displacement": float(np.mean(moves)) if moves else 0.0,
                          "per_step": moves, "least_variance_shown": min(shown_variance(vectors, coords))}
    return report


# ------------------------------------------------------------------ the page

def epoch_caption(epoch: int, total: Optional[int], accuracy: Optional[float], random_start: bool = True) -> str:
    if epoch == 0:
        return "Before training: random weights" if random_start else "Before training: the pretrained weights"
    words = f"After epoch {epoch}" + (f" of {total}" if total else "")
    if accuracy is not None:
        words += f" · {100 * accuracy:.0f}% of validation pairs judged right"
    return words


def build_figure(coords: Sequence[np.ndarray], epochs: Sequence[int], labels: Sequence[str],
                 class_word: str = "class", class_order: Optional[Sequence[str]] = None, height: int = 560,
                 scripted: bool = True, start: int = 0):
    """The figure: the first epoch's points (one trace per class), one frame per epoch, a slider over the
    epochs and Play / Pause buttons. `scripted`: the page's script plays the frames (build_epoch_map_html);
    otherwise plotly's own animation does (st.plotly_chart: in 2D the points glide, in 3D they jump)."""
    import plotly.graph_objects as go

    dims = coords[0].shape[1]
    labels = np.asarray([str(s) for s in labels], dtype=object)
    present = groups_in_order(labels, class_order or [])
    if len(present) <= LEGEND_CLASSES:
        groups = [(name, np.flatnonzero(labels == name), PALETTE[i % len(PALETTE)]) for i, name in enumerate(present)]
    else:  # many classes: one trace, coloured by class
        number = {c: i for i, c in enumerate(present)}
        groups = [(class_word, np.arange(len(labels)), [number[c] for c in labels])]
    rounded = [np.round(np.asarray(c, dtype=np.float64), 4) for c in coords]
    axes = "xyz"[:dims]

    def positions(epoch_index: int) -> list:
        # Plain lists, not plotly's base64 arrays: the page's script mixes them into in-between frames.
        return [{axis: rounded[epoch_index][members, j].tolist() for j, axis in enumerate(axes)}
                for _, members, _ in groups]

    scatter = go.Scatter3d if dims == 3 else go.Scatter  # SVG in 2D: a few hundred points redraw fastest
    figure = go.Figure()
    many = len(groups) == 1 and len(present) > LEGEND_CLASSES
    for (name, members, colour), xyz in zip(groups, positions(start)):
        marker = {"size": 4 if dims == 3 else 7, "color": colour, "opacity": 0.85}
        if many:
            marker["colorscale"] = "Turbo"
        figure.add_trace(scatter(**xyz, mode="markers", name=plotly_text(name), customdata=members.tolist(),
                                 text=[plotly_text(label) for label in labels[members]],
                                 hovertemplate="<b>%{text}</b><extra></extra>",
                                 marker=marker, showlegend=not many))
    figure.frames = [go.Frame(name=str(epoch), data=[scatter(**xyz) for xyz in positions(i)],
                              traces=list(range(len(groups))))
                     for i, epoch in enumerate(epochs)]
    reach = max(float(np.abs(c).max()) for c in rounded) * 1.08 or 1.0
    jump = {"mode": "immediate", "frame": {"duration": 0, "redraw": True}, "transition": {"duration": 0}}
    steps = [{"method": "animate", "label": "start" if epoch == 0 else str(epoch), "args": [[str(epoch)], jump]}
             for epoch in epochs]
    layout = {
        "height": height, "margin": {"l": 0, "r": 0, "t": 30, "b": 0}, "uirevision": "keep",
        "paper_bgcolor": "white", "hoverlabel": {"namelength": 0},
        "legend": {"itemsizing": "constant", "title": {"text": plotly_text(class_word)}, "x": 0, "y": 1,
                   "bgcolor": "rgba(255,255,255,0.7)"},
        "sliders": [{"active": start, "steps": steps, "x": 0.17, "len": 0.81, "y": 0, "yanchor": "top",
                     "pad": {"t": 8, "b": 4}, "currentvalue": {"prefix": "Epoch: ", "font": {"size": 14}},
                     "transition": {"duration": 0}}],
        # method 'skip': the buttons only say what was pressed; the page's script plays the frames, with
        # in-between frames so points glide from epoch to epoch in 3D too.
        "updatemenus": [{"type": "buttons", "direction": "left", "x": 0.0, "y": 0, "xanchor": "left",
                         "yanchor": "top", "pad": {"t": 40, "r": 8}, "showactive": False,
                         "buttons": [{"label": "▶ Play", "method": "skip", "args": ["play"]},
                                     {"label": "❚❚ Pause", "method": "skip", "args": ["pause"]}]}],
    }
    if not scripted:
        glide = {"frame": {"duration": HOLD_MS, "redraw": dims == 3}, "fromcurrent": True,
                 "transition": {"duration": 0 if dims == 3 else 450, "easing": "cubic-in-out"}}
        layout["updatemenus"][0]["buttons"] = [
            {"label": "▶ Play", "method": "animate", "args": [None, glide]},
            {"label": "❚❚ Pause", "method": "animate", "args": [[None], {**jump, "frame": {"duration": 0}}]}]
    # Fixed ranges: the view stays put while the points move.
    layout.update(axes_layout(dims, range=[-reach, reach], autorange=False, zeroline=False))
    figure.update_layout(**layout)
    return figure


def build_epoch_map_html(coords: Sequence[np.ndarray], epochs: Sequence[int], labels: Sequence[str],
                         names: Sequence[str], thumbnails: Sequence[str], index: Sequence[int],
                         captions: Sequence[str], class_word: str = "class",
                         class_order: Optional[Sequence[str]] = None, height: int = 560,
                         start_at_last: bool = False) -> str:
    """A complete HTML page (no network needed) for `st.iframe`: the map of each epoch, a slider, Play.

    `start_at_last`: open on the newest epoch (a run still training) rather than on the first."""
    figure = build_figure(coords, epochs, labels, class_word, class_order, height)
    data = {
        "thumbs": list(thumbnails), "labels": [str(s) for s in labels], "names": [str(s) for s in names],
        "index": [int(i) for i in index], "classWord": class_word, "epochs": [int(e) for e in epochs],
        "captions": list(captions), "tweens": TWEENS, "stepMs": STEP_MS, "holdMs": HOLD_MS,
        "startAtLast": bool(start_at_last),
    }
    return page_from_template(ASSETS / "page.html", f"How the map of {len(labels):,} images formed, epoch by epoch",
                              height, figure, data, PLAY_JS=ASSETS / "play.js")


LIVE_EPOCHS = 12  # the most epochs the live figure shows: a digit epoch can take 2 s, and a figure redrawn every
# 1.5 s with every epoch of a long run in it grew slower to build and send than that, keeping the page always busy


def live_figure(snapshots, class_word: str = "class", height: int = 420):
    """A light 2D figure of a run's snapshots for st.plotly_chart (plotly's own slider and Play, no thumbnails),
    opened on the newest epoch: what the Train page redraws every few seconds while a run trains. At most
    LIVE_EPOCHS of them, spread from the first to the newest; the full map, once training ends, has them all."""
    shown = np.unique(np.linspace(0, len(snapshots.epochs) - 1, min(LIVE_EPOCHS, len(snapshots.epochs))).round()
                      .astype(int))
    coords = align_epochs([snapshots.vectors[i] for i in shown], 2)
    return build_figure(coords, [snapshots.epochs[i] for i in shown], snapshots.labels, class_word,
                        snapshots.classes, height, scripted=False, start=len(coords) - 1)


def epoch_map_page(snapshots, dims: int = 2, accuracies: Optional[dict] = None, total_epochs: Optional[int] = None,
                   class_word: str = "class", height: int = 560, start_at_last: bool = False) -> str:
    """The page for a run's snapshots (siamese_core.maps.snapshots.read_snapshots), aligned across epochs."""
    accuracies = accuracies or {}
    coords = align_epochs(snapshots.vectors, dims)
    captions = [epoch_caption(e, total_epochs, accuracies.get(e), snapshots.random_start) for e in snapshots.epochs]
    return build_epoch_map_html(coords, snapshots.epochs, snapshots.labels, snapshots.names, snapshots.thumbnails,
                                snapshots.positions, captions, class_word, snapshots.classes, height, start_at_last)
