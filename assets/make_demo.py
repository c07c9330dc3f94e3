"""Regenerate the demo model and sample images that ship in assets/.

    python assets/make_demo.py            # MNIST from ../shared/data/mnist, or SIAMESE_MNIST_DIR
    python assets/make_demo.py --describe-only   # only (re)write the description of its images (weights unchanged)

Trains the small digit ConvNet as an embedding (batch-hard triplets over P x K batches) on real
handwriting: MNIST test images 0-7399 and the built-in digits' training split, every image prepared by
the "digit" input pipeline (found, centred and scaled as MNIST's digits were) and augmented by the
"digits" policy (stroke width, blur, noise, small warps) so that photographed digits match too. It
validates on MNIST test images 7400-7999 and the built-in digits' validation split; MNIST test images
8000-9999 are held out and only judged at the end. Keeps the best checkpoint as
assets/demo/digits-convnet.pt with a description of its images (siamese_core.inference.domain: measured on
the same training and validation images, so its verdicts flag a face, a street photo, a signature, noise or a blank
image instead of judging it), prints its figures, and exports sample images to
assets/samples/digits/<digit>/: built-in digits (0123.png), held-out MNIST digits (mnist-8123.png)
and photo-like versions of those (photo-8123.jpg: dark ink on paper, photographed).
"""

from __future__ import annotations

import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ASSETS = Path(__file__).resolve().parent
ROOT = ASSETS.parent
DEMO_MODEL = ASSETS / "demo" / "digits-convnet.pt"
SAMPLES = ASSETS / "samples" / "digits"
SAMPLES_PER_DIGIT = 3
MNIST_TRAIN = slice(0, 7400)
MNIST_VAL = slice(7400, 8000)
HELD_OUT = slice(8000, 10000)  # never trained or validated on: the demo is judged here
JUDGED_PAIRS = 1000
WHAT = "handwritten digits"  # what its verdicts call the images it learnt


def mnist_folder() -> Path:
    return Path(os.environ.get("SIAMESE_MNIST_DIR") or ROOT.parent / "shared" / "data" / "mnist")


def demo_config():
    from siamese_core.config import TrainConfig

    return TrainConfig(dataset="digits", backbone="convnet", mode="triplet", mining="batch-hard",
                       input="digit", augment="digits", embedding_dim=128, margin=0.3, lr=2e-3,
                       batch_size=128, epochs=12, pairs_per_epoch=40_000, seed=0,
                       notes=["The demo model: trained by assets/make_demo.py on MNIST test images 0-7399 and the "
                              "built-in digits' training split; MNIST test images 8000-9999 were held out."])


def demo_data(mnist, config):
    """Training and validation sets from MNIST (test images 0-7999) and the built-in digits."""
    from siamese_core.data import sources as D
    from siamese_core.data.prepare import PreparedData

    digits_train, digits_val = D.split_by_image(D.load_digits(28, 1, "digit"), config.val_fraction, config.seed)
    positions = np.arange(len(mnist))
    train = concat(mnist.subset(positions[MNIST_TRAIN]), digits_train)
    val = concat(mnist.subset(positions[MNIST_VAL]), digits_val)
    return PreparedData(train, val, D.evaluation_pairs(val.labels, config.eval_pairs, seed=config.seed)), digits_val


def concat(first, second):
    import torch

    from siamese_core.data.sources import ImageSet

    return ImageSet(torch.cat([first.pixels, second.pixels]), np.concatenate([first.labels, second.labels]),
                    first.classes, first.names + second.names)


def judge(model, images_a, images_b, same) -> dict:
    """Accuracy at the model's own threshold, and ROC AUC, of pairs of images given as PIL images."""
    from sklearn.metrics import roc_auc_score

    scores = model.score_pairs(images_a, images_b)
    accuracy = float(((scores >= model.threshold) == (same > 0.5)).mean())
    return {"accuracy": accuracy, "roc_auc": float(roc_auc_score(same, scores)), "pairs": len(same)}


def held_out_figures(model, raw_images: np.ndarray, labels: np.ndarray) -> dict:
    """The demo on held-out MNIST pairs, as MNIST images and as phone photos of them would arrive."""
    from PIL import Image

    from siamese_core.data.digit_input import photo_like
    from siamese_core.data.sources import evaluation_pairs

    a, b, same = evaluation_pairs(labels, JUDGED_PAIRS, seed=0)
    used = np.unique(np.concatenate([a, b]))
    rng = np.random.default_rng(0)
    plain = {i: Image.fromarray(raw_images[i]) for i in used}
    photo = {i: photo_like(raw_images[i], rng) for i in used}
    return {"mnist": judge(model, [plain[i] for i in a], [plain[i] for i in b], same),
            "photo-like": judge(model, [photo[i] for i in a], [photo[i] for i in b], same)}


