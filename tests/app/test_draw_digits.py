"""Drawing two digits on Verify (AppTest and the page's own functions; no browser): the pad is offered to digit
models only, its picture goes through the upload's digit pipeline, and the verdict follows the strokes."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from app_helpers import open_page
from app_pages.shared import state
from conftest import ROOT
from drawn_digits import SECOND_HAND, canvas_state, drawn
from test_model_context_app import pick_model

DEMO = ROOT / "assets" / "demo" / "digits-convnet.pt"


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


@pytest.fixture(scope="module")
def demo_model():
    from siamese_core.inference.model import SiameseModel

    return SiameseModel.load(DEMO, "cpu")


def as_model_sees(png: bytes, model) -> np.ndarray:
    from app_pages.verify.inputs import prepared

    pixels, notes = prepared(png, model.image_size, model.channels, model.input_pipeline)
    assert "digit found, centred and scaled as in MNIST" in notes
    return pixels


def test_an_empty_or_cleared_pad_is_no_image():
    from app_pages.verify.inputs import canvas_png

    assert canvas_png(None) is None
    assert canvas_png(np.zeros((280, 280, 4), np.uint8)) is None  # transparent: nothing drawn
    assert canvas_png(np.full((280, 280, 4), 255, np.uint8)) is None  # the white background only
    png = canvas_png(drawn("7"))
    assert png.startswith(b"\x89PNG")


def test_drawn_digits_read_like_uploads_and_the_demo_model_tells_them_apart(demo_model):
    from app_pages.verify.inputs import canvas_png

    three, seven = (as_model_sees(canvas_png(drawn(d)), demo_model) for d in "37")
    three_again, seven_again = (as_model_sees(canvas_png(drawn(d, seed=1, width=14, **SECOND_HAND)), demo_model) for d in "37")
    assert three.shape == (1, 28, 28) and three[0, 0, 0] == 0 and three.max() > 200  # light ink on black, as MNIST
    assert demo_model.verify(three, three_again).same
    assert demo_model.verify(seven, seven_again).same
    assert not demo_model.verify(three, seven_again).same
    assert not demo_model.verify(seven, three_again).same


def test_drawing_on_both_pads_gives_a_verdict_that_follows_the_strokes(runs_dir):
    at = open_page("verify")
    for side in "AB":
        assert at.radio(key=state.source(side)).options == ["Sample", "Upload", "Camera", "Draw"]
        at.radio(key=state.source(side)).set_value("Draw").run()
    assert "Draw a digit on the pad." in texts(at.info)
    assert not at.success and "Same digit" not in texts(at.info)  # no verdict before both pads hold a digit

    # AppTest runs no JavaScript: the component's state is set as a drawing on the pad would set it.
    at.session_state[state.drawing_pad("A", 0)] = canvas_state(drawn("3"))
    at.session_state[state.drawing_pad("B", 0)] = canvas_state(drawn("3", seed=1, width=14, **SECOND_HAND))
    at.run()
    assert not at.exception, at.exception
    assert "Same digit" in texts(at.success)
    # Each drawing went the upload's way: dark ink on white turned round and the digit centred, as MNIST's are.
    changed = [c.value for c in at.caption if c.value.startswith("Changed on the way in:")]
    assert sum("colours inverted to light ink on dark" in c and "digit found, centred" in c for c in changed) == 2

    at.session_state[state.drawing_pad("B", 0)] = canvas_state(drawn("7", seed=1, width=14, **SECOND_HAND))
    at.run()
    assert "Different digits" in texts(at.info)
    # More strokes on the same pads update the history's entry rather than adding one per stroke.
    assert drawn_checks(at) == ["Different digits"]

    at.button(key="clear-pad-B").click().run()  # a new, empty pad
    assert not at.exception, at.exception
    assert "Draw a digit on the pad." in texts(at.info) and "Different digits" not in texts(at.info)
    at.session_state[state.drawing_pad("B", 1)] = canvas_state(drawn("3", seed=1, width=14, **SECOND_HAND))
    at.run()
    assert drawn_checks(at) == ["Different digits", "Same digit"]


def drawn_checks(at) -> list:
    """The verdicts of the session's history on two drawings (the page opened on a sample pair before)."""
    return [entry["words"] for entry in at.session_state[state.VERIFY_HISTORY]
            if entry["names"] == ("drawn digit", "drawn digit")]


@pytest.mark.slow
def test_photo_models_are_not_offered_the_pad(runs_dir, people_run):
    shutil.copytree(people_run, runs_dir / "people-run")
    at = pick_model(open_page("verify"), "verify", "Run people-run")
    for side in "AB":
        assert "Draw" not in at.radio(key=state.source(side)).options
    assert "Draw" not in at.radio(key=state.source("query")).options
