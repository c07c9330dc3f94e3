"""Making a data set on the Train page in a real browser: webcam snapshots into one class (Chromium's fake
camera), uploaded images into another, a reload that keeps them, then a 1-epoch Quick run on them."""

from __future__ import annotations

import json
import re
import time
import zipfile

import pytest

from conftest import write_people

from .conftest import CHROMIUM_ARGS, assert_no_exception, find_chromium, screenshot, start_training, wait_for_app

pytestmark = pytest.mark.browser

# Chromium's own test camera (a moving pattern) and no permission prompt: what a webcam gives, without one.
FAKE_CAMERA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
THUMBNAILS = '[data-testid="stImage"] img'


@pytest.fixture
def camera_page(browser):
    """A page whose browser has a (fake) webcam and leave to use it."""
    path = find_chromium()
    launched = browser.browser_type.launch(headless=True, executable_path=path, args=CHROMIUM_ARGS + FAKE_CAMERA)
    context = launched.new_context(viewport={"width": 1400, "height": 900}, permissions=["camera"])
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()
    launched.close()


def _make_class(page, name: str) -> None:
    page.get_by_label("New class").fill(name)
    page.get_by_role("button", name="Add class").click()
    page.get_by_text(f"Class '{name}' made").wait_for()
    wait_for_app(page)


def _wait_for_thumbnails(page, count: int) -> None:
    deadline = time.monotonic() + 30
    while page.locator(THUMBNAILS).count() != count:
        assert time.monotonic() < deadline, f"{page.locator(THUMBNAILS).count()} thumbnails, not {count}"
        page.wait_for_timeout(200)


def test_capture_and_upload_into_two_classes_then_train(app_server, camera_page, tmp_path):
    page = camera_page
    people = write_people(tmp_path / "people", people=("ben",), per_person=5)
    page.goto(f"{app_server.url}/train")
    wait_for_app(page)
    page.get_by_text("Make one here (webcam or uploads)").click()
    wait_for_app(page)
    _make_class(page, "ann")

    page.get_by_text("Webcam snapshots").click()
    for shot in range(1, 5):  # several in a row: each is added, and the camera is ready for the next
        take = page.get_by_role("button", name=re.compile("take photo", re.I))
        take.wait_for()
        page.wait_for_function("() => [...document.querySelectorAll('button')].some(b => "
                               "/take photo/i.test(b.innerText) && !b.disabled)")
        page.wait_for_timeout(300)  # the camera's first frames
        take.click()
        _wait_for_thumbnails(page, shot)
        wait_for_app(page)
    assert_no_exception(page)
    page.get_by_text("Snapshot added to 'ann'").wait_for()
    screenshot(page, "builder-camera")

    _make_class(page, "ben")
    page.get_by_text("Uploading image files").click()
    wait_for_app(page)
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(
        [str(p) for p in sorted((people / "ben").iterdir())])
    page.get_by_text("5 images added to 'ben'").wait_for()
    _wait_for_thumbnails(page, 9)
    wait_for_app(page)
    page.get_by_text("fewer than 10 images").first.wait_for()  # the advice, below what a good result needs
    screenshot(page, "builder-1400")
    page.set_viewport_size({"width": 390, "height": 900})
    wait_for_app(page)
    screenshot(page, "builder-390")
    page.set_viewport_size({"width": 1400, "height": 900})

    page.reload()  # the address names the data set: nothing is lost
    wait_for_app(page)
    _wait_for_thumbnails(page, 9)
    with page.expect_download() as download:  # a zip of class folders, to keep or upload again
        page.get_by_role("button", name="Download this dataset as a zip").click()
    with zipfile.ZipFile(download.value.path()) as archive:
        assert sorted(name.split("/")[0] for name in archive.namelist()) == ["ann"] * 4 + ["ben"] * 5

    # The Quick preset, made lighter for a test's CPU: the digit ConvNet, 1 epoch, 28 pixels.
    page.get_by_text("Advanced settings").click()
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Backbone").click()
    page.get_by_role("option", name="convnet", exact=True).click()
    wait_for_app(page)
    for label, value in (("Epochs", 1), ("Image size (pixels)", 28)):
        field = page.get_by_label(label, exact=True)
        field.fill(str(value))
        field.press("Enter")
        wait_for_app(page)
    run = start_training(page, app_server.runs_dir)
    page.get_by_text(f"folder {run.name}").wait_for(timeout=30_000)
    page.get_by_text("Training finished").wait_for(timeout=240_000)
    wait_for_app(page)
    assert_no_exception(page)
    screenshot(page, "builder-trained")

    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "done", status.get("error")
    kept = sorted(p.parent.name for p in (run / "uploads").rglob("*.*"))
    assert kept == ["ann"] * 4 + ["ben"] * 5  # the data set, as class folders inside the run
    config = json.loads((run / "config.json").read_text())
    assert config["split"] == "image" and config["train_path"].startswith(str(run))
    _wait_for_thumbnails(page, 9)  # and it stays on the page, to grow and train again
