"""The app's pages, driven by Streamlit's AppTest (no browser)."""

from streamlit.testing.v1 import AppTest

from conftest import ROOT


def test_app_opens_on_home():
    at = AppTest.from_file(str(ROOT / "app.py")).run(timeout=30)
    assert not at.exception
    assert at.title[0].value == "Siamese Studio"


def test_home_page_renders():
    at = AppTest.from_file(str(ROOT / "pages" / "home.py")).run(timeout=30)
    assert not at.exception
    assert at.title[0].value == "Siamese Studio"
    assert "Siamese network" in at.markdown[0].value


def test_runs_page_shows_a_trained_run_and_its_curves(digits_run, monkeypatch):
    monkeypatch.setenv("SIAMESE_RUNS_DIR", str(digits_run.parent))
    at = AppTest.from_file(str(ROOT / "pages" / "runs.py")).run(timeout=30)
    assert not at.exception
    table = at.dataframe[0].value
    row = table[table["run"] == digits_run.name].iloc[0]
    assert row["state"] == "done" and row["epoch"] == "3 of 3" and row["best accuracy"] >= 0.95
    assert at.selectbox[0].value == digits_run.name


def test_runs_page_without_runs_says_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMESE_RUNS_DIR", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "pages" / "runs.py")).run(timeout=30)
    assert not at.exception
    assert "No runs yet" in at.info[0].value
