"""In a real browser: the app fetches nothing from the internet at run time (issue 24, item 5). Every request not to
the app's own server is blocked and recorded; a classroom server may have no internet, so none may be made."""

from __future__ import annotations

import pytest

from .conftest import assert_no_exception, wait_for_app

pytestmark = pytest.mark.browser

PAGES = ("home", "train", "verify", "explore", "evaluate", "runs")


def test_no_page_asks_anything_of_the_internet(app_server, browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    own = (app_server.url, app_server.url.replace("127.0.0.1", "localhost"))
    outside, failed = [], []

    def route(route):
        url = route.request.url
        if url.startswith(own) or url.startswith(("data:", "blob:", "about:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    context.route("**/*", route)
    page.on("requestfailed", lambda request: failed.append(f"{request.url}: {request.failure}"))
    try:
        for name in PAGES:
            page.goto(f"{app_server.url}/{name}")
            wait_for_app(page, timeout_s=90)
            page.wait_for_timeout(1500)  # late requests: fonts, the tab icon, lazy chunks
            assert_no_exception(page)
        # The Explore map is an iframe of its own: its requests are routed by the same context.
        assert not outside, f"asked of the internet: {sorted(set(outside))}"
        assert not [f for f in failed if "/_stcore/stream" not in f], failed  # a closed websocket on navigation
    finally:
        context.close()
