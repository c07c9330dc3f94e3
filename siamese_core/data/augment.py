"""Training-time augmentation of image batches, done on tensors (never on files).

A policy names what a user's images may differ by that the model should not care about:
- "none":   nothing;
- "shift":  random shifts of up to 8% (and mirror images for colour): the earlier `--augment`;
- "photos": crops, flips, rotation, brightness/contrast/colour changes and random erasing;
- "digits": what separates a photographed digit from an MNIST one after the digit input
            pipeline (stroke width, blur, noise, contrast, small rotations and shifts); never flips;
- "ink":    writing after the ink pipeline: warps only (rotation, scale, shear, shift); never flips, and no
            stroke-width or darkness changes (they are what tells a skilled forgery; measured in issue 23's research).

Every warp is a true rotation in pixels whatever the image's height x width: the sampling grid runs from -1 to 1
on both sides, so its off-diagonal terms are scaled by the aspect (_rotation).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

POLICIES = ("none", "shift", "photos", "digits", "ink")
# The digits policy's largest shift, in pixels (after normalize_digit centring is within ~1 pixel).
SHIFT_PIXELS = 2.0


def apply(x: torch.Tensor, policy: str) -> torch.Tensor:
    """Augment a float batch (B, C, H, W) in [0, 1] by `policy`; returns a new tensor."""
    if policy == "none":
        return x
    if policy == "shift":
        return shift(x, flip=x.shape[1] == 3)
    if policy == "photos":
        return photos(x)
    if policy == "digits":
        return augment_digits(x)
    if policy == "ink":
        return augment_ink(x)
    raise ValueError(f"unknown augmentation policy {policy!r}")


def _rotation(theta: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """The affine `theta`'s linear part made to act in pixels on an h x w image: grid x runs over w pixels and
    grid y over h, so a rotation written for a square turns into a shear on a wide image unless the x-from-y term
    is divided, and the y-from-x term multiplied, by w / h. A square image is left exactly as it was."""
    if h != w:
        theta = theta.clone()
        theta[:, 0, 1] = theta[:, 0, 1] * (h / w)
        theta[:, 1, 0] = theta[:, 1, 0] * (w / h)
    return theta


def _identity_theta(n: int, device) -> torch.Tensor:
    theta = torch.zeros(n, 2, 3, device=device)
    theta[:, 0, 0] = 1.0
    theta[:, 1, 1] = 1.0
    return theta


def _warp(x: torch.Tensor, theta: torch.Tensor, padding: str = "border") -> torch.Tensor:
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, padding_mode=padding, align_corners=False)


def shift(x: torch.Tensor, flip: bool) -> torch.Tensor:
    """Random shifts of up to 8% (and mirror images when `flip`)."""
    n = x.shape[0]
    theta = _identity_theta(n, x.device)
    if flip:
        theta[:, 0, 0] = torch.where(torch.rand(n, device=x.device) < 0.5, -1.0, 1.0)
    theta[:, :, 2] = (torch.rand(n, 2, device=x.device) - 0.5) * 0.16
    return _warp(x, theta)


def photos(x: torch.Tensor) -> torch.Tensor:
    """Photo augmentation in one warp and a few tensor ops: mirror, zoom 0.85-1.15 (crop or pad),
    shift up to 10%, rotation up to 10 degrees; brightness and contrast +-25% and, for colour,
    saturation +-25%; then a random rectangle (up to a third of the image) erased with noise
    in half of the images (random erasing, Zhong et al. 2017)."""
    n, c, h, w = x.shape
    dev = x.device
    angle = (torch.rand(n, device=dev) - 0.5) * (2 * math.radians(10))
    scale = 1.0 / (0.85 + 0.3 * torch.rand(n, device=dev))
    mirror = torch.where(torch.rand(n, device=dev) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0] = scale * torch.cos(angle) * mirror
    theta[:, 0, 1] = -scale * torch.sin(angle)
    theta[:, 1, 0] = scale * torch.sin(angle) * mirror
    theta[:, 1, 1] = scale * torch.cos(angle)
    theta[:, :, 2] = (torch.rand(n, 2, device=dev) - 0.5) * 0.2
    x = _warp(x, _rotation(theta, h, w), padding="reflection")
    brightness = 1.0 + (torch.rand(n, 1, 1, 1, device=dev) - 0.5) * 0.5
    contrast = 1.0 + (torch.rand(n, 1, 1, 1, device=dev) - 0.5) * 0.5
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * contrast + mean * brightness
    if c == 3:
        saturation = 1.0 + (torch.rand(n, 1, 1, 1, device=dev) - 0.5) * 0.5
        grey = x.mean(dim=1, keepdim=True)
        x = (x - grey) * saturation + grey
    x = x.clamp(0.0, 1.0)
    return random_erase(x, probability=0.5)


def random_erase(x: torch.Tensor, probability: float = 0.5, max_area: float = 0.33) -> torch.Tensor:
    """Fill one random rectangle per image (in a share `probability` of images) with noise."""
    n, _, h, w = x.shape
    dev = x.device
    area = (0.02 + (max_area - 0.02) * torch.rand(n, device=dev)) * h * w
    aspect = torch.exp((torch.rand(n, device=dev) - 0.5) * 2 * math.log(3.0))
    eh = (area * aspect).sqrt().clamp(1, h).long()
    ew = (area / aspect).sqrt().clamp(1, w).long()
    top = (torch.rand(n, device=dev) * (h - eh + 1)).long()
    left = (torch.rand(n, device=dev) * (w - ew + 1)).long()
    rows = torch.arange(h, device=dev)[None, :, None]
    cols = torch.arange(w, device=dev)[None, None, :]
    box = ((rows >= top[:, None, None]) & (rows < (top + eh)[:, None, None])
           & (cols >= left[:, None, None]) & (cols < (left + ew)[:, None, None]))
    box &= (torch.rand(n, device=dev) < probability)[:, None, None]
    return torch.where(box[:, None], torch.rand_like(x), x)


def augment_digits(x: torch.Tensor) -> torch.Tensor:
    """What still separates a photographed digit from an MNIST one after normalize_digit, drawn at random
    per image of a float batch (B, 1, H, W) in [0, 1]: a small affine warp (rotation up to 12 degrees,
    scale 0.85-1.1, shear, shift up to 2 pixels), thicker or thinner strokes, blur, noise, and a gamma
    change. Never a mirror image: a mirrored 2 is not a 2."""
    n, _, h, w = x.shape
    dev = x.device
    x = _affine(x)
    x = _stroke_width(x, torch.randint(0, 3, (n,), device=dev))
    blur = F.avg_pool2d(F.pad(x, (1, 1, 1, 1)), 3, stride=1)
    amount = torch.rand(n, 1, 1, 1, device=dev) * (torch.rand(n, 1, 1, 1, device=dev) < 0.4)
    x = x + (blur - x) * amount
    gamma = torch.exp((torch.rand(n, 1, 1, 1, device=dev) - 0.5) * 2 * math.log(1.6))
    x = x.clamp(0.0, 1.0) ** gamma
    noise = torch.randn_like(x) * (0.06 * torch.rand(n, 1, 1, 1, device=dev))
    return (x + noise).clamp(0.0, 1.0)


def _affine(x: torch.Tensor) -> torch.Tensor:
    n, _, h, w = x.shape
    dev = x.device
    angle = (torch.rand(n, device=dev) - 0.5) * 2 * math.radians(12)
    shear = (torch.rand(n, device=dev) - 0.5) * 0.3
    zoom = 1.0 / (0.85 + 0.25 * torch.rand(n, device=dev))  # the sampling grid shrinks as the digit grows
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0] = zoom * cos
    theta[:, 0, 1] = zoom * (-sin + shear * cos)
    theta[:, 1, 0] = zoom * sin
    theta[:, 1, 1] = zoom * (cos + shear * sin)
    pixel = 2.0 / torch.tensor([w, h], device=dev)  # one pixel in the grid's [-1, 1] coordinates (x, y)
    theta[:, :, 2] = (torch.rand(n, 2, device=dev) * 2 - 1) * SHIFT_PIXELS * pixel
    return _warp(x, _rotation(theta, h, w), padding="zeros")


def _stroke_width(x: torch.Tensor, change: torch.Tensor) -> torch.Tensor:
    """change 0: as is; 1: thicker (a 3x3 maximum); 2: thinner (a 2x2 minimum, gentler than 3x3)."""
    thicker = F.max_pool2d(x, 3, stride=1, padding=1)
    thinner = -F.max_pool2d(F.pad(-x, (0, 1, 0, 1), value=-1.0), 2, stride=1)
    pick = change.view(-1, 1, 1, 1)
    return torch.where(pick == 1, thicker, torch.where(pick == 2, thinner, x))


# The ink policy's warp (issue 23's research, ink at 48x112 on new signers): small, as a hand varies.
INK_ROTATION_DEGREES = 5.0


def augment_ink(x: torch.Tensor) -> torch.Tensor:
    """Writing on a black field of any height x width (the ink pipeline): one affine warp per image, a true
    rotation in pixels whatever the field's shape (up to 5 degrees), scale 0.9-1.1 with a little independent
    stretch, shear up to 0.15, shift up to 3% of each side. Never a mirror image."""
    n, _, h, w = x.shape
    dev = x.device
    angle = (torch.rand(n, device=dev) - 0.5) * 2 * math.radians(INK_ROTATION_DEGREES)
    shear = (torch.rand(n, device=dev) - 0.5) * 0.3
    sx = 1.0 / (0.9 + 0.2 * torch.rand(n, device=dev))
    sy = sx * (0.93 + 0.14 * torch.rand(n, device=dev))
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.zeros(n, 2, 3, device=dev)
    theta[:, 0, 0] = sx * cos
    theta[:, 0, 1] = sx * (-sin + shear * cos)
    theta[:, 1, 0] = sy * sin
    theta[:, 1, 1] = sy * cos
    theta[:, :, 2] = (torch.rand(n, 2, device=dev) - 0.5) * 0.06 * 2
    return _warp(x, _rotation(theta, h, w), padding="zeros")
