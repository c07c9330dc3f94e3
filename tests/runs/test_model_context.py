"""A model carries its context: what its classes are called, where its images came from, its own sample images;
and a run's headline figures all come from one epoch, the best."""

from __future__ import annotations

import json

import pytest
import torch

from siamese_core.config import TrainConfig
from siamese_core.runs.context import context_of, set_class_word
from siamese_core.words import clean_class_word, guess_class_word
from siamese_core.inference.model import SiameseModel
from siamese_core.runs.rundir import RunDir, epoch_in_progress
from siamese_core.runs.status import RunStatus


@pytest.mark.parametrize("names, word", [
    (("faces10.zip",), "person"), (("att_faces",), "person"), (("Market-1501",), "person"),
    (("my_signatures",), "signature"), (("shop-products.zip",), "product"), (("mnist_png",), "digit"),
    (("catalog",), None), (("holiday photos",), None), ((None, "people"), "person"),
])
def test_the_class_word_is_guessed_from_whole_words_of_the_data_s_name(names, word):
    assert guess_class_word(*names) == word


def test_a_typed_class_word_is_one_short_line_of_plain_words():
    assert clean_class_word("  Person ") == "person"
    assert clean_class_word("[Sign in](https://evil.example)") == "sign in https evil example"
    assert clean_class_word("<b>") == "b" and clean_class_word("***") == "class"
    assert len(clean_class_word("x" * 200)) == 30


def test_a_folder_run_knows_its_class_word_data_samples_and_best_epoch(people_run):
    run = RunDir(people_run)
    model = SiameseModel.load(run.checkpoint("best"))
    context = model.context
    assert (context.class_word, context.data_name, context.run) == ("person", "people", run.path)
    # Samples are its own validation images, as the model sees them: classes it never trained on.
    labels = {s.label for s in context.samples}
    assert len(labels) >= 2 and not labels & set(model.checkpoint["classes"])
    assert all(s.path.parent == run.path / "samples" and s.path.is_file() for s in context.samples)
    assert all(a.label == b.label and a.path != b.path for a, b in context.same_pairs())
    assert context.different_pairs() and all(a.label != b.label for a, b in context.different_pairs())
    # Every headline figure is one epoch's: the one best.pt holds and the status names.
    best = run.best_epoch()
    assert best["epoch"] == run.status().best_epoch == model.checkpoint["epoch"]
    for key in ("accuracy", "precision", "recall"):
        assert best[key] == pytest.approx(model.checkpoint["metrics"][key])


def test_renaming_the_class_word_reaches_every_reader_of_the_model(people_run, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(people_run, copy)
    assert set_class_word(RunDir(copy), "  Student ") == "student"
    assert SiameseModel.load(copy / "checkpoints" / "best.pt").class_word == "student"
    checkpoint = torch.load(copy / "checkpoints" / "best.pt", weights_only=True)
    assert checkpoint["config"]["class_word"] == "person"  # the weights' file is left as it was trained
    # A checkpoint outside its run keeps the word it was trained with, and no samples.
    alone = tmp_path / "elsewhere.pt"
    shutil.copy(copy / "checkpoints" / "best.pt", alone)
    assert context_of(alone, checkpoint).class_word == "person" and context_of(alone, checkpoint).samples == ()


def test_a_sample_list_naming_files_outside_the_run_is_not_followed(people_run, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(people_run, copy)
    (tmp_path / "secret.png").write_bytes((copy / "samples" / "00.png").read_bytes())
    (copy / "samples.json").write_text(json.dumps({"samples": [{"file": "../secret.png", "class": "x"},
                                                               {"file": "samples/00.png", "class": "y"}]}))
    checkpoint = torch.load(copy / "checkpoints" / "best.pt", weights_only=True)
    assert [s.label for s in context_of(copy / "checkpoints" / "best.pt", checkpoint).samples] == ["y"]


def test_digits_are_digits_and_other_data_falls_back_to_class():
    assert TrainConfig(dataset="digits").preview().class_word == "digit"
    assert TrainConfig(dataset="folder", train_path="/data/holiday").preview().class_word == "class"
    assert TrainConfig(dataset="folder", train_path="/data/x", data_name="faces.zip").preview().class_word == "person"
    assert TrainConfig(dataset="folder", train_path="/data/x", class_word="bird").preview().class_word == "bird"


@pytest.mark.parametrize("status, shown", [
    ({"state": "queued", "epoch": 0, "total_epochs": 5}, 1),  # from the first step: "epoch 1 of 5"
    ({"state": "running", "epoch": 2, "total_epochs": 5}, 3),
    ({"state": "running", "epoch": 5, "total_epochs": 5}, 5),  # validating the last epoch
    ({"state": "done", "epoch": 5, "total_epochs": 5}, 5),
    ({"state": "stopped", "epoch": 0, "total_epochs": 5}, 0),
])
def test_the_epoch_shown_is_the_one_being_trained(status, shown):
    assert epoch_in_progress(RunStatus.from_dict(status)) == shown
