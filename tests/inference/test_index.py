"""siamese_core.inference.index: every engine answers as the brute force does; a saved index round-trips through
embed -> similar -g; another model's index is refused; a large folder's embedding resumes from its shards."""

import json
import os
import shutil
import time

import numpy as np
import pytest
import torch

from conftest import ROOT, write_class_folders
from siamese_core.inference import index as ix
from siamese_core.cli import main
from siamese_core.errors import UserError
from siamese_core.inference.model import SiameseModel, embed_folder, nearest_vectors

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
def test_approximate_index_only_where_it_finds_the_neighbours(monkeypatch, tmp_path):
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
    index.save(tmp_path / "ivf.faiss")
    loaded, facts = ix.VectorIndex.load(tmp_path / "ivf.faiss")
    assert facts["engine"] == loaded.engine == "faiss-ivf" and loaded.nprobe == index.nprobe
    np.testing.assert_array_equal(loaded.search(queries, 10)[0], found)
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


# ---------------------------------------------------------------- embed --index, similar -g INDEX

@pytest.fixture(scope="module")
def small_folder(tmp_path_factory):
    return write_class_folders(tmp_path_factory.mktemp("gallery") / "digits", classes=range(4), per_class=10)


def cli(capsys, *args):
    """python -m siamese_core ARGS, in this process: (exit status, stdout, last line of stderr)."""
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, (err.strip().splitlines() or [""])[-1]


def test_a_saved_index_answers_as_its_folder_does(tmp_path, capsys, digits_checkpoint, small_folder):
    out, saved = tmp_path / "vectors.npz", tmp_path / "gallery.faiss"
    status, printed, _ = cli(capsys, "embed", "-c", digits_checkpoint, "-i", small_folder, "-o", out, "--index", saved)
    assert status == 0 and "Embedded 40 images" in printed
    assert set(np.load(out)) == {"paths", "labels", "vectors"} and not (tmp_path / "vectors.npz.shards").exists()
    facts = json.loads((tmp_path / "gallery.faiss.json").read_text())
    assert facts["metric"] == "euclidean" and facts["count"] == 40 and len(facts["checkpoint_sha256"]) == 64
    assert facts["engine"] == ("faiss-flat" if HAS_FAISS else "numpy")

    query = sorted((small_folder / "digit_2").glob("*.png"))[0]
    answers = []
    for gallery in (saved, small_folder):
        status, printed, _ = cli(capsys, "similar", "-c", digits_checkpoint, query, "-g", gallery, "-k", 6, "--json")
        assert status == 0
        answers.append(json.loads(printed))
    from_index, from_folder = answers
    assert from_index["left_out_as_the_query"] == from_folder["left_out_as_the_query"] == 1
    assert [m["name"] for m in from_index["matches"]] == [m["name"] for m in from_folder["matches"]]
    assert [m["label"] for m in from_index["matches"]] == [m["label"] for m in from_folder["matches"]]
    np.testing.assert_allclose([m["distance"] for m in from_index["matches"]],
                               [m["distance"] for m in from_folder["matches"]], rtol=1e-4, atol=1e-5)

    # Another model's index is refused in one sentence: vectors of another size, or another checkpoint file.
    status, _, said = cli(capsys, "similar", "-c", ROOT / "assets" / "demo" / "digits-convnet.pt", query, "-g", saved)
    assert status == 2 and said.startswith("error: 'gallery.faiss' holds vectors of") and "another model" in said
    retrained = tmp_path / "retrained.pt"
    checkpoint = torch.load(digits_checkpoint, map_location="cpu", weights_only=False)
    torch.save({**checkpoint, "note": "saved again"}, retrained)
    status, _, said = cli(capsys, "similar", "-c", retrained, query, "-g", saved)
    assert status == 2 and "was written with another checkpoint" in said and "Traceback" not in said
    (tmp_path / "gallery.faiss").write_bytes(b"not an index")
    status, _, said = cli(capsys, "similar", "-c", digits_checkpoint, query, "-g", saved)
    assert status == 2 and "does not match its sidecar" in said


def test_a_large_folder_is_embedded_in_shards_and_resumes(tmp_path, digits_checkpoint, small_folder):
    folder = tmp_path / "digits"
    shutil.copytree(small_folder, folder)
    (folder / "digit_1" / "broken.png").write_text("not an image")  # skipped, not fatal
    model = SiameseModel.load(digits_checkpoint, "cpu")
    shards = tmp_path / "vectors.npz.shards"

    assert embed_folder(model, folder, shards, shard_images=16, model_id="m1", stop_after_shards=1) is None
    assert sorted(p.name for p in shards.glob("shard-*.npz")) == ["shard-00000.npz"]
    first_shard = (shards / "shard-00000.npz").stat().st_mtime_ns

    resumed = embed_folder(model, folder, shards, shard_images=16, model_id="m1")
    assert resumed.reused == 16 and (shards / "shard-00000.npz").stat().st_mtime_ns == first_shard
    assert len(resumed.names) == 40 and [name for name, _ in resumed.skipped] == [os.path.join("digit_1", "broken.png")]
    in_one_go = embed_folder(model, folder, workers=0)  # no shards, no worker processes
    assert resumed.names == in_one_go.names and resumed.labels == in_one_go.labels
    # the same vectors up to float rounding, which differs with how many images share a batch
    np.testing.assert_allclose(resumed.vectors, in_one_go.vectors, rtol=1e-5, atol=1e-5)
    assert embed_folder(model, folder, shards, shard_images=16, model_id="another").reused == 0  # not its shards


# ---------------------------------------------------------------- hostile index files (issue 24, items 6 and 7)

