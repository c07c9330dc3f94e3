"""The map's projector features: colour by metadata (folder, file-name parts, an uploaded CSV), a regex search
that highlights, a point with only its k nearest neighbours, PCA's explained variance.

The library (siamese_core.maps.metadata, embedding_map, projection) on real names and the demo model's real
embeddings; then the Explore page through AppTest (tests/e2e/test_projector.py searches the map in Chromium).
"""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

from app_helpers import captions, map_data, open_page, zip_of
from app_pages.shared import state
from conftest import write_class_folders
from siamese_core.maps import embedding_map as M
from siamese_core.maps import metadata as MM
from siamese_core.maps import projection as P
from siamese_core.errors import UserError
from test_projection import plotly_array

DIGIT_NAMES = [f"digits/{i % 10}/{i:04d}.png" for i in range(200)]
DIGIT_LABELS = [str(i % 10) for i in range(200)]


# ------------------------------------------------------------------ columns and the CSV

def test_a_csv_is_matched_by_name_path_or_file_name_and_unmatched_images_are_unknown():
    csv = ("file,age,mood\n"
           "digits/0/0000.png,31,happy\n"  # the name the map shows
           "0001.png,40,sad\n"  # the file name alone (one image has it)
           "C:\\photos\\digits\\2\\0002.png,,happy\n"  # a longer path ending in the name; an empty cell
           "DIGITS/3/0003.PNG,52,happy\n"  # another case
           "digits/0/0000.png,99,angry\n"  # a second row for an image: the first counts
           "nowhere.png,1,sad\n").encode()
    found = MM.read_attributes(csv, DIGIT_NAMES, "people.csv")
    assert found.matched == 4
    age, mood = found.columns
    assert (age.name, mood.name) == ("age", "mood")
    assert age.values[:5].tolist() == ["31", "40", "unknown", "52", "unknown"]
    assert mood.values[:5].tolist() == ["happy", "sad", "happy", "happy", "unknown"]
    assert mood.categories() == ["happy", "sad", "unknown"] and not mood.continuous
    assert any("1 of its 6 rows name no image here (the first: 'nowhere.png')" in n for n in found.notes)
    assert any("196 of the 200 images have no row" in n for n in found.notes)
    assert any("1 rows name an image an earlier row already named" in n for n in found.notes)


def test_many_numbers_make_a_scale_few_numbers_or_words_make_categories():
    many = MM.make_column("score", [f"{v / 7:.3f}" for v in range(30)] + ["n/a", ""])
    assert many.continuous and np.isnan(many.numbers[-2:]).all() and many.numbers[7] == pytest.approx(1.0)
    assert many.values[-1] == "unknown"
    assert not MM.make_column("glasses", ["0", "1"] * 20).continuous  # 0/1: two groups, not a scale
    assert not MM.make_column("mixed", [str(v) for v in range(30)] + ["tall"]).continuous
    comma = MM.make_column("weight", [f"{v},5" for v in range(20)])  # a decimal comma, as in a ';' CSV
    assert comma.continuous and comma.numbers[3] == 3.5
    # Semicolons, UTF-16 (Excel's "Unicode text") and a header that repeats itself.
    found = MM.read_attributes("file;x;x\ndigits/0/0000.png;a;b\n".encode("utf-16"), DIGIT_NAMES)
    assert [c.name for c in found.columns] == ["x", "x (2)"] and found.columns[1].values[0] == "b"


