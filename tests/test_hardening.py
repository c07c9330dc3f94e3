"""Hostile or unlucky input to the library and the command line: nothing read from outside the folder
a person named, every failure one sentence, nothing half-written or kept when it was refused."""

from __future__ import annotations

import errno
import time

import pytest
import torch

from conftest import run_cli, write_class_folders
from siamese_core import cli, settings
from siamese_core.runs import rundir as runs
from siamese_core.runs.rundir import CheckpointNotWritten
from siamese_core.config import TrainConfig
from siamese_core.data.sources import load_class_folders
from siamese_core.errors import UserError
from siamese_core.inference.model import SiameseModel
from siamese_core.training.loop import train
from siamese_core.data.uploads import describe_class_folders
from siamese_core.inference.verification import store_checkpoint
from test_cli import assert_clear_error


# ---------------------------------------------------------------- 1. links inside the data root

@pytest.fixture
def data_root_with_links(tmp_path, monkeypatch):
    """A data root whose folder 'good' holds two real classes, one stolen file and one stolen folder
    (links to images outside the root), and a folder 'all-links' whose classes all lead outside."""
    outside = write_class_folders(tmp_path / "outside", classes=[7, 8], per_class=3)
    root = tmp_path / "root"
    good = write_class_folders(root / "good", classes=[0, 1], per_class=4)
    (good / "digit_1" / "stolen.png").symlink_to(outside / "digit_7" / "000.png")
    (good / "digit_0" / "nested").mkdir()
    (good / "digit_0" / "nested" / "x").symlink_to(outside / "digit_8", target_is_directory=True)
    (good / "digit_9").symlink_to(outside / "digit_8", target_is_directory=True)
    (root / "all-links").mkdir()
    (root / "all-links" / "a").symlink_to(outside / "digit_7", target_is_directory=True)
    (root / "all-links" / "b").symlink_to(outside / "digit_8", target_is_directory=True)
    monkeypatch.setenv("SIAMESE_DATA_ROOT", str(root))
    return root


def test_links_leading_out_of_the_data_root_are_left_out_at_any_depth(data_root_with_links):
    good = data_root_with_links / "good"
    summary = describe_class_folders(good)
    assert summary.classes == ["digit_0", "digit_1"] and summary.counts == {"digit_0": 4, "digit_1": 4}
    images = load_class_folders(good, 28, 1)
    assert len(images) == 8 and not any("stolen" in name or "nested" in name for name in images.names)
    with pytest.raises(UserError, match="links leading outside the data root"):
        load_class_folders(data_root_with_links / "all-links", 28, 1)


def test_outside_the_data_root_links_are_followed_as_before(data_root_with_links, monkeypatch):
    monkeypatch.delenv("SIAMESE_DATA_ROOT")  # the command line on a person's own folders
    # linked files and linked class folders count; a linked folder deeper down is not walked into
    assert len(load_class_folders(data_root_with_links / "good", 28, 1)) == 8 + 1 + 3


def test_a_file_swapped_for_a_link_after_listing_is_not_read(data_root_with_links, tmp_path):
    """Issue 24, item 11: a file swapped for a link between listing and decoding was read."""
    import shutil

    from siamese_core.data.paths import class_folder_files
    from siamese_core.data.pipelines import load_pixels
    from siamese_core.data.sources import decode_files

    good = data_root_with_links / "good"
    listed = [path for _, files in class_folder_files(good)[0] for path in files]
    outside = tmp_path / "outside" / "digit_7"
    victim = good / "digit_0" / "000.png"
    victim.unlink()
    victim.symlink_to(outside / "000.png")  # after the listing, before the decoding
    with pytest.raises(UserError, match="leads outside the data folder .a link.: it was not read"):
        load_pixels(victim, 28, 1)
    _, kept, skipped = decode_files(listed, 28, 1)
    assert victim not in kept and len(kept) == len(listed) - 1 and "leads outside" in skipped[0][1]
    # a folder on the way swapped for a link: the opened file's own path gives it away
    shutil.move(good / "digit_1", tmp_path / "moved")
    (good / "digit_1").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UserError, match="leads outside the data folder"):
        load_pixels(good / "digit_1" / "001.png", 28, 1)
    # a link that stays inside the data root is read, as before
    (good / "digit_0" / "again.png").symlink_to(good / "digit_0" / "001.png")
    assert load_pixels(good / "digit_0" / "again.png", 28, 1).shape == (1, 28, 28)


