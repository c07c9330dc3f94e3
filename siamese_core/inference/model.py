"""Load a checkpoint once; verify pairs, embed images, find nearest neighbours."""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import multiprocessing
import os
import sys
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import pandas as pd
import torch

from ..config import image_hw
from ..data.images import ImageInput, is_image_file, open_image
from ..data.paths import inside
from ..data.pipelines import load_pixels, to_pixels
from ..data.sources import folder_images, read_csv_columns, read_csv_table
from ..errors import UserError
from ..files import file_sha256, read_json, write_bytes, write_json
from ..models.memory import check_model, plan
from ..models.networks import (SiameseNet, as_model_input, build_model, embed_in_batches, images_per_pass,
                               pick_device)
from ..runs.context import ModelContext, context_of
from ..runs.rundir import load_checkpoint
from .domain import UNCHECKED_NOTE, DomainCheck, capture_features, image_of, joined, outside_sentence, what_of
from .index import search

log = logging.getLogger(__name__)


@dataclass
class Verdict:
    """Same or different, with its score; or, when an image does not look like the model's own (`outside`), a plain
    `sentence` to show instead: same, score and distance are still there for whoever asks for them."""

    same: bool
    score: float  # similarity in [0, 1]: the pair model's probability, or 1 - distance / 2
    threshold: float  # 'same' when score >= threshold
    distance: float  # Euclidean distance between the two vectors (embeddings, or backbone features)
    outside: list = field(default_factory=list)  # "A", "B": the images unlike the ones the model learnt
    sentence: str = ""  # what to say instead of the verdict when `outside` names any image
    checked: bool = True  # False: the checkpoint has no description of its images, so nothing could be checked

    @property
    def verdict(self) -> str:
        return "same" if self.same else "different"

    @property
    def note(self) -> str:
        """Words for a verdict that could not be checked (older checkpoints); empty otherwise."""
        return "" if self.checked else UNCHECKED_NOTE

    def to_dict(self) -> dict:
        return {**asdict(self), "verdict": self.verdict}

    def at(self, threshold: float) -> "Verdict":
        """The same pair judged at another threshold: no model needed, the score (and the domain check) stays."""
        return Verdict(same=self.score >= threshold, score=self.score, threshold=float(threshold),
                       distance=self.distance, outside=list(self.outside), sentence=self.sentence,
                       checked=self.checked)


