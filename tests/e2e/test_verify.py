"""The Verify page in a real browser: two images chosen through the file chooser, the verdict read off the page."""

from __future__ import annotations

import time
import zipfile

import pytest

from conftest import ROOT
from siamese_core.runs.rundir import RunDir

from .conftest import assert_no_exception, screenshot, sidebar_text, wait_for_app

pytestmark = pytest.mark.browser

SAMPLES = ROOT / "assets" / "samples" / "digits"


def test_upload_two_images_and_read_the_verdict(app_server, page, tmp_path):
    page.goto(f"{app_server.url}/verify?model=demo")  # the demo model, whatever runs other tests left
    wait_for_app(page)
    pair_tab = page.get_by_role("tabpanel", name="Check a pair")
    for side in "AB":
        pair_tab.get_by_role("radiogroup", name=f"Image {side}").get_by_text("Upload").click()
        wait_for_app(page)
    same_a, same_b = sorted((SAMPLES / "7").glob("*.png"))[:2]
    with page.expect_file_chooser() as chooser:
        pair_tab.get_by_role("button", name="Upload", exact=True).first.click()
    chooser.value.set_files(str(same_a))
    wait_for_app(page)
    pair_tab.locator('[data-testid="stFileUploaderDropzoneInput"]').last.set_input_files(str(same_b))
    wait_for_app(page)
    assert_no_exception(page)
    verdict = pair_tab.locator('[data-testid="stAlertContentSuccess"]')
    assert "Same digit" in verdict.inner_text()
    assert pair_tab.locator(".js-plotly-plot").count() == 1  # the gauge is drawn
    screenshot(page, "verify-same")

    different = sorted((SAMPLES / "1").glob("*.png"))[0]
    pair_tab.locator('[data-testid="stFileUploaderDropzoneInput"]').last.set_input_files(str(different))
    wait_for_app(page)
    assert_no_exception(page)
    assert "Different digits" in pair_tab.locator('[data-testid="stAlertContentInfo"]').first.inner_text()
    screenshot(page, "verify-different")

    # The third tab: the nearest built-in digits to the default sample, as thumbnails with distances.
    page.get_by_role("tab", name="Find similar").click()
    similar_tab = page.get_by_role("tabpanel", name="Find similar")
    similar_tab.get_by_text("most similar of 1,797 images").wait_for()
    wait_for_app(page)
    assert_no_exception(page)
    assert similar_tab.get_by_text("distance").count() >= 5
    screenshot(page, "verify-find-similar")

    # The second tab: a zip of pair folders gives a table of verdicts.
    archive = tmp_path / "pairs.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, digit, n in (("same/a.png", 2, 0), ("same/b.png", 2, 1), ("other/a.png", 2, 0), ("other/b.png", 5, 0)):
            zf.write(sorted((SAMPLES / str(digit)).glob("*.png"))[n], f"pairs/{name}")
    page.get_by_role("tab", name="Check many pairs").click()
    many_tab = page.get_by_role("tabpanel", name="Check many pairs")
    many_tab.get_by_text("A zip with one folder per pair").click()
    wait_for_app(page)
    many_tab.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(str(archive))
    many_tab.get_by_text("2 pairs: 1 same, 1 different").wait_for()
    wait_for_app(page)
    assert_no_exception(page)
    screenshot(page, "verify-many-pairs")


def test_faces_on_the_digits_model_get_a_sentence_and_the_faces_model_is_offered(app_server, page, people_run,
                                                                                 tmp_path):
    """Issue 23 part 4 in Chromium: two face photos on the demo model get the sentence, not a verdict, and the
    people run on this server is offered in one click."""
    import shutil

    from conftest import write_people

    shutil.copytree(people_run, app_server.runs_dir / "people-e2e", dirs_exist_ok=True)
    # the newest run: the page asks only the newest few models, and earlier tests left runs on this server
    RunDir(app_server.runs_dir / "people-e2e").update_status(created_at=time.time())
    faces = sorted(write_people(tmp_path / "faces", per_person=1).glob("*/*.png"))[:2]
    page.goto(f"{app_server.url}/verify?model=demo")
    wait_for_app(page)
    pair_tab = page.get_by_role("tabpanel", name="Check a pair")
    for side in "AB":
        pair_tab.get_by_role("radiogroup", name=f"Image {side}").get_by_text("Upload").click()
        wait_for_app(page)
    for n, face in enumerate(faces):
        pair_tab.locator('[data-testid="stFileUploaderDropzoneInput"]').nth(n).set_input_files(str(face))
        wait_for_app(page)
    assert_no_exception(page)
    sentence = pair_tab.locator('[data-testid="stAlertContentWarning"]').first
    assert "neither image A nor image B looks like one" in sentence.inner_text()
    assert pair_tab.locator('[data-testid="stAlertContentSuccess"]').filter(has_text="Same digit").count() == 0 \
        or not pair_tab.locator('[data-testid="stAlertContentSuccess"]').first.is_visible()  # only in the expander
    offer = pair_tab.get_by_role("button", name="Use the model of run people-e2e")
    offer.wait_for()
    screenshot(page, "verify-outside-domain")
    offer.click()
    wait_for_app(page)
    assert_no_exception(page)
    assert "model=run%3Apeople-e2e" in page.url  # the model in use on every page, and in the link
    assert "people-e2e" in sidebar_text(page)
    pair_tab.get_by_role("button", name="Try: same person").wait_for()  # the page now speaks of people
