"""siamese_core.models.memory: a model's work is estimated before it runs and kept within SIAMESE_MEMORY_BUDGET_GB
(issue 24, item 6: a valid checkpoint of small-resnet at 1024 px took over 6 GB on Verify, the built-in digits at
1024 px alone 7 GB). Refused with one sentence, or done in smaller batches; never allocated first."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli, write_class_folders
from siamese_core.errors import UserError
from siamese_core.models import memory
from siamese_core.models.networks import build_model
from siamese_core.runs.rundir import save_checkpoint
from test_cli import assert_clear_error


def small_resnet_spec(size: int) -> dict:
    return {"backbone": "small-resnet", "mode": "pair", "head": "absdiff", "head_norm": True, "dropout": 0.1,
            "embedding_dim": None, "image_size": size, "channels": 3, "input": "resize", "neck": False,
            "flip_test": True, "mean": [0.5] * 3, "std": [0.5] * 3}


def write_checkpoint(folder: Path, size: int) -> Path:
    """A valid checkpoint (random weights, 5 MB) of small-resnet for `size` px colour images."""
    spec = small_resnet_spec(size)
    path = folder / "best.pt"
    save_checkpoint(path, spec=spec, state_dict=build_model(spec).state_dict(), threshold=0.5, metrics={}, epoch=1,
                    config={}, classes=["0", "1"])
    return path


@pytest.fixture(scope="module")
def checkpoint_1024(tmp_path_factory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("big"), 1024)


def test_a_1024px_checkpoint_is_refused_where_one_pair_would_pass_the_budget(checkpoint_1024, runs_dir, monkeypatch,
                                                                            tmp_path):
    from siamese_core.inference.model import SiameseModel
    from siamese_core.inference.verification import store_checkpoint

    needs = memory.needs(small_resnet_spec(1024))
    assert 0.5 * 2**30 < needs.batch(2, 2) < 2**30  # one pair with its mirror images: about 0.9 GB
    monkeypatch.setenv("SIAMESE_MEMORY_BUDGET_GB", "0.5")
    started = time.perf_counter()
    with pytest.raises(UserError, match=r"'best.pt' would need about \d+ MB of memory to compare one pair "
                                        r"\(small-resnet at 1024x1024 pixels\), more than the 512 MB this server "
                                        r"allows one model's work \(SIAMESE_MEMORY_BUDGET_GB\)"):
        store_checkpoint(checkpoint_1024.read_bytes(), name="'best.pt'")  # Verify's upload: refused, not kept
    assert not list((runs_dir / ".uploads" / "checkpoints").glob("*"))
    with pytest.raises(UserError, match="SIAMESE_MEMORY_BUDGET_GB"):
        SiameseModel.load(checkpoint_1024)
    assert time.perf_counter() - started < 10
    image = write_class_folders(tmp_path / "img", classes=[1], per_class=1) / "digit_1" / "000.png"
    result = run_cli("verify", "-c", checkpoint_1024, image, image)  # the environment's budget: 0.5 GB
    assert_clear_error(result, "would need about", "SIAMESE_MEMORY_BUDGET_GB")


def test_the_digits_gallery_at_1024px_is_a_sentence_not_7_gb(checkpoint_1024):
    from siamese_core.inference.gallery import digits_gallery

    started = time.perf_counter()
    with pytest.raises(UserError, match=r"The 1,797 built-in digits at 1024x1024 pixels would take 5\.3 GB of "
                                        r"memory, more than the 2\.0 GB"):
        digits_gallery(1024, 3)
    assert time.perf_counter() - started < 1  # refused before a digit is prepared


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux's peak-memory reset")
def test_embedding_goes_in_batches_that_fit_the_budget(monkeypatch, tmp_path):
    """Eight 384 px images through small-resnet with their mirror images: in one pass of 16 they take about 400 MB;
    under a budget of 256 MB the same call takes fewer per pass, and stays under it (the peak measured)."""
    from siamese_core.inference.model import SiameseModel

    spec = small_resnet_spec(384)
    model = SiameseModel.load(write_checkpoint(tmp_path, 384), "cpu")
    pixels = np.random.default_rng(0).integers(0, 256, (8, 3, 384, 384), dtype=np.uint8)

    def peak_of_embedding() -> tuple:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # the peak resident memory starts again from now
        before = _peak()
        vectors = model.embed(pixels)
        return _peak() - before, vectors

    monkeypatch.setenv("SIAMESE_MEMORY_BUDGET_GB", "100")
    whole, expected = peak_of_embedding()
    monkeypatch.setenv("SIAMESE_MEMORY_BUDGET_GB", "0.25")
    assert memory.plan(spec, 64, 8)[1] < 8
    within, vectors = peak_of_embedding()
    assert whole > 2**28 > within, (whole / 2**20, within / 2**20)
    np.testing.assert_allclose(vectors, expected, atol=1e-4)  # the same vectors, in smaller passes


def _peak() -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM"))


def test_an_explanation_takes_fewer_pairs_at_once_or_is_a_sentence():
    """A gradient map keeps every layer's output for the backward pass: 8 pairs of 384 px images would take
    about 4.4 GB, so fewer go at once; one pair at 1024 px would take about 2 GB, more than the budget."""
    assert 1 <= memory.pairs_per_pass(small_resnet_spec(384), 8) < 8
    with pytest.raises(UserError, match=r"Explaining this pair would need about 2\.\d GB of memory \(small-resnet "
                                        r"at 1024x1024 pixels\), more than the 2\.0 GB"):
        memory.pairs_per_pass(small_resnet_spec(1024), 8)