def saved_index(tmp_path, engine="faiss-flat", n=200, dim=8, name="g.faiss"):
    index = ix.VectorIndex(vectors(n, dim), "euclidean", engine)
    index.save(tmp_path / name, names=[str(i) for i in range(n)])
    return tmp_path / name


def forge(path, data: bytes, **sidecar):
    """Replace an index file by `data`, its sidecar saying it is what `save` wrote (size and checksum matching):
    only the file's own content can give it away."""
    import hashlib

    path.write_bytes(data)
    facts = json.loads(ix.sidecar_path(path).read_text())
    facts.update(index_bytes=len(data), index_sha256=hashlib.sha256(data).hexdigest(), **sidecar)
    ix.sidecar_path(path).write_text(json.dumps(facts))


@pytest.mark.skipif(not HAS_FAISS, reason="faiss is not installed")
@pytest.mark.parametrize("field, offset", [("a flat index's vector length", 37), ("its count", 8)])
def test_a_crafted_size_field_is_refused_before_faiss_allocates(tmp_path, field, offset):
    import resource
    import struct

    path = saved_index(tmp_path)
    data = bytearray(path.read_bytes())
    data[offset:offset + 8] = struct.pack("<Q", 2**39)  # 2 TB of vectors, in a file of 6 KB
    forge(path, bytes(data))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with pytest.raises(UserError, match="'g.faiss' is not an index this app can read") as caught:
        ix.VectorIndex.load(path)
    assert time.perf_counter() - started < 1 and "write it again with `embed --index`" in str(caught.value)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 100_000  # KB: nothing allocated


@pytest.mark.skipif(not HAS_FAISS, reason="faiss is not installed")
def test_an_ivf_index_with_a_wrong_code_size_or_a_flipped_bit_is_refused(tmp_path):
    rng = np.random.default_rng(5)
    centres = rng.standard_normal((40, 8)).astype(np.float32) * 4  # clusters: an IVF index finds the neighbours
    clustered = centres[rng.integers(0, 40, 2000)] + rng.standard_normal((2000, 8)).astype(np.float32) * 0.3
    path = tmp_path / "ivf.faiss"
    ix.VectorIndex(clustered, "euclidean", "faiss-ivf").save(path)
    assert json.loads(ix.sidecar_path(path).read_text())["engine"] == "faiss-ivf"
    good = path.read_bytes()
    assert ix.VectorIndex.load(path)[0].engine == "faiss-ivf"

    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0x10  # one bit of one vector: FAISS would read it without a word
    path.write_bytes(bytes(flipped))
    with pytest.raises(UserError, match="does not match its sidecar .its content changed"):
        ix.VectorIndex.load(path)

    code_size = good.index(b"ilar") + 12  # the lists' code size, behind their fourcc and list count
    crafted = bytearray(good)
    crafted[code_size:code_size + 8] = (2**40).to_bytes(8, "little")
    forge(path, bytes(crafted))
    with pytest.raises(UserError, match="not kept the way this app writes them"):
        ix.VectorIndex.load(path)


FOREIGN = {
    "HNSW": lambda faiss: faiss.IndexHNSWFlat(8, 8),
    "IDMap": lambda faiss: faiss.IndexIDMap(faiss.IndexFlatL2(8)),
    "LSH": lambda faiss: faiss.IndexLSH(8, 16),
    "PQ": lambda faiss: faiss.IndexPQ(8, 2, 4),
    "SQ8": lambda faiss: faiss.IndexScalarQuantizer(8, faiss.ScalarQuantizer.QT_8bit),
    "PreTransform": lambda faiss: faiss.index_factory(8, "PCA4,Flat"),
}


@pytest.mark.skipif(not HAS_FAISS, reason="faiss is not installed")
@pytest.mark.parametrize("kind", list(FOREIGN))
def test_other_kinds_of_faiss_index_are_one_sentence_from_the_command_line(tmp_path, capsys, kind,
                                                                          digits_checkpoint, small_folder):
    faiss = ix._faiss()
    x = vectors(300, 8)
    foreign = FOREIGN[kind](faiss)
    foreign.train(x)
    foreign.add_with_ids(x, np.arange(300)) if kind == "IDMap" else foreign.add(x)
    path = saved_index(tmp_path, n=300)
    forge(path, faiss.serialize_index(foreign).tobytes())
    query = sorted((small_folder / "digit_2").glob("*.png"))[0]
    status, _, said = cli(capsys, "similar", "-c", digits_checkpoint, query, "-g", path)
    assert status == 2 and "another kind of FAISS index than the flat and IVF-Flat ones" in said, said
    assert "make_direct_map" not in said and "Error" not in said


def test_a_sidecar_nested_200000_levels_is_a_sentence(tmp_path, capsys, digits_checkpoint, small_folder):
    path = saved_index(tmp_path, engine="numpy")
    ix.sidecar_path(path).write_text("[" * 200_000 + "]" * 200_000)
    query = sorted((small_folder / "digit_2").glob("*.png"))[0]
    status, _, said = cli(capsys, "similar", "-c", digits_checkpoint, query, "-g", path)
    assert status == 2 and "has no readable sidecar" in said


def test_a_numpy_index_whose_header_claims_a_huge_shape_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(ix, "_faiss", lambda: None)  # where faiss is missing, an index is an .npy file
    path = saved_index(tmp_path, engine="numpy", name="g.npy")
    data = path.read_bytes()
    header = data[:128]
    assert b"(200, 8), }" in header
    # 900 million rows (29 GB), the header's length kept: numpy would allocate them before reading a row
    forge(path, data.replace(b"(200, 8), }      ", b"(900000000, 8), }", 1), count=900_000_000)
    started = time.perf_counter()
    with pytest.raises(UserError, match="'g.npy' is not an index this app can read"):
        ix.VectorIndex.load(path)
    assert time.perf_counter() - started < 1
