"""Backbones (timm, torchvision, the small digit ConvNet), heads, and the Siamese model.

The model takes images as floats in [0, 1] and normalises them itself, so a
checkpoint carries everything needed to score images it has never seen.
"""

from __future__ import annotations

import difflib
import logging
import socket
import time
from pathlib import Path
from typing import Callable, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..config import image_hw, image_size_value
from ..errors import UserError

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
BACKBONE_HELP = ("Backbone names: 'convnet' (small digit network), 'small-resnet' (a ResNet sized for CPUs), 'timm:<name>' (list them in Python with "
                 "timm.list_models(), e.g. timm:efficientnet_b0) or 'torchvision:<name>' (list them with "
                 "torchvision.models.list_models(torchvision.models), e.g. torchvision:resnet18).")


class DigitConvNet(nn.Module):
    """The reference network for 28x28 grey digits: two Conv-BN-ReLU-MaxPool blocks, then FC to 500."""

    feature_dim = 500

    def __init__(self, channels: int = 1, image_size=28):
        super().__init__()
        height, width = image_hw(image_size)  # the flatten layer's size follows the image's height x width
        self.conv = nn.Sequential(
            nn.Conv2d(channels, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(inplace=True), nn.MaxPool2d(2),
        )
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(16 * (height // 4) * (width // 4), 500), nn.BatchNorm1d(500), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.conv(x))


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a skip connection (He et al. 2016); a 1x1 projection when the shape changes."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False), nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False), nn.BatchNorm2d(out_channels),
        )
        nn.init.zeros_(self.body[-1].weight)  # each block starts as the identity: stable from random weights
        self.skip = nn.Identity() if stride == 1 and in_channels == out_channels else nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.skip(x), inplace=True)


class SmallResNet(nn.Module):
    """A ResNet for training from random weights on a CPU in minutes: a stride-2 stem, then four
    basic blocks (32, 64, 128, 256 channels; all but the first halve the size) and global average pooling.
    About 1.2M parameters and 60M multiply-adds for a 64 px image (efficientnet_b0 at 224 px: 5.3M, 400M)."""

    feature_dim = 256
    widths = (32, 64, 128, 256)

    def __init__(self, channels: int = 3):
        super().__init__()
        first = self.widths[0]
        self.stem = nn.Sequential(nn.Conv2d(channels, first, 3, 2, 1, bias=False), nn.BatchNorm2d(first),
                                  nn.ReLU(inplace=True))
        blocks, width = [], first
        for i, out in enumerate(self.widths):
            blocks.append(BasicBlock(width, out, stride=1 if i == 0 else 2))
            width = out
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.blocks(self.stem(x)))


class PairHead(nn.Module):
    """Combines two feature vectors (absdiff, product or concat) into one 'same' logit."""

    def __init__(self, feature_dim: int, combine: str, norm: bool, dropout: float):
        super().__init__()
        self.combine = combine
        width = 2 * feature_dim if combine == "concat" else feature_dim
        layers = [nn.BatchNorm1d(width)] if norm else []
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(width, 1))
        self.classifier = nn.Sequential(*layers)

    def forward(self, fa: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
        if self.combine == "absdiff":
            joined = (fa - fb).abs()
        elif self.combine == "product":
            joined = fa * fb
        else:
            joined = torch.cat([fa, fb], dim=1)
        return self.classifier(joined).squeeze(1)


class EmbeddingHead(nn.Module):
    """Linear projection to the embedding, L2-normalised so distances lie in [0, 2].

    With `neck`, a BatchNorm between projection and normalisation (the "BNNeck" of re-identification,
    Luo et al. 2019): it centres the embedding, which the cosine identity loss and triplet loss both like.
    """

    def __init__(self, feature_dim: int, embedding_dim: int, neck: bool = False):
        super().__init__()
        self.proj = nn.Linear(feature_dim, embedding_dim, bias=not neck)
        self.neck = nn.BatchNorm1d(embedding_dim) if neck else nn.Identity()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.neck(self.proj(features)), dim=1)


