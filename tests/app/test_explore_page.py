"""The Explore page, driven by Streamlit's AppTest (no browser): real widgets, real model, no JavaScript.

The map itself is an HTML page inside st.iframe; these tests read the data it carries (one thumbnail
per drawn point, labels, file names) and the figure. tests/e2e/test_explore.py hovers it in Chromium.
"""

from __future__ import annotations

import base64
import shutil
from collections import Counter

from app_helpers import by_key, captions, map_data, open_page, zip_of
from app_pages.shared import state
from conftest import write_class_folders


def test_explore_maps_the_built_in_digits_with_the_demo_model(runs_dir):
    at = open_page("explore")
    points, figure = map_data(at)
    assert len(points["thumbs"]) == 1797 and all(t.startswith("data:image/png;base64,") for t in points["thumbs"])
    assert Counter(points["labels"]) == Counter({str(d): n for d, n in
                                                 zip(range(10), [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])})
    assert [t["name"] for t in figure["data"]] == [str(d) for d in range(10)]  # one legend entry per digit
    assert all(t["type"] == "scatter3d" for t in figure["data"])
    assert "1,797 built-in digits: the model's 128 numbers per image, laid out in 3D with PCA" in captions(at)
    # A closer look: image 0 (a zero) and its nearest images in the model's space.
    assert "8 of the 8 nearest images have the same digit (0)." in captions(at)
    assert {b.label for b in at.get("download_button")} == {"Download the map as CSV",
                                                            "Download for TensorBoard's projector"}


def test_cap_filter_2d_and_the_closer_look(runs_dir):
    at = open_page("explore")
    at.number_input(key="explore-max-points").set_value(500).run()
    points, _ = map_data(at)
    assert len(points["thumbs"]) == 500
    assert set(Counter(points["labels"]).values()) == {50}  # evenly from each class
    assert "500 of them are drawn, chosen evenly from each class" in captions(at)

    by_key(at.multiselect, "explore-classes-").set_value(["3", "8"]).run()
    points, figure = map_data(at)
    assert set(points["labels"]) == {"3", "8"} and len(points["labels"]) == 357  # all 183 + 174, under the cap
    assert "357 match the filter" in captions(at)

    at.radio(key="explore-dims").set_value("2D").run()
    _, figure = map_data(at)
    assert {t["type"] for t in figure["data"]} == {"scattergl"}
    assert all(len(base64.b64decode(t["x"]["bdata"])) > 0 if isinstance(t["x"], dict) else t["x"]
               for t in figure["data"])

    at.text_input(key="explore-search").set_value("digits/8/").run()
    at.number_input(key="explore-pick").set_value(8).run()  # digit 8, file digits/8/0008.png
    assert "have the same digit (8)." in captions(at)
    assert not at.exception


def test_an_uploaded_zip_of_class_folders_is_mapped(runs_dir, tmp_path):
    folders = write_class_folders(tmp_path / "letters", classes=range(4), per_class=6)
    at = open_page("explore")
    at.radio(key=state.EXPLORE_IMAGES).set_value("Upload a zip of class folders").run()
    at.get("file_uploader")[0].upload("shapes.zip", zip_of(folders, wrap="shapes/"), "application/zip")
    at.run()
    assert not at.exception and not at.error
    points, figure = map_data(at)
    assert len(points["thumbs"]) == 24
    assert [t["name"] for t in figure["data"]] == [f"digit_{d}" for d in range(4)]
    assert points["names"][0].startswith("digit_0/")
    assert "24 images in 4 classes from shapes.zip" in captions(at)


def test_a_broken_zip_gets_a_message_not_a_traceback(runs_dir):
    at = open_page("explore")
    at.radio(key=state.EXPLORE_IMAGES).set_value("Upload a zip of class folders").run()
    at.get("file_uploader")[0].upload("photo.zip", b"this is not a zip", "application/zip")
    at.run()
    assert not at.exception and len(at.error) == 1 and "zip" in at.error[0].value.lower()
    assert not at.get("iframe")


def test_a_run_s_validation_images_can_be_mapped(runs_dir, digits_run):
    shutil.copytree(digits_run, runs_dir / digits_run.name)
    at = open_page("explore")
    picker = at.selectbox(key=state.model_picker("explore"))
    picker.set_value(next(c for c in picker.options if c.startswith(f"Run {digits_run.name} "))).run()
    source = at.radio(key=state.EXPLORE_IMAGES)
    assert "This run's validation images" in source.options
    source.set_value("This run's validation images").run()
    assert not at.exception
    points, _ = map_data(at)
    assert 100 < len(points["labels"]) < 1797 and set(points["labels"]) == {str(d) for d in range(10)}
    assert "The validation images of Run digits · " in captions(at)


def test_missing_mnist_says_where_to_put_it(runs_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMESE_MNIST_DIR", str(tmp_path / "nowhere"))
    at = open_page("explore")
    at.radio(key=state.EXPLORE_IMAGES).set_value("MNIST test digits").run()
    assert not at.exception and not at.get("iframe")
    assert "t10k-images-idx3-ubyte.gz" in at.warning[0].value and "SIAMESE_MNIST_DIR" in at.warning[0].value
