"""The default recipe: what it resolves to, its parts, and that it learns for real on small data."""

import copy

import numpy as np
import pytest
import torch

from conftest import write_class_folders
from siamese_core.data.augment import apply as augment
from siamese_core.config import TrainConfig
from siamese_core.inference.model import SiameseModel
from siamese_core.evaluation.metrics import calibrate_threshold
from siamese_core.models.networks import build_model, model_spec
from siamese_core.runs.rundir import RunDir
from siamese_core.training.loop import make_optimizer, make_scheduler, train


def test_default_recipe_on_a_cpu_and_the_classic_designs_when_a_mode_is_named():
    default = TrainConfig(train_path="photos/", device="cpu").resolve()
    assert (default.recipe, default.backbone, default.image_size, default.mode, default.mining) == \
        ("default", "small-resnet", 64, "triplet", "batch-hard")
    assert (default.optimizer, default.schedule, default.augment, default.flip_test, default.neck) == \
        ("adamw", "cosine", "photos", True, True)
    assert default.id_loss > 0 and not default.pretrained
    digits = TrainConfig(train_path="digits/", backbone="convnet").resolve()
    assert (digits.augment, digits.flip_test) == ("digits", False)  # digits are never mirrored
    classic = TrainConfig(train_path="photos/", mode="pair").resolve()
    assert (classic.recipe, classic.backbone, classic.image_size, classic.head) == \
        ("classic", "timm:efficientnet_b0", 224, "product")
    assert (classic.optimizer, classic.schedule, classic.augment, classic.weight_decay, classic.id_loss) == \
        ("adam", "constant", "none", 0.0, 0.0)
    old = TrainConfig.from_dict({"train_path": "x", "mode": "pair", "augment": True}).resolve()
    assert old.augment == "shift"  # a config.json written before policies existed


def test_warm_up_then_cosine_decay_to_zero():
    config = TrainConfig(train_path="x", device="cpu", warmup=0.1, lr=0.01).resolve()
    optimizer = make_optimizer(config, [torch.nn.Parameter(torch.zeros(1))])
    scheduler = make_scheduler(config, optimizer, total_steps=100)
    rates = []
    for _ in range(100):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert rates[0] == pytest.approx(0.001) and rates[9] == pytest.approx(0.01)
    assert all(a <= b for a, b in zip(rates[:10], rates[1:10]))  # rising during warm-up
    assert all(a >= b for a, b in zip(rates[10:], rates[11:]))  # then falling
    assert rates[-1] < 0.0001


def test_flip_test_makes_an_image_and_its_mirror_image_one_vector():
    config = TrainConfig(train_path="x", device="cpu", image_size=32).resolve()
    net = build_model(model_spec(config)).eval()
    image = torch.rand(1, 3, 32, 32)
    with torch.inference_mode():
        both = net.embed(torch.cat([image, image.flip(-1)]))
        assert torch.allclose(both[0], both[1], atol=1e-5)
        net.flip_test = False
        plain = net.embed(torch.cat([image, image.flip(-1)]))
    assert not torch.allclose(plain[0], plain[1], atol=1e-3)
    assert torch.allclose(both.norm(dim=1), torch.ones(2), atol=1e-5)


@pytest.mark.parametrize("policy", ["photos", "digits", "shift"])
def test_augmentation_keeps_shape_and_range_and_changes_images(policy):
    torch.manual_seed(0)
    channels = 1 if policy == "digits" else 3
    x = torch.rand(8, channels, 32, 32)
    y = augment(x, policy)
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1
    assert (y - x).abs().mean() > 0.01


