"""Training for a time in a real browser: the Train page says how long before Start (from steps timed on this
machine) and the time left while training; a 30-second run ends within its 30 seconds."""

from __future__ import annotations

import json
import re
import time

import pytest

from .conftest import assert_no_exception, screenshot, start_training, wait_for_app

pytestmark = pytest.mark.browser
BUDGET = 30


def test_a_half_minute_run_says_its_time_before_start_and_left_while_training_and_keeps_it(app_server, page):
    page.goto(f"{app_server.url}/train")
    wait_for_app(page)
    page.get_by_text("Advanced settings").click()
    slider = page.get_by_role("slider", name=re.compile("Train for"))
    slider.focus()
    slider.press("Home")  # the slider's first stop: half a minute
    wait_for_app(page)
    said = page.get_by_text(re.compile("Ends within 30 s|30 s cannot be kept"))
    said.wait_for(timeout=300_000)  # the steps (and a start-up) are timed in the background
    assert_no_exception(page)
    estimate = said.inner_text()
    assert "on this machine" in estimate.lower(), estimate
    said.scroll_into_view_if_needed()
    screenshot(page, "train-time-estimate")

    clicked = time.time()
    run = start_training(page, app_server.runs_dir)
    page.get_by_text(f"folder {run.name}").wait_for(timeout=30_000)
    left = page.get_by_text(re.compile(r"about \d+ s left"))
    left.first.wait_for(timeout=120_000)  # once the first steps are timed: after start-up and loading the images
    screenshot(page, "train-time-left")
    page.get_by_text("Training finished").wait_for(timeout=120_000)
    wait_for_app(page)
    assert_no_exception(page)

    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "done" and status["time_budget"] == BUDGET
    assert status["budget_used"] <= 1.05 * BUDGET, status  # from the training process's start to its end
    assert status["finished_at"] - clicked <= 1.05 * BUDGET + 2, status  # the click, the process starting: 2 s more
    assert status["best_accuracy"] > 0.5
    assert page.get_by_text(re.compile(r"of its 30 s budget")).count()
    screenshot(page, "train-time-kept")
