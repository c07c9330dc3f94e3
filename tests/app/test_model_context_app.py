"""The app follows the model (AppTest: real widgets, a real people model, no JavaScript): its samples and words on
Verify, its own images on Explore and Find similar, one model state for sidebar, pages and URL, a stopped run's
weights offered as what they are."""

from __future__ import annotations

import json
import shutil

from app_helpers import open_page
from app_pages.shared import state
from siamese_core.runs.rundir import RunDir


def pick_model(at, page: str, starts: str):
    picker = at.selectbox(key=state.model_picker(page))
    choice = next(c for c in picker.options if c.startswith(starts))
    picker.set_value(next(o for o in picker.options if o == choice)).run()
    assert not at.exception, at.exception
    return at


def sidebar_model(at) -> str:
    return next(c.value for c in at.sidebar.caption if c.value.startswith("**Model in use**"))


def test_verify_with_a_people_model_speaks_of_people_and_offers_its_own_faces(runs_dir, people_run):
    shutil.copytree(people_run, runs_dir / "people-run")
    at = pick_model(open_page("verify"), "verify", "Run people-run")
    # One state: the sidebar, drawn before the page, already names the model picked on this very rerun.
    assert "Run people-run" in sidebar_model(at)
    assert at.query_params["model"] == "run:people-run"  # a reload keeps it
    buttons = {b.key: b.label for b in at.button}
    assert buttons["try-same"] == "Try: same person" and buttons["try-different"] == "Try: different people"

    at.button(key="try-same").click().run()
    boxes = [box for box in at.selectbox if str(box.key).startswith(("sample-A-", "sample-B-"))]
    assert len(boxes) == 2 and boxes[0].value != boxes[1].value
    assert boxes[0].value.parent == runs_dir / "people-run" / "samples"
    label_a, label_b = (box.format_func(box.value) for box in boxes)
    assert label_a.startswith("person ") and label_a.split()[1] == label_b.split()[1]  # one person, two photos
    verdict = [m.value for m in [*at.success, *at.info] if m.value.startswith("## ")]
    assert verdict and verdict[0] in ("## Same person", "## Different people")

    at.button(key="try-different").click().run()
    label_a, label_b = (box.format_func(box.value) for box in at.selectbox
                        if str(box.key).startswith(("sample-A-", "sample-B-")))
    assert label_a.split()[1] != label_b.split()[1]


def test_find_similar_and_explore_open_on_the_model_s_own_images(runs_dir, people_run):
    shutil.copytree(people_run, runs_dir / "people-run")
    at = pick_model(open_page("verify"), "verify", "Run people-run")
    assert at.radio(key=state.GALLERY_SOURCE).value == "Its validation images"
    matches = [c.value for c in at.caption if "distance" in c.value and c.value.startswith("person ")]
    assert len(matches) == 5

    at.switch_page("app_pages/explore/page.py").run()  # the model in use goes along
    assert not at.exception, at.exception
    assert at.radio(key=state.EXPLORE_IMAGES).value == "This run's validation images"
    shown = next(m for m in at.multiselect if str(m.key).startswith("explore-classes-"))
    held_out = {entry["class"] for entry in json.loads((people_run / "samples.json").read_text())["samples"]}
    assert sorted(shown.options) == sorted(held_out) and len(held_out) < 10  # on the map: not all ten


def test_a_run_stopped_in_its_first_epoch_offers_its_last_weights_as_such(runs_dir, people_run):
    run = RunDir(runs_dir / "stopped-early").create()
    shutil.copy(people_run / "config.json", run.config_path)
    shutil.copy(people_run / "checkpoints" / "last.pt", run.checkpoint("last"))
    run.update_status(state="stopped", epoch=0, total_epochs=5, created_at=1.0, label="faces-quick")
    at = open_page("runs")
    assert any("stopped before its first epoch ended" in i.value for i in at.info)
    assert [b.label for b in at.get("download_button")] == ["Download last checkpoint"]
    at.switch_page("app_pages/verify/page.py").run()
    labels = at.selectbox(key=state.model_picker("verify")).options
    assert any(label.startswith("Run faces-quick") and "stopped early: its last weights, not validated" in label
               for label in labels)


def test_renaming_the_class_word_on_runs_reaches_verify_at_once(runs_dir, people_run):
    shutil.copytree(people_run, runs_dir / "people-run")
    at = open_page("runs")
    at.text_input(key="class-word-people-run").set_value("Student").run()
    at.button(key="class-word-save-people-run").click().run()
    assert not at.exception, at.exception
    assert json.loads((runs_dir / "people-run" / "context.json").read_text()) == {"class_word": "student"}
    at = pick_model(open_page("verify"), "verify", "Run people-run")
    assert {b.key: b.label for b in at.button}["try-same"] == "Try: same student"