class SiameseModel:
    """A trained model ready to use: `SiameseModel.load(path)` then verify / embed / nearest."""

    def __init__(self, net: SiameseNet, checkpoint: dict, device: torch.device, context: Optional[ModelContext] = None):
        self.net = net.eval()
        self.checkpoint = checkpoint
        self.device = device
        self.spec = checkpoint["spec"]
        self.threshold = float(checkpoint["threshold"])
        # what its classes are called, its data, its own sample images (siamese_core.runs.context)
        self.context = context or context_of(None, checkpoint)
        # what its images looked like (siamese_core.inference.domain); None: it cannot tell
        self.domain = DomainCheck.of(checkpoint, net)

    @classmethod
    def load(cls, path, device: str = "auto") -> "SiameseModel":
        checkpoint = load_checkpoint(path)
        check_model(checkpoint["spec"], f"'{Path(path).name}'")  # before any memory is taken
        target = pick_device(device)
        net = build_model(checkpoint["spec"], pretrained=False)
        try:
            net.load_state_dict(checkpoint["state_dict"])
        except RuntimeError:
            raise UserError(f"'{path}' does not match the network it describes: the file is damaged "
                            "or was edited by hand.") from None
        net.to(target)
        if target.type == "cpu":
            net.to(memory_format=torch.channels_last)  # faster convolutions on CPUs, as in training
        try:
            return cls(net, checkpoint, target, context_of(path, checkpoint))
        except ValueError as exc:  # its description of its images does not fit its network
            raise UserError(f"'{path}' is damaged or was edited by hand: {exc}.") from None

    # -- facts about the model, for people
    @property
    def image_size(self):
        """As the checkpoint stores it: a whole number (a square) or [height, width]; image_hw gives both sides."""
        return self.spec["image_size"]

    @property
    def image_hw(self) -> tuple:
        """(height, width) of the images the model sees."""
        return image_hw(self.spec["image_size"])

    @property
    def channels(self) -> int:
        return self.spec["channels"]

    @property
    def input_pipeline(self) -> str:
        """How an image becomes this model's input: "resize" or "digit" (checkpoints before pipelines resize)."""
        return self.spec.get("input") or "resize"

    @property
    def is_embedding(self) -> bool:
        return self.net.is_embedding

    @property
    def class_word(self) -> str:
        return self.context.class_word

    @property
    def operating_points(self) -> Optional[dict]:
        """Both thresholds chosen on the validation pairs (runs.rundir.OPERATING_POINT_FIELDS): the middle of the
        medians and the rare-same point, with which one is `threshold`; None for checkpoints that kept one only."""
        return self.checkpoint.get("operating_points")

    @property
    def distance_threshold(self) -> Optional[float]:
        """For embedding models: the same threshold as a distance ('same' when distance <= it)."""
        return 2.0 * (1.0 - self.threshold) if self.is_embedding else None

    # -- the work
    def prepare(self, image: ImageInput) -> np.ndarray:
        """An image as the model sees it: uint8 (C, H, W) after decoding and the model's input pipeline."""
        if self._is_prepared(image):
            return image  # already prepared for this model
        return load_pixels(image, self.image_size, self.channels, self.input_pipeline)

    def _is_prepared(self, image) -> bool:
        return (isinstance(image, np.ndarray) and image.dtype == np.uint8
                and image.shape == (self.channels, *self.image_hw))

    def prepare_measured(self, image: ImageInput) -> tuple:
        """(prepare(image), what the domain check measures on it before the pipeline, or None): decoded once."""
        if self._is_prepared(image):
            return image, self.domain.measure(image_of(image)) if self.domain is not None else None
        decoded = open_image(image)
        pixels = to_pixels(decoded, self.image_size, self.channels, self.input_pipeline)
        return pixels, self.domain.measure(decoded) if self.domain is not None else None

    def sentence(self, labels: list) -> str:
        """The plain sentence for images `labels` ("A", "B") that do not look like this model's own."""
        return outside_sentence(labels, what_of(self.domain, self.class_word))

    def outside(self, images, measures=None, batch_size: int = 64) -> Optional[np.ndarray]:
        """For each image (a list of images, or prepared pixels (N, C, S, S) with their `measures`): does it look
        unlike the images this model learnt? None when the model cannot tell (no description in its checkpoint).
        A page asking whether another model fits two images needs only `other.outside([a, b])`."""
        if self.domain is None:
            return None
        if measures is None:
            prepared = [self.prepare_measured(img) for img in images]
            images, measures = np.stack([p for p, _ in prepared]), [m for _, m in prepared]
        return self._checked_vectors(images, measures, batch_size)[1]

    def _checked_vectors(self, pixels: np.ndarray, measures, batch_size: int = 64):
        """(vectors, outside flags or None) of prepared pixels (N, C, S, S), from one pass of the network."""
        if self.domain is None:
            return self._vectors(pixels, batch_size), None
        with capture_features(self.net) as grabbed:
            vectors = self._vectors(pixels, batch_size)
        return vectors, self.domain.outside(joined(grabbed), pixels, measures)

    def _vectors(self, pixels, batch_size: int = 64, on_batch=None) -> torch.Tensor:
        """Vectors of prepared pixels (uint8 (N, C, H, W)), or of an ImageSet decoded a batch at a time."""
        if hasattr(pixels, "batch"):  # an ImageSet (siamese_core.data.sources)
            batch = lambda i, j: pixels.batch(np.arange(i, j))  # noqa: E731
        else:
            batch = lambda i, j: torch.from_numpy(np.ascontiguousarray(pixels[i:j]))  # noqa: E731
        # Batches and backbone passes small enough for the memory budget (a 1024 px model: a few images at once).
        batch_size, per_pass = plan(self.spec, batch_size, images_per_pass(self.device, self.image_size),
                                    on_cpu=self.device.type == "cpu")
        return embed_in_batches(self.net, len(pixels), batch, self.device, batch_size,
                                channels_last=self.device.type == "cpu", on_batch=on_batch, per_pass=per_pass)

    def _stack(self, images) -> np.ndarray:
        if (isinstance(images, np.ndarray) and images.ndim == 4 and images.dtype == np.uint8) or hasattr(images, "batch"):
            return images  # already prepared pixels, or an ImageSet
        return np.stack([self.prepare(img) for img in images])

    @torch.inference_mode()
    def verify(self, image_a: ImageInput, image_b: ImageInput, threshold: Optional[float] = None) -> Verdict:
        """Same or different? Both images go through the network in one batch, and both are checked against
        the description of the model's own images: an image unlike them gets `outside` and a `sentence`."""
        (pixels_a, measure_a), (pixels_b, measure_b) = self.prepare_measured(image_a), self.prepare_measured(image_b)
        pixels = np.stack([pixels_a, pixels_b])
        x = as_model_input(torch.from_numpy(pixels), self.device, channels_last=self.device.type == "cpu")
        capturing = capture_features(self.net) if self.domain is not None else contextlib.nullcontext([])
        with capturing as grabbed:
            vectors = self.net.embed(x).float()
        score = self.net.pair_scores(vectors[:1], vectors[1:])[0]
        distance = torch.linalg.vector_norm(vectors[0] - vectors[1])
        score, distance = torch.stack([score, distance]).tolist()  # one copy off the device, not two
        threshold = self.threshold if threshold is None else float(threshold)
        outside = []
        if self.domain is not None:
            flags = self.domain.outside(joined(grabbed), pixels, [measure_a, measure_b])
            outside = [label for label, flag in zip("AB", flags) if flag]
        return Verdict(same=score >= threshold, score=score, threshold=threshold, distance=distance,
                       outside=outside, sentence=self.sentence(outside), checked=self.domain is not None)

    @torch.inference_mode()
    def score_pairs(self, images_a, images_b, batch_size: int = 64) -> np.ndarray:
        """Scores of many pairs (lists of images or prepared pixel arrays), in batches."""
        va = self._vectors(self._stack(images_a), batch_size)
        vb = self._vectors(self._stack(images_b), batch_size)
        return self.net.pair_scores(va, vb).float().cpu().numpy()

    @torch.inference_mode()
    def score_checked(self, pixels_a: np.ndarray, pixels_b: np.ndarray, measures_a, measures_b, batch_size: int = 64):
        """score_pairs of prepared pixels (from prepare_measured, with their measures), and which images of each
        side look unlike the model's own: (scores, outside_a, outside_b), the flags None when it cannot tell."""
        va, outside_a = self._checked_vectors(pixels_a, measures_a, batch_size)
        vb, outside_b = self._checked_vectors(pixels_b, measures_b, batch_size)
        return self.net.pair_scores(va, vb).float().cpu().numpy(), outside_a, outside_b

    def embed(self, images, batch_size: int = 64, on_batch: Optional[Callable[[int], None]] = None) -> np.ndarray:
        """Vectors of images, shape (N, D): a list of images, prepared uint8 pixels (N, C, H, W), or an
        ImageSet (decoded a batch at a time); `on_batch(images done)` after each batch."""
        return self._vectors(self._stack(images), batch_size, on_batch).cpu().numpy()

    def nearest(self, query, gallery, k: int = 5, metric: str = "euclidean", exclude_self: bool = False):
        """The k gallery items most like the query: (indices, distances), nearest first.

        `query` is an image or a vector; `gallery` is a list of images or an (N, D) array of vectors.
        `exclude_self` drops gallery items at distance ~0 (the query itself when it is in the gallery).
        """
        q = _as_vector(query, self)
        g = gallery if _is_vectors(gallery) else self.embed(gallery)
        return nearest_vectors(q, np.asarray(g, dtype=np.float32), k, metric, exclude_self)