class SiameseNet(nn.Module):
    """One backbone with shared weights; a pair head (mode 'pair') or an embedding head."""

    def __init__(self, backbone: nn.Module, feature_dim: int, spec: dict):
        super().__init__()
        self.spec = dict(spec)
        self.backbone = backbone
        channels = spec["channels"]
        mean = spec.get("mean") or ([0.5] * channels)
        std = spec.get("std") or ([0.5] * channels)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        if spec["mode"] == "pair":
            self.pair_head = PairHead(feature_dim, spec["head"], spec["head_norm"], spec["dropout"])
            self.embedding_head = None
        else:
            self.pair_head = None
            self.embedding_head = EmbeddingHead(feature_dim, spec["embedding_dim"], bool(spec.get("neck")))
        # Test-time flip: in eval mode an image's vector is the mean of its own and its mirror image's.
        self.flip_test = bool(spec.get("flip_test"))

    @property
    def is_embedding(self) -> bool:
        return self.embedding_head is not None

    def embed(self, images: torch.Tensor, images_per_pass: Optional[int] = None) -> torch.Tensor:
        """Images in [0, 1] -> vectors: the embedding, or for pair models the backbone features.

        With `images_per_pass`, the backbone sees at most that many images at a time (see images_per_pass()).
        """
        if images_per_pass and len(images) > images_per_pass:
            return torch.cat([self.embed(chunk) for chunk in images.split(images_per_pass)])
        if self.flip_test and not self.training:
            both = self._vectors(torch.cat([images, images.flip(-1)]))
            mean = sum(both.chunk(2)) / 2
            return F.normalize(mean, dim=1) if self.is_embedding else mean
        return self._vectors(images)

    def _vectors(self, images: torch.Tensor) -> torch.Tensor:
        features = self.backbone((images - self.mean) / self.std)
        return self.embedding_head(features) if self.is_embedding else features

    def pair_scores(self, va: torch.Tensor, vb: torch.Tensor) -> torch.Tensor:
        """Similarity in [0, 1], higher = more alike: sigmoid of the logit, or 1 - distance / 2."""
        if self.is_embedding:
            return 1.0 - (va - vb).norm(dim=1) / 2.0
        return torch.sigmoid(self.pair_head(va, vb))

    def forward(self, a: torch.Tensor, b: torch.Tensor, images_per_pass: Optional[int] = None) -> torch.Tensor:
        """Logits (pair) or distances (embedding) for pairs: both sides go through the backbone together."""
        vectors = self.embed(torch.cat([a, b]), images_per_pass)
        va, vb = vectors.chunk(2)
        if self.is_embedding:
            return (va - vb).norm(dim=1)
        return self.pair_head(va, vb)


# ---------------------------------------------------------------- building

def parse_backbone(name: str):
    """'timm:efficientnet_b0' -> ('timm', 'efficientnet_b0'); 'convnet' -> ('convnet', '')."""
    if name in ("convnet", "small-resnet"):
        return name, ""
    family, _, model = name.partition(":")
    if family not in ("timm", "torchvision") or not model:
        raise UserError(f"Unknown backbone '{name}'. {BACKBONE_HELP}")
    return family, model


def check_backbone(name: str) -> None:
    """Raise a UserError (with close matches) when `name` names no backbone timm or torchvision has."""
    family, model = parse_backbone(name)
    if family == "timm":
        import timm

        if not timm.is_model(model):
            raise _unknown_model("timm", model, timm.list_models())
    elif family == "torchvision":
        import torchvision

        known = torchvision.models.list_models(module=torchvision.models)
        if model not in known:
            raise _unknown_model("torchvision", model, known)


