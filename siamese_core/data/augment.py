"""Training-time augmentation of image batches, done on tensors (never on files).

A policy names what a user's images may differ by that the model should not care about:
- "none":   nothing;
- "shift":  random shifts of up to 8% (and mirror images for colour): the earlier `--augment`;
- "photos": crops, flips, rotation, brightness/contrast/colour changes and random erasing;
- "digits": what separates a photographed digit from an MNIST one after the digit input
            pipeline (stroke width, blur, noise, contrast, small rotations and shifts); never flips.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .digit_input import augment_digits

POLICIES = ("none", "shift", "photos", "digits")


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
    raise ValueError(f"unknown augmentation policy {policy!r}")


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
    x = _warp(x, theta, padding="reflection")
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
