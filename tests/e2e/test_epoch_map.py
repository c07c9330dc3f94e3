"""The map, epoch by epoch, in a real browser: open a short run's map on Explore and press Play."""

from __future__ import annotations

import shutil

import pytest

from .conftest import assert_no_exception, screenshot, wait_for_app
from .test_explore import _hover_until_thumbnail

pytestmark = pytest.mark.browser

EPOCH_FRAME = 'iframe[title*="epoch by epoch"]'
FIRST_X = "() => Array.from(document.getElementById('map').data[0].x).slice(0, 5)"


def test_play_the_epoch_slider(browser, app_server, page, digits_run):
    name = "epoch-map-e2e"
    run = app_server.runs_dir / name
    shutil.copytree(digits_run, run)  # a finished 3-epoch digits run with its snapshots
    try:
        page.goto(f"{app_server.url}/explore?model=run:{name}")
        wait_for_app(page, timeout_s=90)
        assert_no_exception(page)
        page.get_by_text("Show it", exact=True).click()
        wait_for_app(page, timeout_s=60)
        page.locator(EPOCH_FRAME).scroll_into_view_if_needed()
        frame = page.frame_locator(EPOCH_FRAME)
        body = frame.locator("body[data-ready='1']")
        body.wait_for(state="attached", timeout=30_000)
        assert body.get_attribute("data-epoch") == "0"
        assert frame.locator("#caption").inner_text() == "Before training: random weights"
        before = body.evaluate(FIRST_X)

        frame.locator("g.updatemenu-button").first.click()  # ▶ Play
        frame.locator("body[data-epoch='3']").wait_for(state="attached", timeout=30_000)
        assert frame.locator(".slider-group > text.slider-label").first.text_content().strip() == "Epoch: 3"
        assert frame.locator("#caption").inner_text().startswith("After epoch 3 of 3")
        after = body.evaluate(FIRST_X)
        assert after != before, "the points did not move"
        # Hover a point of the last epoch: its image shows, as on the main map.
        box = frame.locator("#map").bounding_box()
        assert _hover_until_thumbnail(page, frame, box, steps=16) is not None, "no point was hovered"
        assert frame.locator("#hover-thumb").get_attribute("src").startswith("data:image/png;base64,")
        assert frame.locator("#hover-label").inner_text().startswith("digit ")
        page.wait_for_timeout(500)
        screenshot(page, "epoch-map-played-1400")

        # A phone: the page lays the slider and buttons out for its width when it loads.
        page.set_viewport_size({"width": 390, "height": 900})
        page.reload()
        wait_for_app(page, timeout_s=90)
        page.get_by_text("Show it", exact=True).click()
        wait_for_app(page, timeout_s=60)
        page.locator(EPOCH_FRAME).scroll_into_view_if_needed()
        frame.locator("body[data-ready='1']").wait_for(state="attached", timeout=30_000)
        frame.locator("g.updatemenu-button").first.click()
        frame.locator("body[data-epoch='3']").wait_for(state="attached", timeout=30_000)
        page.wait_for_timeout(500)
        screenshot(page, "epoch-map-played-390")
    finally:
        shutil.rmtree(run, ignore_errors=True)
