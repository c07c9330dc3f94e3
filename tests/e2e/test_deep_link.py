"""A cold server's first request is a deep link: the page still runs inside app.py's navigation.

Streamlit 1.67 decides once per server process, when the first app session starts, whether to run in its
legacy multipage mode: PagesManager sets `uses_pages_directory` when a folder named `pages/` exists next
to app.py, and the script runner then builds the navigation from `pages/*.py` instead of running app.py.
Only the first run of a fresh server shows it (st.navigation turns the mode off for every later run), so
this test starts a server of its own and opens /explore before anything else does.
"""

from __future__ import annotations

import pytest

from .conftest import NAV_LINKS, assert_no_exception, nav_link_label, screenshot, wait_for_app

pytestmark = pytest.mark.browser

APP_PAGES = ["Home", "Train", "Runs", "Verify", "Explore", "Evaluate"]  # app.py's st.Page titles, in its order


def test_a_deep_link_as_a_cold_servers_first_request_runs_through_app_py(browser, cold_app_server, page):
    page.goto(f"{cold_app_server.url}/explore")  # the first app session this server sees
    page.locator("h1", has_text="Explore").first.wait_for(state="visible", timeout=60_000)
    wait_for_app(page)
    screenshot(page, "cold-deep-link-explore")
    assert_no_exception(page)

    # Streamlit's legacy mode would say it found no such page and run the main one.
    assert page.get_by_text("Page not found").count() == 0, "Streamlit ran its legacy pages/ mode"
    assert page.url.rstrip("/").endswith("/explore")

    # The sidebar is app.py's: its navigation (titles, order, the current page) and its captions.
    links = page.locator(NAV_LINKS)
    assert [nav_link_label(links.nth(i)) for i in range(links.count())] == APP_PAGES
    assert nav_link_label(page.locator(f'{NAV_LINKS}[aria-current="page"]')) == "Explore"
    sidebar = page.locator('[data-testid="stSidebarUserContent"]').inner_text()
    assert "Model in use" in sidebar and "Device" in sidebar, sidebar

    # The browser's title is app.py's st.set_page_config, which a page run without app.py never calls.
    assert page.title() == "Siamese Studio", page.title()
