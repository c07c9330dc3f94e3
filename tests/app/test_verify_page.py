"""The Verify page, driven by Streamlit's AppTest (no browser): real widgets, real uploads, real model, no JavaScript."""

from __future__ import annotations

import io
import zipfile

import numpy as np
from PIL import Image

from app_helpers import by_key, open_page
from app_pages.shared import state
from conftest import ROOT

SAMPLES = ROOT / "assets" / "samples" / "digits"
DEMO = ROOT / "assets" / "demo" / "digits-convnet.pt"


def sample(digit: int, n: int = 0):
    return sorted((SAMPLES / str(digit)).glob("*.png"))[n]


def sample_box(at, side: str):
    """The Sample picker of image `side` (its key also names the model's sample set)."""
    return next(box for box in at.selectbox if str(box.key).startswith(f"sample-{side}-"))


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def upload(at, side: str, name: str, data: bytes, mime="image/png"):
    at.radio(key=state.source(side)).set_value("Upload").run()
    by_key(at.get("file_uploader"), f"upload-{side}").upload(name, data, mime)
    at.run()
    assert not at.exception, at.exception


def the_model():
    """The demo model as the page loaded it (same process, same cache): its verify is counted by a spy."""
    from app_pages.shared import models

    return models._load(*models.ModelChoice(models.DEMO_KEY, "Demo", DEMO).version)


def test_first_launch_gives_a_verdict_and_the_slider_moves_it_without_the_model(runs_dir):
    at = open_page("verify")
    assert at.selectbox(key=state.model_picker("verify")).value.key == "demo"
    assert "Same digit" in texts(at.success)  # two images of one digit, by default
    assert [t.label for t in at.tabs] == ["Check a pair", "Check many pairs", "Find similar"]
    sample_b = sample_box(at, "B")
    other_digit = next(p for p in sorted(SAMPLES.glob("*/*.png")) if p.parent != sample_b.value.parent)
    sample_b.set_value(other_digit).run()
    assert not at.exception
    assert "Different digits" in texts(at.info)
    score = float(at.metric[0].value.rstrip("%"))

    model = the_model()
    calls = []
    original = model.verify
    model.verify = lambda *a, **k: calls.append(1) or original(*a, **k)
    try:
        at.slider(key=state.threshold("demo")).set_value(max(0.0, round(score - 0.5, 1))).run()
        assert "Different digits" not in texts(at.info) and "Same digit" in texts(at.success)
        at.slider(key=state.threshold("demo")).set_value(min(100.0, round(score + 0.5, 1))).run()
        assert "Different digits" in texts(at.info)
        assert calls == []  # the verdict followed the slider; the model was not run again
        at.button(key="reset-threshold-demo").click().run()
        assert at.slider(key=state.threshold("demo")).value == round(100 * model.threshold, 1)
    finally:
        model.verify = original
    history = texts(at.markdown)
    assert "Same digit" in history and "Different digits" in history  # both checks are remembered
    at.button(key="clear-history").click().run()
    assert "Same digit" not in texts(at.markdown)


def test_sample_pair_buttons_fill_both_sides(runs_dir):
    at = open_page("verify")
    at.button(key="try-different").click().run()
    assert sample_box(at, "A").value.parent.name != sample_box(at, "B").value.parent.name
    assert "Different digits" in texts(at.info)
    at.button(key="try-same").click().run()
    assert sample_box(at, "A").value.parent.name == sample_box(at, "B").value.parent.name
    assert "Same digit" in texts(at.success)


def test_uploads_of_same_and_different_digits_get_their_verdicts(runs_dir):
    at = open_page("verify")
    upload(at, "A", "four.png", sample(4, 0).read_bytes())
    upload(at, "B", "another-four.png", sample(4, 1).read_bytes())
    assert "Same digit" in texts(at.success)
    # A colour photo-like upload (RGBA, larger): converted to the model's grey 28 px, and said so.
    big = Image.open(sample(9, 0)).convert("RGBA").resize((300, 300))
    buffer = io.BytesIO()
    big.save(buffer, format="PNG")
    upload(at, "B", "nine.png", buffer.getvalue())
    assert "Different digits" in texts(at.info)
    assert "resized from 300x300 to 28x28" in texts(at.caption)


