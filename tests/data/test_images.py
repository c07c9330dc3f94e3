"""The guards around decoding user files: every odd image either becomes clean pixels or a clear error."""

import io

import numpy as np
import pytest
from PIL import Image

from siamese_core.data import images, pipelines
from siamese_core.errors import UserError
from siamese_core.data.images import open_image
from siamese_core.data.pipelines import load_pixels


def png_bytes(image: Image.Image, fmt="PNG", **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def gradient(w=40, h=30) -> Image.Image:
    x = np.tile(np.linspace(0, 255, w, dtype=np.uint8), (h, 1))
    return Image.fromarray(np.stack([x, x[::-1], np.full_like(x, 90)], axis=2))


def test_exif_orientation_is_applied():
    img = gradient(40, 30)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view": the stored pixels are landscape, the photo is portrait
    data = png_bytes(img, "JPEG", exif=exif.tobytes())
    upright = open_image(data)
    assert upright.size == (30, 40)


@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", "LA", "P", "CMYK", "I;16", "I", "1"])
def test_any_mode_becomes_grey_or_rgb(mode):
    img = gradient().convert("RGB")
    if mode == "I;16":
        arr = (np.asarray(img.convert("L"), dtype=np.uint16) * 200)
        img = Image.fromarray(arr)
    else:
        img = img.convert(mode)
    fmt = "TIFF" if mode in ("CMYK", "I;16", "I") else "PNG"
    for channels in (1, 3):
        px = load_pixels(png_bytes(img, fmt), 16, channels)
        assert px.shape == (channels, 16, 16) and px.dtype == np.uint8
        assert px.max() > px.min()  # content survived the conversion, not a flat image


def test_sixteen_bit_grey_uses_its_range_not_clipping():
    arr = np.linspace(0, 4000, 64 * 64).reshape(64, 64).astype(np.uint16)
    px = load_pixels(png_bytes(Image.fromarray(arr), "PNG"), 64, 1)
    assert px.min() == 0 and px.max() == 255


def test_transparent_pixels_become_white():
    rgba = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    px = load_pixels(png_bytes(rgba), 20, 3)
    assert (px == 255).all()


def test_animated_gif_uses_first_frame():
    frames = [Image.new("L", (20, 20), v) for v in (10, 200)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    px = load_pixels(buffer.getvalue(), 20, 1)
    assert abs(int(px.mean()) - 10) < 3


def test_not_an_image_is_refused_clearly(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello, I am text")
    with pytest.raises(UserError, match="not an image"):
        open_image(path)


def test_truncated_image_is_refused_clearly():
    data = png_bytes(gradient(200, 200), "JPEG")
    with pytest.raises(UserError, match="damaged or truncated"):
        open_image(data[: len(data) // 3])


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        open_image(tmp_path / "nope.png")
    with pytest.raises(UserError, match="folder"):
        open_image(tmp_path)


def test_too_small_image_is_refused():
    with pytest.raises(UserError, match="at least"):
        open_image(png_bytes(Image.new("L", (4, 4))))


def test_pixel_cap_is_checked_before_decoding(monkeypatch):
    monkeypatch.setenv("SIAMESE_MAX_IMAGE_MEGAPIXELS", "0.01")  # 100 x 100
    with pytest.raises(UserError, match="limit of 0.01 megapixels"):
        open_image(png_bytes(Image.new("L", (200, 200))))


def test_arrays_are_accepted_in_either_layout():
    arr = np.asarray(gradient(32, 32))
    a = load_pixels(arr, 32, 3)
    b = load_pixels(arr.transpose(2, 0, 1).copy(), 32, 3)
    assert np.array_equal(a, b)
    floats = load_pixels(arr.astype(np.float32) / 255.0, 32, 3)
    assert np.abs(floats.astype(int) - a.astype(int)).max() <= 1


# ---------------------------------------------------------------- guards the Verify page relies on

def test_a_huge_image_is_refused_from_its_header_alone():
    """A real BMP header claiming 9000x9000 pixels: refused before a single pixel is decoded."""
    import struct

    data = bytearray(png_bytes(Image.new("RGB", (10, 10)), "BMP"))
    data[18:26] = struct.pack("<ii", 9000, 9000)  # width, height in the BITMAPINFOHEADER; the pixels stay 10x10
    with pytest.raises(UserError, match="9000x9000 pixels, more than the limit of 64 megapixels"):
        open_image(bytes(data))
    data[18:26] = struct.pack("<ii", 20000, 20000)  # beyond Pillow's own bomb limit too
    with pytest.raises(UserError, match="megapixels|too large"):
        open_image(bytes(data))


def test_empty_upload_is_refused_clearly():
    with pytest.raises(UserError, match="empty"):
        open_image(b"")


def test_a_file_that_only_starts_like_an_image_is_refused():
    data = png_bytes(gradient(64, 64), "PNG")
    with pytest.raises(UserError, match="damaged or truncated"):
        open_image(data[:60])
    with pytest.raises(UserError, match="not an image|damaged"):
        open_image(data[:8] + b"\0" * 200)


def test_cmyk_jpeg_becomes_rgb_and_is_said_so():
    cmyk = png_bytes(gradient().convert("CMYK"), "JPEG")
    img, notes = images.open_image_with_notes(cmyk)
    assert img.mode == "CMYK"
    assert "CMYK" in " ".join(pipelines.conversion_notes(img, 3))
    px = load_pixels(cmyk, 16, 3)
    assert px.shape == (3, 16, 16) and px.max() > px.min()


def test_palette_with_transparency_and_grey_with_alpha_go_on_white():
    palette = Image.new("P", (20, 20), 0)
    palette.putpalette([0, 0, 0] * 256)
    palette.info["transparency"] = 0
    assert (load_pixels(png_bytes(palette, transparency=0), 20, 1) == 255).all()
    la = Image.new("LA", (20, 20), (0, 0))  # black, fully transparent
    assert (load_pixels(png_bytes(la), 20, 1) == 255).all()
    assert "transparent parts put on white" in pipelines.conversion_notes(la, 1)


def test_notes_say_what_happened_to_an_animated_or_rotated_image():
    frames = [Image.new("RGB", (20, 20), (v, v, v)) for v in (10, 200, 90)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    _, notes = images.open_image_with_notes(buffer.getvalue())
    assert notes == ["animated (3 frames): the first frame is used"]
    exif = Image.Exif()
    exif[0x0112] = 6
    img, notes = images.open_image_with_notes(png_bytes(gradient(40, 30), "JPEG", exif=exif.tobytes()))
    assert img.size == (30, 40) and "turned upright" in notes[0]
    _, notes = images.open_image_with_notes(png_bytes(gradient(), "PNG"))
    assert notes == []


def test_sixteen_bit_png_is_scaled_and_said_so():
    arr = (np.arange(32 * 32).reshape(32, 32) * 60).astype(np.uint16)
    img = open_image(png_bytes(Image.fromarray(arr), "PNG"))
    assert img.mode.startswith("I")
    assert "16-bit" in pipelines.conversion_notes(img, 1)[0]
    px = load_pixels(png_bytes(Image.fromarray(arr), "PNG"), 32, 3)
    assert px.min() == 0 and px.max() == 255


# ---------------------------------------------------------------- issue 24, item 11: what a file holds, not its name

@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM"])
def test_every_format_of_the_suffixes_is_listed_and_read_by_what_it_holds(tmp_path, fmt):
    path = tmp_path / "photo.png"  # whatever its name says
    image = gradient(16, 12).convert("L") if fmt == "PPM" else gradient(16, 12)
    path.write_bytes(png_bytes(image, fmt))
    assert images.holds_image(path) and open_image(path).size == (16, 12)


@pytest.mark.parametrize("fmt", ["PCX", "TGA", "ICO", "SGI", "IM"])
def test_another_format_pillow_knows_is_refused_under_an_image_name(tmp_path, fmt):
    """Pillow decodes dozens of formats by their content (EPS through Ghostscript among them): only those of
    the image suffixes are read, whatever the file is called."""
    path = tmp_path / "photo.png"
    path.write_bytes(png_bytes(gradient(16, 16), fmt))
    assert not images.holds_image(path)
    with pytest.raises(UserError, match="is not an image this app can read"):
        open_image(path)
    with pytest.raises(UserError, match="not an image this app can read"):
        open_image(path.read_bytes())


def test_a_zip_saved_as_png_does_not_count_as_an_image(tmp_path):
    import zipfile

    from siamese_core.data.uploads import describe_class_folders

    root = tmp_path / "data"
    for name in ("cats", "dogs"):
        (root / name).mkdir(parents=True)
        for i in range(2):
            (root / name / f"{i}.png").write_bytes(png_bytes(gradient(16, 16)))
    with zipfile.ZipFile(root / "dogs" / "1.png", "w") as zf:  # replaces a dog photo with a zip named .png
        zf.writestr("inside.txt", "not a picture")
    summary = describe_class_folders(root)
    assert summary.counts == {"cats": 2, "dogs": 1}
    assert any("'dogs' has only one" in problem for problem in summary.problems)
    assert not images.holds_image(root / "dogs" / "1.png")
    with pytest.raises(UserError, match="is not an image this app can read"):
        open_image(root / "dogs" / "1.png")
