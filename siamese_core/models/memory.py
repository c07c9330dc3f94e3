"""What a model's work will take in memory, estimated before it runs, against SIAMESE_MEMORY_BUDGET_GB.

A checkpoint is a small file that can ask for a great deal: `small-resnet` at 1024 px holds 64 MB in one
layer's output per image, and the 1,797 built-in digits decoded at that size take 5.6 GB. So before a
model is used, and before a gallery or a map decodes its images, the memory is estimated and compared with
the budget (the most one model's work may take above the idle server): what cannot fit is refused with
a sentence, and embedding goes in batches small enough to fit.

The estimate, in bytes:
- the weights: every parameter and buffer of the network;
- a batch of B images: their uint8 pixels and the float copy the network reads, 5 bytes per pixel and channel;
- one pass of P images through the backbone: P x PEAK_FACTOR x the largest (input + output) of any of its
  layers, measured on the meta device (shapes only, nothing allocated). On this CPU, under inference_mode,
  the peak measured 1.7 to 2.6 times that for small-resnet at 512 and 1024 px, efficientnet_b0 and resnet18
  at 224 px (a layer's input, its output, a residual's sum and the convolution's own buffers live at once);
  the mirror image (flip_test) doubles the images in a pass;
- a pass that keeps its graph for a gradient (explanations): every layer's output, summed;
- OVERHEAD for torch's own buffers (20 to 30 MB measured).
The weights and activations count on the CPU only: on a GPU they live in its own memory.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Optional

from .. import settings
from ..config import image_hw
from ..errors import UserError

OVERHEAD = 64 * 2**20
PEAK_FACTOR = 3
FLOAT = 4  # bytes per number of the network's activations (float32)
BATCH_SHARE = 4  # a batch's pixels take at most 1/BATCH_SHARE of the room left after the weights
# When the network cannot run on the meta device, one image is taken to hold this many channels of float32 at
# full resolution, in and out (more than any backbone here holds at its widest layer's resolution).
_FALLBACK_CHANNELS = 96


@dataclass(frozen=True)
class Needs:
    """A network's memory, in bytes: its weights, one image in a backbone pass (mirror image included), the
    same with the pass's graph kept for a gradient, and one decoded image (uint8) as a gallery keeps it."""

    weights: int
    per_image: int
    per_image_graph: int
    pixels: int

    def batch(self, images: int, per_pass: int, graph: bool = False) -> int:
        """Bytes for `images` decoded images (uint8 and float) going through the backbone `per_pass` at a time."""
        per_image = self.per_image_graph if graph else self.per_image
        return self.weights + OVERHEAD + images * self.pixels * 5 + min(per_pass, images) * per_image


def budget_bytes() -> int:
    return settings.memory_budget_bytes()


def size_words(n: float) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{max(1, round(n / 2**20))} MB"


def _budget_words() -> str:
    return f"the {size_words(budget_bytes())} this server allows one model's work (SIAMESE_MEMORY_BUDGET_GB)"


def needs(spec: dict) -> Needs:
    """The memory the network of `spec` (a checkpoint's network description) needs; measured once per spec."""
    return _needs(json.dumps(spec, sort_keys=True, default=str))


@functools.lru_cache(maxsize=32)
def _needs(spec_json: str) -> Needs:
    import torch

    from .networks import build_model

    spec = json.loads(spec_json)
    size, channels = image_hw(spec["image_size"]), int(spec["channels"])  # (height, width)
    area = size[0] * size[1]
    views = 2 if spec.get("flip_test") else 1
    with torch.device("meta"):
        net = build_model(spec, pretrained=False).eval()
    weights = sum(t.numel() * t.element_size() for t in net.state_dict().values())
    widest, total = _activations(net, channels, size)
    if widest is None:
        widest = total = 2 * _FALLBACK_CHANNELS * area
    return Needs(weights=weights, per_image=views * PEAK_FACTOR * widest * FLOAT, per_image_graph=views * total * FLOAT,
                 pixels=channels * area)


