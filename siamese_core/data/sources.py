"""Image sources, splits, and the pair and triplet samplers.

Every source becomes an ImageSet: images decoded once into a uint8 tensor at the
model's size (kept in memory when it fits), with integer labels and the name of
each image. Samplers work on label arrays with numpy, so drawing 100,000 pairs
costs milliseconds, not a Python loop over items.
"""

from __future__ import annotations

import functools
import gzip
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from PIL import Image
from sklearn.datasets import load_digits as sklearn_digits

from .. import settings
from ..config import image_hw
from ..errors import UserError
from ..words import short_name
from .images import is_image_file
from .paths import class_folder_files, inside
from .pipelines import load_pixels, to_pixels
from .tables import identities, read_csv_columns, read_csv_table  # noqa: F401 - importable from here too
from .uploads import class_split_problem

log = logging.getLogger(__name__)



class LazyPixels:
    """Decodes images per batch from their files, for sets too large to hold in memory."""

    def __init__(self, paths: Sequence[str], size, channels: int, pipeline: str = "resize"):
        self.paths = list(paths)
        self.size = size  # a whole number (a square) or (height, width)
        self.channels = channels
        self.pipeline = pipeline

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index) -> torch.Tensor:
        index = np.atleast_1d(np.asarray(index))
        return torch.from_numpy(np.stack([load_pixels(self.paths[i], self.size, self.channels, self.pipeline)
                                          for i in index]))


@dataclass
class ImageSet:
    """Images with labels: `pixels[i]` is uint8 (C, H, W); `labels[i]` is -1 when unknown."""

    pixels: object  # torch.Tensor (N, C, H, W) uint8, or LazyPixels
    labels: np.ndarray
    classes: list
    names: list
    triplets: Optional[np.ndarray] = None  # (T, 3) anchor, positive, negative positions
    skipped: list = field(default_factory=list)  # (name, reason) of files that could not be read

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_hw(self) -> tuple:
        """(height, width) of its images."""
        if isinstance(self.pixels, LazyPixels):
            return image_hw(self.pixels.size)
        return int(self.pixels.shape[-2]), int(self.pixels.shape[-1])

    @property
    def image_size(self) -> int:
        """The longer side of its images (a square's side)."""
        return max(self.image_hw)

    @property
    def has_labels(self) -> bool:
        return len(self.labels) > 0 and bool((self.labels >= 0).all())

    def batch(self, index) -> torch.Tensor:
        """uint8 images at these positions, shape (B, C, H, W)."""
        index = np.asarray(index, dtype=np.int64)
        if isinstance(self.pixels, torch.Tensor):
            return self.pixels[torch.from_numpy(index)]
        return self.pixels[index]

    def class_counts(self) -> dict:
        counts = np.bincount(self.labels[self.labels >= 0], minlength=len(self.classes))
        return {name: int(n) for name, n in zip(self.classes, counts) if n > 0}

    def subset(self, positions) -> "ImageSet":
        """A view on some of the images; triplets are kept when all three images are in it."""
        positions = np.asarray(positions, dtype=np.int64)
        if isinstance(self.pixels, torch.Tensor):
            pixels = self.pixels[torch.from_numpy(positions)]
        else:
            pixels = LazyPixels([self.pixels.paths[i] for i in positions], self.pixels.size, self.pixels.channels,
                                self.pixels.pipeline)
        triplets = None
        if self.triplets is not None:
            new_position = np.full(len(self), -1, dtype=np.int64)
            new_position[positions] = np.arange(len(positions))
            mapped = new_position[self.triplets]
            triplets = mapped[(mapped >= 0).all(axis=1)]
        return ImageSet(pixels, self.labels[positions], self.classes, [self.names[i] for i in positions], triplets)