def _is_vectors(x) -> bool:
    return isinstance(x, np.ndarray) and x.ndim == 2 and x.dtype != np.uint8


def _as_vector(query, model: SiameseModel) -> np.ndarray:
    if isinstance(query, np.ndarray) and query.ndim == 1:
        return query.astype(np.float32)
    return model.embed([query])[0]


def nearest_vectors(query: np.ndarray, gallery: np.ndarray, k: int, metric: str = "euclidean",
                    exclude_self: bool = False):
    """The k gallery rows nearest one query vector, nearest first: (indices, distances), exact
    (siamese_core.inference.index: equal distances in row order). `exclude_self` leaves out rows at distance ~0."""
    indices, distances = search(np.asarray(query)[None], gallery, k, metric, exclude_self=exclude_self)
    found = indices[0] >= 0  # fewer than k rows left after exclude_self
    return indices[0][found], distances[0][found]


# ---------------------------------------------------------------- embedding a folder, however large

SHARD_IMAGES = 10_000  # images per shard file while embedding a large folder (a re-run skips finished ones)
_SHARD_FILE = "shard-{:05d}.npz"
_MANIFEST = "manifest.json"


def pixel_digest(pixels: np.ndarray) -> str:
    """A short fingerprint of an image as the model sees it (uint8 pixels): equal for the same image."""
    return hashlib.blake2b(np.ascontiguousarray(pixels).tobytes(), digest_size=8).hexdigest()


