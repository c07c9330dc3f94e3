"""The app in a real browser: Home comes up with its title, and every page in the sidebar opens."""

from __future__ import annotations

import re
import time

import pytest

from .conftest import ARTIFACTS, NAV_LINKS, assert_no_exception, nav_link_label, screenshot, wait_for_app

pytestmark = pytest.mark.browser


def _record_timing(key: str, seconds: float):
    ARTIFACTS.mkdir(exist_ok=True)
    with open(ARTIFACTS / "timings.txt", "a") as f:
        f.write(f"{key}={seconds:.1f}\n")


# `browser` is asked for before `app_server` so the browser's own launch is not part of the timing:
# what is measured is server start -> Home's title visible, what a user waits for after
# `streamlit run app.py`. Runs first in this file, so the server is cold when it is measured.
def test_home_shows_title_without_exception(browser, app_server, page):
    page.goto(app_server.url)
    title = page.locator("h1", has_text="Siamese Studio")
    title.first.wait_for(state="visible", timeout=60_000)
    interactive_s = time.monotonic() - app_server.started_at
    print(f"home_interactive_s={interactive_s:.1f} (server start to Home's title visible)")
    _record_timing("home_interactive_s", interactive_s)

    wait_for_app(page)
    assert_no_exception(page)
    assert page.locator("h1").first.inner_text().strip() == "Siamese Studio"
    screenshot(page, "home")


def test_every_sidebar_page_opens_without_exception(browser, app_server, page):
    page.goto(app_server.url)
    wait_for_app(page)
    links = page.locator(NAV_LINKS)
    links.first.wait_for(state="visible")
    labels = [nav_link_label(links.nth(i)) for i in range(links.count())]
    assert "Home" in labels and "Runs" in labels, f"sidebar navigation shows {labels}"

    opened = []
    for i, label in enumerate(labels):
        link = page.locator(NAV_LINKS).nth(i)
        href = link.get_attribute("href")
        link.click()
        page.wait_for_url(re.compile(re.escape(href) + r"(\?.*)?$"))  # the address may name the model in use
        # The clicked page is the current one once Streamlit has switched to it.
        page.locator(f'{NAV_LINKS}[aria-current="page"]', has_text=label).wait_for()
        wait_for_app(page)
        assert_no_exception(page)
        assert page.locator('[data-testid="stMain"]').inner_text().strip(), f"page {label!r} is empty"
        opened.append(screenshot(page, label.lower()))
    print("\n".join(map(str, opened)))


PAGES = ("", "train", "runs", "verify", "explore", "evaluate")  # "": Home, the default page, lives at the root


def _overflowing(page) -> list:
    """Elements of the main area wider than the screen: what a phone would cut off on the right."""
    return page.evaluate("""() => {
        const width = window.innerWidth;
        return [...document.querySelectorAll('[data-testid="stMain"] *')]
            .filter(e => e.getBoundingClientRect().right > width + 1 && e.getBoundingClientRect().width > 0
                         && getComputedStyle(e).visibility !== 'hidden' && getComputedStyle(e).opacity !== '0'
                         && !e.closest('[data-testid="stDataFrame"]') && !e.closest('details:not([open])'))
            .map(e => (e.getAttribute('data-testid') || e.tagName) + ': ' + (e.innerText || e.outerHTML).slice(0, 120));
    }""")


@pytest.mark.parametrize("width", [390, 1400])
def test_every_page_fits_the_screen_from_a_phone_to_a_desktop(browser, app_server, width):
    """Nothing runs off the right edge (a data table scrolls inside itself, by design)."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        for name in PAGES:
            page.goto(f"{app_server.url}/{name}")
            wait_for_app(page)
            page.locator('[data-testid="stMain"] h1').first.wait_for()
            assert_no_exception(page)
            assert not page.get_by_text("Page not found").count(), name
            screenshot(page, f"{name or 'home'}-{width}px")
            assert _overflowing(page) == [], f"{name or 'home'} at {width} px"
    finally:
        page.close()
