"""What a model's images looked like, and whether a new image looks like them: a model that knows what it knows.

Once training ends, each checkpoint gets a small description of its own images (`describe_domain`, measured on
its training and validation images, kept in the checkpoint's `domain` field; siamese_core.runs.domain_field
checks it on load). A new image is *outside* when any of three measures says so:

- where the network puts it: the distance from its backbone features (L2-normalised) to the nearest of up to 256
  k-means centres of the training images' features, above the 99.5th percentile of the validation images';
- how it looks once prepared: nine image statistics (contrast, the content's box shape and fill, its pieces, edges,
  fine edges, thick share, content share, paper share; content: pixels more than half way from the commonest level
  to either end), a Mahalanobis distance from the training images' above the 99.5th percentile of the validation
  images';
- for ink-on-paper pipelines ("digit"): less paper than the training images show (their 0.1th percentile of
  digit_input.paper_share, measured before the pipeline): ink on paper is mostly paper, a face or a street is not.

Measured (benchmarks/out_of_domain.py; the research behind the choice: benchmarks/README.md): the backbone features,
before the embedding head, tell faces and street photos from digits where the embedding itself does not (its head
learnt to ignore what is not a digit: about 55% of faces flagged against 82-93%); the statistics catch signatures,
blank and noise; the paper share catches the photos whose prepared blob looks like a digit. Each alone misses a
kind; together they flag at least 95% of every other kind at under 3% of the model's own. Statistics of the image
before the pipeline other than the paper share do not serve: a photographed digit and an MNIST digit differ more
there than a digit and a face.

A checkpoint without a description (older, or a run stopped before the end) cannot tell: nothing is flagged, and
`UNCHECKED_NOTE` says so.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Optional

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from ..data.digit_input import paper_share
from ..data.images import pixels_to_image
from ..files import atomic_write
from ..models.networks import build_model, embed_in_batches, pick_device
from ..runs.domain_field import DOMAIN_KEY, DOMAIN_VERSION, STAT_COUNT
from ..runs.rundir import load_checkpoint
from ..words import plural

log = logging.getLogger("siamese_core")

STATS = ("contrast", "content box shape", "content box fill", "pieces", "edges", "fine edges", "thick share",
         "content share", "paper share")
assert len(STATS) == STAT_COUNT
INK_PIPELINES = ("digit", "ink")  # pipelines that expect ink on paper: the paper share applies
CENTRES = 256  # reference vectors kept: more than this gained little (256: 96% of faces, 1,000: 97%)
CENTRE_BYTES = 768 * 1024  # at most this much float16 (wider features keep fewer centres)
FEATURE_QUANTILE = 0.995
STATS_QUANTILE = 0.995
PAPER_QUANTILE = 0.001
SHRINK = 0.1  # the statistics' covariance is pulled this far towards the identity: stable with few images
SCALE_FLOOR = 0.01  # a statistic that never varied in training still allows this much
CONTENT_LEVEL = 0.5  # content: pixels more than half way from the commonest level to either end
DESCRIBED_IMAGES = 4000  # training images a description is measured on, at most
CALIBRATION_IMAGES = 2000  # validation images its limits are set on, at most
UNCHECKED_NOTE = ("This model was saved without a description of its images, so it cannot tell whether these "
                  "images are of the kind it learnt.")


# ---------------------------------------------------------------- measures

def image_stats(pixels: np.ndarray) -> np.ndarray:
    """The STATS of prepared images (uint8 (N, C, H, W)), as floats (N, STAT_COUNT)."""
    grey = np.asarray(pixels, dtype=np.float32).mean(axis=1) / 255.0
    n, h, w = grey.shape
    flat = grey.reshape(n, -1)
    bins = np.minimum((flat * 32).astype(np.int64), 31)
    counts = np.bincount((bins + 32 * np.arange(n)[:, None]).ravel(), minlength=32 * n).reshape(n, 32)
    mode = counts.argmax(axis=1)
    content = np.abs(grey - ((mode + 0.5) / 32)[:, None, None]) > CONTENT_LEVEL
    out = np.zeros((n, STAT_COUNT), dtype=np.float32)
    out[:, 0] = flat.std(axis=1)
    out[:, 4] = np.abs(np.diff(grey, axis=2)).mean(axis=(1, 2)) + np.abs(np.diff(grey, axis=1)).mean(axis=(1, 2))
    if h > 2 and w > 2:
        laplace = (4 * grey[:, 1:-1, 1:-1] - grey[:, :-2, 1:-1] - grey[:, 2:, 1:-1] - grey[:, 1:-1, :-2]
                   - grey[:, 1:-1, 2:])
        out[:, 5] = np.abs(laplace).mean(axis=(1, 2))
    out[:, 8] = counts[np.arange(n), mode] / flat.shape[1]
    for i, mask in enumerate(content):
        area = int(mask.sum())
        out[i, 7] = area / mask.size
        if not area:
            out[i, 1] = np.log(0.05)  # no content: the shape of nothing
            continue
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        box_h, box_w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
        out[i, 1] = np.log(box_h / box_w + 0.05)
        out[i, 2] = area / (box_h * box_w)
        out[i, 3] = np.log1p(ndimage.label(mask)[1])
        out[i, 6] = ndimage.binary_erosion(mask).sum() / area
    return out


def image_of(pixels: np.ndarray) -> Image.Image:
    """Prepared pixels (C, H, W) as a picture, for the measures taken before the pipeline."""
    return pixels_to_image(np.asarray(pixels))


@contextlib.contextmanager
def capture_features(net):
    """While inside, every pass through `net.backbone` adds its features (the image's, not its mirror image's
    under flip_test) to the yielded list: the vectors and the features come from one pass.

    Only this thread's passes: the app shares one loaded network between its sessions (threads), and a hook
    sees every thread's passes; another session's images in this list would check the wrong images."""
    grabbed: list = []
    owner = threading.get_ident()

    def keep(_module, _inputs, output):
        if threading.get_ident() != owner:
            return
        if getattr(net, "flip_test", False) and not net.training:
            output = output[: output.shape[0] // 2]  # embed() stacks the images, then their mirror images
        grabbed.append(output.detach().float())

    handle = net.backbone.register_forward_hook(keep)
    try:
        yield grabbed
    finally:
        handle.remove()


def joined(grabbed: list) -> np.ndarray:
    return torch.cat(grabbed).cpu().numpy() if grabbed else np.zeros((0, 1), dtype=np.float32)


def feature_dim(net) -> int:
    """The width of the backbone's features: what the head reads."""
    if net.embedding_head is not None:
        return net.embedding_head.proj.in_features
    width = net.pair_head.classifier[-1].in_features
    return width // 2 if net.pair_head.combine == "concat" else width


