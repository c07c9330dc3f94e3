"""Sources, splits and samplers."""

import gzip
import logging

import numpy as np
import pytest
from PIL import Image

from conftest import write_class_folders
from siamese_core.data import sources as D
from siamese_core.config import TrainConfig
from siamese_core.errors import UserError
from siamese_core.data.prepare import prepare_data


# ---------------------------------------------------------------- class folders

def test_class_folders_read_every_common_format(tmp_path):
    formats = ("png", "jpg", "bmp", "gif", "tif", "webp", "pgm")
    root = write_class_folders(tmp_path / "d", classes=range(3), per_class=7, formats=formats)
    image_set = D.load_class_folders(root, 28, 1)
    assert len(image_set) == 21
    assert image_set.classes == ["digit_0", "digit_1", "digit_2"]
    assert image_set.class_counts() == {"digit_0": 7, "digit_1": 7, "digit_2": 7}
    assert {n.rsplit(".", 1)[1] for n in image_set.names} == set(formats)
    assert image_set.pixels.shape == (21, 1, 28, 28)


def test_colour_conversion_and_resizing(tmp_path):
    root = write_class_folders(tmp_path / "d", classes=range(2), per_class=3)
    image_set = D.load_class_folders(root, 40, 3)
    assert image_set.pixels.shape == (6, 3, 40, 40)


def test_unreadable_files_are_skipped_with_a_warning(tmp_path, caplog):
    root = write_class_folders(tmp_path / "d", classes=range(2), per_class=3)
    (root / "digit_0" / "broken.png").write_bytes(b"not really a png")
    with caplog.at_level(logging.WARNING):
        image_set = D.load_class_folders(root, 28, 1)
    assert len(image_set) == 6
    assert image_set.skipped and "broken.png" in image_set.skipped[0][0]
    assert "Skipped 1 file" in caplog.text


def test_missing_or_empty_folders_are_refused(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        D.load_class_folders(tmp_path / "nowhere", 28, 1)
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(UserError, match="No images"):
        D.load_class_folders(tmp_path / "empty", 28, 1)
    flat = tmp_path / "flat"
    flat.mkdir()
    Image.new("L", (20, 20)).save(flat / "x.png")
    with pytest.raises(UserError, match="sub-folder per class"):
        D.load_class_folders(flat, 28, 1)


def test_one_class_and_one_image_classes_cannot_train(tmp_path):
    one_class = D.load_class_folders(write_class_folders(tmp_path / "one", classes=[3], per_class=5), 28, 1)
    with pytest.raises(UserError, match="only one class"):
        D.check_trainable(one_class)
    lonely = write_class_folders(tmp_path / "lonely", classes=range(3), per_class=4)
    for extra in list((lonely / "digit_2").iterdir())[1:]:
        extra.unlink()
    with pytest.raises(UserError, match="'digit_2' has only one image"):
        D.check_trainable(D.load_class_folders(lonely, 28, 1))


# ---------------------------------------------------------------- MNIST from IDX files

def write_idx(path, array, compress):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    (gzip.open if compress else open)(path, "wb").write(payload)


@pytest.mark.parametrize("compress", [True, False])
def test_mnist_reads_original_idx_files(tmp_path, compress):
    digits = D.load_digits(28, 1)
    images, labels = digits.pixels[:50, 0].numpy(), digits.labels[:50]
    suffix = ".gz" if compress else ""
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images, compress)
    write_idx(tmp_path / f"t10k-labels-idx1-ubyte{suffix}", labels, compress)
    assert D.mnist_parts_available(tmp_path) == ["test"]
    mnist = D.load_mnist(tmp_path, "test")
    assert np.array_equal(mnist.pixels[:, 0].numpy(), images)
    assert np.array_equal(mnist.labels, labels)


