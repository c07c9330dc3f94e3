"""status.json as one typed record (siamese_core.runs.status): hostile, old and hand-edited files read without
an error, the writer refuses names and values it does not know, and the file on disk keeps its keys."""

from __future__ import annotations

import json
import time

import pytest

from siamese_core.runs import jobs
from siamese_core.runs.rundir import RunDir, epoch_in_progress
from siamese_core.runs.status import MAX_TEXT, RunStatus
from siamese_core.files import write_json

# A status as the trainer and the app have always written it (keys and value types).
OLD_RUN = {"state": "done", "label": "digits-quick", "pid": 4242, "processes": 1, "phase": "training the head",
           "epoch": 5, "total_epochs": 5, "step": 500, "total_steps": 500, "steps_per_epoch": 100, "epoch_step": 100,
           "train_images": 7000, "val_pairs": 2000, "best_accuracy": 0.97, "best_epoch": 4, "error": None,
           "last_metrics": {"type": "epoch", "epoch": 5, "accuracy": 0.96}, "created_at": 1767225600.0,
           "asked_at": 1767225600.0, "started_at": 1767225601.5, "finished_at": 1767225700.25,
           "updated_at": 1767225700.25, "elapsed_before": 0.0}


def test_an_old_runs_status_reads_back_every_field_and_writes_the_same_keys(tmp_path):
    run = RunDir(tmp_path / "old").create()
    write_json(run.status_path, OLD_RUN)
    status = run.status()
    assert status.state == "done" and status.epoch == 5 and status.best_accuracy == 0.97 and status.pid == 4242
    assert status.last_metrics == OLD_RUN["last_metrics"] and status.phase == "training the head"
    assert status.to_dict() == {k: v for k, v in OLD_RUN.items() if v is not None}
    run.update_status(label="renamed")
    on_disk = json.loads(run.status_path.read_text())
    assert set(on_disk) == set(OLD_RUN) - {"error"} and on_disk["label"] == "renamed"
    assert on_disk["updated_at"] > OLD_RUN["updated_at"]


@pytest.mark.parametrize("content", [[{"state": "done"}], "done", 42, None, True])
def test_anything_but_an_object_reads_as_an_empty_status(tmp_path, content):
    run = RunDir(tmp_path).create()
    run.status_path.write_text(json.dumps(content))
    assert run.status() == RunStatus()
    info = jobs.info(run)
    assert info.state == "queued" and info.status.state is None  # shown as starting, as a status without state was


def test_a_missing_or_garbled_file_reads_as_an_empty_status(tmp_path):
    run = RunDir(tmp_path).create()
    assert run.status() == RunStatus()
    run.status_path.write_bytes(b'{"state": "done", "epo')
    assert run.status() == RunStatus()


def test_wrong_types_read_as_unknown_and_unknown_keys_are_ignored():
    status = RunStatus.from_dict({
        "state": 3, "label": ["a", "list"], "pid": "1234", "processes": 2.5, "epoch": "5", "total_epochs": True,
        "step": [1], "best_accuracy": "97%", "best_epoch": {"epoch": 1}, "last_metrics": [1, 2], "error": 404,
        "created_at": "yesterday", "finished_at": False, "elapsed_before": None, "phase": {"a": 1},
        "favourite_colour": "blue", "__class__": "RunInfo"})
    assert status == RunStatus()
    assert RunStatus.from_dict({"state": "banana"}).state is None  # only the states the library knows
    assert RunStatus.from_dict({"epoch": 3.0, "best_accuracy": 1}).epoch == 3  # a whole float is a whole number
    assert RunStatus.from_dict({"epoch": 3.5}).epoch is None


def test_huge_and_out_of_range_numbers_read_as_unknown():
    huge = json.loads('{"epoch": 1' + "0" * 400 + ', "step": -1, "total_steps": 1e999, "pid": 99999999999, '
                      '"processes": 0, "best_accuracy": 5, "created_at": 1e300, "started_at": -3, '
                      '"elapsed_before": Infinity, "finished_at": NaN, "val_pairs": 1e400}')
    assert huge["epoch"] > 10 ** 399  # Python's JSON reads it whole: the reader must bound it
    assert RunStatus.from_dict(huge) == RunStatus()
    status = RunStatus.from_dict({"state": "running", "created_at": 1e300, "epoch": 2, "total_epochs": 10 ** 30})
    assert epoch_in_progress(status) == 3 and jobs.progress(status)["fraction"] == 0.0


