"""The frozen-backbone fast path: a head trained on features embedded once, from a local weights file."""

import numpy as np
import pytest
import torch

from app_helpers import by_key, open_page
from conftest import write_class_folders
from siamese_core.config import TrainConfig
from siamese_core.errors import UserError
from siamese_core.evaluation.metrics import medians_threshold
from siamese_core.inference.model import SiameseModel
from siamese_core.models.networks import build_model
from siamese_core.runs.rundir import load_checkpoint
from siamese_core.training.common import cohort_pairs, cohort_sample
from siamese_core.training.loop import train
from siamese_core.data.prepare import prepare_data


@pytest.fixture(scope="module")
def source_run(tmp_path_factory):
    """A ConvNet trained for real on digits 0-4 only: its backbone stands in for pretrained weights."""
    folders = write_class_folders(tmp_path_factory.mktemp("seen") / "digits", classes=range(5), per_class=40)
    out = tmp_path_factory.mktemp("runs") / "source"
    status = train(TrainConfig(train_path=str(folders), backbone="convnet", split="image", epochs=2), out)
    assert status.state == "done" and status.best_accuracy > 0.9
    return out


@pytest.fixture(scope="module")
def weights_file(source_run, tmp_path_factory):
    state = load_checkpoint(source_run / "checkpoints" / "best.pt")["state_dict"]
    backbone = {k[len("backbone."):]: v for k, v in state.items() if k.startswith("backbone.")}
    path = tmp_path_factory.mktemp("weights") / "digits-0-4.pth"
    torch.save(backbone, path)
    return path, backbone


def test_frozen_head_on_a_local_weights_file_verifies_digits_its_backbone_never_saw(
        source_run, weights_file, tmp_path):
    path, backbone = weights_file
    unseen = write_class_folders(tmp_path / "unseen", classes=range(5, 10), per_class=40)
    config = TrainConfig(train_path=str(unseen), backbone="convnet", split="image", mode="triplet", epochs=3,
                         weights=str(path), frozen=True)
    status = train(config, tmp_path / "frozen")
    assert status.state == "done" and status.best_accuracy >= 0.9, status

    best = tmp_path / "frozen" / "checkpoints" / "best.pt"
    saved = load_checkpoint(best)
    assert saved["config"]["frozen"] and saved["config"]["mining"] == "batch-hard"
    for name, tensor in backbone.items():  # the backbone is the file's, untouched
        assert torch.equal(saved["state_dict"][f"backbone.{name}"], tensor), name

    # The checkpoint is a whole model: it loads anywhere and scores the validation pairs as training did.
    model = SiameseModel.load(best, device="cpu")
    data = prepare_data(TrainConfig.from_dict(saved["config"]))
    a, b, same = data.val_pairs
    scores = model.score_pairs(data.val.pixels[a].numpy(), data.val.pixels[b].numpy())
    accuracy = np.mean((scores >= model.threshold) == (same == 1))
    assert accuracy == pytest.approx(saved["metrics"]["accuracy"], abs=0.005)
    # its verdict's threshold is the middle of the medians of those scores, with the different pairs of validation
    # images against training images of other classes beside them; the rare-same one kept beside it
    val, train_rows = cohort_sample(data, saved["config"]["seed"])
    i, j = cohort_pairs(data.val.labels[val], data.train.labels[train_rows])
    others = model.score_pairs(data.val.pixels[val[i]].numpy(), data.train.pixels[train_rows[j]].numpy())
    assert len(others) > len(scores) and model.threshold == pytest.approx(medians_threshold(scores, same, others),
                                                                           abs=0.005)
    assert model.operating_points["threshold_policy"] == "medians"


def test_a_runs_checkpoint_serves_as_weights(source_run, weights_file):
    _, backbone = weights_file
    spec = load_checkpoint(source_run / "checkpoints" / "best.pt")["spec"]
    net = build_model(spec, weights=str(source_run / "checkpoints" / "best.pt"))
    assert all(torch.equal(net.backbone.state_dict()[k], v) for k, v in backbone.items())


def test_a_frozen_random_backbone_is_refused(tmp_path):
    with pytest.raises(UserError, match="learns nothing.*--weights"):
        train(TrainConfig(dataset="digits", backbone="convnet", frozen=True), tmp_path / "run")
    with pytest.raises(UserError, match="learns nothing"):
        TrainConfig(dataset="digits", backbone="timm:resnet10t", pretrained=False, frozen=True).resolve()


def test_photos_preset_says_which_path_it_takes(runs_dir, tmp_path):
    import timm

    at = open_page("train")
    at.radio(key="preset").set_value(next(o for o in at.radio(key="preset").options if o.startswith("Photos"))).run()
    assert not at.exception
    offline = any("No pretrained weights" in i.value for i in at.info)  # as on a machine without the hub
    assert by_key(at.checkbox, "frozen-").value is not offline

    runs_dir.mkdir(parents=True, exist_ok=True)
    weights = runs_dir / "efficientnet_b0.pth"  # the app reads weights inside the runs folder or the data root
    torch.save(timm.create_model("efficientnet_b0", num_classes=0).state_dict(), weights)
    at.text_input(key="weights-file").set_value(str(weights)).run()
    assert not at.exception
    assert any("in seconds" in i.value for i in at.info)
    assert by_key(at.checkbox, "frozen-").value
    assert by_key(at.selectbox, "backbone-").value == "timm:efficientnet_b0"

    at.text_input(key="weights-file").set_value(str(runs_dir / "missing.pth")).run()
    assert any("does not exist" in e.value for e in at.error)
    assert at.button(key="start").disabled

    elsewhere = tmp_path / "elsewhere.pth"  # exists, but outside: refused before it is looked at
    elsewhere.write_bytes(weights.read_bytes())
    at.text_input(key="weights-file").set_value(str(elsewhere)).run()
    assert any("other files on the server are not read" in e.value for e in at.error)
    assert at.button(key="start").disabled
