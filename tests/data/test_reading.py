"""Images keep their shape and the recipe reads the data (issue 23): what the reading measures and chooses, the ink
pipeline, a non-square model from training to ONNX, old square checkpoints, hostile sizes in a checkpoint and on
the command line."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw, ImageFilter

from siamese_core.config import TrainConfig, parse_image_size
from siamese_core.data.augment import apply as augment
from siamese_core.data.digit_input import normalize_digit
from siamese_core.data.images import open_image, to_mode
from siamese_core.data.ink_input import ink_box_shape
from siamese_core.data.pipelines import conversion_notes, to_pixels
from siamese_core.data.reading import apply_reading, read_images
from siamese_core.errors import UserError
from siamese_core.inference.model import SiameseModel
from siamese_core.runs.rundir import RunDir, checkpoint_problem

DEMO = Path(__file__).resolve().parents[2] / "assets" / "demo" / "digits-convnet.pt"
SAMPLES = Path(__file__).resolve().parents[2] / "assets" / "samples" / "digits"


def write_writing(root: Path, writers: int = 6, per_writer: int = 8, seed: int = 0) -> Path:
    """Generated signatures, one class folder per writer: each writer's own wide scrawl (a polyline), written
    again with small changes in dark ink on greyish paper under uneven light, on a scan wider than tall."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    for w in range(writers):
        points = np.stack([np.linspace(0.1, 0.9, 9), rng.uniform(0.3, 0.7, 9)], axis=1)
        folder = root / f"writer_{w}"
        folder.mkdir()
        for n in range(per_writer):
            height, width = int(rng.integers(80, 100)), int(rng.integers(220, 260))
            rows, cols = np.mgrid[0:height, 0:width]
            light = 225 - 25 * cols / width + rng.uniform(-10, 10)  # uneven light across the scan
            paper = Image.fromarray(np.clip(light + rng.normal(0, 2, light.shape), 0, 255).astype(np.uint8))
            drawn = points + rng.normal(0, 0.015, points.shape)
            ImageDraw.Draw(paper).line([(x * width, y * height) for x, y in drawn], fill=int(rng.integers(20, 60)),
                                       width=int(rng.integers(2, 4)))
            paper.save(folder / f"{n:02d}.png")
    return root


def write_faces(root: Path, people: int = 5, per_person: int = 4, seed: int = 0) -> Path:
    """Generated colour face photos: a skin-toned oval with eyes, brows, nose and mouth per person on a graded,
    textured background, 90-120 px wide and about 1.2 times as tall, lit from one side (as issue 23's research)."""
    rng = np.random.default_rng(seed)
    for c in range(people):
        skin = rng.uniform(120, 230) * np.array([1, rng.uniform(.75, .9), rng.uniform(.6, .8)])
        folder = root / f"person_{c}"
        folder.mkdir(parents=True)
        for k in range(per_person):
            w = int(rng.integers(90, 121))
            h = int(w * rng.uniform(1.15, 1.3))
            xx = np.mgrid[0:h, 0:w][1] / w
            arr = rng.uniform(40, 200, 3) * (0.7 + 0.6 * xx[..., None]) + rng.normal(0, 12, (h, w, 3))
            img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
            d = ImageDraw.Draw(img)
            cx, cy, fw, fh = w / 2, h / 2, w * .32, h * .36
            d.ellipse([cx - fw, cy - fh, cx + fw, cy + fh], fill=tuple(int(v) for v in skin))
            for side in (-1, 1):
                ex, ey = cx + side * fw * .4, cy - fh * .2
                d.ellipse([ex - 5, ey - 3, ex + 5, ey + 3], fill=(40, 30, 30))
            d.arc([cx - fw * .4, cy + fh * .35, cx + fw * .4, cy + fh * .6], 0, 180, fill=(120, 40, 40), width=3)
            arr = np.asarray(img, dtype=np.float32) * (0.8 + 0.4 * xx)[..., None]
            Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.7)).save(
                folder / f"{k:02d}.png")
    return root


# ---------------------------------------------------------------- the reading