def _unknown_model(family: str, model: str, known) -> UserError:
    close = difflib.get_close_matches(model, list(known), n=3)
    hint = f" Did you mean {', '.join(f'{family}:{c}' for c in close)}?" if close else ""
    return UserError(f"'{family}:{model}' is not a {family} model.{hint} {BACKBONE_HELP}")


REACHABLE_SECONDS = 60.0  # how long an answer is kept: a server started offline sees the network come back
_reachable_answers: dict = {}  # (host, port) -> (time.monotonic() when asked, answer)


def reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """Can this machine open a connection to `host`? Asked again once the last answer is REACHABLE_SECONDS old,
    so that page reruns and runs do not each wait `timeout` seconds on a machine that is offline."""
    kept = _reachable_answers.get((host, port))
    if kept is not None and time.monotonic() - kept[0] < REACHABLE_SECONDS:
        return kept[1]
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        answer = True
    except OSError:
        answer = False
    _reachable_answers[(host, port)] = (time.monotonic(), answer)
    return answer


def cached_timm_weights(model: str) -> Optional[str]:
    """The file of timm's pretrained weights for `model` already on this machine (the Hugging Face cache,
    or torch.hub's for weights published by URL), found without the network; None when there is none."""
    import timm
    from huggingface_hub import try_to_load_from_cache

    cfg = timm.models.get_pretrained_cfg(model)
    if cfg is None:
        return None
    if cfg.hf_hub_id:
        for name in ("model.safetensors", "pytorch_model.bin"):
            found = try_to_load_from_cache(cfg.hf_hub_id, name)
            if isinstance(found, str):
                return found
    if cfg.url:
        path = Path(torch.hub.get_dir()) / "checkpoints" / Path(cfg.url).name
        if path.is_file():
            return str(path)
    return None


def _warn_no_weights(name: str, exc: Exception) -> None:
    text = str(exc).lower()
    offline = isinstance(exc, OSError) or "offline" in text or "cache" in text
    why = "this machine is offline and they are not in the local cache" if offline else type(exc).__name__
    log.warning("Pretrained weights for %s could not be loaded (%s): training starts from random weights instead, "
                "which needs more data and epochs. Name a local weights file with --weights to use one.", name, why)


def _timm_backbone(model: str, channels: int, pretrained: bool):
    import timm

    check_backbone(f"timm:{model}")
    if pretrained:
        try:
            # Offline, timm is handed the cached file itself, instead of retrying an unreachable hub for a
            # minute (an argument of this call: nothing process-wide changes under other sessions).
            overlay = None
            if not reachable("huggingface.co"):
                cached = cached_timm_weights(model)
                if cached is None:
                    raise OSError("offline, and the weights are not in the local cache")
                overlay = {"file": cached}
            return timm.create_model(model, pretrained=True, num_classes=0, in_chans=channels,
                                     pretrained_cfg_overlay=overlay), True
        except Exception as exc:
            _warn_no_weights(f"timm:{model}", exc)
    return timm.create_model(model, pretrained=False, num_classes=0, in_chans=channels), False


def _strip_classifier(net: nn.Module) -> nn.Module:
    """Replace the last Linear layer (the ImageNet classifier) with Identity, so the net returns features."""
    last_name = None
    for name, module in net.named_modules():
        if isinstance(module, nn.Linear):
            last_name = name
    if last_name is None:
        if isinstance(getattr(net, "classifier", None), nn.Sequential):
            # squeezenet: its classifier is a 1x1 convolution to 1,000 classes; pool the features instead
            net.classifier = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        return net
    parent = net
    *path, leaf = last_name.split(".")
    for part in path:
        parent = getattr(parent, part)
    setattr(parent, leaf, nn.Identity())
    return net