def _unit(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x.float(), dim=1)


def nearest_distance(features, centres: torch.Tensor) -> np.ndarray:
    """Euclidean distance of each L2-normalised feature vector to its nearest L2-normalised centre (0 to 2)."""
    f = _unit(torch.as_tensor(np.asarray(features)))
    similarity = (f @ _unit(centres).T).max(dim=1).values
    return torch.sqrt(torch.clamp(2.0 - 2.0 * similarity, min=0.0)).numpy()


def _mahalanobis(stats: np.ndarray, mean, scale, precision) -> np.ndarray:
    z = (stats - np.asarray(mean)) / np.asarray(scale)
    return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", z, np.asarray(precision), z), 0.0))


def _kmeans(x: torch.Tensor, k: int, seed: int, iterations: int = 20) -> torch.Tensor:
    """k centres of unit vectors (spherical k-means), starting from k of them drawn with `seed`."""
    generator = torch.Generator().manual_seed(seed)
    centres = x[torch.randperm(len(x), generator=generator)[:k]].clone()
    for _ in range(iterations):
        nearest = (x @ centres.T).argmax(dim=1)
        sums = torch.zeros_like(centres).index_add_(0, nearest, x)
        used = torch.bincount(nearest, minlength=k) > 0
        centres[used] = _unit(sums[used])  # a centre nothing chose stays where it was
    return centres


# ---------------------------------------------------------------- describing a model's images

def _positions(n: int, most: int, seed: int) -> np.ndarray:
    if n <= most:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=most, replace=False))


@torch.inference_mode()
def _measure_set(net, image_set, positions, device, ink: bool):
    """Features, statistics and (ink pipelines) paper shares of the images at `positions` of an ImageSet."""
    was_training = net.training
    net.eval()
    stats, papers = [], []

    def batch(i, j):
        pixels = image_set.batch(positions[i:j])
        numpy_pixels = pixels.numpy()
        stats.append(image_stats(numpy_pixels))
        if ink:
            papers.extend(paper_share(image_of(p)) for p in numpy_pixels)
        return pixels

    with capture_features(net) as grabbed:
        embed_in_batches(net, len(positions), batch, device, batch_size=128)
    net.train(was_training)
    return joined(grabbed), np.concatenate(stats), np.array(papers, dtype=np.float64)