def test_the_reading_chooses_ink_for_writing_and_keeps_photos_shape(tmp_path):
    writing = write_writing(tmp_path / "signatures")
    read = read_images(TrainConfig(train_path=str(writing), device="cpu"))
    assert read.measured["writing"] and read.measured["classes"] == 6 and read.measured["ink_aspect"] > 1.5
    assert read.chose["input"] == "ink" and read.chose["augment"] == "ink" and read.chose["flip_test"] is False
    height, width = read.chose["image_size"]
    assert height == 48 and 80 <= width <= 144 and read.chose["channels"] == 1
    assert "writing on paper, wider than tall" in read.sentence and "no mirror images" in read.sentence

    faces = write_faces(tmp_path / "faces")
    read = read_images(TrainConfig(train_path=str(faces), device="cpu"))
    assert not read.measured["writing"] and read.chose["input"] == "fit" and read.chose["augment"] == "photos"
    assert "flip_test" not in read.chose and "channels" not in read.chose  # colour photos stay in colour
    assert read.chose["image_size"] == [80, 64]  # their own shape (about 6:5) at about 5,000 pixels
    assert read.sentence == "These look like photos, taller than wide: 80x64, shape kept, mirror images allowed."


def test_a_field_set_by_hand_is_never_overridden_and_the_reading_is_recorded(tmp_path):
    writing = write_writing(tmp_path / "signatures", writers=3, per_writer=3)
    config = apply_reading(TrainConfig(train_path=str(writing), device="cpu", image_size=64, augment="none"))
    assert (config.image_size, config.augment, config.input) == (64, "none", "ink")
    assert "Kept as set: the image size, the augmentation." in config.reading["sentence"]
    assert config.notes[-1] == config.reading["sentence"]
    assert apply_reading(config) is config  # read once
    digits = TrainConfig(dataset="digits", device="cpu")
    assert apply_reading(digits) is digits  # the built-in digits keep their recipe
    classic = TrainConfig(train_path=str(writing), mode="pair")
    assert apply_reading(classic) is classic  # the reference designs run as they did


def test_the_ink_pipeline_removes_paper_and_light_and_keeps_the_inks_shape(tmp_path):
    scan = next(write_writing(tmp_path / "w", writers=1, per_writer=1).rglob("*.png"))
    img = open_image(scan)
    pixels = to_pixels(img, (48, 112), 1, "ink")[0]
    assert pixels.shape == (48, 112) and pixels.max() == 255
    assert (pixels == 0).mean() > 0.7  # paper is black, whatever its level and light
    rows, cols = np.flatnonzero(pixels.any(1)), np.flatnonzero(pixels.any(0))
    assert cols[-1] - cols[0] > 2 * (rows[-1] - rows[0])  # wide writing stays wide
    h, w = ink_box_shape(img)
    assert w > 2 * h
    assert "ink made bright, its shape kept" in " ".join(conversion_notes(img, 1, "ink"))
    blank = to_pixels(Image.new("L", (200, 80), 230), (48, 112), 1, "ink")
    assert blank.shape == (1, 48, 112) and blank.max() == 0


def test_resize_gives_exactly_the_old_pixels_and_fit_keeps_the_shape():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (60, 100, 3), dtype=np.uint8))
    old = np.asarray(to_mode(img, 3).resize((64, 64), Image.Resampling.BILINEAR)).transpose(2, 0, 1)
    assert np.array_equal(to_pixels(img, 64, 3, "resize"), old)  # what every model before shapes was given
    digit = np.asarray(normalize_digit(open_image(next(SAMPLES.rglob("*.png")))))
    assert np.array_equal(to_pixels(open_image(next(SAMPLES.rglob("*.png"))), 28, 1, "digit")[0], digit)
    fitted = to_pixels(img, (80, 64), 3, "fit")
    assert fitted.shape == (3, 80, 64)
    # 100x60 fitted into 64 wide is 38 high: the image's rows in the middle, its edge repeated above and below
    assert np.array_equal(fitted[:, 0], fitted[:, 20]) and not np.array_equal(fitted[:, 30], fitted[:, 45])


def test_warps_are_rotations_in_pixels_on_a_wide_image():
    """A thin horizontal line on a 32x128 field, rotated by the ink warp, stays a thin line (a rotation in grid
    units would turn it into a steep shear); and ink never mirrors."""
    torch.manual_seed(0)
    x = torch.zeros(64, 1, 32, 128)
    x[:, :, 16, 24:104] = 1.0
    y = augment(x, "ink")
    assert y.shape == x.shape
    rows_lit = (y[:, 0] > 0.3).any(dim=2).sum(dim=1).float()  # rows the line covers after the warp
    assert rows_lit.max() <= 12  # 80 px at up to 5 degrees and a little shear: at most ~10 rows
    left = torch.zeros(1, 1, 32, 128)
    left[..., 8:24, 4:20] = 1.0  # a block on the left stays on the left
    assert all(augment(left, "ink")[0, 0, :, 64:].sum() == 0 for _ in range(20))