# ---------------------------------------------------------------- 1. verify --pairs stays in --images

@pytest.mark.slow
def test_cli_verify_pairs_reads_only_inside_the_images_folder(tmp_path, digits_checkpoint):
    images = write_class_folders(tmp_path / "images", classes=[3], per_class=2)
    secret = write_class_folders(tmp_path / "secret", classes=[4], per_class=1) / "digit_4" / "000.png"
    csv = tmp_path / "pairs.csv"
    csv.write_text("image_a,image_b\n"
                   "digit_3/000.png,digit_3/001.png\n"
                   "digit_3/000.png,../secret/digit_4/000.png\n"
                   f"digit_3/000.png,{secret}\n"
                   "digit_3/000.png,../secret/no-such-file.png\n")
    out = tmp_path / "verdicts.csv"
    result = run_cli("verify", "-c", digits_checkpoint, "--pairs", csv, "--images", images, "-o", out)
    assert result.returncode == 0, result.stderr
    import pandas as pd

    table = pd.read_csv(out, keep_default_na=False)
    assert table["verdict"][0] in ("same", "different")
    errors = list(table["error"][1:])
    assert all("is not among the images in the --images folder" in e for e in errors), errors
    # an existing outside file and a missing one read alike: the table tells nothing about this machine
    assert len({e.split("'")[2] for e in errors}) == 1
    trusted = run_cli("verify", "-c", digits_checkpoint, "--pairs", csv, "--images", images, "-o", out,
                      "--allow-outside")
    assert trusted.returncode == 0 and pd.read_csv(out, keep_default_na=False)["verdict"][2] != ""


# ---------------------------------------------------------------- 2. checkpoints with wrong fields

FORGERIES = {
    "no spec": (lambda c: c.pop("spec"), "no network description"),
    "no weights": (lambda c: c.pop("state_dict"), "no weights"),
    "threshold text": (lambda c: c.update(threshold="abc"), "threshold 'abc' is not a number"),
    "version text": (lambda c: c.update(version="2"), "version is not a whole number"),
    "spec a list": (lambda c: c.update(spec=[1, 2]), "no network description"),
    "huge image": (lambda c: c["spec"].update(image_size=40000), "image size 40000"),
    "other image size": (lambda c: c["spec"].update(image_size=1200), "image size 1200"),
    "weights of another shape": (lambda c: c["spec"].update(image_size=32), "do not fit"),
    "unknown backbone": (lambda c: c["spec"].update(backbone="timm:no_such_net"), "no_such_net"),
    # issue 24: "Same digit (same from -300.0%)" and "score nan%" came from these
    "threshold below 0": (lambda c: c.update(threshold=-3.0), "threshold -3.0 is not a score from 0 to 1"),
    "threshold above 1": (lambda c: c.update(threshold=1.5), "threshold 1.5 is not a score from 0 to 1"),
    "NaN weights": (lambda c: c["state_dict"]["backbone.fc.1.weight"].fill_(float("nan")),
                    "not finite (NaN or infinity, e.g. in backbone.fc.1.weight)"),
    "infinite weights": (lambda c: c["state_dict"]["backbone.conv.0.bias"].fill_(float("inf")), "not finite"),
    # the two thresholds beside the verdict's (the checkpoint's operating points)
    "operating points a list": (lambda c: c.update(operating_points=[0.5, 0.6]), "operating points are not a table"),
    "rare-same threshold NaN": (lambda c: c["operating_points"].update(rare_same_threshold=float("nan")),
                                "rare same threshold nan is not a number from 0 to 1"),
    "medians threshold above 1": (lambda c: c["operating_points"].update(medians_threshold=7.5),
                                  "medians threshold 7.5 is not a number from 0 to 1"),
    "medians threshold text": (lambda c: c["operating_points"].update(medians_threshold="0.5"),
                               "medians threshold '0.5' is not a number"),
    "share of 1": (lambda c: c["operating_points"].update(same_share=1.0), "same share 1.0 is not a number between"),
    "share missing": (lambda c: c["operating_points"].pop("same_share"), "same share None"),
    "unknown policy": (lambda c: c["operating_points"].update(threshold_policy="x" * 10_000), "x… is none of medians, same-share"),
}


