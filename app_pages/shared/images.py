"""Images as a person sees them on a page."""

from __future__ import annotations


def enlarged(image, side: int):
    """Small images scaled up to `side` pixels with sharp pixels (a blurred 28-pixel digit is hard to read)."""
    from PIL import Image

    if max(image.size) >= side:
        return image
    scale = side / max(image.size)
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.NEAREST)