# ---------------------------------------------------------------- a non-square model, end to end

@pytest.mark.slow
def test_a_non_square_model_trains_saves_loads_verifies_and_exports(tmp_path):
    from siamese_core.inference.export import write_export
    from siamese_core.training.loop import train

    import onnxruntime

    root = write_writing(tmp_path / "signatures", writers=6, per_writer=6)
    status = train(TrainConfig(train_path=str(root), device="cpu", backbone="small-resnet", image_size=[48, 80],
                               split="image", epochs=1, pairs_per_epoch=64, eval_pairs=40, batch_size=16),
                   tmp_path / "run")
    assert status.state == "done"
    saved = RunDir(tmp_path / "run").read_config()
    assert saved["image_size"] == [48, 80] and saved["input"] == "ink" and saved["flip_test"] is False
    assert saved["reading"]["measured"]["writing"] and "Kept as set: the image size" in saved["reading"]["sentence"]
    model = SiameseModel.load(tmp_path / "run" / "checkpoints" / "best.pt")
    assert model.spec["image_size"] == [48, 80] and model.image_hw == (48, 80)
    images = sorted((root / "writer_0").iterdir())
    assert model.prepare(images[0]).shape == (1, 48, 80)
    verdict = model.verify(images[0], images[1])
    assert 0.0 <= verdict.score <= 1.0
    written = write_export(tmp_path / "run" / "checkpoints" / "best.pt", tmp_path / "model.onnx")
    sidecar = __import__("json").loads((tmp_path / "model.json").read_text())
    assert (sidecar["input"]["height"], sidecar["input"]["width"]) == (48, 80)
    assert sidecar["input"]["shape"] == ["batch", 1, 48, 80] and len(written) >= 3
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    pixels = np.stack([model.prepare(p) for p in images[:3]])
    out = session.run(None, {"images": pixels.astype(np.float32) / 255})[0]
    assert out.shape == (3, model.spec["embedding_dim"])
    assert np.allclose(out, model.embed(pixels), atol=1e-4)


def test_an_old_square_checkpoint_loads_and_scores_as_before():
    """The demo model (image_size 28, digit pipeline) sees exactly the pixels the old squash gave, so its scores
    are the old ones: its score on two prepared-by-hand images equals its score on the files."""
    model = SiameseModel.load(DEMO)
    assert model.image_size == 28 and model.image_hw == (28, 28) and model.input_pipeline == "digit"
    a, b = sorted((SAMPLES / "4").glob("*.png"))[:2]
    by_hand = [np.asarray(normalize_digit(open_image(p)).resize((28, 28), Image.Resampling.BILINEAR))[None]
               for p in (a, b)]
    assert model.verify(a, b).score == pytest.approx(model.verify(*by_hand).score, abs=1e-6)
    assert model.verify(a, b).same


# ---------------------------------------------------------------- hostile sizes

@pytest.mark.parametrize("size, words", [([48, 80, 3], "neither a whole number"), ("64", "neither"),
                                         (["48", "80"], "neither"), (0, "neither"), ([0, 64], "neither"),
                                         (5000, "neither"), ([64, 40000], "neither"), ([True, 64], "neither"),
                                         ([[48], [80]], "neither"), ("x" * 10_000, "neither")])
def test_hostile_image_sizes_in_a_checkpoint_are_one_sentence(size, words):
    payload = torch.load(DEMO, weights_only=True)
    payload["spec"]["image_size"] = size
    problem = checkpoint_problem(payload)
    assert problem and words in problem and len(problem) < 200


def test_a_pair_image_size_in_a_checkpoint_is_sound():
    payload = torch.load(DEMO, weights_only=True)
    payload["spec"]["image_size"] = [28, 28]
    assert checkpoint_problem(payload) is None


def test_image_size_on_the_command_line(tmp_path):
    assert parse_image_size("128x64") == [128, 64] and parse_image_size("64") == 64
    assert parse_image_size("64x64") == 64  # a square is stored as one number, as before
    for bad, words in (("128x", "is not a size"), ("0x5", "at least"), ("5000x5000", "at most"),
                       ("1x2x3", "is not a size")):
        with pytest.raises(UserError, match=words):
            parse_image_size(bad)
    from siamese_core.cli import main

    code = main(["train", "--image-size", "128x", "-o", str(tmp_path / "run"), "-q"])
    assert code == 2 and not (tmp_path / "run").exists()  # one sentence, before any work
