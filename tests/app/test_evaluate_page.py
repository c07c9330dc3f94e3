"""The Evaluate page (AppTest, no browser): the demo model, its figures, the threshold, uploads, comparisons."""

import shutil

from app_helpers import open_page, zip_of
from app_pages.shared import state
from conftest import write_class_folders


def metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


def texts(elements) -> str:
    return "\n".join(e.value for e in elements)


def row_major(items: list, columns: int) -> list:
    """AppTest lists a grid column by column; the page fills it row by row."""
    per_column = [len(range(c, len(items), columns)) for c in range(columns)]
    starts = [sum(per_column[:c]) for c in range(columns)]
    return [items[starts[i % columns] + i // columns] for i in range(len(items))]


def test_the_demo_model_figures_move_with_the_threshold(runs_dir):
    at = open_page("evaluate")
    shown = metrics(at)
    assert float(shown["Accuracy"].rstrip("%")) > 95  # the 98% demo model on its validation pairs
    for label in ("Precision", "Recall", "F1", "ROC AUC", "Equal error rate", "True accepts at 1% false accepts",
                  "Precision at 1", "Mean average precision at R (MAP@R)", "5-way one-shot accuracy"):
        assert label in shown, label
    assert "chosen on these very pairs" in texts(at.info)  # says which set chose the threshold
    assert "10-fold choice gives an honest accuracy" in texts(at.info)
    assert len(at.get("plotly_chart")) >= 3  # ROC, histogram, confusion matrix

    at.slider(key=state.EVAL_THRESHOLD).set_value(95.0).run()
    moved = metrics(at)
    assert float(moved["Recall"].rstrip("%")) < float(shown["Recall"].rstrip("%"))
    assert moved["ROC AUC"] == shown["ROC AUC"]  # the curve does not depend on the threshold
    assert "Set by hand" in texts(at.warning)

    at.button(key="eval-use-kfold").click().run()
    assert "Chosen on this set by 10-fold cross-validation" in texts(at.info)
    assert at.slider(key=state.EVAL_THRESHOLD).value != 95.0
    at.button(key="eval-use-model-threshold").click().run()
    assert metrics(at)["Accuracy"] == shown["Accuracy"]

    # the gallery: mistakes, most confident first; then only false accepts
    at.slider(key=state.EVAL_THRESHOLD).set_value(2.0).run()  # a low threshold: many false accepts
    at.radio(key="eval-gallery-filter").set_value("False accepts").run()
    captions = [m.value for m in at.markdown if "truth:" in m.value]
    assert captions and all("(false accept)" in c for c in captions)
    scores = [float(c.split("score ")[1].split("%")[0]) for c in row_major(captions, columns=4)]
    assert scores == sorted(scores, reverse=True)  # most confident mistakes first
    assert len(captions) <= 24

    at.slider(key="eval-n-way").set_value(10).run()
    assert "10-way one-shot accuracy" in metrics(at)
    assert not at.exception


def test_an_uploaded_zip_of_unseen_classes_is_evaluated_and_a_bad_one_refused(runs_dir, tmp_path):
    at = open_page("evaluate")
    at.radio(key="eval-source").set_value(at.radio(key="eval-source").options[1]).run()
    assert "Upload a zip of class folders" in texts(at.info) and "Accuracy" not in metrics(at)

    one_class = write_class_folders(tmp_path / "one", classes=[3], per_class=6)
    at.get("file_uploader")[0].upload("one.zip", zip_of(one_class), "application/zip").run()
    assert "Only one class ('digit_3')" in texts(at.error) and "Accuracy" not in metrics(at)

    folders = write_class_folders(tmp_path / "new", classes=range(4), per_class=10)
    at.get("file_uploader")[0].upload("new.zip", zip_of(folders, wrap="new/"), "application/zip").run()
    assert not at.exception and not at.error
    assert "Found 40 images in 4 classes" in texts(at.caption)
    assert float(metrics(at)["Accuracy"].rstrip("%")) > 75
    assert "not on this set" in texts(at.info)  # the model's threshold was chosen elsewhere
    assert any("the uploaded new.zip" in c.value for c in at.caption)

    # sequential pairs of sorted class folders are all 'same': an accuracy, but no curve and no k-fold
    at.toggle(key="eval-sequential").set_value(True).run()
    assert not at.exception
    assert "all of one kind" in texts(at.info) and metrics(at)["ROC AUC"] == "n/a"
    assert at.button(key="eval-use-kfold").disabled


def test_compare_two_models_side_by_side(runs_dir, digits_run):
    shutil.copytree(digits_run, runs_dir / "digits-3-epochs")
    at = open_page("evaluate")
    compare = at.multiselect(key="eval-compare")
    compare.select(compare.options[0]).select(compare.options[1]).run()
    assert not at.exception
    charts = [c for c in at.get("plotly_chart")]
    assert len(charts) >= 5  # three on the figures tab, two training curves
    table = at.dataframe[-1].value
    assert list(table["model"])[0] == "Demo model: digits, small ConvNet"
    assert list(table["model"])[1].startswith("Run digits-3-epochs · ")  # a run named by -o: its folder and date
    at.button(key="eval-compare-go").click().run()
    assert not at.exception
    table = at.dataframe[-1].value
    assert len(table) == 2 and (table["10-fold accuracy"] > 80).all()  # percent


def test_a_run_with_two_thresholds_shows_both_and_the_slider_starts_at_the_verdicts(runs_dir, digits_run):
    import torch

    shutil.copytree(digits_run, runs_dir / "digits-3-epochs")
    points = torch.load(digits_run / "checkpoints" / "best.pt", weights_only=True)["operating_points"]
    at = open_page("evaluate")
    picker = at.selectbox(key=state.model_picker("evaluate"))
    picker.set_value(next(o for o in picker.options if o.startswith("Demo model"))).run()
    assert "Middle of the medians" not in texts(at.markdown)  # the demo model keeps one threshold
    picker = at.selectbox(key=state.model_picker("evaluate"))
    picker.set_value(next(o for o in picker.options if o.startswith("Run digits-3-epochs"))).run()
    assert not at.exception, at.exception
    table = next(m.value for m in at.markdown if "The model's thresholds" in m.value)
    rows = [r for r in table.splitlines() if r.startswith("- **")]
    assert rows[0].startswith("- **Middle of the medians** (its verdicts use this one): 'same' from")
    assert rows[1].startswith("- **Rare same pairs (10% same)**: 'same' from")
    assert at.slider(key=state.EVAL_THRESHOLD).value == round(100 * points["medians_threshold"], 1)
    # the table's accuracy at the verdict's threshold is the page's headline accuracy, where the slider starts
    assert rows[0].split("accuracy ")[1].split(",")[0] == metrics(at)["Accuracy"]
    at.button(key="eval-use-other-threshold").click().run()
    assert at.slider(key=state.EVAL_THRESHOLD).value == round(100 * points["rare_same_threshold"], 1)
    assert metrics(at)["Accuracy"] == rows[1].split("accuracy ")[1].split(",")[0]
    assert "The model's second threshold (rare same pairs (10% same))" in texts(at.info)