@pytest.mark.parametrize("content, words", [
    (b"file,age\n\xe9t\xe9.png,3\n", "is not UTF-8 text"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is not a text file"),
    (b"file\ndigits/0/0000.png\n", "has only one column"),
    (b"file,age\n", "has a header line but no rows"),
    (b"", "is empty"),
    (b"file,age\nsomeone_else.jpg,3\nanother.jpg,4\n", "None of the 2 names in the first column of a.csv (the first: "
                                                        "'someone_else.jpg') is an image on this map"),
])
def test_a_bad_csv_gets_one_plain_sentence(content, words):
    with pytest.raises(UserError, match=re.escape(words)):
        MM.read_attributes(content, DIGIT_NAMES, "a.csv")


def test_too_many_rows_or_bytes_are_refused(monkeypatch):
    monkeypatch.setattr(MM, "MAX_CSV_ROWS", 50)
    rows = "".join(f"{name},{i}\n" for i, name in enumerate(DIGIT_NAMES))
    with pytest.raises(UserError, match="has more than 50 rows: this page reads at most 50"):
        MM.read_attributes(("file,n\n" + rows).encode(), DIGIT_NAMES, "a.csv")
    monkeypatch.setattr(MM, "MAX_CSV_BYTES", 1000)
    with pytest.raises(UserError, match="this page reads CSV files of up to"):
        MM.read_attributes(b"x" * 1001, DIGIT_NAMES, "a.csv")


def test_a_huge_name_or_header_is_matched_in_linear_time():
    """Issue 24, item 9: matching tried every ending of a name, so a 130 KB name took 21.5 s (quadratic)."""
    started = time.perf_counter()
    matcher = MM._NameMatcher(DIGIT_NAMES)
    assert matcher.find("a/" * 100_000 + "digits/3/0003.png") is None  # 200 KB: longer than any path
    assert matcher.find("a/" * 2_000 + "digits/3/0003.png") == 3  # long, but a path: its ending matches
    under_csv_limit = ("file,mood\n" + "a/" * 60_000 + "0001.png,sad\ndigits/0/0000.png,happy\n").encode()
    found = MM.read_attributes(under_csv_limit, DIGIT_NAMES, "huge.csv")  # 120 KB, 60,000 parts: no image
    assert found.matched == 1 and "1 of its 2 rows name no image here" in found.notes[0]
    with pytest.raises(UserError, match="Line 2 of huge.csv has a cell longer than 131,072 characters"):
        MM.read_attributes(("file,mood\n" + "x" * 200_000 + ",sad\n").encode(), DIGIT_NAMES, "huge.csv")
    many = MM.read_attributes(("file" + ",size" * 100_000 + "\ndigits/0/0000.png,1\n").encode(), DIGIT_NAMES)
    assert len(many.columns) == MM.MAX_CSV_COLUMNS and many.columns[1].name == "size (2)"
    assert time.perf_counter() - started < 1


def test_folders_and_file_name_parts_become_columns_only_when_they_say_something():
    assert MM.folder_column(DIGIT_NAMES, DIGIT_LABELS) is None  # digits/3 is the class 3 again
    nested = MM.folder_column(["alice/in/1.jpg", "alice/out/2.jpg", "bob/in/3.jpg", "loose.jpg"],
                              ["alice", "alice", "bob", "?"])
    assert nested.values.tolist() == ["alice/in", "alice/out", "bob/in", "unknown"]
    # Re-identification style names: person, camera, frame.
    names = [f"{p:04d}_c{c}_{f:06d}.jpg" for p in range(5) for c in (1, 2) for f in range(3 * p + c, 3 * p + c + 4)]
    parts = MM.name_part_columns(names)
    assert [c.name for c in parts] == ["file name part 1", "file name part 2", "file name part 3"]
    assert set(parts[1].values) == {"c1", "c2"} and parts[2].continuous  # 18 different frame numbers: a scale
    assert MM.name_part_columns(DIGIT_NAMES) == []  # 0000.png ... one part, a different one per image


# ------------------------------------------------------------------ the search

def test_the_search_matches_regex_or_plain_text_over_every_field_ignoring_case():
    rows = list(zip(DIGIT_NAMES, DIGIT_LABELS))
    assert MM.search("^digits/[38]/", rows).sum() == 40
    assert MM.search("DIGITS/3/", rows).sum() == 20  # plain text, other case
    assert MM.search("^7$", rows).sum() == 20  # the class field on its own
    assert MM.search("0042", rows).tolist() == [name.endswith("0042.png") for name in DIGIT_NAMES]
    assert MM.search("xyz|0199", rows).sum() == 1


@pytest.mark.parametrize("pattern, words", [
    ("(abc", "'(abc' is not a valid search pattern (missing ), unterminated subpattern at character 1)"),
    ("[z-a]", "is not a valid search pattern (bad character range z-a"),
    ("a" * 201, "The search is 201 characters long: at most 200 are allowed"),
])
def test_a_bad_pattern_gets_a_plain_message(pattern, words):
    with pytest.raises(UserError, match=re.escape(words)):
        MM.search(pattern, [("a.png", "a")])


def test_a_catastrophic_pattern_is_stopped_not_left_to_stall_the_server():
    started = time.perf_counter()
    with pytest.raises(UserError, match=r"takes too long to search \(over 1 seconds\)"):
        MM.search("(a+)+$", [("a" * 40 + "!", "x")], timeout_s=1.0)  # 2^40 steps in Python's re
    assert time.perf_counter() - started < 5
    # Texts are cut to TEXT_MAX characters: a match beyond that is not looked for.
    assert MM.search("needle", [("x" * MM.TEXT_MAX + "needle",)]).tolist() == [False]


# ------------------------------------------------------------------ isolation, variance, the figure

def test_a_point_and_its_k_neighbours_are_isolated_in_order_on_the_rows_of_the_map():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(60, 8)).astype(np.float32)
    from siamese_core.inference.index import VectorIndex

    found, _ = VectorIndex(vectors, "euclidean").search(vectors[7], 5, exclude_self=True)
    order = np.argsort(((vectors - vectors[7]) ** 2).sum(1))[1:6]
    assert found[0].tolist() == order.tolist()
    rows, missing = M.isolated_rows(np.arange(60), [7, *found[0]])
    assert rows.tolist() == [7, *order] and missing == 0
    sample = np.array(sorted({7, *order[:3], 50, 55}))  # a t-SNE sample holding 3 of the 5 neighbours
    rows, missing = M.isolated_rows(sample, [7, *found[0]])
    assert sample[rows].tolist() == [7, *order[:3]] and missing == 2