def test_bad_files_get_a_message_next_to_their_input_and_nothing_else_is_lost(runs_dir):
    at = open_page("verify")
    upload(at, "A", "notes.png", b"not an image at all")
    assert "not an image" in texts(at.error)
    assert len(at.image) >= 1  # image B is still shown as the model sees it
    assert "once both images can be read" in texts(at.caption)
    tiny = io.BytesIO()
    Image.new("L", (4, 4)).save(tiny, format="PNG")
    upload(at, "A", "tiny.png", tiny.getvalue())
    assert "at least 8x8" in texts(at.error)
    cut = sample(3).read_bytes()
    upload(at, "A", "cut.png", cut[: len(cut) // 2])
    assert "damaged or truncated" in texts(at.error)
    upload(at, "A", "three.png", cut)  # a good file again: the verdict comes back
    assert not at.error and (at.success or at.info)


def test_a_checkpoint_upload_is_checked_and_a_foreign_file_is_refused(runs_dir):
    import torch

    at = open_page("verify")
    picker = at.selectbox(key=state.model_picker("verify"))
    picker.set_value(next(o for o in picker.options if "Upload" in o)).run()
    foreign = io.BytesIO()
    torch.save({"weights": torch.zeros(3)}, foreign)
    by_key(at.get("file_uploader"), "checkpoint-upload").upload("model.pt", foreign.getvalue(), "application/octet-stream")
    at.run()
    assert not at.exception
    assert "'model.pt' is not a Siamese Studio checkpoint" in texts(at.error)
    assert "Same digit" in texts(at.success)  # still working, with the demo model
    assert not list((runs_dir / ".uploads" / "checkpoints").glob("*.pt"))  # nothing kept of the refused file

    by_key(at.get("file_uploader"), "checkpoint-upload").upload("digits.pt", DEMO.read_bytes(), "application/octet-stream")
    at.run()
    assert not at.exception and not at.error
    assert "Same digit" in texts(at.success)
    kept = list((runs_dir / ".uploads" / "checkpoints").glob("*.pt"))
    assert len(kept) == 1 and kept[0].read_bytes() == DEMO.read_bytes()
    assert at.selectbox(key=state.model_picker("verify")).value.label == "Uploaded: digits.pt"  # now the model in use
    at.switch_page("app_pages/explore/page.py").run()
    assert at.selectbox(key=state.model_picker("explore")).value.label == "Uploaded: digits.pt"  # on every page


def _zip(members: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_many_pairs_from_a_csv_and_a_zip_with_a_row_that_fails(runs_dir):
    at = open_page("verify")
    images = {f"imgs/{d}_{n}.png": sample(d, n).read_bytes() for d in (1, 4, 7) for n in (0, 1)}
    images["imgs/broken.png"] = b"not an image"
    csv = ("image_a,image_b,same\n1_0.png,1_1.png,yes\n4_0.png,4_1.png,yes\n1_0.png,7_0.png,no\n"
           "4_0.png,missing.png,no\n4_1.png,broken.png,no\n")
    by_key(at.get("file_uploader"), "batch-csv").upload("pairs.csv", csv.encode(), "text/csv")
    by_key(at.get("file_uploader"), "batch-zip").upload("images.zip", _zip(images), "application/zip")
    at.run()
    assert not at.exception
    table = at.dataframe[0].value
    assert list(table["verdict"][:3]) == ["same", "same", "different"]
    assert "not among the uploaded images" in table["error"][3]
    assert "not an image" in table["error"][4]
    summary = texts(at.warning)
    assert "5 pairs: 2 same, 1 different, 2 could not be checked" in summary
    assert "100.0% of the 3 pairs" in summary
    assert at.get("download_button")


def test_many_pairs_from_a_zip_of_pair_folders(runs_dir):
    at = open_page("verify")
    at.radio(key="batch-layout").set_value("A zip with one folder per pair").run()
    members = {"pairs/one/a.png": sample(2, 0).read_bytes(), "pairs/one/b.png": sample(2, 1).read_bytes(),
               "pairs/two/a.png": sample(2, 0).read_bytes(), "pairs/two/b.png": sample(5, 0).read_bytes(),
               "pairs/three/a.png": sample(6, 0).read_bytes(), "pairs/three/b.png": sample(6, 1).read_bytes(),
               "pairs/three/c.png": sample(6, 2).read_bytes()}
    by_key(at.get("file_uploader"), "batch-folders").upload("pairs.zip", _zip(members), "application/zip")
    at.run()
    assert not at.exception
    table = at.dataframe[0].value
    rows = dict(zip(table["pair"], zip(table["verdict"], table["error"])))
    assert rows["pairs/one"][0] == "same" and rows["pairs/two"][0] == "different"
    assert "needs exactly 2" in rows["pairs/three"][1]


def test_find_similar_shows_the_nearest_digits_and_leaves_the_query_out(runs_dir):
    at = open_page("verify")
    query = sample(0, 0)
    sample_box(at, "query").set_value(query).run()
    at.slider(key="similar-k").set_value(5).run()
    assert not at.exception
    captions = [c for c in texts(at.caption).splitlines() if "distance" in c and "digit" in c]
    assert len(captions) == 5
    assert sum("digit 0 ·" in c for c in captions) >= 4  # nearest images are mostly zeros
    distances = [float(c.rsplit("distance ", 1)[1]) for c in captions]
    # The sample is one of the built-in digits: found in the gallery and left out, not its own match.
    assert "The image itself is in the gallery and is left out." in texts(at.caption)
    assert distances == sorted(distances) and distances[0] > 0
    assert np.isfinite(distances).all()


def test_find_similar_in_an_uploaded_zip_of_class_folders(runs_dir):
    at = open_page("verify")
    at.radio(key=state.GALLERY_SOURCE).set_value("Upload a zip of images").run()
    members = {f"people/d{d}/{n}.png": sample(d, n).read_bytes() for d in (3, 8) for n in range(3)}
    by_key(at.get("file_uploader"), "gallery-zip").upload("people.zip", _zip(members), "application/zip")
    sample_box(at, "query").set_value(sample(3, 0)).run()
    assert not at.exception
    captions = [c for c in texts(at.caption).splitlines() if "distance" in c and " · " in c]
    assert len(captions) == 5 and captions[0].startswith("d3 · ") and captions[1].startswith("d3 · ")
    assert "The image itself is in the gallery and is left out." in texts(at.caption)
    by_key(at.get("file_uploader"), "gallery-zip").upload("broken.zip", b"not a zip", "application/zip")
    at.run()
    assert not at.exception and "not a zip file" in texts(at.error)


def test_faces_on_the_demo_model_get_the_sentence_and_the_model_that_fits(runs_dir, people_run, tmp_path):
    """Issue 23 part 4: images unlike the model's own get a sentence instead of 'Same/Different', the score only on
    request, and where another model here fits both images, one button to use it."""
    import shutil

    from conftest import write_people

    faces = sorted(write_people(tmp_path / "faces", per_person=1).glob("*/*.png"))
    at = open_page("verify")
    upload(at, "A", "face-1.png", faces[0].read_bytes())
    upload(at, "B", "face-2.png", faces[1].read_bytes())
    warning = texts(at.warning)
    assert "This model learnt" in warning and "neither image A nor image B looks like one" in warning
    assert "Their score would mean nothing." in warning
    # No verdict shown as one: the score only inside 'Show the score anyway'; the history says there was none.
    anyway = next(e for e in at.expander if e.label == "Show the score anyway")
    def verdicts(where):
        return [e.value for e in [*where.success, *where.info] if e.value.startswith("## ")]

    assert len(verdicts(anyway)) == len(verdicts(at)) == 1
    assert "No verdict: images A and B unlike the model's images" in texts(at.markdown)
    assert not any(b.key == "use-fitting-model" for b in at.button)  # no other model on this server yet
    assert "a run trained on images like these would be offered here" in texts(at.caption)

    shutil.copytree(people_run, runs_dir / "people-run")  # a run trained on people finishes
    at.run()
    assert not at.exception, at.exception
    offer = at.button(key="use-fitting-model")
    assert offer.label.startswith("Use the model of run people-run") and "which learnt" in offer.label
    offer.click().run()
    assert not at.exception, at.exception
    assert at.selectbox(key=state.model_picker("verify")).value.key == "run:people-run"
    assert "This model learnt" not in texts(at.warning)  # its own kind of images: a verdict again
    assert texts(at.success) + texts(at.info)

    # Two digits on the demo model: the verdict as before, no sentence.
    at = open_page("verify")
    at.sidebar.selectbox[0].set_value("demo").run()
    upload(at, "A", "four.png", sample(4, 0).read_bytes())
    upload(at, "B", "another-four.png", sample(4, 1).read_bytes())
    assert "Same digit" in texts(at.success) and "This model learnt" not in texts(at.warning)


def test_many_pairs_show_which_images_are_unlike_the_model_s_own(runs_dir, tmp_path):
    from conftest import write_people

    faces = sorted(write_people(tmp_path / "faces", per_person=1).glob("*/*.png"))
    at = open_page("verify")
    images = {"1_0.png": sample(1, 0).read_bytes(), "1_1.png": sample(1, 1).read_bytes(),
              "face.png": faces[0].read_bytes()}
    csv = "image_a,image_b\n1_0.png,1_1.png\n1_0.png,face.png\n"
    by_key(at.get("file_uploader"), "batch-csv").upload("pairs.csv", csv.encode(), "text/csv")
    by_key(at.get("file_uploader"), "batch-zip").upload("images.zip", _zip(images), "application/zip")
    at.run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table["outside"]) == ["", "B"]
    assert "1 pair holds an image unlike the images this model learnt" in texts(at.warning)
