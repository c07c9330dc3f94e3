"""The map, epoch by epoch (issue 16, item 4): the trainer's snapshots, their alignment, and the pages.

Library tests train for real on the built-in digits; the app tests (AppTest, no JavaScript) reuse the
session's digits run. tests/e2e/test_epoch_map.py presses Play in Chromium.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time

import numpy as np
import pytest

from app_helpers import open_page
from app_pages.shared import state
from siamese_core.maps import epoch_map, snapshots
from siamese_core.config import TrainConfig
from siamese_core.training.loop import StopFlag, train


def test_snapshots_are_written_each_epoch_for_a_fixed_sample_and_resume_keeps_them(tmp_path):
    run = tmp_path / "run"
    stop = StopFlag()
    config = TrainConfig(dataset="digits", backbone="convnet", mode="pair", epochs=2, pairs_per_epoch=1000)
    assert train(config, run, stop=stop, on_epoch=lambda record: stop.set()).state == "stopped"
    assert snapshots.snapshot_epochs(run) == [0, 1]  # the random start, then epoch 1
    sample = json.loads((run / "epoch-map" / "sample.json").read_text())
    first = (run / "epoch-map" / "epoch-001.npy").read_bytes()
    # What a kill during a snapshot write would leave: swept when the run resumes.
    (run / "epoch-map" / ".epoch-002.npy.abc.tmp").write_bytes(b"half")
    (run / "epoch-map" / "epoch-005.npy").write_bytes(first)  # an epoch a cut-off attempt got to, past the checkpoint

    assert train(config, run, resume=True).state == "done"
    assert snapshots.snapshot_epochs(run) == [0, 1, 2]
    assert (run / "epoch-map" / "epoch-001.npy").read_bytes() == first  # earlier epochs kept as they were
    assert json.loads((run / "epoch-map" / "sample.json").read_text()) == sample  # the very same images
    assert not list((run / "epoch-map").glob(".*.tmp"))
    found = snapshots.read_snapshots(run)
    assert found.features == "backbone"  # a pair model: the features its head compares
    assert found.random_start  # a convnet from random weights: epoch 0 says so
    n = len(sample["positions"])
    assert n == 300 and len(set(sample["positions"])) == n
    assert all(abs(c - 30) <= 1 for c in np.unique(sample["labels"], return_counts=True)[1])  # even per class
    assert all(v.shape == (n, 500) for v in found.vectors)
    assert np.load(run / "epoch-map" / "epoch-002.npy").dtype == np.float16
    assert len(found.thumbnails) == n and all(t.startswith("data:image/png;base64,") for t in found.thumbnails)
    assert not np.allclose(found.vectors[0], found.vectors[2])  # training moved the points


@pytest.mark.slow
def test_alignment_makes_consecutive_epochs_closer_and_keeps_each_epoch_faithful(digits_run):
    found = snapshots.read_snapshots(digits_run)
    assert found.epochs == [0, 1, 2, 3]
    for dims in (2, 3):
        report = epoch_map.alignment_report(found.vectors, dims)
        assert report["shared"]["mean_displacement"] < 0.7 * report["separate"]["mean_displacement"]
        # One PCA on everything squashes the random start; the shared layout gives it its own view.
        assert report["shared"]["least_variance_shown"] > 3 * report["joint"]["least_variance_shown"]
    # A turned copy of an epoch is the same picture: aligned, nothing moves.
    rng = np.random.default_rng(0)
    turn, _ = np.linalg.qr(rng.normal(size=(500, 500)))
    coords = epoch_map.align_epochs([found.vectors[3], found.vectors[3] @ turn], 2, "procrustes")
    assert epoch_map.mean_displacement(coords)[0] < 1e-6


def test_the_page_has_a_frame_per_epoch_a_slider_and_thumbnails(digits_run, tmp_path):
    found = snapshots.read_snapshots(digits_run)
    page = epoch_map.epoch_map_page(found, 3, {1: 0.9, 3: 0.97}, 3, "digit")
    figure = json.loads(re.search(r"const FIGURE = (.*);\n", page).group(1))
    points = json.loads(re.search(r"const POINTS = (.*);\n", page).group(1))
    assert [f["name"] for f in figure["frames"]] == ["0", "1", "2", "3"]
    assert [s["label"] for s in figure["layout"]["sliders"][0]["steps"]] == ["start", "1", "2", "3"]
    assert all(t["type"] == "scatter3d" for t in figure["data"]) and len(figure["data"]) == 10
    assert points["captions"][0] == "Before training: random weights"
    assert points["captions"][3] == "After epoch 3 of 3 · 97% of validation pairs judged right"
    assert len(points["thumbs"]) == 300 and set(points["labels"]) == {str(d) for d in range(10)}
    # No snapshots (an older run), or damaged ones: nothing to show, no error.
    assert snapshots.read_snapshots(tmp_path) is None
    shutil.copytree(digits_run / "epoch-map", tmp_path / "epoch-map")
    (tmp_path / "epoch-map" / "epoch-002.npy").write_bytes(b"not numpy")
    assert snapshots.read_snapshots(tmp_path).epochs == [0, 1, 3]


def test_explore_shows_the_epoch_map_of_a_run_and_a_note_for_the_demo_model(runs_dir, digits_run):
    shutil.copytree(digits_run, runs_dir / digits_run.name)
    at = open_page("explore")  # a new session starts on the newest run: the demo model is picked first
    picker = at.selectbox(key=state.model_picker("explore"))
    picker.set_value(next(o for o in picker.options if o.startswith("Demo model"))).run()
    assert any("no epoch-by-epoch map" in c.value for c in at.caption)  # the demo model
    picker = at.selectbox(key=state.model_picker("explore"))
    picker.set_value(next(c for c in picker.options if c.startswith(f"Run {digits_run.name} "))).run()
    at.toggle(key="explore-epochs-show").set_value(True).run()
    assert not at.exception
    pages = [f.proto.srcdoc for f in at.get("iframe") if "const FIGURE" in f.proto.srcdoc and "tweens" in f.proto.srcdoc]
    assert len(pages) == 1
    figure = json.loads(re.search(r"const FIGURE = (.*);\n", pages[0]).group(1))
    assert [f["name"] for f in figure["frames"]] == ["0", "1", "2", "3"]
    assert any("300 validation images, the same ones every epoch" in c.value for c in at.caption)


def test_a_run_shows_the_map_growing_while_it_trains_and_in_full_once_done(runs_dir, digits_run):
    run = runs_dir / digits_run.name
    shutil.copytree(digits_run, run)
    status = json.loads((run / "status.json").read_text())
    # This test's own process stands in for the trainer: a live pid, a status written just now.
    (run / "status.json").write_text(json.dumps({**status, "state": "running", "pid": os.getpid(),
                                                 "updated_at": time.time(), "epoch": 3, "total_epochs": 5}))
    at = open_page("runs")
    live = [c for c in at.get("plotly_chart") if c.key == f"run-epochs-{run.name}"]
    assert len(live) == 1
    figure = json.loads(live[0].proto.spec)
    assert [f["name"] for f in figure["frames"]] == ["0", "1", "2", "3"]
    assert figure["layout"]["sliders"][0]["active"] == 3  # opened on the newest epoch
    (run / "status.json").write_text(json.dumps(status))  # it finished
    at = open_page("runs")
    assert not [c for c in at.get("plotly_chart") if c.key == f"run-epochs-{run.name}"]
    at.toggle(key=f"run-epochs-show-{run.name}").set_value(True).run()
    assert not at.exception
    assert [f for f in at.get("iframe") if "tweens" in f.proto.srcdoc]


def test_the_live_map_of_a_long_run_shows_at_most_a_dozen_epochs_from_the_first_to_the_newest():
    # a digit epoch can end every 2 s: the figure the Train page redraws every 1.5 s must not grow with the run
    from siamese_core.maps.epoch_map import LIVE_EPOCHS, live_figure

    rng = np.random.default_rng(0)
    labels = [str(i % 3) for i in range(30)]
    found = snapshots.EpochSnapshots(list(range(41)), [rng.normal(size=(30, 8)).astype(np.float32) for _ in range(41)],
                                     labels, [f"{i}.png" for i in range(30)], list(range(30)), [""] * 30,
                                     ["0", "1", "2"], "embedding")
    figure = live_figure(found)
    shown = [frame.name for frame in figure.frames]
    assert len(shown) == LIVE_EPOCHS and str(0) in shown[0] and "40" in shown[-1], shown
    few = snapshots.EpochSnapshots(found.epochs[:3], found.vectors[:3], *[getattr(found, f) for f in
                                   ("labels", "names", "positions", "thumbnails", "classes", "features")])
    assert len(live_figure(few).frames) == 3  # a short run shows every epoch