def decode_files(paths: Sequence[Path], size, channels: int, pipeline: str = "resize"):
    """Decode files in parallel threads (Pillow releases the GIL), each prepared by the input `pipeline`
    at `size` (a whole number for a square, or (height, width)).

    Returns (pixels, kept, skipped)."""
    height, width = image_hw(size)
    # Decoded images are kept in memory up to SIAMESE_IMAGE_MEMORY_GB; beyond it they are decoded per batch.
    if len(paths) * channels * height * width > settings.image_memory_bytes():
        log.warning("%d images at %dx%d px do not fit in memory; they will be decoded per batch.", len(paths), height,
                    width)
        readable, skipped = [], []
        for p in paths:  # open each once so unreadable files are found now, not mid-training
            try:
                load_pixels(p, 8, 1)
                readable.append(p)
            except UserError as exc:
                skipped.append((str(p), str(exc)))
        return LazyPixels([str(p) for p in readable], size, channels, pipeline), readable, skipped

    def decode(path):
        try:
            return load_pixels(path, size, channels, pipeline), None
        except UserError as exc:
            return None, str(exc)

    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        results = list(pool.map(decode, paths))
    kept = [p for p, (arr, _) in zip(paths, results) if arr is not None]
    skipped = [(str(p), err) for p, (arr, err) in zip(paths, results) if arr is None]
    if not kept:
        return torch.zeros((0, channels, height, width), dtype=torch.uint8), kept, skipped
    return torch.from_numpy(np.stack([arr for arr, _ in results if arr is not None])), kept, skipped


def _report_skipped(skipped) -> None:
    if skipped:
        shown = "; ".join(f"{name}: {why}" for name, why in skipped[:3])
        more = f" (and {len(skipped) - 3} more)" if len(skipped) > 3 else ""
        log.warning("Skipped %d file(s) that are not readable images: %s%s", len(skipped), shown, more)


# ---------------------------------------------------------------- sources

def load_class_folders(root, size, channels: int, pipeline: str = "resize") -> ImageSet:
    """One sub-folder per class under `root`; images anywhere below a class folder belong to it."""
    root = Path(root)
    if not root.exists():
        raise UserError(f"The folder '{root}' does not exist: check the path.")
    if not root.is_dir():
        raise UserError(f"'{root}' is a file, not a folder: give a folder with one sub-folder per class.")
    files, labels, classes = [], [], []
    found_classes, left_out = class_folder_files(root)
    for name, found in found_classes:
        labels += [len(classes)] * len(found)
        files += found
        classes.append(name)
    if not files:
        loose = [p for p in root.iterdir() if p.is_file() and is_image_file(p)]
        hint = (" It holds images directly: put them into one sub-folder per class." if loose
                else f" Its {left_out} images are links leading outside the data root, which are not read." if left_out
                else " Expected one sub-folder per class, each holding images (png, jpg, bmp, gif, tiff, webp, pgm).")
        raise UserError(f"No images found in class folders under '{root}'.{hint}")
    pixels, kept, skipped = decode_files(files, size, channels, pipeline)
    _report_skipped(skipped)
    if not kept:
        raise UserError(f"None of the {len(files)} files under '{root}' could be read as an image.")
    label_of = dict(zip(files, labels))
    kept_labels = np.array([label_of[p] for p in kept], dtype=np.int64)
    names = [str(p.relative_to(root)) for p in kept]
    image_set = ImageSet(pixels, kept_labels, classes, names, skipped=skipped)
    return _drop_empty_classes(image_set)


def folder_images(folder) -> tuple[list, list, list]:
    """(files, names, class names) of the images load_image_folder reads, in its order, not decoded:
    class folders when there are any (the class is the folder's name), else the images directly in the
    folder (class "")."""
    root = Path(folder)
    if not root.is_dir():
        raise UserError(f"The folder '{root}' does not exist: check the path.")
    if _has_class_folders(root):
        found, _ = class_folder_files(root)
        files = [p for _, members in found for p in members]
        if not files:
            raise UserError(f"No images found in class folders under '{root}'. Expected one sub-folder per class, "
                            "each holding images (png, jpg, bmp, gif, tiff, webp, pgm).")
        return files, [str(p.relative_to(root)) for p in files], [c for c, members in found for _ in members]
    files = sorted(p for p in root.iterdir() if p.is_file() and is_image_file(p))
    if not files:
        raise UserError(f"No images found in '{root}'.")
    return files, [p.name for p in files], [""] * len(files)


