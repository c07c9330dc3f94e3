"""siamese_core.index: every engine answers as the brute force does."""

import numpy as np
import pytest

from siamese_core import index as ix
from siamese_core.inference import nearest_vectors

HAS_FAISS = ix.faiss_available()


def brute_force(queries, gallery, k, metric):
    """Every row's distance to every query, elementwise, then the first k of a stable sort."""
    if metric == "cosine":
        unit = lambda x: x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)  # noqa: E731
        d = 1.0 - (unit(gallery)[None] * unit(queries)[:, None]).sum(-1)
    else:
        d = np.sqrt(np.maximum(((gallery[None] - queries[:, None]) ** 2).sum(-1), 0.0))
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(d, order, axis=1)


def vectors(n, dim=24, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    x[n // 2: n // 2 + 8] = x[3]  # exact copies of row 3: equal distances, which must come in row order
    return x


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_search_matches_brute_force_on_both_sides_of_the_threshold(monkeypatch, metric):
    monkeypatch.setattr(ix, "FAISS_THRESHOLD", 300)
    queries = np.concatenate([vectors(40, seed=1), vectors(400)[3:4]])  # the last query has 9 exact matches
    for n, engine in ((200, "numpy"), (400, "faiss-flat" if HAS_FAISS else "numpy")):
        gallery = vectors(n)
        index = ix.VectorIndex(gallery, metric)
        assert index.engine == engine
        expected, expected_d = brute_force(queries, gallery, 12, metric)
        found, found_d = index.search(queries, 12)
        np.testing.assert_array_equal(found, expected)
        np.testing.assert_allclose(found_d, expected_d, rtol=1e-6, atol=1e-6)
        one, one_d = nearest_vectors(queries[-1], gallery, 12, metric)  # the function callers already use
        np.testing.assert_array_equal(one, expected[-1])
        np.testing.assert_array_equal(one_d, found_d[-1])
        # Leaving out: the query's copies (distance ~0), each query's own row, given rows.
        alone, alone_d = index.search(queries[-1], 5, exclude_self=True)
        assert 3 not in alone[0] and alone_d[0, 0] > 1e-3
        own, _ = index.search(gallery[:50], 3, own=np.arange(50))
        assert not (own == np.arange(50)[:, None]).any()
        kept, _ = index.search(queries, 12, leave_out=expected[:, 0])
        assert not np.isin(kept, expected[:, 0]).any()


def test_smallest_is_the_start_of_a_stable_sort():
    values = np.random.default_rng(2).integers(0, 6, size=(9, 300)).astype(np.float32)  # many ties
    for k in (1, 7, 40, 300):
        np.testing.assert_array_equal(ix.smallest(values, k), np.argsort(values, axis=1, kind="stable")[:, :k])


@pytest.mark.skipif(not HAS_FAISS, reason="faiss is not installed")
def test_approximate_index_only_where_it_finds_the_neighbours(monkeypatch):
    monkeypatch.setattr(ix, "FAISS_THRESHOLD", 100)
    monkeypatch.setattr(ix, "APPROXIMATE_THRESHOLD", 1000)
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((60, 16)).astype(np.float32) * 4
    clustered = centres[rng.integers(0, 60, 3000)] + rng.standard_normal((3000, 16)).astype(np.float32) * 0.3
    index = ix.VectorIndex(clustered, "euclidean")
    assert index.engine == "faiss-ivf" and index.recall >= ix.APPROXIMATE_RECALL and index.nprobe >= 1
    queries = clustered[:200] + 0.01
    expected, expected_d = brute_force(queries, clustered, 10, "euclidean")
    found, found_d = index.search(queries, 10)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, expected)]) >= 0.9
    hit = found == expected
    np.testing.assert_allclose(found_d[hit], expected_d[hit], rtol=1e-6)  # distances are exact, not the index's
    noise = rng.standard_normal((3000, 64)).astype(np.float32)  # no clusters: an IVF index would miss neighbours
    assert ix.VectorIndex(noise, "euclidean").engine == "faiss-flat"


def test_without_faiss_search_and_saved_indexes_use_numpy(monkeypatch, tmp_path):
    monkeypatch.setattr(ix, "FAISS_THRESHOLD", 10)
    monkeypatch.setattr(ix, "_faiss", lambda: None)
    gallery = vectors(100)
    index = ix.VectorIndex(gallery, "cosine", engine="faiss-flat")
    assert index.engine == "numpy"
    expected, _ = brute_force(gallery[:5], gallery, 4, "cosine")
    np.testing.assert_array_equal(index.search(gallery[:5], 4)[0], expected)
    index.save(tmp_path / "g.faiss", names=[str(i) for i in range(100)])
    loaded, facts = ix.VectorIndex.load(tmp_path / "g.faiss")
    assert facts["engine"] == "numpy" and facts["names"][7] == "7"
    np.testing.assert_array_equal(loaded.search(gallery[:5], 4)[0], expected)