@pytest.mark.parametrize("forgery", list(FORGERIES))
def test_a_checkpoint_with_wrong_fields_is_one_sentence_before_any_model_is_built(tmp_path, digits_checkpoint,
                                                                                 forgery):
    change, words = FORGERIES[forgery]
    payload = torch.load(digits_checkpoint, weights_only=True)
    change(payload)
    path = tmp_path / "forged.pt"
    torch.save(payload, path)
    started = time.perf_counter()
    with pytest.raises(UserError, match="damaged or was edited by hand") as caught:
        SiameseModel.load(path)
    assert words in str(caught.value) and time.perf_counter() - started < 5
    # uploaded, it is refused in the same words, under the name the person gave, and not kept
    with pytest.raises(UserError) as uploaded:
        store_checkpoint(path.read_bytes(), name="forged.pt")
    assert words in str(uploaded.value) and str(tmp_path) not in str(uploaded.value)
    assert not list((settings.runs_dir() / ".uploads" / "checkpoints").glob("*"))


def test_a_checkpoint_from_before_the_two_thresholds_loads_with_its_one(tmp_path, digits_checkpoint):
    from siamese_core.evaluation.evaluate import model_operating_points

    payload = torch.load(digits_checkpoint, weights_only=True)
    assert set(payload["operating_points"]) == {"threshold_policy", "medians_threshold", "rare_same_threshold",
                                                "same_share"}
    payload.pop("operating_points")
    path = tmp_path / "old.pt"
    torch.save(payload, path)
    model = SiameseModel.load(path)
    assert model.operating_points is None and model.threshold == payload["threshold"]
    assert [(p["name"], p["threshold"], p["verdict"]) for p in model_operating_points(model)] == [
        ("checkpoint", payload["threshold"], True)]


def test_cli_says_a_cut_off_checkpoint_is_damaged_not_foreign(tmp_path, digits_checkpoint):
    cut = tmp_path / "best.pt"
    cut.write_bytes(digits_checkpoint.read_bytes()[:5000])
    image = write_class_folders(tmp_path / "img", classes=[1], per_class=1) / "digit_1" / "000.png"
    assert_clear_error(run_cli("verify", "-c", cut, image, image), "damaged or incomplete")


class _RunsCode:
    """What a hostile pickle holds: an object whose unpickling would run a command."""

    def __reduce__(self):
        return (print, ("this ran while the checkpoint was read",))


def test_a_pickle_payload_is_called_unsafe_not_damaged(tmp_path, runs_dir, digits_checkpoint, capsys):
    payload = torch.load(digits_checkpoint, weights_only=True)
    payload["extra"] = _RunsCode()
    evil = tmp_path / "best.pt"
    torch.save(payload, evil)
    with pytest.raises(runs.UnsafeCheckpoint, match="not a Siamese Studio checkpoint this app can read safely: it "
                                                     "holds Python objects") as caught:
        runs.load_checkpoint(evil)
    assert "damaged" not in str(caught.value)
    with pytest.raises(UserError, match="'best.pt' is not a .* can read safely") as uploaded:  # Verify's upload
        store_checkpoint(evil.read_bytes(), name="'best.pt'")
    assert "damaged" not in str(uploaded.value) and "this ran" not in capsys.readouterr().out
    assert not list((settings.runs_dir() / ".uploads" / "checkpoints").glob("*"))
    image = write_class_folders(tmp_path / "img", classes=[1], per_class=1) / "digit_1" / "000.png"
    assert_clear_error(run_cli("verify", "-c", evil, image, image), "can read safely")


