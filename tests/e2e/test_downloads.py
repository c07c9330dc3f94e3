"""In a real browser: a finished run's downloads on Runs work while another run trains (issue 24, item 1).

The sidebar and the run's live view redraw on their own every 2 s while a run trains; a download made by a callable
run on click was forgotten or swept by those redraws (404s, clicks that did nothing). Every click must deliver."""

from __future__ import annotations

import shutil

import pytest

from siamese_core.config import TrainConfig
from siamese_core.runs import jobs
from siamese_core.runs.rundir import RunDir

from .conftest import assert_no_exception, screenshot, wait_for_app

pytestmark = pytest.mark.browser

CLICKS = 20


def test_downloads_deliver_every_click_while_a_run_trains(app_server, page, people_run):
    shutil.copytree(people_run, app_server.runs_dir / "people-done")
    checkpoint = (people_run / "checkpoints" / "best.pt").read_bytes()
    # A run that trains all through the clicks (stopped at the end): many epochs of the small ConvNet on digits.
    training = jobs.start_training(TrainConfig(dataset="digits", backbone="convnet", mode="pair", epochs=500),
                                   app_server.runs_dir, label="long")
    try:
        page.goto(f"{app_server.url}/runs")
        wait_for_app(page, timeout_s=60)
        page.get_by_label("Open a run").click()
        page.get_by_role("option", name="people-done").first.click()
        wait_for_app(page)
        page.get_by_role("button", name="Prepare for other apps").click()
        onnx = page.get_by_role("button", name="Download for other apps")
        onnx.wait_for(timeout=120_000)
        page.get_by_text("Training now").wait_for(timeout=60_000)  # the sidebar redraws on its own from here
        buttons = [page.get_by_role("button", name="Download best checkpoint"), onnx]
        delivered = []
        for click in range(CLICKS):
            with page.expect_download(timeout=30_000) as download:
                buttons[click % 2].click()
            saved = download.value.path()  # waits for the whole file; raises for a failed download
            assert download.value.failure() is None, download.value.failure()
            delivered.append((download.value.suggested_filename, saved.stat().st_size))
            page.wait_for_timeout(700)  # spread the clicks over several of the redraws
        assert jobs.info(training).active, "the other run stopped training before the clicks ended"
        screenshot(page, "runs-downloads-while-training")
        assert_no_exception(page)
        assert [name for name, _ in delivered] == ["people-done-best.pt", "people-done-onnx.zip"] * (CLICKS // 2)
        assert all(size == len(checkpoint) for name, size in delivered if name.endswith(".pt"))
        assert all(size > 10_000 for name, size in delivered if name.endswith(".zip"))
        assert "MediaFileStorageError" not in app_server.log()
    finally:
        jobs.stop(RunDir(training.path))
