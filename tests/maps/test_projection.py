"""Projections (PCA, t-SNE, UMAP), their cache, and the embedding map's library: real digits, real model."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import sys
import zipfile

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT
from siamese_core.maps import embedding_map as M
from siamese_core.maps import projection as P
from siamese_core.data.sources import load_digits
from siamese_core.errors import UserError
from siamese_core.inference.model import SiameseModel, nearest_vectors

DEMO = ROOT / "assets" / "demo" / "digits-convnet.pt"


@pytest.fixture(scope="module")
def digits():
    return load_digits(pipeline="digit")  # as the demo model prepares its images


@pytest.fixture(scope="module")
def embedded(digits):
    """The demo model's vectors of 400 built-in digits (40 per class) and their labels."""
    model = SiameseModel.load(DEMO)
    positions = P.sample_per_class(digits.labels, 400, seed=1)
    subset = digits.subset(positions)
    return M.embed_image_set(model, subset, batch_size=128), subset.labels, subset


def neighbour_agreement(coords: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """Share of points whose k nearest points on the map mostly have their class."""
    d = ((coords[:, None, :] - coords[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    near = np.argsort(d, axis=1)[:, :k]
    return float(((labels[near] == labels[:, None]).mean(axis=1) > 0.5).mean())


def plotly_array(value) -> np.ndarray:
    """An array as plotly writes it into figure JSON: a list, or {"dtype": "i2", "bdata": base64}."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    return np.asarray(value)


# ------------------------------------------------------------------ the three methods

def test_pca_is_fast_deterministic_and_keeps_the_model_s_classes_apart(embedded):
    vectors, labels, _ = embedded
    coords = P.project(vectors, "pca", 3)
    assert coords.shape == (400, 3) and coords.dtype == np.float32
    np.testing.assert_array_equal(coords, P.project(vectors, "pca", 3))
    assert P.project(vectors, "pca", 2).shape == (400, 2)
    assert neighbour_agreement(coords, labels) > 0.8  # a 98% model: classes are clusters even in PCA


def test_pca_of_vectors_with_fewer_numbers_than_dimensions_still_gives_3_columns():
    coords = P.project(np.arange(20, dtype=np.float32).reshape(10, 2), "pca", 3)
    assert coords.shape == (10, 3) and np.all(coords[:, 2] == 0)


@pytest.mark.slow
def test_tsne_reports_its_real_steps_and_separates_the_classes(embedded):
    vectors, labels, _ = embedded
    seen = []
    stdout = sys.stdout
    coords = P.project(vectors, "tsne", 3, {"perplexity": 20, "max_iter": 300}, seed=0,
                       progress=lambda done, words: seen.append((done, words)))
    assert sys.stdout is stdout  # the log reader is gone, prints go where they went before
    assert coords.shape == (400, 3) and np.isfinite(coords).all()
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    steps = [w for _, w in seen if "step" in w]
    assert len(steps) >= 4 and "of 300 on 400 points" in steps[0]  # read from t-SNE's own log, every 50
    assert neighbour_agreement(coords, labels) > 0.9


def test_umap_reports_its_epochs_and_separates_the_classes(embedded):
    vectors, labels, _ = embedded
    seen = []
    coords = P.project(vectors, "umap", 2, {"n_neighbors": 10, "min_dist": 0.2}, seed=0,
                       progress=lambda done, words: seen.append((done, words)))
    assert coords.shape == (400, 2) and np.isfinite(coords).all()
    assert any(re.search(r"step \d+ of \d+ on 400 points", w) for _, w in seen)
    assert [f for f, _ in seen] == sorted(f for f, _ in seen)
    assert neighbour_agreement(coords, labels) > 0.9


def test_bad_inputs_get_plain_messages():
    with pytest.raises(UserError, match="at least 3 images"):
        P.project(np.zeros((2, 4)), "pca")
    with pytest.raises(UserError, match="not finite"):
        P.project(np.array([[0, 1], [np.nan, 1], [2, 2], [3, 1]], dtype=np.float32), "pca")
    with pytest.raises(ValueError, match="unknown projection method"):
        P.project(np.zeros((5, 4)), "mds")
    with pytest.raises(ValueError, match="no parameter perplexity"):
        P.project(np.zeros((5, 4)), "umap", params={"perplexity": 5})


# ------------------------------------------------------------------ sampling and caching

def test_sampling_is_even_per_class_and_a_small_class_gives_its_share_away():
    labels = np.array([0] * 500 + [1] * 30 + [2] * 470)
    picked = P.sample_per_class(labels, 300, seed=0)
    counts = np.bincount(labels[picked])
    assert len(picked) == 300 and len(set(picked)) == 300 and list(picked) == sorted(picked)
    assert counts[1] == 30 and abs(int(counts[0]) - int(counts[2])) <= 1
    np.testing.assert_array_equal(P.sample_per_class(labels, 5000), np.arange(1000))


def test_cache_keeps_a_projection_and_tells_changed_inputs_apart(embedded):
    vectors, _, _ = embedded
    cache = P.ProjectionCache(max_entries=2)
    key = P.cache_key(vectors, "pca", 3, None, 0)
    assert cache.get(key) is None
    first = P.project(vectors, "pca", 3)
    cache.put(key, first)
    assert cache.get(key) is first
    assert key != P.cache_key(vectors, "pca", 2, None, 0)
    assert key != P.cache_key(vectors, "pca", 3, None, 1)
    assert key != P.cache_key(vectors[:-1], "pca", 3, None, 0)
    assert P.cache_key(vectors, "tsne", 3, {}, 0) == P.cache_key(vectors, "tsne", 3, {"perplexity": 30.0}, 0)
    assert P.cache_key(vectors, "tsne", 3, {"perplexity": 5}, 0) != P.cache_key(vectors, "tsne", 3, {}, 0)
    # The least recently used is dropped first.
    cache.put("b", first)
    cache.get(key)
    cache.put("c", first)
    assert cache.get("b") is None and cache.get(key) is first


# ------------------------------------------------------------------ the map page and its exports

def test_nearest_table_agrees_with_the_library_s_nearest_search(embedded):
    vectors, _, _ = embedded
    for metric in ("euclidean", "cosine"):
        indices, distances = M.nearest_table(vectors, k=6, metric=metric, chunk=64)
        for row in (0, 123, 399):
            expected, expected_d = nearest_vectors(vectors[row], vectors, 6, metric, exclude_self=True)
            np.testing.assert_array_equal(indices[row], expected)
            np.testing.assert_allclose(distances[row], expected_d, rtol=1e-3, atol=1e-3)


def test_map_html_holds_plotly_once_every_thumbnail_once_and_one_trace_per_class(embedded):
    vectors, labels, subset = embedded
    coords = P.project(vectors, "pca", 3)
    names = list(subset.names)
    names[0] = "digits/0/</script><b>x</b>.png"  # a hostile file name must not end the script
    neighbours, distances = M.nearest_table(vectors)
    points = M.MapPoints(coords, [str(v) for v in labels], names, M.thumbnail_uris(subset, np.arange(400)),
                         list(range(400)), neighbours, distances)
    page = M.build_map_html(points, "digit", [str(d) for d in range(10)])
    assert page.count("Plotly.newPlot") >= 1 and len(page) < len(M.plotly_js()) + 1_500_000
    assert page.count("</script>") == 2  # plotly.js, then data and script: nothing in the data closed one
    data = json.loads(re.search(r"const POINTS = (.*);\n", page).group(1))
    figure = json.loads(re.search(r"const FIGURE = (.*);\n", page).group(1))
    assert len(data["thumbs"]) == 400 and data["names"][0] == names[0]
    assert [t["name"] for t in figure["data"]] == [str(d) for d in range(10)]
    drawn = np.concatenate([plotly_array(t["customdata"]) for t in figure["data"]])
    assert sorted(drawn) == list(range(400))  # every point once, by its position in the thumbnails
    in_plotly = M.plotly_js().count("data:image/png;base64,")
    assert page.count("data:image/png;base64,") == 400 + in_plotly  # once each: not repeated in the traces
    thumb = Image.open(io.BytesIO(base64.b64decode(data["thumbs"][5].split(",", 1)[1])))
    assert thumb.size == (28, 28)
    assert len(data["neighbours"][0]) == M.NEIGHBOURS_SHOWN


def test_coordinates_csv_and_tensorboard_projector_zip(embedded):
    vectors, labels, subset = embedded
    coords = P.project(vectors, "pca", 3)
    text = M.coordinates_csv(coords, [str(v) for v in labels], subset.names, range(400)).decode()
    lines = text.splitlines()
    assert lines[0] == "index,x,y,z,label,path" and len(lines) == 401
    assert lines[1].endswith(f",{labels[0]},{subset.names[0]}")
    with zipfile.ZipFile(io.BytesIO(M.projector_zip(vectors, [str(v) for v in labels], subset.names, subset))) as z:
        assert sorted(z.namelist()) == ["metadata.tsv", "projector_config.pbtxt", "sprite.png", "vectors.tsv"]
        rows = z.read("vectors.tsv").decode().splitlines()
        assert len(rows) == 400 and len(rows[0].split("\t")) == vectors.shape[1]
        np.testing.assert_allclose(np.array(rows[7].split("\t"), dtype=np.float32), vectors[7], rtol=1e-5)
        metadata = z.read("metadata.tsv").decode().splitlines()
        assert metadata[0] == "label\tpath" and len(metadata) == 401
        sprite = Image.open(io.BytesIO(z.read("sprite.png")))
        assert sprite.size == (20 * 28, 20 * 28)  # 400 images: 20 x 20 cells of 28 px
        config = z.read("projector_config.pbtxt").decode()
        assert 'tensor_path: "vectors.tsv"' in config and "single_image_dim: 28" in config


def test_exported_names_that_a_spreadsheet_would_run_are_neutralised():
    """Issue 24, item 11: a class or file named =HYPERLINK(...) or @SUM(...) stayed a formula in the exports."""
    hostile = ['=HYPERLINK("https://evil.example","open")', "@SUM(1+1)*cmd|' /C calc'!A0", "+1", "-2+3", "\tx"]
    coords = np.array([[-1.5, 2.0]] * len(hostile))
    rows = list(csv.reader(io.StringIO(M.coordinates_csv(coords, hostile, hostile).decode())))[1:]
    assert [row[3] for row in rows] == [row[4] for row in rows] == ["'" + h for h in hostile]
    assert rows[0][1] == "-1.5"  # numbers stay numbers
    with zipfile.ZipFile(io.BytesIO(M.projector_zip(np.ones((len(hostile), 2)), hostile, hostile))) as z:
        metadata = [line.split("\t") for line in z.read("metadata.tsv").decode().splitlines()[1:]]
    assert [row[0] for row in metadata] == ["'" + h for h in hostile[:4]] + [" x"]  # a tab: a space in a TSV
