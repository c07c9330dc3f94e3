"""A data set made in the app (siamese_core.data.builder, and the Train page's "Make one here" source):
images added and removed, classes renamed, paths kept inside, a zip to take away, and a real run trained on it."""

from __future__ import annotations

import io
import zipfile

import pytest
from PIL import Image

from app_helpers import by_key, open_page
from app_pages.shared import state
from conftest import write_people
from siamese_core.data import builder, uploads
from siamese_core.runs import jobs
from siamese_core.data.builder import DatasetDraft
from siamese_core.errors import UserError


def png(shade: int, size=(40, 30), mode="L") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, shade).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(shade: int, size=(1200, 900)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (shade, 100, 50)).save(buffer, format="JPEG")
    return buffer.getvalue()


@pytest.fixture
def draft(tmp_path) -> DatasetDraft:
    return DatasetDraft.create(tmp_path / "datasets")


def test_images_are_added_decoded_capped_and_counted(draft):
    assert draft.add_class("  Alice!! ") == "Alice"
    path, new = draft.add_image("Alice", jpeg(10))
    assert new and path.suffix == ".jpg" and path.parent == draft.path / "Alice"
    with Image.open(path) as stored:
        assert max(stored.size) == builder.MAX_SIDE  # a 1200x900 photo is kept at 512 pixels a side
    assert draft.add_image("Alice", jpeg(10)) == (path, False)  # the same picture twice is kept once
    second, _ = draft.add_image("Alice", png(200))
    assert second.suffix == ".png"
    assert draft.images("Alice") == [path, second] and draft.counts() == {"Alice": 2}

    with pytest.raises(UserError, match="'notes.txt' is not an image"):
        draft.add_image("Alice", b"hello", "'notes.txt'")
    with pytest.raises(UserError, match="only 4x4 pixels"):
        draft.add_image("Alice", png(5, size=(4, 4)))
    with pytest.raises(UserError, match="no class 'bob'"):
        draft.add_image("bob", png(1))
    assert draft.counts() == {"Alice": 2}  # nothing half-written is left by a refused file
    assert not [p for p in draft.path.rglob("*") if p.name.startswith(".")]

    draft.remove_image("Alice", path.name)
    assert draft.images("Alice") == [second]
    with pytest.raises(UserError):
        draft.remove_image("Alice", "../../config.json")


def test_classes_are_renamed_and_removed_and_names_stay_inside(draft, tmp_path):
    for name in ("a", "b"):
        draft.add_class(name)
    draft.add_image("a", png(30))
    assert draft.rename_class("a", "a/../../evil") == "a evil"  # separators and dots are no part of a name
    assert draft.images("a evil")[0].parent == draft.path / "a evil"
    with pytest.raises(UserError, match="already"):
        draft.rename_class("b", "A EVIL")  # differs only by case: one folder on macOS or Windows
    with pytest.raises(UserError, match="a name made of letters"):
        draft.add_class("../..")
    draft.remove_class("b")
    assert draft.classes() == ["a evil"]
    with pytest.raises(UserError, match="no class"):
        draft.remove_class("..")
    assert {p.name for p in (tmp_path / "datasets").iterdir()} == {draft.id}  # nothing written beside it

    assert DatasetDraft.open(draft.id, tmp_path / "datasets").classes() == ["a evil"]  # found again (a reload)
    assert DatasetDraft.open("../" + draft.id, tmp_path / "datasets") is None
    assert DatasetDraft.open(draft.id + "\n", tmp_path / "datasets") is None
    assert DatasetDraft.open("0123456789abcdef", tmp_path / "datasets") is None


def test_readiness_says_what_is_missing_until_each_class_has_enough(draft):
    assert "at least 2 classes" in builder.problems({})[0]
    draft.add_class("cup")
    for shade in range(4):
        draft.add_image("cup", png(10 * shade))
    assert any("second class" in p for p in draft.problems())
    draft.add_class("pen")
    for shade in range(3):
        draft.add_image("pen", png(100 + 10 * shade))
    assert draft.problems() == ["Each class needs at least 4 images (training keeps 2 aside to check itself): "
                                "'pen' has 3."]
    draft.add_image("pen", png(180))
    assert draft.problems() == []
    assert "'cup', 'pen' have fewer than 10 images" in draft.advice()[0]
    for shade in range(6):
        draft.add_image("cup", png(50 + 10 * shade))
    assert "'pen' has fewer than 10" in draft.advice()[0]