def _activations(net, channels: int, size: tuple) -> tuple[Optional[int], Optional[int]]:
    """(the largest input + output of one layer, the sum of every layer's output), in numbers, for one image
    through the backbone on the meta device; (None, None) when the network cannot run there."""
    import torch

    def numbers(value) -> int:
        if isinstance(value, torch.Tensor):
            return value.numel()
        if isinstance(value, (list, tuple)):
            return sum(numbers(v) for v in value)
        if isinstance(value, dict):
            return sum(numbers(v) for v in value.values())
        return 0

    widest, total = [0], [0]

    def record(module, inputs, output):
        out = numbers(output)
        widest[0] = max(widest[0], numbers(inputs) + out)
        total[0] += out

    leaves = [m for m in net.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(record) for m in leaves]
    try:
        with torch.no_grad():
            net._vectors(torch.zeros(1, channels, *size, device="meta"))
    except Exception:  # an operation without a meta kernel: the fallback guess instead
        return None, None
    finally:
        for hook in hooks:
            hook.remove()
    return widest[0], total[0] + channels * size[0] * size[1]


def _pixels_words(spec: dict) -> str:
    height, width = image_hw(spec.get("image_size"))
    return f"{height}x{width}"


def check_model(spec: dict, label: str = "This model") -> Needs:
    """The network's Needs, or a UserError when comparing one pair would take more than the budget."""
    found = needs(spec)
    least = found.batch(2, 2)
    if least > budget_bytes():
        raise UserError(f"{label} would need about {size_words(least)} of memory to compare one pair "
                        f"({spec.get('backbone')} at {_pixels_words(spec)} pixels), more "
                        f"than {_budget_words()}: use a model made for smaller images, or ask whoever runs the "
                        "server to raise the budget.")
    return found


def plan(spec: dict, batch_size: int, per_pass: Optional[int], on_cpu: bool = True, graph: bool = False) -> tuple:
    """(images per batch, images per backbone pass) at most `batch_size` and `per_pass` (None: the whole batch),
    fewer where the budget needs it: a batch's pixels take at most a quarter of the room left after the
    weights, a pass the rest. At least one image each (check_model says when even that is too much)."""
    found = needs(spec)
    room = budget_bytes() - OVERHEAD - (found.weights if on_cpu else 0)
    batch = max(1, min(int(batch_size), room // BATCH_SHARE // (5 * found.pixels)))
    passing = min(per_pass or batch, batch)
    if on_cpu:
        per_image = found.per_image_graph if graph else found.per_image
        passing = max(1, min(passing, (room - batch * 5 * found.pixels) // max(per_image, 1)))
    return batch, passing


def check_images_kept(count: int, size, channels: int, what: str) -> None:
    """Refuse, with a sentence, keeping `count` decoded images of `size` px in memory beyond the budget
    (`what` names them: "The 1,797 built-in digits")."""
    height, width = image_hw(size)  # a whole number (a square) or [height, width]
    kept = count * channels * height * width
    if kept > budget_bytes():
        raise UserError(f"{what} at {height}x{width} pixels would take {size_words(kept)} of memory, more than "
                        f"{_budget_words()}: use a model made for smaller images, or fewer images.")


def pairs_per_pass(spec: dict, wanted: int, label: str = "Explaining this pair") -> int:
    """How many pairs a gradient pass (explanations: every layer's output kept) may take at once within the
    budget, at most `wanted`; a UserError when not even one pair fits."""
    found = needs(spec)
    room = budget_bytes() - OVERHEAD - found.weights
    one_pair = 2 * (5 * found.pixels + found.per_image_graph)
    if one_pair > room:
        raise UserError(f"{label} would need about {size_words(one_pair + found.weights + OVERHEAD)} of memory "
                        f"({spec.get('backbone')} at {_pixels_words(spec)} pixels), more "
                        f"than {_budget_words()}.")
    return max(1, min(wanted, room // one_pair))
