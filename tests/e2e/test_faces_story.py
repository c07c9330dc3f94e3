"""The faces story in a real browser: upload a zip of people and train on it, then Verify, Explore, Evaluate and
Runs all speak of that model's own people, and every figure shown for the run comes from one epoch, the best."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import pytest

from conftest import write_people
from siamese_core.runs.rundir import RunDir

from .conftest import assert_no_exception, screenshot, set_epochs, sidebar_text, start_training, wait_for_app

pytestmark = pytest.mark.browser


def metric(page, label: str) -> str:
    box = page.locator('[data-testid="stMetric"]').filter(has_text=label).first
    return box.locator('[data-testid="stMetricValue"]').inner_text().strip()


def percent(value: float) -> str:
    return f"{100 * value:.1f}%"


def assert_best_epoch_figures(page, run: RunDir) -> None:
    """The headline figures on the page are exactly the best epoch's record."""
    best = run.best_epoch()
    assert metric(page, "Best epoch") == f"{best['epoch']} of 2"
    assert metric(page, "Validation accuracy") == percent(best["accuracy"])
    assert metric(page, "Precision") == percent(best["precision"])
    assert metric(page, "Recall") == percent(best["recall"])


def test_train_on_people_then_every_page_follows_that_model(app_server, page, tmp_path):
    people = write_people(tmp_path / "people")
    archive = tmp_path / "people.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(people.rglob("*.png")):
            zf.write(path, f"people/{path.relative_to(people)}")

    # Train: the upload is described, its class word guessed from its name, then trained on.
    page.goto(f"{app_server.url}/train")
    wait_for_app(page)
    page.get_by_text("Upload a zip of class folders").click()
    wait_for_app(page)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(archive))
    page.get_by_text("Found 80 images in 10 classes").wait_for(timeout=30_000)
    wait_for_app(page)
    assert_no_exception(page)
    assert page.get_by_role("textbox", name="Each class is one...").input_value() == "person"
    thumbnails = page.locator('[data-testid="stImage"] img')
    assert thumbnails.count() >= 10 and all(thumbnails.nth(i).get_attribute("src") for i in range(4))
    set_epochs(page, 2)
    screenshot(page, "faces-train-before-start")
    run = RunDir(start_training(page, app_server.runs_dir))
    deadline = time.monotonic() + 240
    while run.status().state not in ("done", "failed", "stopped"):
        assert time.monotonic() < deadline, f"the run did not end in time: {run.status()}"
        time.sleep(0.5)
    page.get_by_text("Training finished").wait_for(timeout=30_000)
    wait_for_app(page)
    assert_no_exception(page)
    assert run.status().state == "done"
    config = json.loads(run.config_path.read_text())
    assert Path(config["train_path"]).is_relative_to(run.path / "uploads")  # the upload moved into the run
    assert (config["class_word"], config["data_name"]) == ("person", "people.zip")
    assert_best_epoch_figures(page, run)
    screenshot(page, "faces-train-done")

    # Verify: the model's own faces as samples, and verdicts about people.
    page.get_by_role("button", name="Verify with this model").click()
    page.get_by_role("button", name="Try: same person").wait_for(timeout=30_000)
    wait_for_app(page)
    assert f"model=run%3A{run.path.name}" in page.url or f"model=run:{run.path.name}" in page.url
    assert "people-quick" in sidebar_text(page)
    page.get_by_role("button", name="Try: same person").click()
    wait_for_app(page)
    page.get_by_text("Same person").or_(page.get_by_text("Different people")).first.wait_for()
    assert_no_exception(page)
    assert "digit" not in page.locator('[data-testid="stMain"]').inner_text().lower()
    screenshot(page, "faces-verify")
    page.reload()  # the URL keeps the model
    wait_for_app(page)
    page.get_by_role("button", name="Try: same person").wait_for(timeout=30_000)
    assert "people-quick" in sidebar_text(page)

    # Runs: the same figures, then Explore opens on the run's own validation people.
    page.get_by_role("link", name="Runs").click()
    page.get_by_role("button", name="Explore its embeddings").wait_for(timeout=30_000)
    wait_for_app(page)
    assert_best_epoch_figures(page, run)
    assert page.get_by_text("people.zip · folder").is_visible()  # where its images came from
    page.get_by_role("button", name="Explore its embeddings").click()
    page.locator('iframe').first.wait_for(timeout=60_000)
    wait_for_app(page)
    assert_no_exception(page)
    assert page.get_by_label("This run's validation images").is_checked()
    held_out = {entry["class"] for entry in json.loads((run.path / "samples.json").read_text())["samples"]}
    assert page.get_by_text(f"Show only these ({len(held_out)} in all)").count() == 1
    screenshot(page, "faces-explore")

    # Evaluate: its own validation split, named by the zip it came from.
    page.get_by_role("link", name="Evaluate").click()
    page.get_by_text("from people.zip").wait_for(timeout=60_000)
    wait_for_app(page)
    assert_no_exception(page)
    screenshot(page, "faces-evaluate")
    assert "created with a default value" not in app_server.log()
