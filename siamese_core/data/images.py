"""Safe decoding of user image files: size guards, orientation, any mode to grey or RGB, and back to a picture.

What an image then becomes for a model is its input pipeline's work (siamese_core.data.pipelines)."""

from __future__ import annotations

import functools
import io
import os
import threading
import warnings
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .. import settings
from ..errors import UserError
from ..files import OutsideRoot, open_inside

# File endings of the formats Pillow reads that people keep image collections in.
IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm", ".pnm"}
)
# The Pillow decoders those formats need, and no other: a file is decoded by what it holds, not by its name,
# so a file named .png holding another format Pillow knows (EPS runs Ghostscript; PSD, ICNS, FITS...) is
# refused like any file that is not an image. MPO is how Pillow opens many cameras' JPEGs; DIB is a BMP.
DECODERS = ("PNG", "JPEG", "MPO", "BMP", "DIB", "GIF", "TIFF", "WEBP", "PPM")
# How those formats begin (their magic numbers): what `holds_image` checks when images are listed.
_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*")
# Smaller than this is too little to tell anything apart (the built-in digits are 8x8).
MIN_SIDE = 8
# Images above LARGE_PIXELS decode one at a time in this process, whatever the number of sessions, and are
# reduced at once to at most KEPT_SIDE pixels a side (JPEGs decode reduced, through Pillow's draft mode):
# so the server holds one large decode at a time. 2048 px is ten times what any model here takes (224).
LARGE_PIXELS = 4_000_000
KEPT_SIDE = 2048
_LARGE_DECODE = threading.Lock()

ImageInput = Union[str, os.PathLike, bytes, Image.Image, np.ndarray]


@functools.lru_cache(maxsize=1)
def _decoders() -> tuple:
    """DECODERS that this Pillow has (all its plugins registered once: Image.open alone registers only a few)."""
    Image.init()
    return tuple(f for f in DECODERS if f in Image.OPEN)