file_digest = file_sha256  # the name the command line and the pages use for a checkpoint's digest


class _DecodedFiles(torch.utils.data.Dataset):
    """Image files decoded as the model sees them, in DataLoader workers: (pixels, "" or why unreadable)."""

    def __init__(self, files, size: int, channels: int, pipeline: str):
        self.files, self.size, self.channels, self.pipeline = [str(f) for f in files], size, channels, pipeline

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i):
        try:
            return torch.from_numpy(load_pixels(self.files[i], self.size, self.channels, self.pipeline)), ""
        except UserError as exc:
            return torch.zeros((self.channels, self.size, self.size), dtype=torch.uint8), str(exc) or "unreadable"


def decoding_workers() -> int:
    """Processes decoding images while the model embeds: min(4, cores); none where processes are not
    forked (macOS and Windows spawn them, which re-imports the caller's script)."""
    if sys.platform != "linux" or "fork" not in multiprocessing.get_all_start_methods():
        return 0
    return min(4, os.cpu_count() or 1)


@dataclass
class FolderVectors:
    names: list  # file name (relative to the folder) of each image embedded
    labels: list  # its class ("" without class folders)
    vectors: np.ndarray  # (N, D) float32
    digests: list  # pixel_digest of each image as the model saw it
    skipped: list  # (name, reason) of files that could not be read
    reused: int = 0  # images whose vectors came from shards an earlier run finished


def embed_folder(model: "SiameseModel", folder, shards=None, shard_images: int = SHARD_IMAGES, model_id: str = "",
                 batch_size: int = 64, workers: Optional[int] = None,
                 stop_after_shards: Optional[int] = None) -> Optional[FolderVectors]:
    """The vectors of every image in a folder (class folders, or loose images), decoded by DataLoader workers
    a batch at a time: the images are never all in memory, only their vectors.

    With `shards` (a folder) and more than `shard_images` images, each `shard_images` images' vectors
    are written there as one .npz file (atomically) as soon as they are done, and a later call with the
    same folder, model (`model_id`, e.g. the checkpoint's digest) and shard size reuses the finished
    ones: an interrupted embedding resumes. `stop_after_shards` returns None after writing that many
    new shards (embedding in slices; tests). Remove the shards with `remove_shards` once used.
    """
    files, names, classes = folder_images(folder)
    bounds = list(range(0, len(files), shard_images)) + [len(files)]
    on_disk = shards is not None and len(bounds) > 2  # one shard: nothing worth resuming
    if on_disk:
        shards = Path(shards)
        manifest = {"model": model_id, "shard_images": shard_images, "count": len(files),
                    "folder": str(Path(folder).resolve()), "images": hashlib.sha256("\n".join(names).encode()).hexdigest(),
                    "input": [model.image_size, model.channels, model.input_pipeline]}
        if read_json(shards / _MANIFEST) != manifest:
            remove_shards(shards)  # another folder, model or shard size: nothing there can be reused
            write_json(shards / _MANIFEST, manifest)
    workers = decoding_workers() if workers is None else workers
    parts, reused, written = [], 0, 0
    for number, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
        path = shards / _SHARD_FILE.format(number) if on_disk else None
        part = _read_shard(path) if on_disk else None
        if part is not None:
            reused += stop - start
        else:
            part = _embed_files(model, files[start:stop], names[start:stop], classes[start:stop], batch_size, workers)
            if on_disk:
                buffer = io.BytesIO()
                np.savez(buffer, **part)
                write_bytes(path, buffer.getvalue())
                written += 1
                log.info("Embedded %d of %d images.", stop, len(files))
                if stop_after_shards is not None and written >= stop_after_shards and stop < len(files):
                    return None
        parts.append(part)
    joined = {key: np.concatenate([p[key] for p in parts if len(p[key])] or [parts[0][key]]) for key in parts[0]}
    if not len(joined["names"]):
        raise UserError(f"None of the {len(files)} files in '{folder}' could be read as an image.")
    skipped = list(zip(joined["skipped_names"].tolist(), joined["skipped_reasons"].tolist()))
    if skipped:
        log.warning("Skipped %d file(s) that are not readable images: %s", len(skipped),
                    "; ".join(f"{n}: {why}" for n, why in skipped[:3]) + (" ..." if len(skipped) > 3 else ""))
    return FolderVectors(joined["names"].tolist(), joined["labels"].tolist(), joined["vectors"].astype(np.float32),
                         joined["digests"].tolist(), skipped, reused)