def test_pca_reports_the_variance_of_each_component_as_numpy_s_svd_finds_it():
    rng = np.random.default_rng(1)
    vectors = (rng.normal(size=(300, 20)) * np.linspace(5, 0.5, 20)).astype(np.float32)
    projection = P.project_detailed(vectors, "pca", 3)
    np.testing.assert_array_equal(projection.coords, P.project(vectors, "pca", 3))  # callers see the same map
    centred = vectors - vectors.mean(0)
    singular = np.linalg.svd(centred.astype(np.float64), compute_uv=False)
    expected = singular ** 2 / (singular ** 2).sum()
    assert len(projection.explained_variance) == P.PCA_COMPONENTS
    np.testing.assert_allclose(projection.explained_variance, expected[:P.PCA_COMPONENTS], atol=1e-4)
    assert projection.explained_variance.sum() <= 1
    assert P.project_detailed(vectors[:3], "umap", 2).explained_variance is None  # 3 points: no umap import


def _points(n: int = 40) -> M.MapPoints:
    rng = np.random.default_rng(2)
    return M.MapPoints(rng.normal(size=(n, 3)), [str(i % 4) for i in range(n)], [f"{i}.png" for i in range(n)],
                       ["data:image/png;base64,"] * n, list(range(100, 100 + n)))


def test_the_figure_highlights_matches_fades_the_rest_and_marks_the_isolated_point():
    points = _points()
    highlight = np.arange(40) % 5 == 0
    figure = M.build_figure(points, "digit", highlight=highlight, focus=3, note="8 of 40 match").to_plotly_json()
    traces = {t["name"]: t for t in figure["data"]}
    assert list(traces) == ["0", "1", "2", "3", "Matches (8)", "Picked #103"]
    assert all(traces[c]["marker"]["opacity"] == M.FADED_OPACITY for c in "0123")
    assert traces["Matches (8)"]["marker"]["size"] > traces["0"]["marker"]["size"]
    assert plotly_array(traces["Matches (8)"]["customdata"]).tolist() == np.flatnonzero(highlight).tolist()
    assert traces["Picked #103"]["marker"]["symbol"] == "diamond"
    assert plotly_array(traces["Picked #103"]["customdata"]).tolist() == [3]
    assert figure["layout"]["annotations"][0]["text"] == "8 of 40 match"
    # Coloured by a column of numbers: one trace on a colour scale, the unknown points grey.
    scale = MM.make_column("age", [str(20 + i) for i in range(36)] + ["", "", "", ""])
    figure = M.build_figure(points, "digit", colour=scale).to_plotly_json()
    names = [t["name"] for t in figure["data"]]
    assert names == ["age", "unknown"] and figure["data"][0]["marker"]["colorbar"]["title"]["text"] == "age"
    assert figure["data"][1]["marker"]["color"] == M.UNKNOWN_COLOUR and len(plotly_array(figure["data"][1]["customdata"])) == 4


