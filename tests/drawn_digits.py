"""Digits drawn as a hand would on the Verify page's pad: strokes (lists of points, as fractions of the pad's side)
that the AppTest tests render with Pillow and the browser tests draw with the mouse."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image, ImageDraw

STROKES = {
    "3": [[(0.30, 0.20), (0.45, 0.12), (0.62, 0.15), (0.68, 0.28), (0.60, 0.42), (0.45, 0.48)],
          [(0.45, 0.48), (0.65, 0.55), (0.70, 0.70), (0.60, 0.84), (0.42, 0.87), (0.28, 0.80)]],
    "7": [[(0.25, 0.18), (0.72, 0.18), (0.50, 0.50), (0.40, 0.85)]],
}
# A second hand: the same digits smaller, shifted and a little shaky (a pen, not a ruler).
SECOND_HAND = {"scale": 0.7, "dx": 0.08, "dy": -0.05, "jitter": 0.015}


def points(digit: str, side: float, scale: float = 1.0, dx: float = 0.0, dy: float = 0.0, jitter: float = 0.0,
           seed: int = 0) -> list:
    """The digit's strokes in pixels of a pad `side` wide: a list of [(x, y), ...]."""
    rng = np.random.default_rng(seed)
    return [[((0.5 + (x - 0.5) * scale + dx + rng.normal(0, jitter)) * side,
              (0.5 + (y - 0.5) * scale + dy + rng.normal(0, jitter)) * side) for x, y in stroke]
            for stroke in STROKES[digit]]


def drawn(digit: str, side: int = 280, width: int = 18, **hand) -> np.ndarray:
    """The pad's picture after drawing `digit`, as the canvas gives it: RGBA pixels, black ink, transparent
    elsewhere (a pad with a white background gives the same file once put on white)."""
    image = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    for stroke in points(digit, side, **hand):
        pen.line(stroke, fill=(0, 0, 0, 255), width=width, joint="curve")
        for x, y in stroke:  # round ends, as a brush leaves them
            pen.ellipse([x - width / 2, y - width / 2, x + width / 2, y + width / 2], fill=(0, 0, 0, 255))
    return np.asarray(image)


def canvas_state(pixels: np.ndarray) -> dict:
    """What the drawing component keeps for its key once something is drawn: the drawing's PNG as a data URL."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()
    return {"drawing": {"raw": {"objects": [{"type": "path"}]}, "data": url}}