def test_mnist_with_only_test_files_is_split_for_training(tmp_path):
    digits = D.load_digits(28, 1)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", digits.pixels[:400, 0].numpy(), True)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", digits.labels[:400], True)
    config = TrainConfig(dataset="mnist", backbone="convnet", data_root=str(tmp_path)).resolve()
    prepared = prepare_data(config)
    assert len(prepared.train) + len(prepared.val) == 400
    assert any("Only the MNIST test files" in n for n in config.notes)


def test_truncated_idx_file_is_refused(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte"
    write_idx(path, np.zeros((10, 28, 28)), False)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UserError, match="truncated"):
        D.read_idx(path)


def test_missing_mnist_without_network_says_what_to_do(tmp_path):
    try:
        D.load_mnist(tmp_path, "test")
    except UserError as exc:  # offline: the message names the files to put there
        assert "t10k-images-idx3-ubyte.gz" in str(exc) and "--dataset digits" in str(exc)
    else:  # online: torchvision downloaded the real files
        assert D.mnist_parts_available(tmp_path) == ["test"]


# ---------------------------------------------------------------- triplet CSV

def write_triplets(tmp_path, header="Anchor,Negative,Positive", named_by_identity=True, rows=40):
    digits = D.load_digits(28, 1)
    images = tmp_path / "images"
    images.mkdir()
    names = {}
    for i in range(120):
        label = int(digits.labels[i])
        name = f"{label:04d}_c1s1_{i:06d}_01.png" if named_by_identity else f"img{i}.png"
        Image.fromarray(digits.pixels[i, 0].numpy()).save(images / name)
        names.setdefault(label, []).append(name)
    rng = np.random.default_rng(0)
    lines = [header]
    for _ in range(rows):
        a, n = rng.choice(10, 2, replace=False)
        anchor, positive = rng.choice(names[a], 2, replace=False)
        negative = rng.choice(names[n])
        cells = {"anchor": anchor, "positive": positive, "negative": negative}
        lines.append(",".join(cells[c.strip().lower()] for c in header.split(",")))
    csv = tmp_path / "train.csv"
    csv.write_text("\n".join(lines) + "\n")
    return csv, images


@pytest.mark.parametrize("header", ["Anchor,Negative,Positive", "positive,ANCHOR,negative"])
def test_triplet_csv_columns_in_any_order_and_case(tmp_path, header):
    csv, images = write_triplets(tmp_path, header)
    image_set = D.load_triplet_csv(csv, images, 28, 1, r"^(\d+)_")
    assert image_set.triplets.shape == (40, 3)
    a, p, n = image_set.triplets.T
    assert (image_set.labels[a] == image_set.labels[p]).all()
    assert (image_set.labels[a] != image_set.labels[n]).all()