def builtin_figures(model, digits_val) -> dict:
    from siamese_core.data.sources import evaluation_pairs

    a, b, same = evaluation_pairs(digits_val.labels, JUDGED_PAIRS, seed=0)
    pixels = digits_val.pixels.numpy()
    return judge(model, pixels[a], pixels[b], same)


def export_samples(digits_val, raw_images: np.ndarray, labels: np.ndarray) -> None:
    """A few built-in digits (never trained on), held-out MNIST digits, and photo-like versions of those."""
    from PIL import Image

    from siamese_core.data.digit_input import photo_like
    from siamese_core.data.images import pixels_to_image
    from siamese_core.files import write_bytes

    shutil.rmtree(SAMPLES, ignore_errors=True)
    rng = np.random.default_rng(1)
    for label, digit in enumerate(digits_val.classes):
        folder = SAMPLES / digit
        folder.mkdir(parents=True)
        for position in (digits_val.labels == label).nonzero()[0][:SAMPLES_PER_DIGIT]:
            name = Path(digits_val.names[position]).name  # e.g. 0123.png: its index in scikit-learn's digits
            pixels_to_image(digits_val.pixels[int(position)].numpy()).save(folder / name)
        for index in (labels == label).nonzero()[0][:SAMPLES_PER_DIGIT]:
            number = HELD_OUT.start + int(index)
            Image.fromarray(raw_images[index]).save(folder / f"mnist-{number}.png")
            buffer = io.BytesIO()
            photo_like(raw_images[index], rng).save(buffer, format="JPEG", quality=90)
            write_bytes(folder / f"photo-{number}.jpg", buffer.getvalue())


def describe(data) -> None:
    """Write the description of its images into the demo checkpoint (its weights stay as they are)."""
    from siamese_core.inference.domain import describe_checkpoint

    domain = describe_checkpoint(DEMO_MODEL, data, what=WHAT, device="cpu")
    print(f"Described its images: {len(domain['centres'])} reference vectors, limits set on "
          f"{domain['calibration_images']} validation images")


def main(argv=None) -> int:
    sys.path.insert(0, str(ROOT))
    from siamese_core.data import sources as D
    from siamese_core.files import write_bytes
    from siamese_core.inference.model import SiameseModel
    from siamese_core.training.loop import train

    describe_only = "--describe-only" in (sys.argv[1:] if argv is None else argv)
    folder = mnist_folder()
    if "test" not in D.mnist_parts_available(folder):
        print(f"The MNIST test files (t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz) are not in '{folder}'. "
              "Put them there, or set SIAMESE_MNIST_DIR to the folder that holds them.", file=sys.stderr)
        return 2
    as_stored = D.load_mnist(folder, "test")  # the 28x28 originals: the held-out pairs start from these
    raw, raw_labels = as_stored.pixels[:, 0].numpy(), as_stored.labels
    config = demo_config()
    mnist = D.load_mnist(folder, "test", 28, 1, "digit").subset(np.arange(HELD_OUT.start))
    data, digits_val = demo_data(mnist, config.resolve())
    if describe_only:
        describe(data)
        return 0
    started = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "demo-run"
        train(config, out, data=data)
        write_bytes(DEMO_MODEL, (out / "checkpoints" / "best.pt").read_bytes())
    trained_in = time.time() - started
    describe(data)
    model = SiameseModel.load(DEMO_MODEL, device="cpu")
    figures = held_out_figures(model, raw[HELD_OUT], raw_labels[HELD_OUT])
    figures["built-in digits"] = builtin_figures(model, digits_val)
    print(f"Demo model: {DEMO_MODEL} ({DEMO_MODEL.stat().st_size / 2**20:.1f} MB), trained in {trained_in:.0f} s")
    for name, result in figures.items():
        print(f"  {name}: {100 * result['accuracy']:.1f}% accuracy, ROC AUC {result['roc_auc']:.4f} "
              f"on {result['pairs']} balanced pairs")
    export_samples(digits_val, raw[HELD_OUT], raw_labels[HELD_OUT])
    print(f"Samples: {SAMPLES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
