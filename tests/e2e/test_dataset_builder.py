"""Making a data set on the Train page in a real browser: webcam snapshots into one class (Chromium's fake
camera, playing a generated video), uploaded images into another, a reload that keeps them, the zip to take
away, then a 1-epoch run on them."""

from __future__ import annotations

import json
import re
import time
import zipfile

import numpy as np
import pytest

from browser_page import CHROMIUM_ARGS
from conftest import write_people

from .conftest import assert_no_exception, find_chromium, screenshot, start_training, wait_for_app

pytestmark = pytest.mark.browser

# A fake camera (playing write_video's file) and no permission prompt: what a webcam gives, without one.
FAKE_CAMERA = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
THUMBNAILS = '[data-testid="stImage"] img'
# One camera on the page (not the last snapshot's, going), past its first `frames` frames: each new camera
# plays the video from its start, so waiting longer before each snapshot is the person moving between them.
LIVE_VIDEO = """frames => { const v = document.querySelectorAll('video');
    return v.length === 1 && v[0].readyState >= 2 && v[0].getVideoPlaybackQuality().totalVideoFrames > frames; }"""


def write_video(path, frames: int = 30, width: int = 320, height: int = 240):
    """A small Y4M video for the fake camera: a bright disc moving across a grey background. Chromium's own
    test pattern is 4K, and in a loaded headless browser some snapshots of it came out black."""
    yy, xx = np.mgrid[:height, :width]
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for n in range(frames):
            cx = width * (0.2 + 0.6 * n / frames)
            luma = np.where((xx - cx) ** 2 + (yy - height / 2) ** 2 < (height / 4) ** 2, 230, 60).astype(np.uint8)
            out.write(b"FRAME\n" + luma.tobytes() + bytes([128]) * (width * height // 2))
    return path


@pytest.fixture
def camera_page(browser, request, tmp_path):
    """A page whose browser has a (fake) webcam and leave to use it; a screenshot when the test fails."""
    path = find_chromium()
    video = write_video(tmp_path / "camera.y4m")
    camera = FAKE_CAMERA + [f"--use-file-for-fake-video-capture={video}"]
    launched = browser.browser_type.launch(headless=True, executable_path=path, args=CHROMIUM_ARGS + camera)
    context = launched.new_context(viewport={"width": 1400, "height": 900}, permissions=["camera"])
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        screenshot(page, f"FAILED-{request.node.name}")
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
        page.wait_for_function(LIVE_VIDEO, arg=5 * shot)
        take.click()
        _wait_for_thumbnails(page, shot)
        wait_for_app(page)
    assert_no_exception(page)
    page.get_by_text("Snapshot added to 'ann'").wait_for()
    page.wait_for_function(LIVE_VIDEO, arg=3)  # the camera is ready for the next
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
    wait_for_app(page)
    page.locator('[data-testid="stSelectbox"]').filter(has_text="Backbone").locator("input").click()
    page.keyboard.type("convnet")
    page.keyboard.press("Enter")
    wait_for_app(page)
    page.get_by_text("Train for a number of epochs instead").click()  # not the preset's minute
    wait_for_app(page)
    for label, value in (("Epochs", 1), ("Image size (height x width, pixels)", 28)):
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
    assert config["backbone"] == "convnet" and config["epochs"] == 1
    _wait_for_thumbnails(page, 9)  # and it stays on the page, to grow and train again