# ------------------------------------------------------------------ the Explore page

def _traces(at) -> dict:
    _, figure = map_data(at)
    return {t["name"]: t for t in figure["data"]}


PHISHING = ('<a href="https:evil.example" target="_blank"><span style="font-size:40px;fill:red">'
            'Session expired: sign in')
_TAG = re.compile(r"<\s*/?\s*(a|span|img)\b", re.IGNORECASE)  # what the hostile names hold


def raw_tags(figure) -> list:
    """Every string of a figure (trace names, hover text, titles, annotations, axis labels...) holding one of the
    hostile names' tags (the project's own <b> and <br> are fine)."""
    found = []

    def walk(value, key=""):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, k)
        elif isinstance(value, (list, tuple)):
            for v in value:
                walk(v, key)
        elif isinstance(value, str) and _TAG.search(value):
            found.append(value)

    walk(figure.to_plotly_json())
    return found


def test_a_hostile_name_reaches_no_plotly_figure_as_html():
    """Issue 24, item 8: a class folder named like a link showed as a live link in the map's legend; a CSV
    column name too. Every figure is built with the name; no tag survives, the name is shown as written."""
    from app_pages.evaluate.compare import curve_figures, roc_trace
    from app_pages.evaluate.figures import confusion_figure, histogram_figure
    from siamese_core.maps import epoch_map as E

    points = _points(8)
    points.labels = [PHISHING, "7"] * 4
    words = MM.make_column(PHISHING, [PHISHING, "<img src=x onerror=alert(1)>"] * 4)
    numbers = MM.make_column(PHISHING + " (age)", [str(20 + i) for i in range(8)])
    figures = [M.build_figure(points, PHISHING, focus=0, note=PHISHING),
               M.build_figure(points, "digit", colour=words, highlight=np.arange(8) < 2),
               M.build_figure(points, "digit", colour=numbers),
               E.build_figure([np.zeros((8, 2)), np.ones((8, 2))], [0, 1], points.labels, PHISHING),
               *curve_figures([(PHISHING, [{"epoch": 1, "accuracy": 0.9, "train_loss": 0.3}])])]
    roc = go_figure(roc_trace(PHISHING, {"fpr": [0, 1], "tpr": [0, 1]}, 0.5))

    class Scored:  # what the Evaluate page's figures read of an evaluation
        def histogram(self, bins):
            return {"edges": np.linspace(0, 1, bins + 1), "same": np.ones(bins), "different": np.ones(bins)}

    figures += [roc, histogram_figure(Scored(), 0.5, PHISHING, False),
                confusion_figure({"tp": 1, "fn": 2, "fp": 3, "tn": 4}, PHISHING)]
    for figure in figures:
        assert raw_tags(figure) == [], raw_tags(figure)[:1]
        assert "&lt;a href=" in figure.to_json()  # shown as written
    page = M.build_map_html(points, PHISHING, colour=words).replace(M.plotly_js().replace("</script", "<\\/script"), "")
    assert "<a href" not in page and "<img src=x" not in page  # the page's own script shows names as text only


def go_figure(trace):
    import plotly.graph_objects as go

    return go.Figure(trace)


