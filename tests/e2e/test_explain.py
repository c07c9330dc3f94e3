"""'Why this verdict?' in a real browser: open it on Verify, point at the heatmap and read a region's value;
then the same view on a phone, and Evaluate's gallery with 'Show why' on."""

from __future__ import annotations

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from .conftest import SCREENSHOTS, assert_no_exception, screenshot, wait_for_app

pytestmark = pytest.mark.browser


def open_why(page, url: str):
    page.goto(f"{url}/verify?model=demo")  # the demo model, whatever runs other tests left
    wait_for_app(page, timeout_s=90)
    pair_tab = page.get_by_role("tabpanel", name="Check a pair")
    pair_tab.get_by_text("Why this verdict?").click()
    wait_for_app(page, timeout_s=90)
    assert_no_exception(page)
    maps = pair_tab.locator('[data-testid="stExpander"] .js-plotly-plot')
    maps.nth(1).wait_for()
    return pair_tab, maps


def hover_value(page, chart) -> str:
    """Point at regions of a map, centre first, until plotly shows a value; the value's text."""
    chart.scroll_into_view_if_needed()
    box = chart.locator(".nsewdrag").first.bounding_box()
    for fx, fy in ((0.5, 0.5), (0.3, 0.3), (0.7, 0.6), (0.4, 0.7)):
        page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
        label = chart.locator(".hoverlayer .hovertext")
        try:
            label.first.wait_for(timeout=3000)
        except PlaywrightTimeout:  # try another point
            continue
        return label.first.text_content()  # an SVG element: text_content, not inner_text
    return ""


def test_why_this_verdict_shows_hoverable_maps_on_verify_and_in_the_gallery(app_server, browser, page):
    pair_tab, maps = open_why(page, app_server.url)
    assert maps.count() == 2  # one map per image
    legend = pair_tab.get_by_text("parts that made the model find the two images alike")
    assert legend.is_visible()
    assert pair_tab.get_by_text("An estimate, made by nudging each region").is_visible()  # the demo model's kind of map
    value = hover_value(page, maps.first)
    assert "Pushed towards" in value and "%" in value, value
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    maps.first.screenshot(path=str(SCREENSHOTS / "why-verdict-hover.png"))  # the value under the pointer
    screenshot(page, "why-verdict-1400px")

    phone = browser.new_page(viewport={"width": 390, "height": 900})
    try:
        _, phone_maps = open_why(phone, app_server.url)
        box = phone_maps.first.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390  # the map fits a phone's width
        assert "Pushed towards" in hover_value(phone, phone_maps.first)
        screenshot(phone, "why-verdict-390px")
    finally:
        phone.close()

    page.goto(f"{app_server.url}/evaluate?model=demo")  # the demo model, whatever runs other tests left
    wait_for_app(page, timeout_s=90)
    page.get_by_role("tab", name="Where it fails").click()
    failures = page.get_by_role("tabpanel", name="Where it fails")
    failures.get_by_text("Show why").click()
    wait_for_app(page, timeout_s=90)
    assert_no_exception(page)
    assert failures.get_by_text("parts that made the model find the two images alike").is_visible()
    screenshot(page, "why-gallery-1400px")