@pytest.mark.parametrize("pid", [-1, 0, -4242, 2 ** 40, "-1"])
def test_a_pid_that_could_name_a_process_group_or_none_is_no_pid(tmp_path, pid):
    """os.kill(-1, SIGTERM) signals every process the user has; 0 the app's own group: never taken from a file."""
    run = RunDir(tmp_path).create()
    write_json(run.status_path, {"state": "running", "pid": pid, "created_at": time.time() - 600})
    write_json(run.path / jobs.JOB_FILE, {"pid": pid, "started_at": "soon"})
    assert run.status().pid is None and jobs.training_pid(run) is None and jobs.live_trainer(run) is None


def test_a_job_file_that_is_not_an_object_is_no_process(tmp_path):
    run = RunDir(tmp_path).create()
    write_json(run.status_path, {"state": "running", "created_at": time.time() - 600})
    (run.path / jobs.JOB_FILE).write_text("[1, 2, 3]")
    assert jobs.training_pid(run) is None
    assert jobs.refresh(run).state == "failed"  # no process: it ended without a word


def test_a_huge_text_is_cut_not_refused(tmp_path):
    run = RunDir(tmp_path).create()
    write_json(run.status_path, {"state": "failed", "error": "x" * (MAX_TEXT * 100), "label": "é" * 20})
    status = run.status()
    assert len(status.error) == MAX_TEXT and status.label == "é" * 20


def test_a_hand_edited_run_lists_and_shows_without_an_error(tmp_path):
    root = tmp_path / "runs"
    write_json(root / "20260101-000000-good" / "status.json", OLD_RUN)
    write_json(root / "20260101-000001-edited" / "status.json",
               {"state": "done", "created_at": "last week", "epoch": "five", "total_epochs": -5, "best_accuracy": 9})
    (root / "20260101-000002-list").mkdir()
    (root / "20260101-000002-list" / "status.json").write_text("[]")
    infos = jobs.list_runs(root)
    assert [i.name for i in infos][0] == "20260101-000000-good"  # the readable date sorts first
    edited = next(i for i in infos if i.name.endswith("edited"))
    assert edited.state == "done" and edited.status.epoch is None and edited.status.best_accuracy is None
    for info in infos:
        epoch_in_progress(info.status)
        jobs.progress(info.status)
    assert jobs.queue_places(infos) == {}


def test_the_writer_refuses_unknown_names_and_values_it_would_not_read_back(tmp_path):
    run = RunDir(tmp_path).create()
    run.update_status(state="running", epoch=1)
    before = run.status_path.read_bytes()
    with pytest.raises(ValueError, match="no field 'epcoh'"):
        run.update_status(epcoh=2)
    with pytest.raises(ValueError, match="not a valid epoch"):
        run.update_status(epoch="2")
    with pytest.raises(ValueError, match="not a valid state"):
        run.update_status(state="paused")
    with pytest.raises(ValueError, match="not a valid pid"):
        run.update_status(pid=-1)
    assert run.status_path.read_bytes() == before  # nothing written


def test_the_writer_keeps_what_it_does_not_change_and_clears_with_none(tmp_path):
    run = RunDir(tmp_path).create()
    write_json(run.status_path, {**OLD_RUN, "state": "failed", "error": "The disk is full.", "epoch": "garbage"})
    written = run.update_status(state="queued", error=None)
    assert written == run.status()
    assert written.error is None and written.label == "digits-quick" and written.epoch is None
    on_disk = json.loads(run.status_path.read_text())
    assert "error" not in on_disk and "epoch" not in on_disk and on_disk["state"] == "queued"  # garbage gone


def test_a_read_only_run_reports_changes_without_writing(tmp_path):
    from siamese_core.runs.rundir import ReadOnlyRun

    write_json(tmp_path / "status.json", OLD_RUN)
    run = ReadOnlyRun(tmp_path)
    assert run.update_status(state="running", epoch=2).epoch == 2
    assert json.loads((tmp_path / "status.json").read_text())["epoch"] == 5
    with pytest.raises(ValueError):
        run.update_status(nonsense=1)
