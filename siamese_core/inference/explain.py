"""Why the model finds two images alike or different: a map over each image of a pair.

Two kinds of map, and `Explanation.kind` says which one a pair got:

``"exact"`` -- embedding models (modes triplet and contrastive) whose backbone ends in global average
pooling (small-resnet, timm:efficientnet_b0 and most timm CNNs, torchvision's ResNets, EfficientNets,
MobileNets...). The feature map F (C x h x w) is averaged, then the embedding head is affine in eval mode
(a Linear layer, then an optional BatchNorm: e = A F̄ + c), then L2-normalised. So with HW = h * w:

    u   = sum_ij P_ij + c_u,          P_ij = A F_ij / HW,          c_u = c
    cos = <u_A, u_B> / (|u_A| |u_B|)                               (the similarity the score comes from)

and the similarity splits exactly over the positions of image A (and, the same way, of image B):

    cells_A[i, j] = <P^A_ij, u_B> / (|u_A| |u_B|)        bias_A = <c_u^A, u_B> / (|u_A| |u_B|)
    sum_ij cells_A[i, j] + bias_A == cos                 (to float precision, ~1e-6)

`bias_A` is the share of the head's constant offset c, which belongs to no position: it is reported on
its own, not spread over the image. For a picture of the verdict (`Explanation.shown`), each cell is
compared with its even part of the 'same' line: shown_A[i, j] = cells_A[i, j] - (line - bias_A) / HW, with
line the cosine at which the score meets the threshold, so sum_ij shown_A = cos - line: positive exactly
when the verdict is 'same'. (Raw shares of a pair that is alike are all positive, so they would all be red.)

With test-time flip (`flip_test`), a model's vector is the mean of the normalised embeddings of the
image and its mirror image, so u = e/|e| + e'/|e'|: P_ij gets the mirrored map's position (i, w-1-j) too,
each view weighted by 1/|e|, and c_u = c (1/|e| + 1/|e'|); the sums stay exact. The score shown to people,
1 - |v_A - v_B| / 2 = 1 - sqrt((1 - cos) / 2), rises with cos; it meets a threshold t at cos = 1 - 2 (1 - t)^2.

Whether a backbone ends in average pooling is not read off its name: the feature map whose spatial mean
equals the backbone's output is looked for on the images themselves, so any backbone that averages is
found, and one that flattens (convnet) or does more after pooling (VGG's classifier layers) is not. A head
that is not affine (a ReLU after the projection) has no exact split either: those get the gradient map.

``"gradient"`` -- every other model: the pair head (mode pair; its features are compared by a learned
layer) and embedding backbones that flatten their feature map instead of averaging it (the digit
`convnet`). No exact split exists there, so the map is a signed Grad-CAM-style map on the quantity the
score rises with: the logit of the pair head (score = sigmoid(logit)), or the cosine of the two
embeddings. For the last feature map F of each image (the backbone's last module output with a spatial
extent), per position (HiResCAM, Draelos & Carin 2020):

    cells[i, j] = sum_k F_kij * d target / d F_kij

kept signed (no ReLU): positive cells pushed towards "same", negative ones towards "different". Grad-CAM
proper first averages the gradient over positions (alpha_k = mean_ij d target / d F_kij); for a backbone
ending in average pooling the two are the same map, but a backbone that flattens (the convnet) has a
weight per position, which the average would blur away. The numbers are a first-order estimate in the
target's units, comparable within a pair, not shares of it.

Positions map to the image by even division: image row r lies in cell row floor(r * h / S). `map_a` and
`map_b` spread each cell's value evenly over the pixels it covers, so a map sums to what its cells sum to.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont
from torch import nn

from ..config import image_hw
from ..errors import UserError
from ..models.memory import pairs_per_pass
from ..models.networks import as_model_input

EXACT = "exact"
GRADIENT = "gradient"

# What each kind of map is, in plain words (the app shows these).
KIND_WORDS = {
    EXACT: "Exact shares: each region's part of the similarity behind the score. On each image the shares, "
           "plus a part that belongs to no region, add up to the similarity.",
    GRADIENT: "An estimate from gradients (Grad-CAM style): how much each region pushed the score up or down. "
              "Strengths compare within this pair only; they are not exact shares of the score.",
}


@dataclass
class Explanation:
    """Both maps of one pair, and what they mean."""

    kind: str  # EXACT or GRADIENT
    score: float  # the model's score in [0, 1], as Verify shows it
    target: float  # what the maps explain: the cosine similarity (exact; gradient for embeddings) or the logit
    target_name: str  # "cosine similarity" or "logit"
    cells_a: np.ndarray  # (h, w) float64: one value per position of the feature map
    cells_b: np.ndarray
    map_a: np.ndarray  # (S, S) float64 at the image's resolution (cells spread over their pixels)
    map_b: np.ndarray
    bias_a: float = 0.0  # exact: the share of no position (the head's constant); 0 for gradient maps
    bias_b: float = 0.0
    note: str = ""  # why a gradient map and not an exact one, in plain words

    @property
    def exact(self) -> bool:
        return self.kind == EXACT

    @property
    def scale(self) -> float:
        """The largest |cell| over both images."""
        return scale_of(self.cells_a, self.cells_b)

    def to_dict(self) -> dict:
        return asdict(self)

    def shown(self, threshold: Optional[float] = None) -> tuple:
        """The cells to colour, (A, B): for exact maps with the verdict's `threshold` (a score), each region's
        share minus its even part of the 'same' line, so red regions brought more than their part and blue ones
        less, and each image's colours sum to (similarity - line); gradient maps as they are."""
        if not self.exact or threshold is None:
            return self.cells_a, self.cells_b
        line = line_similarity(threshold)
        return tuple(cells - (line - bias) / cells.size
                     for cells, bias in ((self.cells_a, self.bias_a), (self.cells_b, self.bias_b)))