def test_json_from_a_person_nested_200000_levels_is_a_sentence_not_a_recursion_error(tmp_path, capsys):
    """Issue 24, item 7: every JSON the project reads from files people give (sidecars, configs, requests, metadata)
    goes through files.read_json / loads_json, which refuse deep nesting before parsing."""
    from siamese_core.files import BadJson, loads_json, read_json

    deep = tmp_path / "config.json"
    deep.write_text("[" * 200_000 + "]" * 200_000)
    started = time.perf_counter()
    assert read_json(deep, default="unreadable") == "unreadable"
    with pytest.raises(BadJson, match="nests deeper than 64 levels"):
        loads_json(deep.read_bytes())
    assert loads_json('{"a": [[1, "]]]]"]], "b": "\\"[["}') == {"a": [[1, "]]]]"]], "b": '"[['}  # strings aside
    assert time.perf_counter() - started < 1
    assert cli.main(["train", "--config", str(deep), "-o", str(tmp_path / "run")]) == 2
    said = capsys.readouterr().err.strip()
    assert said == f"error: '{deep}' is not a training config (a JSON object such as a run's config.json)."


def test_a_metrics_line_nested_too_deep_is_skipped(tmp_path):
    run = runs.RunDir(tmp_path / "run").create()
    run.append_metrics({"type": "epoch", "epoch": 1, "accuracy": 0.9})
    with open(run.metrics_path, "a") as fh:
        fh.write("[" * 200_000 + "]" * 200_000 + "\n")
    run.append_metrics({"type": "epoch", "epoch": 2, "accuracy": 0.95})
    assert [r["epoch"] for r in run.read_metrics()] == [1, 2]


# ---------------------------------------------------------------- 2. full or read-only disks

def refuse_renames(monkeypatch, code: int):
    def fail(*_):
        raise OSError(code, "No space left on device" if code == errno.ENOSPC else "Read-only file system")

    monkeypatch.setattr(runs.os, "replace", fail)


