"""The app's pages, driven by Streamlit's AppTest (no browser): real widgets, real runs, no JavaScript."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app_helpers import by_key, open_page, zip_of
from app_pages.shared import state
from conftest import write_class_folders
from siamese_core.runs import jobs
from siamese_core.runs.rundir import RunDir


def test_home_explains_and_points_to_the_pages(runs_dir):
    at = open_page("home")
    assert at.title[0].value == "Siamese Studio"
    assert "Siamese network" in at.markdown[0].value
    assert any("Demo model" in c.value for c in at.sidebar.caption)
    assert any("CPU" in c.value or "GPU" in c.value for c in at.sidebar.caption)


@pytest.mark.slow
def test_train_page_trains_a_tiny_run_to_done(runs_dir):
    at = open_page("train")
    assert at.radio(key="data-source").value.startswith("Built-in")
    by_key(at.checkbox, "by-epochs-").check().run()  # a number of epochs instead of the preset's time
    by_key(at.number_input, "epochs-").set_value(2)
    at.run()
    at.button(key="start").click().run()
    assert not at.exception
    runs = jobs.list_runs(runs_dir)
    assert len(runs) == 1 and runs[0].name.endswith("digits-quick")
    status = jobs.wait(runs[0].run, timeout=300)
    assert status.state == "done" and status.epoch == 2 and status.best_accuracy > 0.9

    at.run()  # the page finds the finished run again
    assert not at.exception
    assert any("Training finished" in s.value for s in at.success)
    assert at.button(key=f"verify-{runs[0].name}")
    assert len(at.get("plotly_chart")) == 2  # loss, and validation accuracy / precision / recall
    # ... and its model is offered on every page.
    at.button(key=f"verify-{runs[0].name}").click().run()
    assert not at.exception
    assert at.selectbox(key=state.model_picker("verify")).value.key == f"run:{runs[0].name}"


@pytest.mark.slow
def test_presets_are_time_budgets_and_the_page_says_how_long_before_start(runs_dir):
    """Quick is a minute; the estimate before Start comes from steps timed on this machine, in the background."""
    at = open_page("train")
    assert at.radio(key="preset").value == "Quick: 1 minute"
    assert by_key(at.select_slider, "minutes-").value == 1 and by_key(at.number_input, "epochs-").disabled
    waited = 0
    while not any("on this machine" in m.value for m in at.markdown) and waited < 180:
        assert any("Timing a few training steps" in c.value for c in at.caption)
        time.sleep(2)
        waited += 2
        at.run()
    note = next(m.value for m in at.markdown if "on this machine" in m.value)
    # what a minute holds here, or on a machine too busy to start and finish within it, that it cannot be kept
    assert ("Ends within **1 min**" in note and "steps" in note) or "1 min cannot be kept" in note, note
    by_key(at.checkbox, "by-epochs-").check().run()  # the same model for a number of epochs: timed already
    by_key(at.number_input, "epochs-").set_value(3).run()
    note = next(m.value for m in at.markdown if "Takes about" in m.value)
    assert "3 epochs of" in note, note
    at.radio(key="preset").set_value("Best: 15 minutes").run()
    assert by_key(at.select_slider, "minutes-").value == 15 and not at.exception


def test_a_second_run_waits_its_turn_while_one_trains(runs_dir, monkeypatch):
    monkeypatch.setenv("SIAMESE_MAX_TRAINING_RUNS", "1")
    at = open_page("train")
    by_key(at.checkbox, "by-epochs-").check().run()
    by_key(at.number_input, "epochs-").set_value(50)
    at.run()
    at.button(key="start").click().run()
    first = jobs.list_runs(runs_dir)[0]
    try:
        # Start now queues instead of refusing, and says so before it is clicked.
        # ... of the run not started yet: nobody reads it as their own run waiting (issue 24, item 3).
        assert any(c.value.startswith("1 run is training now (this machine trains 1 run at a time): a run you start "
                                      "now waits its turn, 1st in line") for c in at.caption), [c.value for c in at.caption]
        at.button(key="start").click().run()
        assert not at.exception and not at.error
        second = jobs.list_runs(runs_dir)[0]
        assert second.name != first.name and second.state == "waiting"
        # The page now watches the waiting run, and says it is this run that waits, and why.
        assert any(i.value.startswith("This run is waiting its turn, 1st in line: this machine trains 1 run at a time "
                                      "and 1 run is training now.") for i in at.info), [i.value for i in at.info]
        at.button(key=f"cancel-{second.name}").click().run()
        assert not at.exception
        assert jobs.info(second.run).state == "cancelled"
        assert not (second.run.path / jobs.JOB_FILE).exists()
        # On the Train page, the way to start it again is the button below, not "the Train page".
        hints = [i.value for i in at.info if "cancelled" in i.value]
        assert hints and hints[0].endswith("Start it again with *Start training* below."), hints
        assert not any("from the Train page" in i.value for i in at.info)
        # The Runs table says no best epoch in words, never a literal None.
        at.switch_page("app_pages/runs/page.py").run()
        table = at.dataframe[0].value
        row = table[table["folder"] == second.name].iloc[0]
        assert row["best epoch"] == "–" and "None" not in table.astype(str).to_string()
        assert any("cancelled" in i.value and i.value.endswith("Start it again from the Train page.")
                   for i in at.info) or at.selectbox(key="open-run").value != second.name
    finally:
        jobs.stop(first.run)
    assert jobs.wait(first.run, timeout=120).state == "stopped"


def test_class_folders_named_after_people_are_asked_what_they_are(runs_dir, tmp_path):
    # Folders named like people: no guess, so no "Each class is one... class"; the box asks.
    folders = write_class_folders(tmp_path / "mine", classes=range(4), per_class=4)
    for folder, name in zip(sorted(folders.iterdir()), ("alice", "bob", "carol", "dave")):
        folder.rename(folders / name)
    at = open_page("train")
    at.radio(key="data-source").set_value(at.radio(key="data-source").options[2]).run()
    at.get("file_uploader")[0].upload("mine.zip", zip_of(folders), "application/zip")
    at.run()
    box = next(t for t in at.text_input if str(t.key).startswith("class-word-"))
    assert box.label == "Each class is one..." and box.value == "" and "person" in box.placeholder
    assert any("Say what each class is (a person? a product?)" in c.value for c in at.caption)
    box.set_value("person").run()
    assert not any("Say what each class is" in c.value for c in at.caption)


def test_uploaded_zip_of_class_folders_is_described(runs_dir, tmp_path):
    folders = write_class_folders(tmp_path / "people", classes=range(4), per_class=4)
    at = open_page("train")
    at.radio(key="data-source").set_value(at.radio(key="data-source").options[2]).run()
    at.get("file_uploader")[0].upload("people.zip", zip_of(folders, wrap="people/"), "application/zip")
    at.run()
    assert not at.exception
    assert any("16 images in 4 classes" in c.value for c in at.caption)
    assert not at.button(key="start").disabled
    assert not at.error


@pytest.mark.parametrize("classes, per_class, words", [
    (range(1), 5, "Only one class"),
    (range(3), 1, "at least two images"),
    (range(3), 4, "needs at least 4 classes"),  # the run would refuse it: said before Start (issue 13)
])
def test_zip_that_cannot_train_is_refused_with_a_reason(runs_dir, tmp_path, classes, per_class, words):
    folders = write_class_folders(tmp_path / "bad", classes=classes, per_class=per_class)
    at = open_page("train")
    at.radio(key="data-source").set_value(at.radio(key="data-source").options[2]).run()
    at.get("file_uploader")[0].upload("bad.zip", zip_of(folders), "application/zip")
    at.run()
    assert not at.exception
    assert any(words in e.value for e in at.error)
    assert at.button(key="start").disabled


def test_a_zip_of_files_that_are_no_images_is_refused_before_start(runs_dir, tmp_path):
    for person in ("ann", "bob", "cy", "dee"):
        (tmp_path / "fake" / person).mkdir(parents=True)
        for n in range(3):
            (tmp_path / "fake" / person / f"{n}.png").write_text("not a picture")
    at = choose_source(open_page("train"), "zip of class folders")
    at.get("file_uploader")[0].upload("fake.zip", zip_of(tmp_path / "fake"), "application/zip")
    at.run()
    assert not at.exception
    assert any("No images were found" in e.value for e in at.error)  # files are counted by what they hold
    assert at.button(key="start").disabled


def test_a_file_that_is_not_a_zip_gets_a_message(runs_dir):
    at = open_page("train")
    at.radio(key="data-source").set_value(at.radio(key="data-source").options[2]).run()
    at.get("file_uploader")[0].upload("photo.zip", b"this is not a zip", "application/zip")
    at.run()
    assert not at.exception
    assert any("not a zip" in e.value for e in at.error)
    assert at.button(key="start").disabled


@pytest.mark.slow
def test_runs_page_shows_a_trained_run_and_deletes_it_after_confirmation(digits_run, tmp_path, monkeypatch):
    import shutil

    root = tmp_path / "runs"
    shutil.copytree(digits_run, root / digits_run.name)
    monkeypatch.setenv("SIAMESE_RUNS_DIR", str(root))
    at = open_page("runs")
    table = at.dataframe[0].value
    row = table[table["run"] == digits_run.name].iloc[0]
    assert "done" in row["state"] and row["epoch"] == "3 of 3" and row["best accuracy"] >= 0.95
    assert at.selectbox(key="open-run").value == digits_run.name
    assert len(at.get("plotly_chart")) == 2

    at.button(key=f"delete-{digits_run.name}").click().run()
    assert (root / digits_run.name).is_dir()  # asked, not yet deleted
    assert any("cannot be undone" in w.value for w in at.warning)
    at.button(key=f"delete-yes-{digits_run.name}").click().run()
    assert not at.exception
    assert not (root / digits_run.name).exists()
    assert any("Deleted" in s.value for s in at.success)


def test_runs_page_without_runs_says_how_to_make_one(runs_dir):
    at = open_page("runs")
    assert "No runs yet" in at.info[0].value


def test_a_failed_run_shows_its_error_not_a_traceback(runs_dir):
    run = RunDir(runs_dir / "20260101-000000-broken").create()
    run.update_status(state="failed", error="The training set has only one class.", created_at=1.0)
    at = open_page("runs")
    assert any("only one class" in e.value for e in at.error)


def choose_source(at: AppTest, words: str) -> AppTest:
    source = at.radio(key="data-source")
    return source.set_value(next(o for o in source.options if words in o)).run()


def test_mnist_is_offered_when_its_files_are_present(runs_dir, tmp_path, monkeypatch):
    from siamese_core.data import sources as D
    from conftest import write_idx

    digits = D.load_digits(28, 1)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", digits.pixels[:200, 0].numpy(), True)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", digits.labels[:200], True)
    monkeypatch.setenv("SIAMESE_MNIST_DIR", str(tmp_path))
    at = choose_source(open_page("train"), "MNIST")
    assert not at.exception
    assert any("Only the 10,000 MNIST test images" in c.value for c in at.caption)
    assert not at.button(key="start").disabled


def test_missing_mnist_offline_is_refused_before_training(runs_dir, tmp_path, monkeypatch):
    import siamese_core.models.networks

    monkeypatch.setenv("SIAMESE_MNIST_DIR", str(tmp_path / "nothing-here"))
    monkeypatch.setattr(siamese_core.models.networks, "reachable", lambda *a, **k: False)  # this machine is offline anyway
    at = choose_source(open_page("train"), "MNIST")
    assert not at.exception
    assert any("cannot download them" in w.value for w in at.warning)
    assert at.button(key="start").disabled


def write_triplets(folder: Path, identities: int = 4, per_identity: int = 4) -> list:
    """Images named like Market-1501 (identity first), and rows (anchor, positive, negative) over them."""
    from siamese_core.data import sources as D
    from siamese_core.data.images import pixels_to_image

    digits = D.load_digits(28, 1)
    folder.mkdir(parents=True)
    names = {}
    for identity in range(identities):
        members = (digits.labels == identity).nonzero()[0][:per_identity]
        names[identity] = [f"{identity:04d}_c1_{n}.png" for n in range(per_identity)]
        for name, i in zip(names[identity], members):
            pixels_to_image(digits.pixels[int(i)].numpy()).save(folder / name)
    return [(names[i][n], names[i][(n + 1) % per_identity], names[(i + 1) % identities][n])
            for i in range(identities) for n in range(per_identity)]


def test_triplet_csv_with_a_zip_of_images_is_described(runs_dir, tmp_path):
    rows = write_triplets(tmp_path / "images")
    csv = "Positive,Anchor,Negative\n" + "".join(f"{p},{a},{n}\n" for a, p, n in rows)  # any column order
    at = choose_source(open_page("train"), "triplet")
    csv_upload, zip_upload = at.get("file_uploader")
    csv_upload.upload("triplets.csv", csv.encode(), "text/csv")
    zip_upload.upload("images.zip", zip_of(tmp_path / "images", wrap="market/bounding_box/"), "application/zip")
    at.run()
    assert not at.exception
    assert any("16 triplets naming 16 images of 4 identities" in c.value for c in at.caption)
    assert not at.button(key="start").disabled
    assert by_key(at.radio, "mode-").value == "triplet"


def test_triplet_csv_naming_files_not_in_the_zip_is_refused(runs_dir, tmp_path):
    write_triplets(tmp_path / "images")
    at = choose_source(open_page("train"), "triplet")
    csv_upload, zip_upload = at.get("file_uploader")
    csv_upload.upload("triplets.csv", b"Anchor,Positive,Negative\na.png,b.png,c.png\n", "text/csv")
    zip_upload.upload("images.zip", zip_of(tmp_path / "images"), "application/zip")
    at.run()
    assert not at.exception
    assert any("None of the files 'triplets.csv' names are in the zip" in e.value for e in at.error)
    assert at.button(key="start").disabled


def test_a_triplet_csv_with_the_wrong_columns_is_named_as_uploaded_never_by_its_server_path(runs_dir, tmp_path):
    write_triplets(tmp_path / "images")
    at = choose_source(open_page("train"), "triplet")
    csv_upload, zip_upload = at.get("file_uploader")
    csv_upload.upload("mine.csv", b"Anchor,Positive,Other\na.png,b.png,c.png\n", "text/csv")
    zip_upload.upload("images.zip", zip_of(tmp_path / "images"), "application/zip")
    at.run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "'mine.csv' needs columns Anchor, Positive, Negative; missing: Negative" in errors[0]
    assert str(runs_dir) not in errors[0] and "triplets.csv" not in errors[0]
    assert at.button(key="start").disabled


def test_server_folders_only_inside_the_configured_data_root(runs_dir, tmp_path, monkeypatch):
    at = open_page("train")
    assert not any("server" in o for o in at.radio(key="data-source").options)  # off unless configured

    root = tmp_path / "data-root"
    write_class_folders(root / "digits", classes=range(4), per_class=3)
    outside = write_class_folders(tmp_path / "private", classes=range(4), per_class=3)
    (root / "sneaky").symlink_to(outside, target_is_directory=True)
    monkeypatch.setenv("SIAMESE_DATA_ROOT", str(root))
    at = choose_source(open_page("train"), "server")
    assert at.selectbox(key="server-folder").options == ["digits", "sneaky"]
    assert any("12 images in 4 classes" in c.value for c in at.caption)
    assert not at.button(key="start").disabled
    at.selectbox(key="server-folder").set_value("sneaky").run()
    assert not at.exception
    assert at.button(key="start").disabled
    assert any("outside" in e.value for e in at.error)


def test_a_typed_backbone_name_that_does_not_exist_is_refused_with_suggestions(runs_dir):
    at = open_page("train")
    backbone = by_key(at.selectbox, "backbone-")
    backbone.set_value(backbone.options[-1]).run()  # "another (type its name)"
    by_key(at.text_input, "other-").set_value("timm:efficientnet_b7x").run()
    assert not at.exception
    assert any("Did you mean" in e.value and "timm:efficientnet_b7" in e.value for e in at.error)
    assert at.button(key="start").disabled
    by_key(at.text_input, "other-").set_value("torchvision:resnet18").run()
    assert not at.error and not at.button(key="start").disabled


@pytest.mark.slow
def test_many_classes_are_all_counted(runs_dir, tmp_path):
    import shutil

    folders = write_class_folders(tmp_path / "many", classes=range(10), per_class=3)
    shutil.copytree(folders / "digit_1", folders / "zz_eleventh")  # past the ten shown with thumbnails
    (folders / "zz_eleventh" / "000.png").unlink()
    at = choose_source(open_page("train"), "zip of class folders")
    at.get("file_uploader")[0].upload("many.zip", zip_of(folders), "application/zip")
    at.run()
    assert not at.exception
    counts = at.dataframe[0].value
    assert len(counts) == 11 and dict(zip(counts["class"], counts["images"]))["zz_eleventh"] == 2
    assert any("... and 1 more class." in c.value for c in at.caption)