def line_similarity(threshold: float) -> float:
    """The cosine similarity at which an embedding model's score equals `threshold`: score = 1 - sqrt((1 - cos) / 2)."""
    return 1.0 - 2.0 * (1.0 - float(threshold)) ** 2


def scale_of(*cells: np.ndarray) -> float:
    """The largest |value| over the maps of a pair: one colour scale for both, so the images compare."""
    return float(max(np.abs(c).max(initial=0.0) for c in cells))


# ---------------------------------------------------------------- finding the feature map

class _Recorder:
    """Forward hooks on every module of a backbone, for one thread's forward passes only (the app serves
    several sessions from one cached model: another session's pass must run untouched)."""

    def __init__(self, backbone: nn.Module, on_output):
        self.thread = threading.get_ident()
        self.handles = [module.register_forward_hook(self._hook(name, on_output))
                        for name, module in backbone.named_modules() if name]

    def _hook(self, name, on_output):
        def hook(module, inputs, output):
            if threading.get_ident() == self.thread:
                return on_output(name, module, inputs, output)
            return None
        return hook

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for handle in self.handles:
            handle.remove()


def _spatial(t) -> bool:
    return isinstance(t, torch.Tensor) and t.ndim == 4


def _normalised(net, x: torch.Tensor) -> torch.Tensor:
    return (x - net.mean) / net.std


def _views(net, x: torch.Tensor) -> list:
    """The images the model looks at for one vector: the image, and with flip_test its mirror image too."""
    return [x, x.flip(-1)] if net.flip_test and not net.training else [x]


@torch.inference_mode()
def _pooled_map(net, x: torch.Tensor) -> Optional[torch.Tensor]:
    """The feature map F (B, C, h, w) whose spatial mean is exactly the backbone's output, or None when the
    backbone does not end in global average pooling (it flattens, or does more after pooling)."""
    width = net.embedding_head.proj.in_features
    seen = []

    def keep(name, module, inputs, output):
        for t in (*inputs, output):
            if _spatial(t) and t.shape[1] == width and (not seen or seen[-1] is not t):
                seen.append(t)

    with _Recorder(net.backbone, keep):
        features = net.backbone(_normalised(net, x)).float()
    if features.ndim != 2 or features.shape[1] != width:
        return None
    tolerance = 1e-4 * max(1.0, float(features.abs().max()))
    matches = [t for t in reversed(seen)
               if torch.allclose(t.float().mean((2, 3)), features, atol=tolerance, rtol=1e-4)]
    # The pooling's own 1x1 output matches too (torchvision's avgpool keeps two axes): take the map before it.
    wide = [t for t in matches if t.shape[-1] * t.shape[-2] > 1]
    found = (wide or matches or [None])[0]
    return None if found is None else found.float().contiguous()


def _affine_head(head) -> Optional[tuple]:
    """(A, c) with neck(proj(x)) == A x + c for every x, in float64; None when the head is not affine."""
    proj, neck = head.proj, head.neck
    if not isinstance(proj, nn.Linear):
        return None
    a = proj.weight.detach().double().cpu()
    c = proj.bias.detach().double().cpu() if proj.bias is not None else torch.zeros(a.shape[0], dtype=torch.float64)
    if isinstance(neck, nn.Identity):
        return a, c
    if isinstance(neck, nn.BatchNorm1d) and not neck.training and neck.running_mean is not None:
        scale = 1.0 / torch.sqrt(neck.running_var.detach().double().cpu() + neck.eps)
        shift = -neck.running_mean.detach().double().cpu() * scale
        if neck.affine:
            gamma, beta = neck.weight.detach().double().cpu(), neck.bias.detach().double().cpu()
            scale, shift = scale * gamma, shift * gamma + beta
        return scale[:, None] * a, scale * c + shift
    return None