def _has_class_folders(root: Path) -> bool:
    return any(d.is_dir() and not d.name.startswith(".") for d in root.iterdir())


def load_image_folder(folder, size, channels: int, pipeline: str = "resize") -> ImageSet:
    """Class folders when there are any (labels known), else the images directly in the folder (no labels)."""
    root = Path(folder)
    if root.is_dir() and _has_class_folders(root):
        return load_class_folders(root, size, channels, pipeline)  # its messages say more about class folders
    files, _, _ = folder_images(root)
    pixels, kept, skipped = decode_files(files, size, channels, pipeline)
    _report_skipped(skipped)
    if not kept:
        raise UserError(f"None of the files in '{root}' could be read as an image.")
    return ImageSet(pixels, np.full(len(kept), -1, dtype=np.int64), [], [p.name for p in kept], skipped=skipped)


def _drop_empty_classes(image_set: ImageSet) -> ImageSet:
    present = np.unique(image_set.labels)
    if len(present) == len(image_set.classes):
        return image_set
    remap = np.full(len(image_set.classes), -1, dtype=np.int64)
    remap[present] = np.arange(len(present))
    image_set.labels = remap[image_set.labels]
    image_set.classes = [image_set.classes[i] for i in present]
    return image_set


DIGITS_COUNT = 1797  # scikit-learn's handwritten digits


def load_digits(size=28, channels: int = 1, pipeline: str = "resize") -> ImageSet:
    """scikit-learn's 1,797 real handwritten 8x8 digits: the offline default everywhere."""
    pixels, labels = _digits_pixels(image_hw(size), channels, pipeline)  # a tuple: cached by value
    names = [f"digits/{label}/{i:04d}.png" for i, label in enumerate(labels)]
    return ImageSet(torch.from_numpy(pixels.copy()), labels.copy(), [str(d) for d in range(10)], names)


DIGITS_CACHED_BYTES = 128 * 2**20  # prepared digits kept for the process up to this size (128 px RGB: 88 MB)


def _digits_pixels(size: tuple, channels: int, pipeline: str):
    """The built-in digits prepared at (height, width), kept once per process when small (the digit pipeline takes
    seconds for all of them); larger ones are prepared per call, not kept for good."""
    if DIGITS_COUNT * channels * size[0] * size[1] <= DIGITS_CACHED_BYTES:
        return _digits_pixels_kept(size, channels, pipeline)
    return _prepare_digits(size, channels, pipeline)


@functools.lru_cache(maxsize=4)
def _digits_pixels_kept(size: tuple, channels: int, pipeline: str):
    return _prepare_digits(size, channels, pipeline)


def _prepare_digits(size: tuple, channels: int, pipeline: str):
    digits = sklearn_digits()
    grey = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)
    pixels = np.stack([to_pixels(Image.fromarray(img), size, channels, pipeline) for img in grey])
    return pixels, digits.target.astype(np.int64)


MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _find_idx(root: Path, stem: str) -> Optional[Path]:
    for folder in (root, root / "MNIST" / "raw", root / "raw"):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the original MNIST format), gzip-compressed or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            data = fh.read()
    except (OSError, EOFError) as exc:
        raise UserError(f"'{path}' could not be read as an IDX file ({exc}).") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise UserError(f"'{path}' is not an IDX file of unsigned bytes (the MNIST format).")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(shape)):
        raise UserError(f"'{path}' is truncated: expected {int(np.prod(shape))} values, found {body.size}.")
    return body.reshape(shape)


def mnist_parts_available(root) -> list:
    root = Path(root)
    return [part for part, stems in MNIST_FILES.items() if all(_find_idx(root, s) for s in stems)]


