"""The app under concurrent cold starts and failing disks: a sentence on the page, never a traceback."""

from __future__ import annotations

import errno
import subprocess
import sys
import textwrap

from app_helpers import ROOT, open_page


def test_the_device_check_waits_for_a_torch_import_in_progress():
    """Ten sessions opening pages while the first imports torch: the sidebar's device check must not
    read the half-initialised module (it raised "partially initialized module 'torch' has no attribute
    'cuda'" in 3-4 of 10 pages)."""
    script = textwrap.dedent("""
        import sys, threading
        from siamese_core.runs import jobs
        failures, done = [], threading.Event()
        def importer():
            import torch  # noqa: F401
            done.set()
        def session():
            while not done.is_set():
                try:
                    jobs.accelerator()
                except Exception as exc:
                    failures.append(repr(exc))
                    return
        threading.Thread(target=importer).start()
        sessions = [threading.Thread(target=session) for _ in range(10)]
        for thread in sessions:
            thread.start()
        for thread in sessions:
            thread.join()
        print(failures or "ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.stdout.strip() == "ok", result.stdout + result.stderr


def test_a_failure_no_page_caught_is_a_sentence_not_a_traceback(runs_dir, monkeypatch):
    from siamese_core.runs import jobs

    def read_only(*_, **__):
        raise OSError(errno.EROFS, "Read-only file system", str(runs_dir))

    with monkeypatch.context() as patch:  # undone before the fixture's own clean-up lists the runs
        patch.setattr(jobs, "list_runs", read_only)
        at = open_page("runs")
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("read-only" in e for e in errors), errors
    assert not any(str(runs_dir) in e or "Errno" in e for e in errors)


def test_a_class_named_like_a_link_shows_as_text(runs_dir, tmp_path):
    from app_helpers import zip_of
    from conftest import write_class_folders

    evil = "[Session expired - sign in again](https:evil.example)"
    folders = write_class_folders(tmp_path / "people", classes=range(2), per_class=3)
    (folders / "digit_1").rename(folders / evil)
    at = open_page("train")
    at.radio(key="data-source").set_value(at.radio(key="data-source").options[2]).run()
    at.get("file_uploader")[0].upload("people.zip", zip_of(folders), "application/zip")
    at.run()
    assert not at.exception
    shown = [c.value for c in at.caption if "Session expired" in c.value]
    assert shown and all("\\[Session expired - sign in again\\](https:evil.example)" in c for c in shown), shown


def test_a_run_whose_best_checkpoint_was_cut_off_says_so_and_offers_nothing(digits_run, tmp_path, monkeypatch):
    import shutil

    root = tmp_path / "runs"
    shutil.copytree(digits_run, root / digits_run.name)
    best = root / digits_run.name / "checkpoints" / "best.pt"
    best.write_bytes(best.read_bytes()[:5000])
    monkeypatch.setenv("SIAMESE_RUNS_DIR", str(root))
    at = open_page("runs")
    assert not at.exception
    assert any("best checkpoint cannot be used: it is damaged or incomplete" in e.value for e in at.error)
    assert not any("Training finished" in s.value for s in at.success)
    assert not any(b.key and b.key.startswith(("verify-", "explore-")) for b in at.button)
    assert str(root) not in " ".join(e.value for e in at.error)


def test_a_model_file_gone_before_loading_is_one_sentence_without_a_path(runs_dir, tmp_path, monkeypatch):
    """The demo model's file deleted on the server: the page says so in one sentence and stops; no
    UnboundLocalError, no server path."""
    from app_pages.shared import models

    monkeypatch.setattr(models, "DEMO_MODEL", tmp_path / "server-only" / "demo.pt")
    at = open_page("verify")
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "demo model's file is missing" in errors[0], errors
    assert "server-only" not in errors[0] and str(tmp_path) not in errors[0]
    assert not at.tabs  # the page stopped: nothing to verify with


def _load_vanished_run_checkpoint(path: str) -> None:
    from pathlib import Path

    import streamlit as st

    from app_pages.shared.models import ModelChoice, load_model

    model = load_model(ModelChoice("run:people-run", "Run people-run · 01 Jan 10:00", Path(path)))
    st.caption(f"loaded: {model is not None}")


def test_a_run_checkpoint_deleted_after_the_list_was_drawn_is_one_sentence_without_a_path(tmp_path):
    from streamlit.testing.v1 import AppTest

    gone = tmp_path / "runs" / "people-run" / "checkpoints" / "best.pt"
    at = AppTest.from_function(_load_vanished_run_checkpoint, args=(str(gone),), default_timeout=60).run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "people-run" in errors[0] and "no longer" in errors[0], errors
    assert str(tmp_path) not in errors[0] and "best.pt" not in errors[0]
    assert [c.value for c in at.caption] == ["loaded: False"]