@pytest.mark.parametrize("code, words", [(errno.ENOSPC, "The disk is full"), (errno.EROFS, "read-only")])
def test_cli_write_failures_are_a_sentence_and_leave_no_file(tmp_path, digits_checkpoint, monkeypatch, capsys,
                                                              code, words):
    images = write_class_folders(tmp_path / "images", classes=[3], per_class=2)
    csv = tmp_path / "pairs.csv"
    csv.write_text("image_a,image_b\ndigit_3/000.png,digit_3/001.png\n")
    refuse_renames(monkeypatch, code)
    out = tmp_path / "out" / "verdicts.csv"
    assert cli.main(["verify", "-c", str(digits_checkpoint), "--pairs", str(csv), "--images", str(images),
                     "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: ") and words in err and "Traceback" not in err
    assert not out.exists() and not list(out.parent.glob("*"))  # no half-written file, no temp file


def test_a_run_that_hits_a_full_disk_says_so_in_its_status(tmp_path, monkeypatch):
    def full_disk(*_, **__):  # how torch.save reports it: from its C++ zip writer
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(CheckpointNotWritten):  # a UserError: one sentence, no traceback (tests/training/test_disk_full.py)
        train(TrainConfig(dataset="digits", backbone="convnet", mode="pair", epochs=1, pairs_per_epoch=256),
              tmp_path / "run")
    status = runs.RunDir(tmp_path / "run").status()
    assert status.state == "failed" and "could not be written because the disk is full" in status.error


# ---------------------------------------------------------------- 3. bounded batches, 5. their messages

def zip_bytes_of(folder) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*.png")):
            archive.write(path, path.relative_to(folder))
    return buffer.getvalue()


def test_many_pairs_are_scored_in_chunks_alike(tmp_path, digits_checkpoint, monkeypatch):
    from siamese_core.inference import model as inference

    images = write_class_folders(tmp_path / "images", classes=[3, 5], per_class=3)
    names = [f"digit_{c}/{i:03d}.png" for c in (3, 5) for i in range(3)]
    pairs = [(a, b, None) for a in names for b in names]
    model = SiameseModel.load(digits_checkpoint)
    whole = inference.verify_pairs(model, pairs, images)
    monkeypatch.setattr(inference, "PAIRS_PER_CHUNK", 4)
    seen = []
    chunked = inference.verify_pairs(model, pairs, images, on_pair=seen.append)
    assert [r["score"] for r in chunked] == pytest.approx([r["score"] for r in whole], abs=1e-5)
    assert seen == list(range(1, len(pairs) + 1))


def test_an_upload_of_pairs_reports_its_progress_to_the_last_pair(tmp_path, runs_dir, digits_checkpoint):
    from siamese_core.inference.verification import check_pairs_upload

    images = write_class_folders(tmp_path / "images", classes=[3, 5], per_class=2)
    csv = b"image_a,image_b\n" + b"digit_3/000.png,digit_5/001.png\n" * 5
    seen = []
    table, _ = check_pairs_upload(SiameseModel.load(digits_checkpoint), zip_bytes_of(images), csv,
                                  on_progress=lambda done, total: seen.append((done, total)))
    assert seen == [(n, 5) for n in range(1, 6)] and table["score"].notna().all()


def test_an_upload_of_too_many_pairs_names_the_cap(tmp_path, runs_dir, digits_checkpoint, monkeypatch):
    from siamese_core.inference.verification import check_pairs_upload

    monkeypatch.setenv("SIAMESE_MAX_PAIRS", "3")
    images = write_class_folders(tmp_path / "images", classes=[3], per_class=2)
    csv = b"image_a,image_b\n" + b"digit_3/000.png,digit_3/001.png\n" * 4
    with pytest.raises(UserError, match="names 4 pairs; the app checks at most 3 at once"):
        check_pairs_upload(SiameseModel.load(digits_checkpoint), zip_bytes_of(images), csv)


def test_a_csv_that_is_not_utf8_is_named_as_the_person_knows_it(tmp_path, runs_dir, digits_checkpoint):
    from siamese_core.inference.verification import check_pairs_upload

    images = write_class_folders(tmp_path / "images", classes=[3], per_class=2)
    csv = "image_a,image_b\ndigit_3/000.png,digit_3/001.png\nk\u00e4se.png,b.png\n".encode("latin-1")
    with pytest.raises(UserError) as caught:
        check_pairs_upload(SiameseModel.load(digits_checkpoint), zip_bytes_of(images), csv)
    assert str(caught.value).startswith("The uploaded CSV is not UTF-8 text: save it again as 'CSV UTF-8'")


def test_large_images_are_decoded_one_at_a_time_and_kept_small():
    """Four sessions each sending a 36-megapixel PNG: each is reduced on reading (the server keeps one
    large decode at a time, not four), and the digit pipeline still reads it."""
    import io
    import threading

    import numpy as np
    from PIL import Image

    from siamese_core.data import images, pipelines

    small = np.zeros((60, 60), dtype=np.uint8)
    small[20:40, 28:32] = 255  # a "1"
    buffer = io.BytesIO()
    Image.fromarray(small).resize((6000, 6000), Image.NEAREST).save(buffer, "PNG")
    data = buffer.getvalue()
    held, most = [0], [0]
    real_lock = images._LARGE_DECODE

    class CountingLock:
        def __enter__(self):
            real_lock.acquire()
            held[0] += 1
            most[0] = max(most[0], held[0])

        def __exit__(self, *_):
            held[0] -= 1
            real_lock.release()

    images._LARGE_DECODE = CountingLock()
    try:
        results = []
        threads = [threading.Thread(target=lambda: results.append(images.open_image_with_notes(data)))
                   for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        images._LARGE_DECODE = real_lock
    assert len(results) == 4 and most[0] == 1
    assert all(image.size == (images.KEPT_SIDE, images.KEPT_SIDE) and "reduced" in notes[0] for image, notes in results)
    assert pipelines.load_pixels(data, 28, 1, "digit").max() > 0