def load_mnist(root, part: str, size=28, channels: int = 1, pipeline: str = "resize") -> ImageSet:
    """MNIST `part` ('train' or 'test') from IDX files in `root`, downloading them when the network allows."""
    root = Path(root)
    if part not in mnist_parts_available(root):
        try:
            from torchvision.datasets import MNIST

            MNIST(str(root), train=(part == "train"), download=True)
        except Exception as exc:  # no network, or a mirror down: say what to do instead
            raise UserError(
                f"The MNIST {part} files are not in '{root}' and could not be downloaded ({type(exc).__name__}). "
                f"Put {MNIST_FILES[part][0]}.gz and {MNIST_FILES[part][1]}.gz there (the original IDX files), "
                "or use --dataset digits, which needs no files."
            ) from None
    images = read_idx(_find_idx(root, MNIST_FILES[part][0]))
    labels = read_idx(_find_idx(root, MNIST_FILES[part][1])).astype(np.int64)
    if len(images) != len(labels):
        raise UserError(f"The MNIST {part} images and labels in '{root}' do not match in number.")
    if image_hw(size) == (28, 28) and channels == 1 and pipeline == "resize":
        pixels = torch.from_numpy(images[:, None].copy())
    else:
            pixels = torch.from_numpy(np.stack([to_pixels(Image.fromarray(img), size, channels, pipeline)
                                            for img in images]))
    names = [f"mnist-{part}/{label}/{i:05d}.png" for i, label in enumerate(labels)]
    return ImageSet(pixels, labels, [str(d) for d in range(10)], names)


def load_triplet_csv(csv_path, images_dir, size, channels: int,
                     identity_pattern: Optional[str] = None, pipeline: str = "resize") -> ImageSet:
    """A CSV with columns Anchor, Positive, Negative (any order, any case) naming files under `images_dir`.

    Labels come from `identity_pattern` (a regex whose first group is the identity, matched on
    the file's name) when every file matches it; otherwise labels are unknown (-1).
    """
    csv_path = Path(csv_path)
    images_dir = Path(images_dir) if images_dir else csv_path.parent
    if not images_dir.is_dir():
        raise UserError(f"The images folder '{images_dir}' does not exist: give it with --images DIR.")
    table, columns = read_csv_columns(csv_path, ("Anchor", "Positive", "Negative"), "triplet file")
    rows = table[[columns["anchor"], columns["positive"], columns["negative"]]].to_numpy()
    rows = np.char.strip(rows.astype(str))
    if len(rows) == 0:
        raise UserError(f"'{csv_path}' has no rows.")
    unique = sorted(set(rows.ravel()))
    outside = {name for name in unique if not inside(images_dir, images_dir / name)}
    if outside:  # '../x', a full path or a link out: nothing is read from outside the folder named
        log.warning("Left out %d names that lead outside '%s' (e.g. '%s').", len(outside), images_dir.name,
                    short_name(min(outside)))
    paths = [images_dir / name for name in unique if name not in outside]
    pixels, kept, skipped = decode_files(paths, size, channels, pipeline)
    if skipped:
        _report_skipped(skipped)
    if not kept:
        raise UserError(f"None of the files named in '{csv_path}' could be read from '{images_dir}'.")
    position = {str(p.relative_to(images_dir)): i for i, p in enumerate(kept)}
    readable_rows = np.array([all(n in position for n in row) for row in rows])
    if not readable_rows.all():
        log.warning("Dropped %d of %d triplets naming files that are missing or unreadable.",
                    int((~readable_rows).sum()), len(rows))
    triplets = np.array([[position[n] for n in row] for row in rows[readable_rows]], dtype=np.int64).reshape(-1, 3)
    names = [str(p.relative_to(images_dir)) for p in kept]
    labels, classes = identities(names, identity_pattern)
    return ImageSet(pixels, labels, classes, names, triplets=triplets, skipped=skipped)


# ---------------------------------------------------------------- checks and splits

