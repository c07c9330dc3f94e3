"""The ROC curve and the score histograms as PNG files, drawn with Pillow.

matplotlib is not a dependency, and Plotly's static export needs kaleido and a browser; the
app draws these figures with Plotly, and the command line writes these plain pictures.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from ..files import write_png
from ..words import plural

WIDTH, HEIGHT = 640, 480
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 40, 56
GRID = (225, 225, 225)
INK = (40, 40, 40)
SAME = (31, 119, 180)  # blue, as on the page
DIFFERENT = (255, 127, 14)  # orange
THRESHOLD = (200, 0, 0)


class _Axes:
    """Maps data in [x0, x1] x [y0, y1] to pixels of the plotting area, and draws the frame."""

    def __init__(self, draw: ImageDraw.ImageDraw, x_range, y_range):
        self.draw = draw
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range

    def px(self, x: float, y: float) -> tuple:
        u = LEFT + (x - self.x0) / (self.x1 - self.x0) * (WIDTH - LEFT - RIGHT)
        v = HEIGHT - BOTTOM - (y - self.y0) / (self.y1 - self.y0) * (HEIGHT - TOP - BOTTOM)
        return u, v

    def frame(self, title: str, x_label: str, y_label: str, x_ticks, y_ticks, fmt_x=str, fmt_y=str) -> None:
        d = self.draw
        for x in x_ticks:
            u, _ = self.px(x, self.y0)
            d.line([self.px(x, self.y0), self.px(x, self.y1)], fill=GRID)
            d.text((u - 10, HEIGHT - BOTTOM + 6), fmt_x(x), fill=INK)
        for y in y_ticks:
            _, v = self.px(self.x0, y)
            d.line([self.px(self.x0, y), self.px(self.x1, y)], fill=GRID)
            d.text((8, v - 6), fmt_y(y), fill=INK)
        d.rectangle([self.px(self.x0, self.y1), self.px(self.x1, self.y0)], outline=INK)
        d.text((LEFT, 12), title, fill=INK)
        d.text((WIDTH // 2 - 4 * len(x_label), HEIGHT - 24), x_label, fill=INK)
        d.text((8, TOP - 20), y_label, fill=INK)


def _save(image: Image.Image, path) -> Path:
    write_png(Path(path), image)
    return Path(path)


def roc_png(roc: dict, point: tuple, eer: dict, path, title: str = "ROC curve") -> Path:
    """True-accept rate against false-accept rate, the chance line, the threshold's point and the EER."""
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    axes = _Axes(draw, (0.0, 1.0), (0.0, 1.0))
    ticks = [i / 5 for i in range(6)]
    axes.frame(title, "false-accept rate (different pairs called 'same')", "true-accept rate", ticks, ticks,
               lambda x: f"{x:.1f}", lambda y: f"{y:.1f}")
    for i in range(20):  # dashed chance line
        if i % 2 == 0:
            draw.line([axes.px(i / 20, i / 20), axes.px((i + 1) / 20, (i + 1) / 20)], fill=(160, 160, 160))
    if roc["fpr"]:
        draw.line([axes.px(x, y) for x, y in zip(roc["fpr"], roc["tpr"])], fill=SAME, width=3)
    if eer and eer.get("eer") == eer.get("eer"):  # not NaN
        u, v = axes.px(eer["eer"], 1.0 - eer["eer"])
        draw.rectangle([u - 4, v - 4, u + 4, v + 4], outline=INK)
        draw.text((u + 8, v - 6), f"equal error rate {100 * eer['eer']:.1f}%", fill=INK)
    far, tar = point
    if far == far and tar == tar:
        u, v = axes.px(far, tar)
        draw.ellipse([u - 6, v - 6, u + 6, v + 6], fill=THRESHOLD)
        draw.text((u + 10, v + 18), f"at the threshold: {100 * tar:.1f}% accepted, {100 * far:.1f}% false", fill=THRESHOLD)
    return _save(image, path)


def _nice_step(raw: float) -> int:
    """1, 2 or 5 times a power of ten, at least `raw`: tick labels a person reads at a glance."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= raw:
                return m * step
        step *= 10


def histogram_png(histogram: dict, threshold: float, path, class_word: str = "class") -> Path:
    """Scores of same pairs and of different pairs, side by side in each bin, with the threshold line."""
    edges, same, different = histogram["edges"], histogram["same"], histogram["different"]
    top = max(max(same, default=0), max(different, default=0), 1)
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    axes = _Axes(draw, (0.0, 1.0), (0.0, top * 1.1))
    step = _nice_step(top * 1.1 / 5)
    axes.frame("Scores of same and different pairs", "score (higher = more alike)", "pairs",
               [i / 5 for i in range(6)], list(range(0, int(top * 1.1) + 1, step)), lambda x: f"{x:.1f}", str)
    for lo, hi, n_same, n_diff in zip(edges[:-1], edges[1:], same, different):
        mid = (lo + hi) / 2
        if n_diff:
            draw.rectangle([axes.px(lo, n_diff), axes.px(mid, 0)], fill=DIFFERENT)
        if n_same:
            draw.rectangle([axes.px(mid, n_same), axes.px(hi, 0)], fill=SAME)
    u, _ = axes.px(threshold, 0)
    draw.line([(u, TOP), (u, HEIGHT - BOTTOM)], fill=THRESHOLD, width=2)
    draw.text((u + 4, TOP + 4), f"threshold {100 * threshold:.1f}%", fill=THRESHOLD)
    draw.rectangle([WIDTH - 220, TOP + 24, WIDTH - 208, TOP + 36], fill=SAME)
    draw.text((WIDTH - 202, TOP + 24), f"same {class_word}", fill=INK)
    draw.rectangle([WIDTH - 220, TOP + 44, WIDTH - 208, TOP + 56], fill=DIFFERENT)
    draw.text((WIDTH - 202, TOP + 44), f"different {plural(class_word)}", fill=INK)
    return _save(image, path)