def test_explore_search_highlights_isolates_a_point_and_shows_pca_variance(runs_dir):
    at = open_page("explore")
    # PCA's share of the variance: each drawn direction's share, their sum, a chart of the first ten.
    line = next(c for c in captions(at).splitlines() if c.startswith("PCA's 3 directions"))
    total, *each = [float(v) for v in re.findall(r"([\d.]+)%", line)]
    assert len(each) == 3 and each == sorted(each, reverse=True) and 0 < total <= 100
    assert abs(sum(each) - total) < 0.2
    bars = at.get("plotly_chart")[0].proto.spec
    assert "Share of the variance per PCA direction" in bars

    at.text_input(key="explore-search").set_value("^digits/[38]/").run()
    assert not at.exception and not at.error
    assert "Search `^digits/[38]/`: 357 of 1,797 match." in captions(at)
    traces = _traces(at)
    assert len(plotly_array(traces["Matches (357)"]["customdata"])) == 357
    assert traces["Matches (357)"]["marker"]["size"] > traces["0"]["marker"]["size"]
    assert traces["0"]["marker"]["opacity"] == M.FADED_OPACITY
    points, figure = map_data(at)
    assert figure["layout"]["annotations"][0]["text"] == "357 of 1,797 match"
    # The closer look offers what the search found.
    assert at.selectbox(key="explore-pick-file").options[1].startswith("#3  digits/3/")

    at.text_input(key="explore-search").set_value("digits/(8").run()
    assert not at.exception and "is not a valid search pattern" in at.error[0].value
    assert "Matches" not in "".join(_traces(at))  # the map stays as it was, nothing highlighted

    # Only image 0 and its 5 nearest neighbours; then back to every point.
    at.text_input(key="explore-search").set_value("").run()
    at.slider(key="explore-k").set_value(5).run()
    at.toggle(key=state.EXPLORE_ISOLATE).set_value(True).run()
    points, _ = map_data(at)
    assert len(points["index"]) == 6 and points["index"][0] == 0
    assert plotly_array(_traces(at)["Picked #0"]["customdata"]).tolist() == [0]
    assert "Only image #0 and its 5 nearest images" in captions(at)
    neighbours = [int(i.caption.split(" ")[0][1:]) for i in at.get("image")[1].proto.imgs]  # the closer look's
    assert points["index"][1:] == neighbours
    at.button(key="explore-show-all").click().run()
    points, _ = map_data(at)
    assert len(points["index"]) == 1797 and not at.toggle(key=state.EXPLORE_ISOLATE).value


def test_explore_colours_by_folder_and_by_an_uploaded_csv(runs_dir, tmp_path):
    folders = write_class_folders(tmp_path / "shapes", classes=range(3), per_class=8)
    for class_dir in folders.iterdir():  # half of each class's images from a second session
        (class_dir / "session2").mkdir()
        for image in sorted(class_dir.glob("*.png"))[4:]:
            image.rename(class_dir / "session2" / image.name)
    at = open_page("explore")
    at.radio(key=state.EXPLORE_IMAGES).set_value("Upload a zip of class folders").run()
    at.get("file_uploader")[0].upload("shapes.zip", zip_of(folders), "application/zip")
    at.run()
    colour = at.selectbox(key=state.EXPLORE_COLOUR)
    assert colour.options == ["digit", "folder"]
    colour.set_value("folder").run()
    assert not at.exception
    traces = _traces(at)
    assert list(traces) == ["digit_0", "digit_0/session2", "digit_1", "digit_1/session2", "digit_2",
                            "digit_2/session2"]
    assert all(len(plotly_array(t["customdata"])) == 4 for t in traces.values())

    points, _ = map_data(at)
    rows = [f"{name},{10 + 3 * i},{'bright' if i % 2 else 'dim'}" for i, name in enumerate(points["names"][:20])]
    uploader = next(u for u in at.get("file_uploader") if u.proto.id.endswith("-explore-attributes"))
    uploader.upload("light.csv", ("image,brightness,look\n" + "\n".join(rows) + "\nghost.png,1,dim\n").encode(),
                    "text/csv")
    at.run()
    assert not at.exception and not at.error
    assert "20 of the 24 images found in light.csv. 1 of its 21 rows name no image here" in captions(at)
    at.selectbox(key=state.EXPLORE_COLOUR).set_value("brightness").run()
    traces = _traces(at)
    assert list(traces) == ["brightness", "unknown"] and len(plotly_array(traces["unknown"]["customdata"])) == 4
    assert traces["brightness"]["marker"]["colorbar"]["title"]["text"] == "brightness"
    at.selectbox(key=state.EXPLORE_COLOUR).set_value("look").run()
    assert list(_traces(at)) == ["bright", "dim", "unknown"]
    assert "Colours show 'look'." in captions(at)
    # The search looks at the colour column's values too.
    at.text_input(key="explore-search").set_value("^bright$").run()
    assert "10 of 24 match" in captions(at)
    # A CSV that names none of these images says so.
    uploader = next(u for u in at.get("file_uploader") if u.proto.id.endswith("-explore-attributes"))
    uploader.upload("other.csv", b"image,brightness\nsomeone.jpg,3\n", "text/csv")
    at.run()
    assert not at.exception and "None of the 1 names in the first column of other.csv" in at.error[0].value