def check_trainable(image_set: ImageSet, what: str = "The training set") -> None:
    """Refuse, with the reason, a set a Siamese network cannot learn from."""
    if len(image_set) == 0:
        raise UserError(f"{what} has no images.")
    counts = image_set.class_counts()
    if image_set.triplets is not None:
        # The triplets say what is same and different; an identity seen once (as a negative) is fine.
        if not image_set.has_labels:
            if len(image_set.triplets) == 0:
                raise UserError(f"{what} has no complete triplets (anchor, positive, negative).")
        elif len(counts) < 2 or max(counts.values()) < 2:
            raise UserError(f"{what} needs at least two identities, one of them with two images or more.")
        return
    if len(counts) < 2:
        only = next(iter(counts), "?")
        raise UserError(f"{what} has only one class ('{only}'): a Siamese network learns by comparing "
                        "classes, so it needs at least two. Add another class folder.")
    single = [name for name, n in counts.items() if n < 2]
    if single:
        listed = ", ".join(f"'{s}'" for s in single[:5]) + (f" and {len(single) - 5} more" if len(single) > 5 else "")
        raise UserError(f"{what}: class {listed} has only one image, but at least two per class are needed "
                        "to show the network what 'same' looks like. Add images or remove those folders.")


def split_by_class(image_set: ImageSet, val_fraction: float, seed: int, max_classes: int = 0):
    """Validation classes are never seen in training: the honest test of a Siamese network.

    `max_classes` (0: none) caps how many are held out, so a set of hundreds of people trains on most."""
    classes = np.unique(image_set.labels)
    problem = class_split_problem(len(classes))
    if problem:
        raise UserError(f"{problem} Use --split image, or give a validation folder.")
    rng = np.random.default_rng(seed)
    n_val = min(max(2, round(len(classes) * val_fraction)), len(classes) - 2)
    if max_classes:
        n_val = min(n_val, max_classes)
    val_classes = rng.choice(classes, size=n_val, replace=False)
    is_val = np.isin(image_set.labels, val_classes)
    return image_set.subset(np.flatnonzero(~is_val)), image_set.subset(np.flatnonzero(is_val))


def split_by_image(image_set: ImageSet, val_fraction: float, seed: int):
    """Each class split between training and validation (the same classes on both sides)."""
    rng = np.random.default_rng(seed)
    val = []
    for label in np.unique(image_set.labels):
        members = rng.permutation(np.flatnonzero(image_set.labels == label))
        n_val = int(round(len(members) * val_fraction))
        if len(members) >= 4:
            n_val = min(max(n_val, 2), len(members) - 2)
        else:
            n_val = 0  # too few to give both sides a pair: keep them for training
        val.extend(members[:n_val])
    is_val = np.zeros(len(image_set), dtype=bool)
    is_val[np.asarray(val, dtype=np.int64)] = True
    return image_set.subset(np.flatnonzero(~is_val)), image_set.subset(np.flatnonzero(is_val))


def split_triplet_rows(image_set: ImageSet, val_fraction: float, seed: int):
    """When no identity is known: split by row. Images may appear on both sides."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(image_set.triplets))
    n_val = max(1, int(round(len(order) * val_fraction)))
    train = ImageSet(image_set.pixels, image_set.labels, image_set.classes, image_set.names,
                     triplets=image_set.triplets[order[n_val:]])
    val = ImageSet(image_set.pixels, image_set.labels, image_set.classes, image_set.names,
                   triplets=image_set.triplets[order[:n_val]])
    return train, val


# ---------------------------------------------------------------- samplers

def _class_members(labels: np.ndarray):
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    classes, starts, counts = np.unique(sorted_labels, return_index=True, return_counts=True)
    return order, classes, starts, counts


def _positive_pairs(labels: np.ndarray, n: int, rng: np.random.Generator):
    """n pairs of two distinct images of one class (classes weighted by size)."""
    order, classes, starts, counts = _class_members(labels)
    eligible = np.flatnonzero(counts >= 2)
    if len(eligible) == 0:
        raise UserError("No class has two images, so no 'same' pair can be made.")
    weights = counts[eligible] / counts[eligible].sum()
    chosen = eligible[rng.choice(len(eligible), size=n, p=weights)]
    first = rng.integers(0, counts[chosen])
    second = (first + rng.integers(1, counts[chosen])) % counts[chosen]  # never the same image
    return order[starts[chosen] + first], order[starts[chosen] + second]


def _other_class(labels: np.ndarray, anchors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each anchor, a random image of another class (redrawn until it is)."""
    others = rng.integers(0, len(labels), size=len(anchors))
    clash = labels[others] == labels[anchors]
    while clash.any():
        others[clash] = rng.integers(0, len(labels), size=int(clash.sum()))
        clash = labels[others] == labels[anchors]
    return others