def why_not_exact(net) -> str:
    """'' when the exact split can exist for this network (checked on an image later); else why not, in words."""
    if not net.is_embedding:
        return ("This model compares the two images with a learned layer (a pair head), so its score has no "
                "exact split over regions.")
    if net.training:
        return "The model is in training mode."
    if _affine_head(net.embedding_head) is None:
        return "This model's last layers are not plain linear ones, so its similarity has no exact split over regions."
    return ""


# ---------------------------------------------------------------- the two kinds of map

def _exact(net, x: torch.Tensor, n: int) -> Optional[list]:
    """Exact cells for n pairs (x holds the n A images, then the n B images); None when the backbone does not
    end in global average pooling."""
    a, c = _affine_head(net.embedding_head)
    maps, weights = [], []
    for view in _views(net, x):
        fmap = _pooled_map(net, view)
        if fmap is None:
            return None
        fmap = fmap.double().cpu()
        if view is not x:
            fmap = fmap.flip(-1)  # the mirror image's positions, put back where they are in the image
        e = fmap.mean((2, 3)) @ a.T + c  # the embedding before normalisation, (2n, D)
        maps.append(fmap)
        weights.append(1.0 / e.norm(dim=1) if len(_views(net, x)) > 1 else torch.ones(len(x), dtype=torch.float64))
    hw = maps[0].shape[-1] * maps[0].shape[-2]
    # P[b, :, i, j] = sum over views of w * A F_ij / HW: each position's vector, summing (with c_u) to u.
    per_position = sum(w[:, None, None, None] * torch.einsum("dc,bchw->bdhw", a, f) / hw
                       for f, w in zip(maps, weights))
    bias = c[None, :] * sum(weights)[:, None]
    u = per_position.sum((2, 3)) + bias
    norms = u.norm(dim=1)
    out = []
    for k in range(n):
        ia, ib = k, n + k
        denominator = norms[ia] * norms[ib]
        cells_a = torch.einsum("dhw,d->hw", per_position[ia], u[ib]) / denominator
        cells_b = torch.einsum("dhw,d->hw", per_position[ib], u[ia]) / denominator
        out.append((cells_a.numpy(), cells_b.numpy(), float(bias[ia] @ u[ib] / denominator),
                    float(bias[ib] @ u[ia] / denominator)))
    return out


def _last_spatial_module(net, x: torch.Tensor) -> Optional[str]:
    """The name of the backbone's last module (in the order they finish) whose output is a feature map with
    more than one position; failing that, with one."""
    found = {"wide": None, "any": None}

    def note(name, module, inputs, output):
        if _spatial(output):
            found["any"] = name
            if output.shape[-1] * output.shape[-2] > 1:
                found["wide"] = name

    with torch.inference_mode(), _Recorder(net.backbone, note):
        net.backbone(_normalised(net, x[:1]))
    return found["wide"] or found["any"]


def _gradient(net, x: torch.Tensor, n: int) -> list:
    """Signed gradient x feature-map cells (HiResCAM) for n pairs (x: the n A images, then the n B images)."""
    name = _last_spatial_module(net, x)
    if name is None:
        raise UserError("This model's backbone has no feature map over the image (it is not a convolutional "
                        "network), so no map of the image can be drawn.")
    module = net.backbone.get_submodule(name)
    leaves = []

    def replace(module_name, mod, inputs, output):
        if mod is module:
            leaf = output.detach().float().requires_grad_(True)
            leaves.append(leaf)
            return (leaf + 0).to(output.dtype)  # later in-place operations change this copy, not the leaf
        return None

    with torch.inference_mode(False), torch.enable_grad(), _Recorder(net.backbone, replace):
        vectors = net.embed(x.clone()).float()
        va, vb = vectors[:n], vectors[n:]
        target = (va * vb).sum(1) if net.is_embedding else net.pair_head(va, vb)
        leaf = leaves[-1]
        grad, = torch.autograd.grad(target.sum(), leaf)
    target = target.detach().cpu()
    fmap, grad = leaf.detach().double().cpu(), grad.double().cpu()
    cam = (grad * fmap).sum(1)  # (views * 2n, h, w): gradient x feature map, summed over channels
    views = len(cam) // (2 * n)
    cells = sum(cam[v * 2 * n:(v + 1) * 2 * n].flip(-1) if v else cam[:2 * n] for v in range(views))
    return [(cells[k].numpy(), cells[n + k].numpy(), float(target[k])) for k in range(n)]


