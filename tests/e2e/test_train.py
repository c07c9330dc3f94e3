"""Training in a real browser: start the Quick preset on digits, watch the curves grow, reach 'done'."""

from __future__ import annotations

import json
import time

import pytest

from .conftest import assert_no_exception, screenshot, set_epochs, start_training, wait_for_app

pytestmark = pytest.mark.browser


def _status(runs_dir) -> dict:
    """The status of the newest run (other tests of the session leave theirs)."""
    found = [json.loads(p.read_text()) for p in runs_dir.glob("*/status.json")]
    return max(found, key=lambda status: status.get("created_at") or 0, default={})


def _points_in_loss_curve(page) -> int:
    """Points drawn in the loss chart's traces (read from the Plotly graph in the page)."""
    return page.evaluate("""() => {
        const plots = [...document.querySelectorAll('.js-plotly-plot')];
        const loss = plots.find(p => (p.layout && p.layout.title && p.layout.title.text || '').includes('loss'));
        return loss ? loss.data.reduce((n, trace) => n + (trace.x ? trace.x.length : 0), 0) : 0;
    }""")


def test_quick_training_on_digits_runs_live_to_done(app_server, page):
    page.goto(app_server.url)  # Home's "try it now" path
    wait_for_app(page)
    page.get_by_role("link", name="Train on digits").click()
    page.get_by_role("button", name="Start training").wait_for()
    wait_for_app(page)
    assert_no_exception(page)
    set_epochs(page, 12)  # long enough to watch the curve grow: four digit epochs take 11 s on an idle machine
    screenshot(page, "train-before-start")
    run = start_training(page, app_server.runs_dir)

    # The page may still show an earlier test's finished run for a moment: wait for this one's name.
    page.get_by_text(f"folder {run.name}").wait_for(timeout=30_000)
    counts, states = [], set()
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        counts.append(_points_in_loss_curve(page))
        states.add(json.loads((run / "status.json").read_text()).get("state"))
        if len(counts) == 12:
            screenshot(page, "train-live")
        if page.get_by_text("Training finished").count():
            break
        time.sleep(1)
    assert page.get_by_text("Training finished").count(), f"the run never finished in the browser: {_status(app_server.runs_dir)}"
    wait_for_app(page)
    assert_no_exception(page)
    screenshot(page, "train-done")

    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "done" and status["epoch"] == 12
    assert status["best_accuracy"] > 0.9
    assert "running" in states
    # The curve grew while the page was open, without anyone reloading it.
    growing = [c for c in counts if c]
    assert len(set(growing)) >= 3 and growing == sorted(growing), counts
    assert page.get_by_role("button", name="Verify with this model").is_visible()

    page.goto(f"{app_server.url}/runs")  # the run is listed, with its curves
    page.locator('[data-testid="stDataFrame"]').wait_for()
    page.locator(".js-plotly-plot").first.wait_for()
    wait_for_app(page)
    assert_no_exception(page)
    screenshot(page, "runs-after-training")


def test_training_survives_a_closed_browser_and_stops_cleanly(app_server, browser):
    first = browser.new_page(viewport={"width": 1400, "height": 900})
    first.goto(f"{app_server.url}/train")
    wait_for_app(first)
    set_epochs(first, 100)
    start_training(first, app_server.runs_dir)
    first.get_by_text("Your run").wait_for(timeout=30_000)
    first.context.close()  # the person closes the browser

    deadline = time.monotonic() + 120
    while _status(app_server.runs_dir).get("state") != "running" or not _status(app_server.runs_dir).get("epoch"):
        assert time.monotonic() < deadline, f"never ran an epoch: {_status(app_server.runs_dir)}"
        time.sleep(0.5)  # still training with no browser open

    again = browser.new_page(viewport={"width": 1400, "height": 900})
    again.goto(f"{app_server.url}/train")  # ... and comes back: the page finds the run
    again.get_by_text("Your run").wait_for(timeout=30_000)
    again.get_by_text("Training now", exact=True).wait_for(timeout=30_000)  # the sidebar says so on every page
    wait_for_app(again)
    screenshot(again, "train-found-again")
    again.get_by_role("button", name="Stop training").click()
    again.get_by_text("This run was stopped").wait_for(timeout=60_000)
    wait_for_app(again)
    assert_no_exception(again)
    screenshot(again, "train-stopped")
    status = _status(app_server.runs_dir)
    assert status["state"] == "stopped" and 1 <= status["epoch"] < 100
    again.context.close()