def _torchvision_backbone(model: str, pretrained: bool):
    import torchvision

    check_backbone(f"torchvision:{model}")
    net, got_weights = None, False
    if pretrained:
        try:
            net = torchvision.models.get_model(model, weights="DEFAULT")
            got_weights = True
        except Exception as exc:
            _warn_no_weights(f"torchvision:{model}", exc)
    if net is None:
        net = torchvision.models.get_model(model, weights=None)
    if hasattr(net, "aux_logits"):  # inception/googlenet: their auxiliary classifiers are training-only extras
        net.aux_logits = False
        for aux in ("AuxLogits", "aux1", "aux2"):
            if hasattr(net, aux):
                setattr(net, aux, None)
    return _strip_classifier(net), got_weights


def load_weights_file(module: nn.Module, path) -> None:
    """Load a local state dict (a .pth/.pt of tensors, or .safetensors) into a backbone, by matching names."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"The weights file '{path}' does not exist: check the path.")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise UserError(f"'{path}' is not a weights file that can be loaded safely ({type(exc).__name__}).") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise UserError(f"'{path}' does not hold a state dict of named tensors.")
    if any(k.startswith("backbone.") for k in state):  # a Siamese Studio checkpoint: its backbone's tensors
        state = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    own = module.state_dict()
    usable = {k: v for k, v in state.items() if k in own and getattr(v, "shape", None) == own[k].shape}
    if not usable:
        raise UserError(f"None of the tensors in '{path}' fit this backbone: is it the weights of another model?")
    module.load_state_dict(usable, strict=False)
    if len(usable) < len(own):
        log.warning("%d of the backbone's %d tensors were not in %s (or had other shapes): they keep random values.",
                    len(own) - len(usable), len(own), path)
    log.info("Loaded %d of %d tensors of the backbone from %s.", len(usable), len(own), path)


def model_spec(config) -> dict:
    """The part of a TrainConfig that defines the network: stored in every checkpoint."""
    family, _ = parse_backbone(config.backbone)
    imagenet = family in ("timm", "torchvision") and config.channels == 3
    return {
        "backbone": config.backbone,
        "mode": config.mode,
        "head": config.head,
        "head_norm": config.head_norm,
        "dropout": config.dropout,
        "embedding_dim": config.embedding_dim,
        "image_size": image_size_value(*image_hw(config.image_size)),  # a whole number when square, else [h, w]
        "channels": config.channels,
        "input": config.input,
        "neck": config.neck,
        "flip_test": config.flip_test,
        "mean": list(IMAGENET_MEAN) if imagenet else [0.5] * config.channels,
        "std": list(IMAGENET_STD) if imagenet else [0.5] * config.channels,
    }


def build_model(spec: dict, pretrained: bool = False, weights: Optional[str] = None) -> SiameseNet:
    """Build the Siamese network described by `spec` (see model_spec)."""
    family, model = parse_backbone(spec["backbone"])
    if family == "convnet":
        if any(side % 4 for side in image_hw(spec["image_size"])):
            raise UserError("The convnet backbone needs an image size divisible by 4 (it is made for 28).")
        backbone, loaded_pretrained = DigitConvNet(spec["channels"], spec["image_size"]), False
    elif family == "small-resnet":
        backbone, loaded_pretrained = SmallResNet(spec["channels"]), False
    elif family == "timm":
        backbone, loaded_pretrained = _timm_backbone(model, spec["channels"], pretrained and not weights)
    else:
        if spec["channels"] != 3:
            raise UserError("torchvision backbones take colour images: use --channels 3.")
        backbone, loaded_pretrained = _torchvision_backbone(model, pretrained and not weights)
    if weights:
        load_weights_file(backbone, weights)
    net = SiameseNet(backbone, _feature_dim(backbone, spec), spec)
    net.weights_source = (f"local file {weights}" if weights else "pretrained" if loaded_pretrained
                          else "random initialisation")
    return net


def state_dict_problem(spec: dict, state_dict: dict) -> Optional[str]:
    """What keeps `state_dict` from loading into the network `spec` describes, in words; None when it fits.

    The network is built on the meta device (shapes only, no memory), so a checkpoint whose spec asks
    for an enormous network is refused before anything is allocated."""
    try:
        with torch.device("meta"):
            expected = build_model(spec, pretrained=False).state_dict()
    except UserError as exc:
        return str(exc).rstrip(".")
    except Exception as exc:  # a spec no backbone can be built from
        return f"its network description cannot be built ({type(exc).__name__})"
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    if missing or unexpected:
        return f"its weights do not fit its network ({len(missing)} missing, {len(unexpected)} unexpected)"
    wrong = [k for k, v in expected.items() if tuple(v.shape) != tuple(state_dict[k].shape)]
    if wrong:
        return f"its weights do not fit its network ({len(wrong)} of another shape, e.g. {wrong[0]})"
    return None


def _feature_dim(backbone: nn.Module, spec: dict) -> int:
    known = getattr(backbone, "num_features", None) or getattr(backbone, "feature_dim", None)
    if isinstance(known, int):
        return known
    was_training = backbone.training
    backbone.eval()
    with torch.inference_mode():
        out = backbone(torch.zeros(1, spec["channels"], *image_hw(spec["image_size"])))
    backbone.train(was_training)
    return int(out.flatten(1).shape[1])


def as_model_input(images: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    """uint8 images (B, C, H, W) -> floats in [0, 1] on `device`, in the memory layout the model runs in."""
    x = images.to(device, non_blocking=True).float().div_(255.0)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@torch.inference_mode()
def embed_in_batches(net, n: int, batch: Callable[[int, int], torch.Tensor], device: torch.device,
                     batch_size: int = 256, channels_last: bool = False,
                     on_batch: Optional[Callable[[int], None]] = None, per_pass: Optional[int] = None) -> torch.Tensor:
    """The one embedding loop: vectors (n, D) on `device` of the images `batch(start, stop)` gives
    (uint8 (B, C, S, S)), `batch_size` at a time, the backbone seeing `per_pass` (default images_per_pass())
    at once (siamese_core.models.memory.plan gives both within the memory budget); `on_batch(stop)` after
    each batch (for progress bars)."""
    out = []
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        x = as_model_input(batch(start, stop), device, channels_last)
        out.append(net.embed(x, per_pass or images_per_pass(device, tuple(x.shape[-2:]))).float())
        if on_batch:
            on_batch(stop)
    return torch.cat(out) if out else torch.zeros((0, 1), device=device)


@torch.inference_mode()
def embed_set(model, image_set, positions, device, batch_size: int = 256,
              channels_last: bool = False, per_pass: Optional[int] = None) -> torch.Tensor:
    """Vectors of the images at `positions`, in batches."""
    return embed_in_batches(model, len(positions), lambda i, j: image_set.batch(positions[i:j]), device,
                            batch_size, channels_last, per_pass=per_pass)


# How many pixels one backbone pass may hold on a CPU before its activations spill out of the caches.
CPU_PASS_PIXELS = 16 * 128 * 128


def images_per_pass(device: torch.device, image_size) -> Optional[int]:
    """How many images the backbone should see at once on `device` (None: the whole batch).

    Measured with efficientnet_b0 on this 2-core CPU, training on 64 images of 224 px per pass:
    5 pairs/s; in passes of 8 to 16 images: 10 to 12 pairs/s (and +24% at 128 px in passes of 16).
    Small images (the 28 px digits) still go in one pass; GPUs want the biggest batches they can get.
    """
    if device.type != "cpu":
        return None
    height, width = image_hw(image_size)  # a whole number (a square) or (height, width): sized by the pixels
    return max(8, CPU_PASS_PIXELS // (height * width))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def pick_device(name: str = "auto") -> torch.device:
    """'auto' picks cuda, then Apple's mps, then the CPU."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"Unknown device '{name}': use auto, cpu, cuda or mps.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for, but no CUDA GPU is available here: use --device auto or cpu.")
    if device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UserError("--device mps was asked for, but Apple's MPS is not available here: use --device auto or cpu.")
    return device