def describe_domain(net, train_set, val_set, pipeline: str = "resize", device="cpu", what: Optional[str] = None,
                    seed: int = 0, before=None) -> dict:
    """The description of a trained model's images, as kept in its checkpoint (plain values and tensors).

    Measured on up to DESCRIBED_IMAGES of `train_set` (ImageSets of prepared pixels, as trained on), its limits set
    on up to CALIBRATION_IMAGES of `val_set` (the training images when there is no validation image). `what` is the
    words a verdict uses for the images ("handwritten digits"; None: from the model's class word). `before`: the
    training images as they were before the input pipeline (an ImageSet), where they differ from the prepared ones in
    how much paper they show; the paper limit then allows both, since a verdict measures an image before it."""
    device = torch.device(device) if isinstance(device, str) else device
    ink = pipeline in INK_PIPELINES
    features, stats, papers = _measure_set(net, train_set, _positions(len(train_set), DESCRIBED_IMAGES, seed),
                                           device, ink)
    calibration = val_set if val_set is not None and len(val_set) else train_set
    val_features, val_stats, _ = _measure_set(net, calibration,
                                              _positions(len(calibration), CALIBRATION_IMAGES, seed), device, False)
    vectors = _unit(torch.from_numpy(features))
    most = max(1, min(CENTRES, CENTRE_BYTES // (2 * vectors.shape[1])))
    centres = vectors if len(vectors) <= most else _kmeans(vectors, most, seed)
    mean = stats.mean(axis=0)
    scale = np.maximum(stats.std(axis=0), SCALE_FLOOR)
    covariance = np.atleast_2d(np.cov((stats - mean) / scale, rowvar=False)) if len(stats) > 1 else np.eye(STAT_COUNT)
    covariance = (1 - SHRINK) * covariance + SHRINK * np.eye(STAT_COUNT)
    precision = np.linalg.inv(covariance)
    return {
        "version": DOMAIN_VERSION,
        "what": what,
        "centres": centres.to(torch.float16),
        "feature_limit": float(np.quantile(nearest_distance(val_features, centres), FEATURE_QUANTILE)),
        "stats_mean": torch.tensor(mean, dtype=torch.float32),
        "stats_scale": torch.tensor(scale, dtype=torch.float32),
        "stats_precision": torch.tensor(precision, dtype=torch.float32),
        "stats_limit": float(np.quantile(_mahalanobis(val_stats, mean, scale, precision), STATS_QUANTILE)),
        "paper_limit": _paper_limit(papers, before, seed) if ink else None,
        "images": int(len(features)),
        "calibration_images": int(len(val_features)),
    }


def _paper_limit(papers: np.ndarray, before, seed: int) -> float:
    limit = float(np.quantile(papers, PAPER_QUANTILE))
    if before is not None and len(before):
        shares = [paper_share(image_of(p)) for p in before.batch(_positions(len(before), DESCRIBED_IMAGES, seed)).numpy()]
        limit = min(limit, float(np.quantile(shares, PAPER_QUANTILE)))
    return limit


# ---------------------------------------------------------------- checking new images

class DomainCheck:
    """A checkpoint's description, ready to check images: `outside(features, pixels, papers)`."""

    def __init__(self, domain: dict, pipeline: str):
        self.what = domain.get("what")
        self.centres = domain["centres"].float()
        self.feature_limit = float(domain["feature_limit"])
        self.stats = (domain["stats_mean"].numpy(), domain["stats_scale"].numpy(), domain["stats_precision"].numpy())
        self.stats_limit = float(domain["stats_limit"])
        self.paper_limit = domain.get("paper_limit") if pipeline in INK_PIPELINES else None

    @classmethod
    def of(cls, checkpoint: dict, net=None) -> Optional["DomainCheck"]:
        """The check a (loaded, validated) checkpoint carries; None when it has none or one from a newer version.
        With `net`, a description whose vectors do not fit the network's features is refused."""
        domain = checkpoint.get(DOMAIN_KEY)
        if not isinstance(domain, dict) or domain.get("version") != DOMAIN_VERSION:
            return None
        check = cls(domain, checkpoint["spec"].get("input") or "resize")
        if net is not None and check.centres.shape[1] != feature_dim(net):
            raise ValueError(f"its description of its images holds vectors of {check.centres.shape[1]} numbers, "
                             f"where its network makes {feature_dim(net)}")
        return check

    @property
    def uses_paper(self) -> bool:
        return self.paper_limit is not None

    def measure(self, image: Image.Image) -> Optional[float]:
        """What is measured on an image before the input pipeline (the paper share), or None when nothing is."""
        return paper_share(image) if self.uses_paper else None

    def outside(self, features, pixels: np.ndarray, papers=None) -> np.ndarray:
        """Which images (features (N, D) from the backbone, prepared pixels (N, C, H, W), and `measure` of each)
        do not look like the model's own."""
        far = nearest_distance(features, self.centres) > self.feature_limit
        odd = _mahalanobis(image_stats(pixels), *self.stats) > self.stats_limit
        flags = far | odd
        if self.uses_paper and papers is not None:
            flags |= np.array([p is not None and p < self.paper_limit for p in papers], dtype=bool)
        return flags


def images_word(labels: list) -> str:
    """'image A', 'images A and B'."""
    if len(labels) == 1:
        return f"image {labels[0]}"
    return "images " + ", ".join(labels[:-1]) + f" and {labels[-1]}"


def outside_sentence(labels: list, what: Optional[str]) -> str:
    """The plain sentence a verdict becomes when images in `labels` ("A", "B") do not look like the model's own.
    `what`: the words for the images the model learnt ("handwritten digits"), or None when unknown."""
    if not labels:
        return ""
    one = len(labels) == 1
    if what:
        look = (f"image {labels[0]} does not look like one" if one
                else "neither image " + " nor image ".join(labels) + " looks like one")
        return f"This model learnt {what}; {look}. {'Its' if one else 'Their'} score would mean nothing."
    subject = images_word(labels)
    subject = subject[0].upper() + subject[1:]
    return (f"{subject} {'does' if one else 'do'} not look like the images this model learnt from. "
            f"{'Its' if one else 'Their'} score would mean nothing.")


def what_of(check: Optional[DomainCheck], class_word: str) -> Optional[str]:
    """Words for what a model learnt: its description's, else pictures of its class word's plural."""
    if check is not None and check.what:
        return check.what
    if class_word and class_word != "class":
        return f"pictures of {plural(class_word)}"
    return None


# ---------------------------------------------------------------- adding a description to checkpoints

def describe_checkpoint(path, data, what: Optional[str] = None, device="cpu") -> dict:
    """Measure the model in checkpoint `path` on `data` (a PreparedData: its train and val ImageSets) and write its
    description into the file (atomically); every other field, the weights included, stays as it was."""
    payload = load_checkpoint(path)
    net = build_model(payload["spec"], pretrained=False)
    net.load_state_dict(payload["state_dict"])
    device = pick_device(device) if isinstance(device, str) else device
    net.to(device).eval()
    config, pipeline = payload.get("config") or {}, payload["spec"].get("input") or "resize"
    payload[DOMAIN_KEY] = describe_domain(net, data.train, data.val, pipeline, device, what,
                                          seed=int(config.get("seed") or 0), before=_before_pipeline(config, pipeline))
    atomic_write(path, lambda fh: torch.save(payload, fh))
    return payload[DOMAIN_KEY]


def _before_pipeline(config: dict, pipeline: str):
    """The built-in digits as a person saving them would have them, for an ink pipeline: they fill their frame,
    where the pipeline leaves MNIST's margin of paper, so a saved one would otherwise show too little paper to pass.
    Files (folders, CSVs, MNIST) are left as trained on: their prepared images keep about the paper they had."""
    if config.get("dataset") != "digits" or pipeline not in INK_PIPELINES:
        return None
    from ..data.sources import load_digits

    return load_digits(config.get("image_size") or 28, int(config.get("channels") or 1), "resize")


def describe_run(run, data, device: str = "cpu") -> None:
    """The trainer's one call once training is done: a description in checkpoints/best.pt and last.pt (measured once
    when both hold the same epoch's weights). A failure is logged, never raised: the description helps verdicts, it
    is no reason for a finished run to fail."""
    described: dict = {}  # epoch -> its description
    for name in ("best", "last"):
        path = run.checkpoint(name)
        if not path.is_file():
            continue
        try:
            payload = load_checkpoint(path)
            if payload.get("epoch") in described:  # the same weights as the checkpoint just described
                payload[DOMAIN_KEY] = described[payload["epoch"]]
                atomic_write(path, lambda fh: torch.save(payload, fh))
                continue
            described[payload.get("epoch")] = describe_checkpoint(path, data, device=device)
            log.info("Described the images of checkpoints/%s.pt for the verdicts' check (%d reference vectors).",
                     name, len(described[payload.get("epoch")]["centres"]))
        except Exception as exc:  # noqa: BLE001 - a finished run stays finished
            log.warning("Could not describe the images of checkpoints/%s.pt (%s): its verdicts cannot tell "
                        "whether an image is of the kind it learnt.", name, exc)