def test_triplet_csv_missing_column_is_refused(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("Anchor,Positive\na.png,b.png\n")
    with pytest.raises(UserError, match="missing: Negative"):
        D.load_triplet_csv(csv, tmp_path, 28, 1)


def test_triplets_split_by_identity_keep_validation_people_unseen(tmp_path):
    csv, images = write_triplets(tmp_path, rows=200)
    config = TrainConfig(dataset="triplets", triplets=str(csv), images=str(images), backbone="convnet").resolve()
    prepared = prepare_data(config)
    train_ids = {prepared.train.classes[i] for i in prepared.train.labels}
    val_ids = {prepared.val.classes[i] for i in prepared.val.labels}
    assert train_ids and val_ids and not train_ids & val_ids
    assert len(prepared.train.triplets) > 0
    assert not config.notes  # no warning: identities were read


def test_triplets_without_identity_split_by_row_with_a_warning(tmp_path):
    csv, images = write_triplets(tmp_path, named_by_identity=False)
    config = TrainConfig(dataset="triplets", triplets=str(csv), images=str(images), backbone="convnet").resolve()
    prepared = prepare_data(config)
    assert len(prepared.train.triplets) + len(prepared.val.triplets) == 40
    assert any("split by row" in n for n in config.notes)


# ---------------------------------------------------------------- splits

def test_split_by_class_holds_out_whole_classes():
    digits = D.load_digits(28, 1)
    train, val = D.split_by_class(digits, 0.3, seed=1)
    assert not set(np.unique(train.labels)) & set(np.unique(val.labels))
    assert len(np.unique(val.labels)) == 3 and len(train) + len(val) == len(digits)


def test_split_by_image_keeps_every_class_on_both_sides():
    digits = D.load_digits(28, 1)
    train, val = D.split_by_image(digits, 0.3, seed=1)
    assert set(np.unique(train.labels)) == set(np.unique(val.labels)) == set(range(10))
    assert abs(len(val) / len(digits) - 0.3) < 0.02


# ---------------------------------------------------------------- samplers

def test_training_pairs_are_balanced_and_fresh_each_draw():
    labels = np.repeat(np.arange(5), [2, 3, 10, 40, 5])
    rng = np.random.default_rng(0)
    a, b, same = D.sample_pairs(labels, 2000, rng)
    assert same.mean() == 0.5
    assert np.array_equal(labels[a] == labels[b], same == 1)
    assert (a != b).all()
    a2, _, _ = D.sample_pairs(labels, 2000, rng)
    assert not np.array_equal(a, a2)


def test_evaluation_pairs_are_fixed_by_seed_and_each_counted_once():
    labels = D.load_digits(28, 1).labels
    first = D.evaluation_pairs(labels, 600, seed=3)
    again = D.evaluation_pairs(labels, 600, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip(first, again))
    a, b, same = first
    unordered = {(min(i, j), max(i, j)) for i, j in zip(a, b)}
    assert len(unordered) == len(a) == 600
    assert same.sum() == 300


def test_evaluation_pairs_stop_at_what_a_small_set_can_make():
    labels = np.array([0, 0, 1, 1])  # two 'same' pairs and four 'different' pairs exist
    a, b, same = D.evaluation_pairs(labels, 100, seed=0)
    assert same.sum() == 2 and (same == 0).sum() == 2  # balanced: as many different pairs as same


def test_sequential_pairs():
    labels = np.array([1, 1, 2, 3, 4, 4, 5])
    a, b, same = D.sequential_pairs(labels)
    assert a.tolist() == [0, 2, 4] and b.tolist() == [1, 3, 5]
    assert same.tolist() == [1, 0, 1]


def test_sampled_triplets_and_pk_batches():
    labels = np.repeat(np.arange(8), 6)
    rng = np.random.default_rng(0)
    t = D.sample_triplets(labels, 500, rng)
    assert (labels[t[:, 0]] == labels[t[:, 1]]).all() and (labels[t[:, 0]] != labels[t[:, 2]]).all()
    assert (t[:, 0] != t[:, 1]).all()
    for batch in D.pk_batches(labels, 32, 3, rng):
        counts = np.bincount(labels[batch])
        assert len(batch) == 32 and set(counts[counts > 0]) == {4}


def test_identities_seen_once_as_negatives_do_not_block_training(tmp_path):
    """As in Market-1501's triplets: some people appear in one photo only, always as a negative."""
    csv, images = write_triplets(tmp_path, rows=200)
    Image.fromarray(D.load_digits(28, 1).pixels[500, 0].numpy()).save(images / "9999_c1s1_000001_01.png")
    anchor, positive = sorted(p.name for p in images.glob("0001_*"))[:2]
    with open(csv, "a") as fh:
        fh.write(f"{anchor},9999_c1s1_000001_01.png,{positive}\n")  # header order: Anchor,Negative,Positive
    config = TrainConfig(dataset="triplets", triplets=str(csv), images=str(images), backbone="convnet").resolve()
    prepared = prepare_data(config)
    assert len(prepared.train.triplets) > 0 and len(prepared.val_pairs[0]) > 0