def sample_pairs(labels: np.ndarray, n_pairs: int, rng: np.random.Generator):
    """Random balanced pairs: half the same class, half different. Returns (a, b, same)."""
    n_pos = n_pairs // 2
    pos_a, pos_b = _positive_pairs(labels, n_pos, rng)
    neg_a = rng.integers(0, len(labels), size=n_pairs - n_pos)
    neg_b = _other_class(labels, neg_a, rng)
    a = np.concatenate([pos_a, neg_a])
    b = np.concatenate([pos_b, neg_b])
    same = np.concatenate([np.ones(n_pos), np.zeros(n_pairs - n_pos)]).astype(np.float32)
    shuffle = rng.permutation(n_pairs)
    return a[shuffle], b[shuffle], same[shuffle]


def sample_triplets(labels: np.ndarray, n_triplets: int, rng: np.random.Generator) -> np.ndarray:
    """Random (anchor, positive, negative) positions from labels, shape (n, 3)."""
    anchor, positive = _positive_pairs(labels, n_triplets, rng)
    return np.stack([anchor, positive, _other_class(labels, anchor, rng)], axis=1)


def pk_batches(labels: np.ndarray, batch_size: int, n_batches: int, rng: np.random.Generator):
    """Batches of P classes x K images each, for mining triplets inside a batch."""
    order, classes, starts, counts = _class_members(labels)
    eligible = np.flatnonzero(counts >= 2)
    k = 4 if batch_size >= 8 else 2
    p = max(2, min(len(eligible), batch_size // k))
    for _ in range(n_batches):
        chosen = rng.choice(eligible, size=p, replace=False)
        picks = [order[starts[c] + rng.choice(counts[c], size=k, replace=counts[c] < k)] for c in chosen]
        yield np.concatenate(picks)


def evaluation_pairs(labels: np.ndarray, n_pairs: int, seed: int = 0):
    """Balanced pairs drawn with a fixed seed, each unordered pair once, so evaluations compare.

    Returns (a, b, same), shuffled: n_pairs // 2 same pairs and as many different ones. A small set
    gives fewer, but always as many same as different: the kind it has more of is cut to the other's
    count, so answering always "different" (or "same") scores 50%, never more.
    """
    rng = np.random.default_rng(seed)
    want = n_pairs // 2
    chosen = {1.0: {}, 0.0: {}}  # dicts keep the order drawn, so a cut keeps a random share
    for _ in range(20):  # redraw until enough distinct pairs of each kind, or none are left to find
        a, b, same = sample_pairs(labels, 2 * n_pairs, rng)
        for i, j, s in zip(a.tolist(), b.tolist(), same.tolist()):
            if len(chosen[s]) < want:
                chosen[s][(min(i, j), max(i, j))] = None
        if all(len(chosen[s]) >= want for s in chosen):
            break
    each = min(len(chosen[1.0]), len(chosen[0.0]))
    kept = {s: sorted(list(found)[:each]) for s, found in chosen.items()}
    pairs = [(i, j, 1.0) for i, j in kept[1.0]] + [(i, j, 0.0) for i, j in kept[0.0]]
    order = np.random.default_rng(seed + 1).permutation(len(pairs))
    arr = np.array(pairs, dtype=np.float64).reshape(-1, 3)[order]
    return arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2].astype(np.float32)


def sequential_pairs(labels: np.ndarray):
    """Pairs (0,1), (2,3), ... as the classic digit script tested; each pair once."""
    a = np.arange(0, len(labels) - 1, 2)
    b = a + 1
    return a, b, (labels[a] == labels[b]).astype(np.float32)


def triplet_pairs(triplets: np.ndarray):
    """Each triplet gives one same pair (anchor, positive) and one different pair (anchor, negative)."""
    a = np.concatenate([triplets[:, 0], triplets[:, 0]])
    b = np.concatenate([triplets[:, 1], triplets[:, 2]])
    same = np.concatenate([np.ones(len(triplets)), np.zeros(len(triplets))]).astype(np.float32)
    return a, b, same
