"""In a real browser: draw a digit on each of Verify's pads with the mouse and read the verdict, redraw one and see
it change; download a finished run for other apps on Runs and load the ONNX file it holds."""

from __future__ import annotations

import shutil
import zipfile

import numpy as np
import pytest

from drawn_digits import SECOND_HAND, points

from .conftest import assert_no_exception, screenshot, wait_for_app

pytestmark = pytest.mark.browser


def draw(page, pad, digit: str, **hand) -> None:
    """Draw `digit` on `pad` (the drawing component's canvas area) with mouse strokes, as a person would."""
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    for stroke in points(digit, box["width"], **hand):
        (x, y), rest = stroke[0], stroke[1:]
        page.mouse.move(box["x"] + x, box["y"] + y)
        page.mouse.down()
        for x, y in rest:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=6)
        page.mouse.up()
    wait_for_app(page)


def test_draw_two_digits_and_the_verdict_follows_the_strokes(app_server, page):
    page.goto(f"{app_server.url}/verify?model=demo")  # the demo model, whatever runs other tests left
    wait_for_app(page, timeout_s=60)
    pair_tab = page.get_by_role("tabpanel", name="Check a pair")
    # The component lives in the page itself (a shadow root, no iframe): its drawing area is .dc-container.
    pads = pair_tab.locator(".dc-container")
    for count, side in enumerate("AB", 1):
        choice = pair_tab.get_by_role("radiogroup", name=f"Image {side}").get_by_text("Draw")
        choice.click()
        wait_for_app(page)
        if pads.count() < count:  # a click while a busy machine was still wiring the page up: once more
            choice.click()
            wait_for_app(page)
        pads.nth(count - 1).wait_for()
    assert pair_tab.get_by_text("Draw a digit on the pad.").count() == 2
    verdict_same = pair_tab.locator('[data-testid="stAlertContentSuccess"]').filter(has_text="Same digit")

    draw(page, pads.nth(0), "3")
    assert pair_tab.get_by_text("Draw a digit on the pad.").count() == 1  # pad B still waits
    draw(page, pads.nth(1), "3", seed=1, **SECOND_HAND)
    verdict_same.wait_for()
    assert_no_exception(page)
    screenshot(page, "verify-draw-same")

    pair_tab.get_by_role("button", name="Clear the pad").nth(1).click()
    wait_for_app(page)
    assert verdict_same.count() == 0 and pair_tab.get_by_text("Draw a digit on the pad.").count() == 1
    draw(page, pair_tab.locator(".dc-container").nth(1), "7", seed=1, **SECOND_HAND)
    pair_tab.locator('[data-testid="stAlertContentInfo"]').filter(has_text="Different digits").wait_for()
    assert_no_exception(page)
    screenshot(page, "verify-draw-different")
    page.set_viewport_size({"width": 390, "height": 844})
    wait_for_app(page)
    screenshot(page, "verify-draw-phone")


def test_download_a_finished_run_for_other_apps(app_server, page, people_run, tmp_path):
    import onnxruntime

    shutil.copytree(people_run, app_server.runs_dir / "people-run")
    page.goto(f"{app_server.url}/runs")
    wait_for_app(page, timeout_s=60)
    picker = page.get_by_label("Open a run")
    picker.click()
    page.get_by_role("option", name="people-run").first.click()
    wait_for_app(page)
    page.get_by_role("button", name="Prepare for other apps").click()  # made once, with a status saying so
    button = page.get_by_role("button", name="Download for other apps")
    button.wait_for(timeout=120_000)
    wait_for_app(page)
    screenshot(page, "runs-onnx-download")
    with page.expect_download(timeout=120_000) as download:
        button.click()
    assert download.value.suggested_filename == "people-run-onnx.zip"
    saved = tmp_path / "people-run-onnx.zip"
    download.value.save_as(saved)
    with zipfile.ZipFile(saved) as archive:
        assert sorted(archive.namelist()) == ["people-run.json", "people-run.md", "people-run.onnx",
                                              "people-run.pair-head.onnx"]
        graph = onnxruntime.InferenceSession(archive.read("people-run.onnx"), providers=["CPUExecutionProvider"])
    vectors = graph.run(["vectors"], {"images": np.random.default_rng(0).random((4, 1, 28, 28), np.float32)})[0]
    assert vectors.shape[0] == 4 and np.isfinite(vectors).all()
    assert_no_exception(page)
    page.set_viewport_size({"width": 390, "height": 844})
    wait_for_app(page)
    screenshot(page, "runs-onnx-download-phone")