@pytest.mark.slow
def test_default_recipe_learns_with_a_small_resnet(tmp_path):
    """The default recipe end to end (small ResNet, P x K batch-hard + identity loss, photo augmentation,
    AdamW with warm-up and cosine), on colour images of digits it never trained on."""
    root = write_class_folders(tmp_path / "photos", per_class=40, colour=True)
    # Digits read as writing (the data reading would choose the digit ConvNet): the photo recipe's parts are named.
    config = TrainConfig(train_path=str(root), split="image", device="cpu", image_size=32, epochs=3,
                         pairs_per_epoch=2000, seed=1, backbone="small-resnet", input="resize", augment="photos",
                         flip_test=True)
    status = train(config, tmp_path / "run")
    assert status.state == "done"
    saved = TrainConfig.from_dict(RunDir(tmp_path / "run").read_config())
    assert (saved.backbone, saved.recipe, saved.mining) == ("small-resnet", "default", "batch-hard")
    records = [r for r in RunDir(tmp_path / "run").read_metrics() if r["type"] == "epoch"]
    assert max(r["roc_auc"] for r in records) >= 0.9, records  # chance is 0.5
    model = SiameseModel.load(tmp_path / "run" / "checkpoints" / "best.pt")
    assert model.is_embedding and model.net.flip_test
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert "scheduler" in last and "identity_loss" in last  # what --resume needs to continue the recipe
    images = sorted((root / "digit_3").iterdir())[:2]
    verdict = model.verify(images[0], images[1])
    assert 0.0 <= verdict.score <= 1.0 and np.isfinite(verdict.distance)


def test_threshold_for_rare_same_pairs_trades_a_little_balanced_accuracy_for_precision():
    rng = np.random.default_rng(0)
    same = np.repeat([1.0, 0.0], 5000)
    scores = np.concatenate([rng.normal(0.7, 0.1, 5000), rng.normal(0.4, 0.1, 5000)]).clip(0, 1)
    balanced = calibrate_threshold(scores, same)
    rare = calibrate_threshold(scores, same, same_share=0.3)
    assert rare > balanced
    # judged where one pair in ten is the same: fewer false accepts, so more precise
    false_accepts = [(scores[5000:] >= t).sum() for t in (balanced, rare)]
    assert false_accepts[1] < false_accepts[0]
    # the rare-same point is tuned for one pair in ten; the verdict takes the middle of the medians, in both
    # recipes, unless a share is named
    for asked in ({}, {"mode": "pair"}):
        config = TrainConfig(train_path="x", device="cpu", **asked).resolve()
        assert (config.same_share, config.threshold_policy) == (0.1, "medians")
    named = TrainConfig(train_path="x", device="cpu", same_share=0.3).resolve()
    assert (named.same_share, named.threshold_policy) == (0.3, "same-share")


def test_a_split_by_class_holds_out_at_most_the_cap():
    from siamese_core.data.sources import load_digits, split_by_class

    digits = load_digits(28, 1)
    train_set, val = split_by_class(digits, 0.5, seed=0, max_classes=2)
    assert len(np.unique(val.labels)) == 2 and len(np.unique(train_set.labels)) == 8
    assert TrainConfig(train_path="x", device="cpu").resolve().max_val_classes == 50
    assert TrainConfig(train_path="x", mode="pair").resolve().max_val_classes == 0  # as the classic designs split


def test_the_fused_optimiser_makes_the_same_updates_and_resumes_from_an_unfused_ones_state():
    """make_optimizer fuses AdamW into one kernel on a CPU (the small ResNet's step: 208 ms -> 11 ms here): the same
    updates as PyTorch's default, and a checkpoint written before (an unfused optimiser's state) still resumes."""
    config = TrainConfig(train_path="x", device="cpu").resolve()
    torch.manual_seed(0)
    start = [torch.randn(64, 32), torch.randn(32)]
    grads = [[torch.randn_like(p) for p in start] for _ in range(5)]

    def trained(optimizer_of, state=None):
        params = [torch.nn.Parameter(p.clone()) for p in start]
        optimizer = optimizer_of(params)
        if state is not None:
            optimizer.load_state_dict(copy.deepcopy(state))  # loading may keep the state's tensors, stepped in place
        for step in grads:
            for p, g in zip(params, step):
                p.grad = g.clone()
            optimizer.step()
        return params, optimizer

    fused, optimizer = trained(lambda ps: make_optimizer(config, ps))
    assert optimizer.param_groups[0]["fused"]
    plain, plain_optimizer = trained(lambda ps: torch.optim.AdamW(ps, lr=config.lr, weight_decay=config.weight_decay))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(fused, plain))
    assert not all(torch.equal(a, p) for a, p in zip(fused, start))  # it did learn
    resumed, _ = trained(lambda ps: make_optimizer(config, ps), plain_optimizer.state_dict())
    again, _ = trained(lambda ps: torch.optim.AdamW(ps, lr=config.lr, weight_decay=config.weight_decay),
                       plain_optimizer.state_dict())
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(resumed, again))