def _embed_files(model: "SiameseModel", files, names, classes, batch_size: int, workers: int) -> dict:
    """One shard's arrays: the vectors, names, classes and digests of the readable files, and the others' reasons."""
    loader = torch.utils.data.DataLoader(_DecodedFiles(files, model.image_size, model.channels, model.input_pipeline),
                                         batch_size=batch_size, num_workers=workers,
                                         multiprocessing_context="fork" if workers else None)
    vectors, kept, digests, bad, reasons = [], [], [], [], []
    done = 0
    for pixels, errors in loader:
        ok = np.array([not e for e in errors])
        positions = done + np.flatnonzero(ok)
        bad += [names[done + i] for i in np.flatnonzero(~ok)]
        reasons += [e for e in errors if e]
        done += len(errors)
        if ok.any():
            batch = pixels.numpy()[ok]
            vectors.append(model.embed(batch, batch_size=len(batch)))
            kept += positions.tolist()
            digests += [pixel_digest(p) for p in batch]
    dimension = vectors[0].shape[1] if vectors else 0
    return {"vectors": np.concatenate(vectors) if vectors else np.zeros((0, dimension), dtype=np.float32),
            "names": np.array([names[i] for i in kept], dtype=str), "labels": np.array([classes[i] for i in kept], dtype=str),
            "digests": np.array(digests, dtype=str), "skipped_names": np.array(bad, dtype=str),
            "skipped_reasons": np.array(reasons, dtype=str)}


