"""The "digit" input pipeline: photographed, drawn and odd images made to look like MNIST digits, and models
trained with it that recognise photographed digits (all from the built-in digits: no ../shared needed)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from app_pages.shared import state
from conftest import ROOT
from siamese_core.data.sources import evaluation_pairs, load_digits, split_by_image
from siamese_core.data.digit_input import normalize_digit, photo_like
from siamese_core.data.augment import augment_digits
from siamese_core.data.pipelines import conversion_notes, to_pixels

DEMO = ROOT / "assets" / "demo" / "digits-convnet.pt"


@pytest.fixture(scope="module")
def digits():
    """The built-in digits as MNIST-style 28x28 images (light ink on black), prepared by the pipeline."""
    return load_digits(28, 1, "digit")


def grey(image: Image.Image) -> np.ndarray:
    return np.asarray(normalize_digit(image), dtype=np.float32)


def photographed(digits, index: int, seed: int) -> Image.Image:
    return photo_like(digits.pixels[index, 0].numpy(), np.random.default_rng(seed))


def test_a_photo_of_a_digit_maps_back_onto_the_digit(digits):
    indices = np.arange(0, 400, 20)
    plain = [grey(Image.fromarray(digits.pixels[i, 0].numpy())) for i in indices]
    photos = [grey(photographed(digits, i, seed)) for seed, i in enumerate(indices)]
    to_itself = np.mean([np.abs(p - q).mean() for p, q in zip(photos, plain)])
    to_another = np.mean([np.abs(p - q).mean() for p, q in zip(photos, np.roll(plain, 1, axis=0))])
    assert to_itself < 0.5 * to_another
    # Dark ink on light paper comes out as light ink on black, its mass in the middle of the field.
    photo = photos[0]
    assert photo[:3].mean() < 10 and photo.max() > 200
    rows, cols = np.nonzero(photo > 50)
    assert abs(rows.mean() - 14) < 3 and abs(cols.mean() - 14) < 3


def test_an_mnist_style_digit_stays_as_it_is(digits):
    image = digits.pixels[5, 0].numpy()
    assert np.abs(grey(Image.fromarray(image)) - image).mean() < 3


def test_a_drawing_on_a_transparent_canvas_is_inverted_and_noted():
    canvas = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).line([(200, 30), (240, 30), (210, 170)], fill=(0, 0, 0, 255), width=12)  # a 7
    result = grey(canvas)
    assert result[:, :4].max() == 0 and result.max() == 255
    rows, cols = np.nonzero(result > 50)
    assert rows.max() - rows.min() >= 18  # the longer side scaled to 20 pixels
    notes = conversion_notes(canvas, 1, "digit")
    assert any("inverted" in n for n in notes) and any("centred and scaled as in MNIST" in n for n in notes)
    assert not any("inverted" in n for n in conversion_notes(canvas.convert("L"), 1, "resize"))


@pytest.mark.parametrize("image", [
    Image.new("L", (60, 60), 255), Image.new("L", (60, 60), 0), Image.new("RGB", (9, 9), (200, 10, 10)),
    Image.new("RGBA", (40, 40), (0, 0, 0, 0)), Image.new("I;16", (30, 30), 1000), Image.new("1", (20, 20), 1),
], ids=["white", "black", "tiny colour", "transparent", "16-bit", "one-bit"])
def test_blank_and_odd_images_give_an_empty_field(image):
    result = normalize_digit(image)
    assert result.mode == "L" and result.size == (28, 28) and np.asarray(result).max() == 0


def test_noise_specks_are_not_taken_for_the_digit():
    rng = np.random.default_rng(0)
    paper = np.full((120, 120), 230.0) + rng.normal(0, 3, (120, 120))
    paper[40:80, 58:64] = 20  # a 1
    paper[5, 110] = paper[112, 8] = 0  # two dark specks near the corners
    rows, cols = np.nonzero(grey(Image.fromarray(paper.clip(0, 255).astype(np.uint8))) > 50)
    assert rows.max() - rows.min() >= 18 and cols.max() - cols.min() <= 8  # tall and thin: only the 1


def test_a_table_along_the_photo_s_edge_is_not_taken_for_the_digit(digits):
    photo = np.asarray(photographed(digits, 7, seed=3)).copy()
    plain = grey(Image.fromarray(photo))
    photo[:, :12] = 25  # the dark table beside the paper
    assert np.abs(grey(Image.fromarray(photo)) - plain).mean() < 5


def test_a_large_photo_is_prepared():
    photo = Image.new("RGB", (4000, 3000), (220, 215, 200))
    ImageDraw.Draw(photo).ellipse([1500, 1000, 2300, 2200], outline=(30, 30, 30), width=80)  # a 0
    result = grey(photo)
    assert result.max() == 255 and result[14, 14] < 50  # a ring, hollow in the middle


def test_augmentation_changes_digits_but_keeps_them_digits(digits):
    x = digits.pixels[:64].float() / 255
    torch.manual_seed(0)
    y = augment_digits(x)
    assert y.shape == x.shape and 0 <= float(y.min()) and float(y.max()) <= 1
    assert float((y - x).abs().mean()) > 0.02
    # Never a mirror image: each augmented digit is nearer the digit than its mirror (for asymmetric ones).
    def corr(a, b):
        a, b = a.flatten(1) - a.flatten(1).mean(1, keepdim=True), b.flatten(1) - b.flatten(1).mean(1, keepdim=True)
        return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1) + 1e-9)
    mirrored = x.flip(-1)
    asymmetric = corr(x, mirrored) < 0.5
    assert (corr(y, x) > corr(y, mirrored))[asymmetric].float().mean() > 0.9


def photo_pairs(val, n_pairs: int, seed: int):
    """Balanced pairs of the held-out images, each photographed (photo-like JPEG) once."""
    a, b, same = evaluation_pairs(val.labels, n_pairs, seed=seed)
    rng = np.random.default_rng(seed)
    photos = {i: photo_like(val.pixels[i, 0].numpy(), rng) for i in np.unique(np.concatenate([a, b]))}
    return [photos[i] for i in a], [photos[i] for i in b], same


@pytest.mark.slow
def test_a_model_trained_with_the_digit_pipeline_verifies_photographed_digits(tmp_path):
    from siamese_core.config import TrainConfig
    from siamese_core.inference.model import SiameseModel
    from siamese_core.training.loop import train

    torch.set_num_threads(1)
    config = TrainConfig(dataset="digits", backbone="convnet", mode="triplet", mining="batch-hard",
                         augment="digits", embedding_dim=64, lr=2e-3, epochs=3, pairs_per_epoch=6000, seed=0)
    assert config.resolve().input == "digit"  # the default for digits
    train(config, tmp_path / "run")
    model = SiameseModel.load(tmp_path / "run" / "checkpoints" / "best.pt", device="cpu")
    assert model.input_pipeline == "digit"
    _, val = split_by_image(load_digits(28, 1, "digit"), 0.3, 0)  # the run's validation split: never trained on
    images_a, images_b, same = photo_pairs(val, 200, seed=1)
    scores = model.score_pairs(images_a, images_b)
    accuracy = ((scores >= model.threshold) == (same > 0.5)).mean()
    assert accuracy >= 0.8, accuracy  # chance is 0.5


# ---------------------------------------------------------------- the shipped demo model, on photographed digits

def jpeg_of(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def first_and_last(digits, digit: int):
    """The first and the last built-in image of a digit: written by different people."""
    members = np.flatnonzero(digits.labels == digit)
    return int(members[0]), int(members[-1])


@pytest.fixture(scope="module")
def demo():
    from siamese_core.inference.model import SiameseModel

    return SiameseModel.load(DEMO, device="cpu")


def test_the_demo_says_same_for_two_peoples_sevens_and_different_for_a_seven_and_a_one(demo, digits):
    assert demo.input_pipeline == "digit"
    seven_a, seven_b = first_and_last(digits, 7)
    one = first_and_last(digits, 1)[0]
    photo = {i: jpeg_of(photographed(digits, i, seed=i)) for i in (seven_a, seven_b, one)}
    assert demo.verify(photo[seven_a], photo[seven_b]).same
    assert not demo.verify(photo[seven_a], photo[one]).same
    assert not demo.verify(photo[seven_b], photo[one]).same


def test_the_demo_tells_photographed_held_out_digits_apart(demo):
    _, val = split_by_image(load_digits(28, 1, "digit"), 0.3, 0)  # the demo's validation split: never trained on
    images_a, images_b, same = photo_pairs(val, 200, seed=2)
    scores = demo.score_pairs(images_a, images_b)
    assert ((scores >= demo.threshold) == (same > 0.5)).mean() >= 0.93


def test_the_verify_page_on_the_demo_judges_photographed_sevens_and_ones(runs_dir, digits):
    from app_helpers import by_key, open_page

    seven_a, seven_b = first_and_last(digits, 7)
    one = first_and_last(digits, 1)[0]
    at = open_page("verify")

    def upload(side: str, index: int):
        at.radio(key=state.source(side)).set_value("Upload").run()
        by_key(at.get("file_uploader"), f"upload-{side}").upload(f"photo-{index}.jpg",
                                                                 jpeg_of(photographed(digits, index, seed=index)),
                                                                 "image/jpeg")
        at.run()
        assert not at.exception, at.exception

    upload("A", seven_a)
    upload("B", seven_b)
    assert "Same digit" in "\n".join(str(e.value) for e in at.success)
    captions = "\n".join(str(c.value) for c in at.caption)
    assert "colours inverted to light ink on dark" in captions and "digit found, centred" in captions
    upload("B", one)
    assert "Different digits" in "\n".join(str(e.value) for e in at.info)


def test_old_models_keep_squashing_the_whole_image():
    image = Image.new("L", (40, 20), 0)
    image.paste(255, (0, 0, 10, 20))  # a bar at the left edge
    squashed = to_pixels(image, 28, 1)
    assert squashed.shape == (1, 28, 28) and squashed[0, :, :3].mean() > 200  # still at the edge
    assert to_pixels(image, 28, 1, "digit")[0, :, :3].max() < 50  # centred by the digit pipeline
