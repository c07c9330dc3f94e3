"""'Why this verdict?' (siamese_core.inference.explain): the exact split of an embedding model's similarity over the image,
the gradient map of the others, and both on Verify and in Evaluate's gallery (AppTest, no browser)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from app_helpers import open_page
from app_pages.shared import state
from conftest import ROOT, write_people
from siamese_core.config import TrainConfig
from siamese_core.inference.explain import EXACT, GRADIENT, explain_pair, line_similarity, render_pair
from siamese_core.inference.model import SiameseModel
from siamese_core.models.networks import build_model, model_spec

DEMO = ROOT / "assets" / "demo" / "digits-convnet.pt"
SAMPLES = ROOT / "assets" / "samples" / "digits"


@pytest.fixture(scope="module")
def embedding_run(tmp_path_factory) -> Path:
    """A small ResNet (ends in average pooling) trained for real as an embedding, with the BatchNorm neck and
    test-time flip: the hardest case of the exact split. One short epoch on generated people."""
    from siamese_core.training.loop import train

    people = write_people(tmp_path_factory.mktemp("data") / "people", per_person=6, size=40)
    out = tmp_path_factory.mktemp("runs") / "faces-embedding"
    status = train(TrainConfig(dataset="folder", train_path=str(people), backbone="small-resnet", mode="triplet",
                               image_size=32, channels=1, neck=True, flip_test=True, epochs=1, pairs_per_epoch=96,
                               eval_pairs=40, batch_size=16), out)
    assert status.state == "done"
    return out


def cosine(model, a, b) -> float:
    va, vb = model.embed(np.stack([a, b]))
    return float(va @ vb)


def adds_up(explanation, similarity: float) -> None:
    for cells, picture, bias in ((explanation.cells_a, explanation.map_a, explanation.bias_a),
                                 (explanation.cells_b, explanation.map_b, explanation.bias_b)):
        assert cells.sum() + bias == pytest.approx(similarity, abs=1e-5)
        assert picture.sum() + bias == pytest.approx(similarity, abs=1e-5)  # the image-size map keeps the sum


def test_the_exact_split_adds_up_to_the_similarity_and_follows_the_partner(embedding_run):
    model = SiameseModel.load(embedding_run / "checkpoints" / "best.pt")
    people = Path(model.checkpoint["config"]["train_path"])
    faces = {p.name: [model.prepare(f) for f in sorted(p.glob("*.png"))[:2]] for p in sorted(people.iterdir())}
    names = list(faces)
    anchor, again = faces[names[-1]]  # two photos of one person; then another person
    other = faces[names[-2]][0]

    same, different = explain_pair(model, anchor, again), explain_pair(model, anchor, other)
    for explanation, partner in ((same, again), (different, other)):
        assert explanation.kind == EXACT and explanation.target_name == "cosine similarity"
        similarity = cosine(model, anchor, partner)
        assert explanation.target == pytest.approx(similarity, abs=1e-6)
        adds_up(explanation, similarity)
        assert explanation.score == pytest.approx(model.verify(anchor, partner).score, abs=1e-6)
        assert explanation.cells_a.shape == (2, 2) and explanation.map_a.shape == (32, 32)  # 32 px: a 2x2 map
        # Coloured against the 'same' line: each image's colours sum to how far the similarity is above it.
        for shown in explanation.shown(model.threshold):
            assert shown.sum() == pytest.approx(similarity - line_similarity(model.threshold), abs=1e-5)
            assert (shown.sum() >= 0) == model.verify(anchor, partner).same
    # The same image's map depends on what it is compared with, and the trained model finds the match more alike.
    assert not np.allclose(same.cells_a, different.cells_a, atol=1e-4)  # cells of about 1e-2
    assert same.cells_a.sum() + same.bias_a > different.cells_a.sum() + different.bias_a
    assert render_pair(same, anchor, again).size == (328, 160 + 6 + 32)  # two overlays and the legend


@pytest.mark.parametrize("backbone", ["small-resnet", "timm:efficientnet_b0", "torchvision:resnet18", "convnet"])
def test_which_backbones_split_exactly(backbone):
    """Backbones that end in average pooling split exactly (found on the images, not by name); convnet flattens."""
    size = 28 if backbone == "convnet" else 48
    spec = model_spec(TrainConfig(dataset="digits", backbone=backbone, mode="triplet", image_size=size, channels=3,
                                  neck=False, flip_test=False, pretrained=False).resolve())
    torch.manual_seed(0)
    net = build_model(spec).eval()
    model = SiameseModel(net, {"spec": spec, "threshold": 0.5}, torch.device("cpu"))
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 256, (2, 3, size, size), dtype=np.uint8)
    explanation = explain_pair(model, a, b)
    if backbone == "convnet":
        assert explanation.kind == GRADIENT and "cannot be shared out exactly" in explanation.note
    else:
        assert explanation.kind == EXACT and explanation.bias_a != 0  # no neck: the projection's bias is the rest
        assert explanation.cells_a.size > 1  # the map before the pooling, not the pooled 1x1 one
        adds_up(explanation, cosine(model, a, b))


def digit(d: int, n: int = 0) -> Path:
    return sorted((SAMPLES / str(d)).glob("*.png"))[n]


def test_gradient_maps_of_the_demo_model_and_of_a_pair_head_differ_with_the_partner(people_run):
    demo = SiameseModel.load(DEMO)  # an embedding of the digit convnet, which flattens: no exact split
    three, another_three, eight = (demo.prepare(digit(3, 0)), demo.prepare(digit(3, 1)), demo.prepare(digit(8, 0)))
    same, different = explain_pair(demo, three, another_three), explain_pair(demo, three, eight)
    for explanation, partner in ((same, another_three), (different, eight)):
        assert explanation.kind == GRADIENT and explanation.cells_a.shape == (7, 7)
        assert explanation.score == pytest.approx(demo.verify(three, partner).score, abs=1e-6)
        assert explanation.target == pytest.approx(cosine(demo, three, partner), abs=1e-5)
        assert (explanation.cells_a > 0).any() and (explanation.cells_a < 0).any()  # both ways, signed
    assert same.score > different.score
    assert np.corrcoef(same.cells_a.ravel(), different.cells_a.ravel())[0, 1] < 0.9

    pair_model = SiameseModel.load(people_run / "checkpoints" / "best.pt")  # mode pair: a learned head
    folders = sorted(Path(pair_model.checkpoint["config"]["train_path"]).iterdir())
    face, again, other = (pair_model.prepare(sorted(folders[i].glob("*.png"))[n]) for i, n in ((0, 0), (0, 1), (1, 0)))
    same, different = explain_pair(pair_model, face, again), explain_pair(pair_model, face, other)
    for explanation in (same, different):
        assert explanation.kind == GRADIENT and explanation.target_name == "logit" and "pair head" in explanation.note
        assert explanation.score == pytest.approx(float(torch.sigmoid(torch.tensor(explanation.target))), abs=1e-6)
        assert explanation.scale > 0
    assert not np.allclose(same.cells_a / same.scale, different.cells_a / different.scale, atol=0.05)


def chart_keys(at) -> list:
    return [c.key for c in at.get("plotly_chart")]


def open_why(at):
    at.session_state[state.WHY_VERDICT] = True  # what clicking the expander does
    at.run()
    assert not at.exception, at.exception
    return at


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def test_verify_opens_why_this_verdict_for_the_demo_and_for_an_embedding_run(runs_dir, embedding_run):
    shutil.copytree(embedding_run, runs_dir / "faces")
    at = open_page("verify")  # a fresh session uses the newest run: the faces model
    assert "why-map-A" not in chart_keys(at)  # worked out only once opened
    open_why(at)
    assert {"why-map-A", "why-map-B"} <= set(chart_keys(at))
    assert "parts that made the model find the two images alike" in texts(at.markdown)
    words = texts(at.caption)
    assert "Exact shares" in words and "Here the similarity is" in words
    # Words a non-programmer reads (issue 24, item 3).
    assert "a part that comes from no region in particular, the same for every image, is" in words
    assert "offset" not in words
    spec = next(c for c in at.get("plotly_chart") if c.key == "why-map-A").proto.spec
    assert "to the similarity" in spec and "share of the" in spec

    picker = at.selectbox(key=state.model_picker("verify"))
    picker.set_value(next(o for o in picker.options if o.startswith("Demo model"))).run()
    assert not at.exception, at.exception
    assert {"why-map-A", "why-map-B"} <= set(chart_keys(at))  # still open: the new model's maps
    words = texts(at.caption)
    assert "An estimate, made by nudging each region and watching the score" in words
    assert "cannot be shared out exactly between regions" in words
    for jargon in ("Grad-CAM", "gradient", "averaging over the image", "offset"):
        assert jargon not in words, jargon
    spec = next(c for c in at.get("plotly_chart") if c.key == "why-map-A").proto.spec
    assert "of the strongest push on this pair" in spec  # the hover words


def test_evaluate_gallery_shows_the_maps(runs_dir):
    at = open_page("evaluate")
    assert "made the model find the two images alike" not in texts(at.markdown)
    pictures = len(at.get("imgs"))
    at.toggle(key="eval-gallery-why").set_value(True).run()
    assert not at.exception, at.exception
    assert "made the model find the two images alike" in texts(at.markdown)
    assert "An estimate, made by nudging each region" in texts(at.caption)
    assert len(at.get("imgs")) == pictures  # each pair's picture swapped for its maps, none added
