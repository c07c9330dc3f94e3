"""The Explore page in a real browser: the 3D map draws, and hovering a point shows its thumbnail."""

from __future__ import annotations

import pytest

from .conftest import assert_no_exception, screenshot, wait_for_app

pytestmark = pytest.mark.browser

MAP_FRAME = 'iframe[title*="embedding map"]'


def _hover_until_thumbnail(page, frame, box, steps: int = 24):
    """Sweep the mouse over the plot in a grid, centre first, until the hover panel shows an image."""
    panel = frame.locator("#hover-panel")
    # Rows and columns from the middle outwards: the points sit in the middle of the scene.
    fractions = sorted({0.5 + sign * k / steps for k in range(steps // 2) for sign in (1, -1)},
                       key=lambda f: abs(f - 0.5))
    for fy in fractions:
        for fx in fractions:
            page.mouse.move(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)
            if panel.evaluate("p => p.style.display === 'block'"):
                return fx, fy
    return None


def test_hovering_a_point_shows_its_thumbnail(browser, app_server, page):
    page.goto(f"{app_server.url}/explore?model=demo")  # the demo model, whatever runs other tests left
    wait_for_app(page, timeout_s=60)
    assert_no_exception(page)
    page.locator(MAP_FRAME).scroll_into_view_if_needed()
    frame = page.frame_locator(MAP_FRAME)
    frame.locator("body[data-ready='1'] .js-plotly-plot").wait_for(timeout=30_000)
    frame.locator(".js-plotly-plot canvas").first.wait_for(state="attached")
    box = frame.locator("#map").bounding_box()
    assert box and box["width"] > 300 and box["height"] > 300, box

    hit = _hover_until_thumbnail(page, frame, box)
    assert hit is not None, "no point was hovered anywhere on the map"
    thumb = frame.locator("#hover-thumb")
    thumb.wait_for(state="visible")
    src = thumb.get_attribute("src") or ""
    assert src.startswith("data:image/") and len(src) > 100, src[:80]
    assert thumb.evaluate("img => img.complete && img.naturalWidth > 0"), "the thumbnail did not decode"
    label = frame.locator("#hover-label").inner_text()
    assert label.startswith("digit ") and label.split()[-1] in "0123456789", label
    assert frame.locator("#hover-file").inner_text().startswith("digits/")

    # Clicking the hovered point opens it large with its nearest neighbours.
    x, y = box["x"] + box["width"] * hit[0], box["y"] + box["height"] * hit[1]
    page.mouse.move(x + 1, y)
    page.mouse.move(x, y)
    page.wait_for_timeout(100)
    page.mouse.down()
    page.mouse.up()
    frame.locator("#pick-panel").wait_for(state="visible", timeout=5_000)
    assert frame.locator("#pick-neighbours img").count() == 6
    assert frame.locator("#pick-thumb").get_attribute("src").startswith("data:image/")
    screenshot(page, "explore-hover-and-click")


PHISHING = ('<a href="https:evil.example" target="_blank"><span style="font-size:40px;fill:red">'
            'Session expired: sign in')


def test_a_class_named_like_a_link_is_plain_text_in_the_map_s_legend(page):
    """Issue 24, item 8: Plotly renders HTML in trace names, so such a class folder was a live link in the legend.
    The map page (offline, plotly.js inlined) is opened in Chromium as the Explore page's iframe gets it."""
    import numpy as np

    from siamese_core.maps import embedding_map as M

    pixels = np.random.default_rng(0).integers(0, 256, (8, 1, 28, 28), dtype=np.uint8)
    points = M.MapPoints(np.random.default_rng(1).normal(size=(8, 3)), [PHISHING, "7"] * 4,
                         [f"{i}.png" for i in range(8)], [M.thumbnail_uri(p) for p in pixels], list(range(8)))
    page.set_content(M.build_map_html(points, PHISHING, note=PHISHING))
    legend = page.locator(".legend")
    legend.wait_for(state="attached", timeout=30_000)
    texts = page.locator(".legend .legendtext").evaluate_all("els => els.map(e => e.textContent)")  # SVG text
    assert PHISHING in texts and "7" in texts, texts  # shown as written, in its normal size
    assert page.locator(".legend a, .legend tspan[style*='40px'], .annotation a").count() == 0
    assert page.locator("svg a").count() == 0  # no link anywhere in the figure
    screenshot(page, "explore-hostile-class-name")