def spread(cells: np.ndarray, size) -> np.ndarray:
    """Cells (h, w) -> the image's (height, width) (`size`: a whole number for a square, or (height, width)): each
    cell's value divided evenly over the pixels it covers, so the sum stays."""
    h, w = cells.shape
    height, width = image_hw(size)
    rows, cols = np.arange(height) * h // height, np.arange(width) * w // width
    per_row, per_col = np.bincount(rows, minlength=h), np.bincount(cols, minlength=w)
    return cells[rows][:, cols] / np.outer(per_row[rows], per_col[cols])


# ---------------------------------------------------------------- the entry points

# Pairs per pass: a gradient map keeps the backbone's activations for the backward pass (a gallery page of
# 24 pairs of 224 px images at once would hold gigabytes).
PAIRS_PER_PASS = 8


def explain_pairs(model, pixels_a: np.ndarray, pixels_b: np.ndarray) -> list:
    """Maps for many pairs: `model` a SiameseModel (siamese_core.inference.model), pixels prepared for it
    (uint8 (N, C, H, W), see SiameseModel.prepare), PAIRS_PER_PASS at a time (fewer where the memory budget
    needs it: siamese_core.models.memory). One Explanation per pair, in order."""
    pixels_a, pixels_b = np.asarray(pixels_a), np.asarray(pixels_b)
    if pixels_a.ndim == 3:
        pixels_a, pixels_b = pixels_a[None], pixels_b[None]
    step = pairs_per_pass(model.spec, PAIRS_PER_PASS)
    return [e for start in range(0, len(pixels_a), step)
            for e in _explain(model, pixels_a[start:start + step], pixels_b[start:start + step])]


def _explain(model, pixels_a: np.ndarray, pixels_b: np.ndarray) -> list:
    net = model.net
    n, size = len(pixels_a), tuple(pixels_a.shape[-2:])
    x = as_model_input(torch.from_numpy(np.concatenate([pixels_a, pixels_b])), model.device,
                       channels_last=model.device.type == "cpu")
    with torch.inference_mode():
        vectors = net.embed(x).float()
        scores = net.pair_scores(vectors[:n], vectors[n:]).cpu().tolist()
        cosines = (vectors[:n] * vectors[n:]).sum(1).cpu().tolist() if net.is_embedding else None
    reason = why_not_exact(net)
    exact = None if reason else _exact(net, x, n)
    if exact is None and not reason:
        reason = ("This model's network does not end by averaging over the image (the small digit network, for "
                  "one, does not), so its similarity has no exact split over regions.")
    out = []
    if exact is not None:
        for k, (cells_a, cells_b, bias_a, bias_b) in enumerate(exact):
            out.append(Explanation(EXACT, scores[k], cosines[k], "cosine similarity", cells_a, cells_b,
                                   spread(cells_a, size), spread(cells_b, size), bias_a, bias_b))
        return out
    for k, (cells_a, cells_b, target) in enumerate(_gradient(net, x, n)):
        out.append(Explanation(GRADIENT, scores[k], target, "cosine similarity" if net.is_embedding else "logit",
                               cells_a, cells_b, spread(cells_a, size), spread(cells_b, size), note=reason))
    return out


def explain_pair(model, pixels_a: np.ndarray, pixels_b: np.ndarray) -> Explanation:
    """Both maps, the score and the kind of map for one pair of prepared images (uint8 (C, H, W))."""
    return explain_pairs(model, pixels_a[None], pixels_b[None])[0]


# ---------------------------------------------------------------- pictures

# A diverging scale (ColorBrewer's RdBu): blue = made them look different, red = made them look alike.
_STOPS = np.array([-1.0, -0.5, 0.0, 0.5, 1.0])
_COLOURS = np.array([(33, 102, 172), (103, 169, 207), (247, 247, 247), (239, 138, 98), (178, 24, 43)], dtype=float)
ALIKE_COLOUR = "#b2182b"
DIFFERENT_COLOUR = "#2166ac"
LEGEND_WORDS = ("Red: parts that made the model find the two images alike. "
                "Blue: parts that made them look different. Clear: little effect either way.")


def colours(values: np.ndarray) -> np.ndarray:
    """Values in [-1, 1] -> RGB floats (..., 3) on the blue-white-red scale."""
    v = np.clip(values, -1.0, 1.0)
    return np.stack([np.interp(v, _STOPS, _COLOURS[:, k]) for k in range(3)], axis=-1)


