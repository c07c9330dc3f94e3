"""Backbones, heads, and the Siamese model."""

import logging

import pytest
import torch

from siamese_core.config import TrainConfig
from siamese_core.errors import UserError
from siamese_core.models.networks import build_model, count_parameters, model_spec, pick_device


def spec_for(backbone, **kw):
    defaults = dict(dataset="digits", backbone=backbone, mode="pair", pretrained=False)
    if backbone != "convnet":
        defaults["image_size"] = 32
    return model_spec(TrainConfig(**{**defaults, **kw}).resolve())


def test_reference_convnet_has_395297_parameters():
    model = build_model(spec_for("convnet"))
    assert count_parameters(model) == 395_297


@pytest.mark.parametrize("backbone, features", [("timm:efficientnet_b0", 1280), ("torchvision:resnet18", 512),
                                                ("torchvision:mobilenet_v3_small", 1024)])
def test_classifier_is_removed_so_heads_get_features(backbone, features):
    model = build_model(spec_for(backbone)).eval()
    with torch.inference_mode():
        vectors = model.embed(torch.rand(2, 3, 32, 32))
    # features (for mobilenet the 1,024-wide layer before the last Linear), not 1,000 ImageNet logits
    assert vectors.shape == (2, features)


@pytest.mark.parametrize("head", ["absdiff", "product", "concat"])
def test_pair_heads_give_one_logit_per_pair_and_probabilities(head):
    model = build_model(spec_for("convnet", head=head)).eval()
    a, b = torch.rand(5, 1, 28, 28), torch.rand(5, 1, 28, 28)
    with torch.inference_mode():
        logits = model(a, b)
        scores = model.pair_scores(model.embed(a), model.embed(b))
    assert logits.shape == (5,)
    assert torch.allclose(scores, torch.sigmoid(logits), atol=1e-6)


def test_absdiff_head_is_symmetric():
    model = build_model(spec_for("convnet")).eval()
    a, b = torch.rand(4, 1, 28, 28), torch.rand(4, 1, 28, 28)
    with torch.inference_mode():
        assert torch.allclose(model(a, b), model(b, a), atol=1e-5)


def test_embedding_models_give_unit_vectors_and_distance_scores():
    model = build_model(spec_for("convnet", mode="triplet", embedding_dim=64)).eval()
    a, b = torch.rand(3, 1, 28, 28), torch.rand(3, 1, 28, 28)
    with torch.inference_mode():
        va, vb = model.embed(a), model.embed(b)
        assert va.shape == (3, 64)
        assert torch.allclose(va.norm(dim=1), torch.ones(3), atol=1e-5)
        distance = model(a, b)
        assert torch.allclose(model.pair_scores(va, vb), 1 - distance / 2, atol=1e-5)
        assert torch.allclose(model.pair_scores(va, va), torch.ones(3), atol=1e-5)


@pytest.mark.parametrize("name, hint", [("timm:efficientnet_b9000", "timm.list_models"),
                                        ("torchvision:resnet1", "torchvision:resnet18"),
                                        ("keras:vgg", "Backbone names")])
def test_unknown_backbones_say_how_to_find_valid_names(name, hint):
    with pytest.raises(UserError, match=hint.replace(".", r"\.")):
        build_model(spec_for(name))


def test_local_weights_file_is_loaded(tmp_path):
    source = build_model(spec_for("torchvision:resnet18"))
    path = tmp_path / "resnet18.pth"
    torch.save(source.backbone.state_dict(), path)
    loaded = build_model(spec_for("torchvision:resnet18"), weights=str(path))
    assert loaded.weights_source.startswith("local file")
    for key, value in source.backbone.state_dict().items():
        assert torch.equal(value, loaded.backbone.state_dict()[key])


def test_weights_of_another_model_are_refused(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"something.else": torch.zeros(3)}, path)
    with pytest.raises(UserError, match="fit this backbone"):
        build_model(spec_for("torchvision:resnet18"), weights=str(path))


def test_pretrained_weights_out_of_reach_fall_back_with_a_warning(caplog, monkeypatch):
    # A machine that cannot reach the hub (as this one): no minute-long retries, a clear warning.
    from siamese_core.models import networks as models

    monkeypatch.setattr(models, "reachable", lambda host, port=443, timeout=3.0: False)
    with caplog.at_level(logging.WARNING):
        model = build_model(spec_for("timm:resnet18"), pretrained=True)
    if model.weights_source == "pretrained":
        pytest.skip("this machine has timm:resnet18's weights cached")
    assert model.weights_source == "random initialisation"
    assert "random weights" in caplog.text and "--weights" in caplog.text


def test_offline_pretrained_weights_come_from_the_cached_file_without_a_process_wide_switch(tmp_path, monkeypatch):
    # Offline, timm is handed the cached file (pretrained_cfg_overlay); huggingface_hub's global stays as it was.
    import timm
    from huggingface_hub import constants

    from siamese_core.models import networks as models

    source = timm.create_model("resnet10t", pretrained=False)
    path = tmp_path / "model.pth"
    torch.save(source.state_dict(), path)
    monkeypatch.setattr(models, "reachable", lambda host, port=443, timeout=3.0: False)
    monkeypatch.setattr(models, "cached_timm_weights", lambda name: str(path))
    before = constants.HF_HUB_OFFLINE
    model = build_model(spec_for("timm:resnet10t"), pretrained=True)
    assert constants.HF_HUB_OFFLINE == before
    assert model.weights_source == "pretrained"
    torch.testing.assert_close(model.backbone.conv1[0].weight, source.conv1[0].weight)


def test_device_choice():
    assert pick_device("cpu").type == "cpu"
    assert pick_device("auto").type in ("cpu", "cuda", "mps")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="no CUDA GPU"):
            pick_device("cuda")
    with pytest.raises(UserError, match="Unknown device"):
        pick_device("toaster")


def test_the_network_check_sees_a_host_come_back_once_its_answer_is_old(monkeypatch):
    # A server started offline must find the network again: the answer is kept for a while, not for the process.
    import socket
    import time

    from siamese_core.models import networks

    monkeypatch.setattr(networks, "REACHABLE_SECONDS", 0.5, raising=False)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))  # bound but not listening: a connection is refused, as offline
    port = server.getsockname()[1]
    try:
        assert not networks.reachable("127.0.0.1", port, timeout=2)
        server.listen()
        assert not networks.reachable("127.0.0.1", port, timeout=2)  # within its time: the kept answer
        time.sleep(0.6)
        assert networks.reachable("127.0.0.1", port, timeout=2)
    finally:
        server.close()
