"""Searching the Explore map in a real browser: a regular expression highlights the matching points on the map."""

from __future__ import annotations

import pytest

from .conftest import assert_no_exception, screenshot, wait_for_app

pytestmark = pytest.mark.browser

MAP_FRAME = 'iframe[title*="embedding map"]'

# The figure as plotly.js drew it (its full data, the arrays decoded): each trace's name, number of points,
# marker size and opacity.
TRACES_JS = """map => map._fullData.map(t => ({name: t.name, points: t._length, size: t.marker.size,
                                           opacity: t.marker.opacity}))"""


def _map_ready(page):
    page.locator(MAP_FRAME).scroll_into_view_if_needed()
    frame = page.frame_locator(MAP_FRAME)
    frame.locator("body[data-ready='1'] .js-plotly-plot").wait_for(timeout=30_000)
    return frame


def test_search_the_map(app_server, page):
    page.goto(f"{app_server.url}/explore?model=demo")  # the demo model, whatever runs other tests left
    wait_for_app(page, timeout_s=60)
    assert_no_exception(page)
    _map_ready(page)

    search = page.get_by_role("textbox", name="Search the map")
    search.fill("^digits/[38]/")
    search.press("Enter")
    wait_for_app(page, timeout_s=60)
    assert_no_exception(page)
    assert page.get_by_text("357 of 1,797 match.").count() == 1  # the caption under the map
    frame = _map_ready(page)
    assert frame.locator(".annotation-text", has_text="357 of 1,797 match").count() == 1  # written on the map
    traces = {t["name"]: t for t in frame.locator("#map").evaluate(TRACES_JS)}
    matches = traces["Matches (357)"]
    assert matches["points"] == 357 and matches["opacity"] == 1
    assert all(matches["size"] > t["size"] and t["opacity"] < 0.3 for name, t in traces.items() if len(name) == 1)
    assert frame.locator(".legendtext", has_text="Matches (357)").count() == 1
    screenshot(page, "projector-search-1400")

    search.fill("0042|^digits/7/")
    search.press("Enter")
    wait_for_app(page, timeout_s=60)
    page.set_viewport_size({"width": 390, "height": 844})
    frame = _map_ready(page)
    assert frame.locator(".annotation-text", has_text="180 of 1,797 match").count() == 1  # 179 sevens and #0042
    wait_for_app(page)
    screenshot(page, "projector-search-390")