def test_zip_and_snapshot_hold_the_class_folders(draft, runs_dir):
    for name, shade in (("cup", 0), ("pen", 120)):
        draft.add_class(name)
        for n in range(2):
            draft.add_image(name, png(shade + 30 * n))
    with zipfile.ZipFile(io.BytesIO(draft.zip_bytes())) as archive:
        assert sorted(archive.namelist()) == ["cup/001.png", "cup/002.png", "pen/001.png", "pen/002.png"]
        archive.extractall(runs_dir / "unzipped")
    summary = uploads.describe_class_folders(runs_dir / "unzipped")  # what the zip source will find in it
    assert summary.counts == {"cup": 2, "pen": 2}

    snapshot = draft.snapshot()
    assert snapshot.parent == uploads.uploads_root() / "builder" and draft.snapshot() == snapshot
    assert sorted(p.relative_to(snapshot).parent.name for p in snapshot.rglob("*.png")) == ["cup", "cup", "pen", "pen"]
    taken = snapshot.rename(runs_dir / "a-run-took-it")  # as jobs.start_training moves it
    draft.remove_image("pen", draft.images("pen")[0].name)
    assert len(draft.images("pen")) == 1 and len(list((taken / "pen").iterdir())) == 2  # the run's copy is its own
    newer = draft.snapshot()
    assert newer != snapshot and len(list((newer / "pen").iterdir())) == 1
    draft.remove_image("cup", draft.images("cup")[0].name)
    assert draft.snapshot() != newer and not newer.exists()  # a copy nobody took is replaced, not kept


# ---------------------------------------------------------------- the Train page

def _thumbnails(at) -> int:
    return len(at.get("image"))


def _make_class(at, name: str) -> None:
    at.text_input(key="builder-class-name").set_value(name)
    next(b for b in at.button if b.label == "Add class").click().run()
    assert not at.exception, at.exception


@pytest.mark.slow
def test_a_dataset_made_on_the_train_page_trains_into_the_run(runs_dir, tmp_path):
    people = write_people(tmp_path / "people", people=("ann", "ben"), per_person=5)
    at = open_page("train")
    at.radio(key="data-source").set_value(builder_source(at)).run()
    assert at.button(key="start").disabled
    assert any("Not ready: Make at least 2 classes" in c.value for c in at.caption)

    _make_class(at, "ann")
    assert at.query_params["dataset"]  # the address remembers it: a reload finds the images
    uploader = at.get("file_uploader")[0]
    uploader.set_value([(p.name, p.read_bytes(), "image/png") for p in sorted((people / "ann").iterdir())])
    at.run()
    assert not at.exception and _thumbnails(at) == 5
    drop = [b for b in at.button if b.key and b.key.startswith("builder-drop-ann-")]
    assert len(drop) == 5
    drop[0].click().run()
    assert _thumbnails(at) == 4
    at.run()  # the removed image stays removed though the uploader still holds its file
    assert _thumbnails(at) == 4

    _make_class(at, "ben")
    assert at.radio(key=state.BUILDER_TARGET).value == "ben"  # images go to the new class
    at.radio(key="builder-how").set_value("Webcam snapshots").run()
    shots = sorted((people / "ben").iterdir())[:3]
    for shot in shots:  # several in a row: each is added, and the camera is ready for the next
        photo = Image.open(shot).convert("RGB")
        buffer = io.BytesIO()
        photo.save(buffer, format="JPEG")
        at.camera_input[0].set_value(("shot.jpg", buffer.getvalue(), "image/jpeg"))
        at.run()
        assert not at.exception, at.exception
    assert _thumbnails(at) == 7 and not at.camera_input[0].value
    assert at.button(key="start").disabled  # ben has 3
    assert any("'ben' has 3" in c.value for c in at.caption)

    at.radio(key="builder-how").set_value("Uploading image files").run()
    last = sorted((people / "ben").iterdir())[3]
    at.get("file_uploader")[0].set_value((last.name, last.read_bytes(), "image/png"))
    at.run()
    assert not at.button(key="start").disabled
    assert any("fewer than 10 images" in w.value for w in at.warning)
    # The Quick preset, made lighter for a test's CPU: the digit ConvNet, 1 epoch, small images.
    by_key(at.selectbox, "backbone-").set_value("convnet")
    by_key(at.checkbox, "by-epochs-").check().run()  # a number of epochs instead of the preset's minute
    by_key(at.number_input, "epochs-").set_value(1)
    by_key(at.text_input, "size-").set_value("28")
    at.run()
    at.button(key="start").click().run()
    assert not at.exception

    run = jobs.list_runs(runs_dir)[0]
    assert run.name.endswith("my-images-quick")
    status = jobs.wait(run.run, timeout=300)
    assert status.state == "done", status.error
    classes = {p.parent.name for p in (run.run.path / jobs.UPLOADS_DIR).rglob("*.*")}
    assert classes == {"ann", "ben"}
    assert len(list((run.run.path / jobs.UPLOADS_DIR).rglob("*.*"))) == 8
    at.run()
    assert _thumbnails(at) == 8  # the data set stays on the page, to grow and train again


def builder_source(at) -> str:
    return next(o for o in at.radio(key="data-source").options if o.startswith("Make one here"))