def display_size(image_size: int, at_least: int = 224) -> int:
    """A side of at least `at_least` pixels that is a whole multiple of the image's (small digits stay crisp)."""
    return image_size * max(1, -(-at_least // image_size))


def display_shape(height: int, width: int, at_least: int = 224) -> tuple:
    """(height, width) for showing an image: its shorter side at least `at_least` pixels, both sides the same
    whole multiple of the image's (small digits stay crisp), its shape kept."""
    times = max(1, -(-at_least // min(height, width)))
    return height * times, width * times


def fitted_shape(height: int, width: int, side: int) -> tuple:
    """(height, width) of an image of this shape with its longer side `side` pixels."""
    scale = side / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


def smooth(cells: np.ndarray, size) -> np.ndarray:
    """Cells (h, w) -> `size` (a whole number for a square, or (height, width)) by bilinear interpolation: for
    pictures only (values stay in the cells' range)."""
    t = torch.from_numpy(np.ascontiguousarray(cells, dtype=np.float64))[None, None]
    return F.interpolate(t, size=image_hw(size), mode="bilinear", align_corners=False)[0, 0].numpy()


def overlay(pixels: np.ndarray, cells: np.ndarray, scale: float, size=None) -> Image.Image:
    """The image (prepared uint8 (C, H, W)) in grey, coloured by its cells: red where they are positive, blue
    where negative, clear where near zero; `scale` is the |value| of the strongest colour. `size`: the picture's
    (height, width), or a whole number for its longer side (its shape kept); by default display_shape's."""
    height, width = pixels.shape[-2:]
    if size is None:
        shown = display_shape(height, width)
    elif isinstance(size, (tuple, list)):
        shown = image_hw(size)
    else:
        shown = fitted_shape(height, width, size)
    grey = np.asarray(Image.fromarray(np.ascontiguousarray(pixels.mean(0).astype(np.uint8)))
                      .resize((shown[1], shown[0]), Image.Resampling.NEAREST), dtype=float)
    base = np.repeat((0.35 * 255 + 0.65 * grey)[..., None], 3, axis=-1)  # faded, so the colours read
    strength = smooth(cells, shown) / scale if scale > 0 else np.zeros(shown)
    alpha = (0.85 * np.abs(np.clip(strength, -1, 1)) ** 0.7)[..., None]
    blended = base * (1 - alpha) + colours(strength) * alpha
    return Image.fromarray(np.clip(blended, 0, 255).astype(np.uint8), "RGB")


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow before 10.1: one size only
        return ImageFont.load_default()


def legend(width: int) -> Image.Image:
    """A colour bar with its meaning in words, blue 'different' on the left, red 'alike' on the right."""
    bar_height, text_height = 12, 16
    image = Image.new("RGB", (width, bar_height + text_height + 4), "white")
    ramp = colours(np.linspace(-1, 1, width))
    image.paste(Image.fromarray(np.repeat(ramp[None], bar_height, axis=0).astype(np.uint8), "RGB"), (0, 0))
    draw, font = ImageDraw.Draw(image), _font(11)
    draw.text((0, bar_height + 3), "looked different", fill=DIFFERENT_COLOUR, font=font)
    right = "looked alike"
    draw.text((width - draw.textlength(right, font=font), bar_height + 3), right, fill=ALIKE_COLOUR, font=font)
    return image


def render_pair(explanation: Explanation, pixels_a: np.ndarray, pixels_b: np.ndarray, side: int = 160,
                gap: int = 8, with_legend: bool = True, threshold: Optional[float] = None) -> Image.Image:
    """Both overlays side by side (one colour scale for the pair), each with its longer side `side` pixels and its
    shape kept, with the legend below; with `threshold`, exact maps are coloured against the 'same' line
    (Explanation.shown)."""
    cells_a, cells_b = explanation.shown(threshold)
    scale = scale_of(cells_a, cells_b)
    shown_h, shown_w = fitted_shape(*pixels_a.shape[-2:], side)
    width = max(2 * shown_w + gap, 240)  # the legend's words need about 240 pixels
    legend_image = legend(width) if with_legend else None
    height = shown_h + (legend_image.height + 6 if legend_image else 0)
    canvas = Image.new("RGB", (width, height), "white")
    canvas.paste(overlay(pixels_a, cells_a, scale, (shown_h, shown_w)), (0, 0))
    canvas.paste(overlay(pixels_b, cells_b, scale, (shown_h, shown_w)), (shown_w + gap, 0))
    if legend_image:
        canvas.paste(legend_image, (0, shown_h + 6))
    return canvas
