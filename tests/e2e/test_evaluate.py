"""The Evaluate page in a real browser: move the threshold slider with the keyboard and see the figures change."""

from __future__ import annotations

import pytest

from .conftest import assert_no_exception, screenshot, wait_for_app

pytestmark = pytest.mark.browser


def metric(page, label: str) -> str:
    tile = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    return tile.locator('[data-testid="stMetricValue"]').inner_text()


def test_threshold_slider_moves_the_figures(app_server, page):
    page.goto(f"{app_server.url}/evaluate?model=demo")  # the demo model, whatever runs other tests left
    wait_for_app(page, timeout_s=60)
    page.get_by_text("Which set chose the threshold?").wait_for(timeout=60_000)
    assert_no_exception(page)
    before = {label: metric(page, label) for label in ("Accuracy", "Recall", "ROC AUC")}
    assert float(before["Accuracy"].rstrip("%")) > 95
    assert page.locator(".js-plotly-plot").count() >= 3  # ROC, histogram, confusion matrix drawn
    screenshot(page, "evaluate-demo")

    slider = page.locator('[data-testid="stSlider"]').filter(has_text="Threshold").get_by_role("slider")
    slider.focus()
    slider.press("End")  # the keyboard moves it to 100%: nothing is called 'same' any more
    wait_for_app(page)
    page.get_by_text("Set by hand on this page").wait_for()
    after = {label: metric(page, label) for label in ("Accuracy", "Recall", "ROC AUC")}
    assert after["Recall"] != before["Recall"] and after["Accuracy"] != before["Accuracy"]
    assert after["ROC AUC"] == before["ROC AUC"]  # the curve itself does not depend on the threshold
    for _ in range(3):
        slider.press("ArrowLeft")  # small steps are taken too
    wait_for_app(page)
    assert "99.7%" in slider.get_attribute("aria-valuetext") or slider.get_attribute("aria-valuenow") == "99.7"
    assert_no_exception(page)
    screenshot(page, "evaluate-threshold-moved")

    page.get_by_role("tab", name="Where it fails").click()
    page.get_by_text("False rejects", exact=True).click()
    wait_for_app(page)
    assert page.get_by_text("(false reject)").count() >= 4  # pairs with their images, the mistakes first
    assert page.locator('[data-testid="stImage"] img').count() >= 4
    screenshot(page, "evaluate-gallery")