def is_image_file(path: Path) -> bool:
    """Named as an image (by its ending; nothing is read): see holds_image for what the file holds."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def holds_image(path: Path) -> bool:
    """A file named as an image whose first bytes are those of one of the formats read here (a zip renamed
    .png is not): for listing and counting images without decoding them (16 bytes read per file)."""
    if not is_image_file(path):
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:  # a folder, a broken link, a file gone or unreadable
        return False
    if head.startswith(_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return True
    return len(head) >= 3 and head[:1] == b"P" and head[1:2] in b"123456" and head[2:3].isspace()  # PNM


def _opened(path: Path):
    """`path` for Pillow to open: a file inside the data root (SIAMESE_DATA_ROOT) is opened without following
    a link swapped in since it was listed (siamese_core.files.open_inside); any other path as it is."""
    root = settings.data_root()
    if root is None:
        return path
    try:
        if not (path.absolute().is_relative_to(root.absolute())
                or Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))):
            return path
    except (OSError, ValueError):
        return path
    return open_inside(root, path)


def _describe(source) -> str:
    """How a message starts: the path as given (never re-cased), or 'The uploaded file' for bytes."""
    if isinstance(source, (str, os.PathLike)):
        return f"'{source}'"
    return "The uploaded file"


def open_image(source: ImageInput) -> Image.Image:
    """Decode a path, raw bytes, PIL image or array into an upright PIL image.

    Raises UserError for anything that is not a readable image of sensible size.
    """
    return open_image_with_notes(source)[0]


def open_image_with_notes(source: ImageInput) -> tuple[Image.Image, list]:
    """Like open_image, and what was done to the file on the way, in plain words (for showing people).

    Notes say when an animated image was reduced to its first frame and when a photo was turned
    upright from its orientation tag; see conversion_notes for what a model's mode changes.
    """
    if isinstance(source, Image.Image):
        return _upright(source, [])
    if isinstance(source, np.ndarray):
        return _from_array(source), []
    name = _describe(source)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.exists():
            raise UserError(f"{name} does not exist: check the path.")
        if path.is_dir():
            raise UserError(f"{name} is a folder, not an image file.")
        try:
            fp = _opened(path)
        except OutsideRoot:
            raise UserError(f"{name} leads outside the data folder (a link): it was not read.") from None
        except OSError as exc:
            raise UserError(f"{name} could not be opened ({exc.strerror or type(exc).__name__}).") from None
    else:
        if not len(source):
            raise UserError(f"{name} is empty (0 bytes): choose the image again.")
        fp = io.BytesIO(source)
    try:
        return _decode(fp, name)
    finally:
        if fp is not source and hasattr(fp, "close"):  # a file opened here (Pillow closes only what it opens)
            fp.close()


def _decode(fp, name: str) -> tuple[Image.Image, list]:
    notes = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fp, formats=_decoders()) as img:
                # Image.open reads the header only: refuse huge images before decoding a pixel.
                width, height = img.size
                cap = settings.max_image_pixels()  # 64 megapixels by default: far more than any photo needs
                if width * height > cap:
                    raise UserError(
                        f"{name} is {width}x{height} pixels, more than the limit of {cap / 1e6:g} megapixels "
                        "(SIAMESE_MAX_IMAGE_MEGAPIXELS): make it smaller and try again."
                    )
                frames = getattr(img, "n_frames", 1)
                if frames > 1:
                    notes.append(f"animated ({frames} frames): the first frame is used")
                img.seek(0)
                if width * height <= LARGE_PIXELS:
                    img.load()
                    return _upright(img, notes)
                with _LARGE_DECODE:
                    img.draft(img.mode, (KEPT_SIDE, KEPT_SIDE))  # JPEG: decode at 1/2, 1/4 or 1/8 scale
                    img.thumbnail((KEPT_SIDE, KEPT_SIDE))  # loads, then keeps at most KEPT_SIDE a side
                notes.append(f"{width}x{height} pixels: reduced to {img.width}x{img.height} on reading")
                return _upright(img, notes)
    except UserError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        if isinstance(exc, UnidentifiedImageError):
            raise UserError(f"{name} is not an image this app can read: use png, jpg, bmp, gif, tiff, webp or pgm.") from None
        raise UserError(f"{name} is too large to open safely: make it smaller and try again.") from None
    except (OSError, SyntaxError, ValueError) as exc:
        reason = "it is cut short" if "truncated" in str(exc) else str(exc)
        raise UserError(f"{name} is damaged or truncated and cannot be read ({reason}).") from None
    except Exception:  # noqa: BLE001 - a malformed file can make a decoder fail in any way
        raise UserError(f"{name} is damaged or truncated and cannot be read.") from None


def _upright(img: Image.Image, notes: list) -> tuple[Image.Image, list]:
    try:
        orientation = img.getexif().get(0x0112, 1)
        upright = ImageOps.exif_transpose(img) or img
    except Exception:  # noqa: BLE001 - a broken EXIF block: keep the pixels as stored
        orientation, upright = 1, img
    if orientation not in (None, 1):
        notes = notes + ["turned upright, as the camera's orientation tag says"]
    if min(upright.size) < MIN_SIDE:
        raise UserError(
            f"The image is only {upright.size[0]}x{upright.size[1]} pixels: at least {MIN_SIDE}x{MIN_SIDE} "
            "is needed to tell anything apart."
        )
    return upright, notes


def _from_array(array: np.ndarray) -> Image.Image:
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[-1] not in (1, 3):
        array = np.moveaxis(array, 0, -1)  # channels-first to channels-last
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.dtype != np.uint8:
        array = array.astype(np.float64)
        top = array.max() if array.size else 1.0
        scale = 255.0 if top <= 1.0 else 255.0 / top
        array = np.clip(array * scale, 0, 255).astype(np.uint8)
    return _upright(Image.fromarray(array), [])[0]


SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode == "P" and "transparency" in img.info)


def to_mode(img: Image.Image, channels: int) -> Image.Image:
    """Convert any mode (16-bit, CMYK, palette, alpha, ...) to grey (1) or RGB (3)."""
    target = "L" if channels == 1 else "RGB"
    if img.mode == target:
        return img
    if img.mode in SIXTEEN_BIT_MODES:
        # 16/32-bit grey: scale to 8 bits by the image's own range instead of clipping.
        arr = np.asarray(img, dtype=np.float64)
        low, high = float(arr.min()), float(arr.max())
        arr = (arr - low) * (255.0 / (high - low)) if high > low else np.zeros_like(arr)
        img = Image.fromarray(arr.astype(np.uint8))
    if has_alpha(img):
        # Transparent pixels go on white, as a viewer shows them.
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    try:
        return img.convert(target)
    except (ValueError, OSError):
        raise UserError(f"This image's colour format ({img.mode}) cannot be converted to "
                        f"{'grey' if channels == 1 else 'colour'}: save the image as PNG or JPEG and try again.") from None


def pixels_to_image(pixels: np.ndarray) -> Image.Image:
    """The inverse of to_pixels, for showing a person what the model saw."""
    pixels = np.asarray(pixels)
    if pixels.shape[0] == 1:
        return Image.fromarray(pixels[0])
    return Image.fromarray(np.ascontiguousarray(pixels.transpose(1, 2, 0)))
