"""A zip of class folders uploaded through the browser's file chooser: described, then trained on."""

from __future__ import annotations

import json
import time
import zipfile
from pathlib import Path

import pytest

from conftest import write_class_folders

from .conftest import assert_no_exception, screenshot, set_epochs, start_training, wait_for_app

pytestmark = pytest.mark.browser


def test_upload_a_zip_of_class_folders_and_train_on_it(app_server, page, tmp_path):
    folders = write_class_folders(tmp_path / "people", classes=range(4), per_class=8)
    archive = tmp_path / "people.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folders.rglob("*.png")):
            zf.write(path, f"people/{path.relative_to(folders)}")

    page.goto(f"{app_server.url}/train")
    wait_for_app(page)
    page.get_by_text("Upload a zip of class folders").click()
    wait_for_app(page)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(archive))
    page.get_by_text("Found 32 images in 4 classes").wait_for(timeout=30_000)
    wait_for_app(page)
    assert_no_exception(page)
    thumbnails = page.locator('[data-testid="stImage"] img')
    assert thumbnails.count() >= 4 and all(thumbnails.nth(i).get_attribute("src") for i in range(4))
    screenshot(page, "train-uploaded-zip")

    set_epochs(page, 2)
    run = start_training(page, app_server.runs_dir)
    deadline = time.monotonic() + 180
    while json.loads((run / "status.json").read_text()).get("state") not in ("done", "failed", "stopped"):
        assert time.monotonic() < deadline, "the run did not end in time"
        time.sleep(0.5)
    page.get_by_text("Training finished").wait_for(timeout=30_000)
    assert_no_exception(page)

    status = json.loads((run / "status.json").read_text())
    config = json.loads((run / "config.json").read_text())
    assert status["state"] == "done" and status["epoch"] == 2
    # The upload now lives inside the run, which is what was trained on.
    assert Path(config["train_path"]).is_relative_to(run / "uploads")
    assert sorted(p.name for p in Path(config["train_path"]).iterdir()) == [f"digit_{d}" for d in range(4)]