def _read_shard(path: Path) -> Optional[dict]:
    """A finished shard's arrays, or None when it is missing or unreadable (then it is embedded again)."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            return {key: stored[key] for key in ("vectors", "names", "labels", "digests", "skipped_names",
                                                 "skipped_reasons")}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None


def remove_shards(shards) -> None:
    """Delete the shard files (and their manifest, and the folder if that leaves it empty)."""
    shards = Path(shards)
    if not shards.is_dir():
        return
    for path in [*shards.glob("shard-*.npz"), *shards.glob(".shard-*.tmp"), shards / _MANIFEST]:
        path.unlink(missing_ok=True)
    try:
        shards.rmdir()
    except OSError:  # something else is in it: not ours to delete
        pass


TRUE_WORDS = {"1", "true", "yes", "same", "y", "t"}
FALSE_WORDS = {"0", "false", "no", "different", "n", "f"}


def read_pairs_csv(csv_path, name: Optional[str] = None) -> tuple[list, bool]:
    """The pairs a CSV names: ([(image_a, image_b, same or None)], has_same_column).

    Columns image_a, image_b (and optionally same) in any order and letter case; failing those, a
    file of exactly two columns, whatever their names; a file with no header row (its first row
    names two images) is read as pairs from its first line.
    """
    try:
        table, columns = read_csv_columns(csv_path, ("image_a", "image_b"), "pairs file", name)
    except UserError:
        if not Path(csv_path).is_file():
            raise  # "does not exist": no other reading would help
        table, columns = _two_columns(Path(csv_path), name or f"'{Path(csv_path).name}'")
    has_same = "same" in columns
    pairs = [(str(r[columns["image_a"]]).strip(), str(r[columns["image_b"]]).strip(),
              str(r[columns["same"]]).strip() if has_same else None)
             for r in table.to_dict("records")]
    return pairs, has_same


def _two_columns(csv_path: Path, label: str):
    table = read_csv_table(csv_path, name=label)
    if table.shape[1] != 2:  # more columns: which two are the images is a guess, so ask for the names
        found = ", ".join(map(str, table.columns))
        raise UserError(f"{label} needs two columns naming the two images of each pair: name them "
                        f"image_a and image_b (and optionally same), or give only those two columns (found: {found}).")
    if all(is_image_file(Path(str(c).strip())) for c in table.columns[:2]):
        table = read_csv_table(csv_path, header=None, name=label)  # no header row
    first, second = table.columns[:2]
    return table, {"image_a": first, "image_b": second}


PAIRS_PER_CHUNK = 256


def verify_pairs(model: SiameseModel, pairs, base, threshold: Optional[float] = None, confine: bool = False,
                 images_word: str = "the uploaded images", on_pair=None):
    """Score pairs of image files named relative to `base`, in batches; one row per pair, in order.

    `pairs` holds (image_a, image_b, same-or-None). A pair whose images cannot be read gets its
    reason in the `error` column and no score; the others are still scored. The `outside` column names the
    images unlike the model's own ("A", "B", "A and B"; "" for none; "not checked" when the checkpoint has no
    description of its images): their score would mean nothing. With `confine`, a
    name leading outside `base` (an uploaded CSV naming '../secret.png') counts as missing, in the same
    words (not among `images_word`), so the table never tells which paths exist on this machine.
    `on_pair(n)` is called after each pair is read, for a progress bar.
    """
    base = Path(base)
    threshold = model.threshold if threshold is None else float(threshold)
    rows, pixels_a, pixels_b, measures_a, measures_b, scored = [], [], [], [], [], []

    def score_waiting() -> None:  # in chunks: memory stays that of PAIRS_PER_CHUNK pairs, however long the CSV
        if scored:
            scores, outside_a, outside_b = model.score_checked(np.stack(pixels_a), np.stack(pixels_b), measures_a,
                                                               measures_b)
            for n, (i, score) in enumerate(zip(scored, scores)):
                rows[i]["score"] = round(float(score), 6)
                rows[i]["verdict"] = "same" if score >= threshold else "different"
                rows[i]["outside"] = ("not checked" if outside_a is None else
                                      " and ".join(label for label, flag in (("A", outside_a[n]), ("B", outside_b[n]))
                                                   if flag))
        for waiting in (pixels_a, pixels_b, measures_a, measures_b, scored):
            waiting.clear()

    for i, (a, b, same) in enumerate(pairs):
        row = {"image_a": a, "image_b": b, "score": None, "verdict": "", "outside": "", "error": ""}
        if same is not None:
            row["same"] = same
        try:
            pair = _prepared(model, base, a, confine, images_word), _prepared(model, base, b, confine, images_word)
            pixels_a.append(pair[0][0])
            pixels_b.append(pair[1][0])
            measures_a.append(pair[0][1])
            measures_b.append(pair[1][1])
            scored.append(i)
        except UserError as exc:
            row["error"] = str(exc)
        rows.append(row)
        if len(scored) == PAIRS_PER_CHUNK:
            score_waiting()
        if on_pair is not None:
            on_pair(i + 1)
    score_waiting()
    return rows


def _prepared(model: SiameseModel, base: Path, name: str, confine: bool, images_word: str) -> tuple:
    """(pixels, measure) of one image a pairs file names (SiameseModel.prepare_measured)."""
    if not name:
        raise UserError("An image name is empty in this row.")
    path = base / name
    if confine and (not inside(base, path) or not path.is_file()):
        raise UserError(f"'{name}' is not among {images_word}.")
    try:
        return model.prepare_measured(path)
    except UserError as exc:
        if confine:  # say it with the name the person wrote, not this server's folders
            raise UserError(str(exc).replace(f"'{path}'", f"'{name}'")) from None
        raise


def pairs_accuracy(rows) -> Optional[dict]:
    """Accuracy over the rows whose `same` says 1/0, yes/no, same/different and that were scored."""
    known = [(r["same"].lower() in TRUE_WORDS, r["verdict"] == "same") for r in rows
             if r.get("same") is not None and r["verdict"] and r["same"].lower() in TRUE_WORDS | FALSE_WORDS]
    if not known:
        return None
    return {"accuracy": sum(t == s for t, s in known) / len(known), "pairs": len(known)}


def verify_csv(model: SiameseModel, csv_path, images_dir=None, threshold: Optional[float] = None,
               confine: bool = False, images_word: str = "the images in their folder"):
    """Verdicts for every pair in a CSV with columns image_a, image_b (and optionally same).

    Paths are relative to `images_dir` (default: the CSV's folder). A pair whose images cannot be
    read gets its reason in the `error` column; the others are still scored. Returns (table,
    {"accuracy", "pairs"} over the rows whose `same` says 1/0, yes/no, same/different; or None).
    """
    pairs, _ = read_pairs_csv(csv_path)
    base = Path(images_dir) if images_dir else Path(csv_path).parent
    rows = verify_pairs(model, pairs, base, threshold, confine, images_word)
    return pd.DataFrame(rows), pairs_accuracy(rows)
