"""The command line as a person uses it: real subprocesses, real files, one clear line for bad input."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, run_cli, write_class_folders
from siamese_core.cli import build_parser
from siamese_core.cli.train import TRAIN_FLAGS
from siamese_core.config import TrainConfig


def assert_clear_error(result, *phrases):
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ")
    for phrase in phrases:
        assert phrase in last, last


@pytest.mark.slow
def test_train_verify_embed_eval_on_digits(tmp_path, digit_folders):
    out = tmp_path / "demo"
    result = run_cli("train", "--dataset", "digits", "-b", "convnet", "-o", out, "-e", "2", "-s", "1", "-lr", "0.001")
    assert result.returncode == 0, result.stderr
    assert "Run done" in result.stdout and (out / "checkpoints" / "epoch-002.pt").is_file()
    checkpoint = out / "checkpoints" / "best.pt"

    zero, one = sorted((digit_folders / "digit_0").iterdir()), sorted((digit_folders / "digit_1").iterdir())
    same = run_cli("verify", "-c", checkpoint, zero[0], zero[1], "--json")
    assert same.returncode == 0, same.stderr
    verdict = json.loads(same.stdout)
    assert set(verdict) >= {"same", "score", "threshold", "distance", "verdict"}
    text = run_cli("verify", "-c", checkpoint, zero[0], one[0])
    assert text.returncode == 0 and ("Same digit" in text.stdout or "Different digit" in text.stdout)

    for suffix in (".csv", ".npz"):
        result = run_cli("embed", "-c", checkpoint, "-i", digit_folders, "-o", tmp_path / f"emb{suffix}")
        assert result.returncode == 0, result.stderr
    table = np.loadtxt(tmp_path / "emb.csv", delimiter=",", skiprows=1, usecols=range(2, 130))
    stored = np.load(tmp_path / "emb.npz")
    assert table.shape == stored["vectors"].shape == (120, 128)  # the default recipe's 128-d embedding
    assert set(stored["labels"]) == {f"digit_{d}" for d in range(10)}

    result = run_cli("eval", "-v", digit_folders, "-o", tmp_path / "eval", "-c", checkpoint, "--images", "4")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["accuracy"] >= 0.85 and metrics["pairs"] > 100 and metrics["roc"]["fpr"]
    assert len(list((tmp_path / "eval" / "pairs").glob("*.png"))) == 4
    assert (tmp_path / "eval" / "roc.png").is_file() and (tmp_path / "eval" / "scores.png").is_file()
    assert "equal error rate" in result.stdout and "10-fold threshold choice" in result.stdout
    assert "precision at 1" in result.stdout and "5-way one-shot" in result.stdout
    # the checkpoint's two thresholds, each with its figures on these pairs, printed and kept in metrics.json
    points = metrics["operating_points"]
    assert [(p["name"], p["verdict"]) for p in points] == [("medians", True), ("rare-same", False)]
    assert f"verdict  middle of the medians, threshold {points[0]['threshold']:.3f}: accuracy " in result.stdout
    assert f"also     rare same pairs (10% same), threshold {points[1]['threshold']:.3f}: accuracy " in result.stdout

    result = run_cli("eval", "-v", digit_folders, "-o", tmp_path / "eval2", "-c", checkpoint, "--images", "0",
                     "--threshold", "0.9", "--far", "0.05", "--folds", "5", "--no-retrieval")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "eval2" / "metrics.json").read_text())
    assert metrics["threshold"] == 0.9 and metrics["threshold_source"] == "given on the command line"
    assert [t["far"] for t in metrics["tar_at_far"]] == [0.05] and metrics["kfold"]["folds"] == 5
    assert "precision_at_1" not in metrics["retrieval"]


@pytest.mark.slow
def test_verify_many_pairs_from_a_csv(tmp_path, digits_checkpoint, digit_folders):
    rows = ["image_a,image_b,same"]
    for d in range(10):
        files = sorted((digit_folders / f"digit_{d}").iterdir())
        other = sorted((digit_folders / f"digit_{(d + 1) % 10}").iterdir())
        rows.append(f"{files[0].relative_to(digit_folders)},{files[1].relative_to(digit_folders)},1")
        rows.append(f"{files[2].relative_to(digit_folders)},{other[0].relative_to(digit_folders)},0")
    rows.append("digit_0/missing.png,digit_0/000.png,1")
    (tmp_path / "pairs.csv").write_text("\n".join(rows) + "\n")
    result = run_cli("verify", "-c", digits_checkpoint, "--pairs", tmp_path / "pairs.csv", "--images", digit_folders,
                     "-o", tmp_path / "out.csv")
    assert result.returncode == 0, result.stderr
    assert "Scored 20 of 21 pairs" in result.stdout and "accuracy" in result.stdout
    accuracy = float(result.stdout.split("accuracy ")[1].split("%")[0])
    assert accuracy >= 80
    lines = (tmp_path / "out.csv").read_text().splitlines()
    assert lines[0].startswith("image_a,image_b,score,verdict,outside,error") and len(lines) == 22
    # a missing file reads like one outside --images would (issue 13: the table tells nothing of other paths)
    assert "'digit_0/missing.png' is not among the images in the --images folder" in lines[-1]


@pytest.mark.slow
def test_csv_files_the_commands_write_keep_formula_names_as_text(tmp_path, digits_checkpoint):
    """Issue 24, item 11: a class or file named =HYPERLINK(...) became a live formula in the written CSV."""
    import csv

    folder = tmp_path / "images"
    write_class_folders(folder, classes=[1, 2], per_class=2)
    (folder / "digit_1").rename(folder / '=HYPERLINK("https:evil.example")')
    (folder / "digit_2" / "000.png").rename(folder / "digit_2" / "@SUM(1+1).png")
    (tmp_path / "pairs.csv").write_text('image_a,image_b\n"=HYPERLINK(""https:evil.example"")/000.png",'
                                        "digit_2/@SUM(1+1).png\n")
    result = run_cli("verify", "-c", digits_checkpoint, "--pairs", tmp_path / "pairs.csv", "--images", folder,
                     "-o", tmp_path / "verdicts.csv")
    assert result.returncode == 0, result.stderr
    row = next(csv.DictReader((tmp_path / "verdicts.csv").open()))
    assert row["image_a"] == '\'=HYPERLINK("https:evil.example")/000.png' and row["image_b"] == "digit_2/@SUM(1+1).png"
    assert row["verdict"] in ("same", "different") and row["error"] == ""
    result = run_cli("embed", "-c", digits_checkpoint, "-i", folder, "-o", tmp_path / "vectors.csv")
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader((tmp_path / "vectors.csv").open()))
    assert {r["label"] for r in rows} == {'\'=HYPERLINK("https:evil.example")', "digit_2"}
    assert all(not r["path"].startswith(("=", "@")) for r in rows) and float(rows[0]["e0"]) == float(rows[0]["e0"])


@pytest.mark.slow
def test_bad_input_gets_one_clear_line(tmp_path, digits_checkpoint, digit_folders):
    text = tmp_path / "letter.png"
    text.write_text("Dear model, this is not an image.")
    one_class = write_class_folders(tmp_path / "one", classes=[1], per_class=4)
    lonely = write_class_folders(tmp_path / "lonely", classes=[1, 2], per_class=3)
    for extra in sorted((lonely / "digit_2").iterdir())[1:]:
        extra.unlink()
    not_ours = tmp_path / "model.pt"
    not_ours.write_bytes(b"\x00" * 100)
    image = sorted((digit_folders / "digit_3").iterdir())[0]

    assert_clear_error(run_cli("train", "--train_path", tmp_path / "nowhere", "-b", "convnet", "-o", tmp_path / "r1"),
                       "does not exist")
    assert_clear_error(run_cli("train", "--train_path", one_class, "-b", "convnet", "-o", tmp_path / "r2"),
                       "only one class")
    assert_clear_error(run_cli("train", "--train_path", lonely, "--split", "image", "-b", "convnet",
                               "-o", tmp_path / "r3"), "'digit_2' has only one image")
    assert_clear_error(run_cli("train", "--dataset", "digits", "-b", "timm:not_a_model", "-o", tmp_path / "r4"),
                       "timm.list_models()")
    assert_clear_error(run_cli("verify", "-c", digits_checkpoint, image, text), "not an image")
    assert_clear_error(run_cli("verify", "-c", not_ours, image, image), "not a Siamese Studio checkpoint")
    assert_clear_error(run_cli("verify", "-c", digits_checkpoint, image), "Give two images")
    assert_clear_error(run_cli("embed", "-c", digits_checkpoint, "-i", digit_folders, "-o", tmp_path / "e.txt"),
                       ".csv or .npz")
    assert not (tmp_path / "e.txt").exists()
    assert_clear_error(run_cli("train", "--triplets", tmp_path / "no.csv", "-b", "convnet", "-o", tmp_path / "r5"),
                       "does not exist")
    assert_clear_error(run_cli("train", "--train_path", digit_folders, "-b", "torchvision:resnet18",
                               "--weights", tmp_path / "no.pth", "-o", tmp_path / "r6"), "does not exist")
    assert_clear_error(run_cli("eval", "-c", digits_checkpoint, "-v", tmp_path / "nowhere", "-o", tmp_path / "ev"),
                       "does not exist")
    assert_clear_error(run_cli("eval", "-c", digits_checkpoint, "-v", one_class, "-o", tmp_path / "ev"),
                       "only one class")
    assert_clear_error(run_cli("eval", "-c", digits_checkpoint, "--threshold", "50", "-o", tmp_path / "ev"),
                       "between 0 and 1")
    assert not (tmp_path / "ev").exists()
    assert_clear_error(run_cli("verify", "-c", digits_checkpoint, "--pairs", tmp_path / "no.csv", "-o", tmp_path / "v.csv"),
                       "does not exist")


def test_help_for_every_command():
    for command in ("train", "eval", "verify", "embed", "similar"):
        result = run_cli(command, "--help")
        assert result.returncode == 0 and "usage:" in result.stdout
    train_help = run_cli("train", "--help").stdout
    for flag in ("--train_path", "--val_path", "-lr", "-e", "-s", "--triplets", "--mining", "--no-pretrained", "--resume"):
        assert flag in train_help


def test_help_answers_without_loading_torch():
    for command in ([], ["train"], ["embed"]):
        result = subprocess.run([sys.executable, "-X", "importtime", "-m", "siamese_core", *command, "--help"],
                                capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        loaded = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines()
                  if line.startswith("import time:")}
        assert result.returncode == 0 and "usage:" in result.stdout
        assert "siamese_core.cli.train" in loaded  # the list is real: every command's parser was imported
        assert not loaded & {"torch", "torchvision", "timm", "streamlit"}


def test_every_train_flag_named_after_a_setting_reaches_the_config():
    given = vars(build_parser().parse_args(["train"]))
    settings = {field.name for field in dataclasses.fields(TrainConfig)}
    assert set(given) & settings - {"dataset"} == set(TRAIN_FLAGS)  # dataset is worked out from the other flags


@pytest.mark.slow
def test_resume_continues_a_finished_run_to_more_epochs(tmp_path):
    out = tmp_path / "run"
    args = ("train", "--dataset", "digits", "-b", "convnet", "-o", out, "--pairs-per-epoch", "2000")
    assert run_cli(*args, "-e", "1").returncode == 0
    assert_clear_error(run_cli(*args, "-e", "1"), "--resume")
    resumed = run_cli(*args, "--resume", "-e", "2")
    assert resumed.returncode == 0, resumed.stderr
    epochs = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()
              if json.loads(line)["type"] == "epoch"]
    assert epochs == [1, 2]
    assert "Resuming from epoch 1" in (out / "log.txt").read_text()


@pytest.mark.slow
def test_similar_lists_the_nearest_images_of_the_same_class(digits_checkpoint, digit_folders):
    query = sorted((digit_folders / "digit_3").glob("*.png"))[0]
    result = run_cli("similar", "-c", digits_checkpoint, query, "-g", digit_folders, "-k", "5", "--json")
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["left_out_as_the_query"] == 1  # the query is in the gallery: not its own match
    assert len(found["matches"]) == 5
    assert f"digit_3/{query.name}" not in [m["name"] for m in found["matches"]]
    assert sum(m["label"] == "digit_3" for m in found["matches"]) >= 4
    distances = [m["distance"] for m in found["matches"]]
    assert distances == sorted(distances)
    text = run_cli("similar", "-c", digits_checkpoint, query, "-g", digit_folders, "-k", "2")
    assert text.returncode == 0 and "left out: the query itself" in text.stdout


def test_time_and_epochs_together_or_a_bad_time_get_a_sentence(tmp_path):
    both = run_cli("train", "--dataset", "digits", "-b", "convnet", "--time", "60s", "-e", "3", "-o", tmp_path / "r1")
    assert_clear_error(both, "Give either --time (train for a length of time) or -e/--epochs")
    assert_clear_error(run_cli("train", "--dataset", "digits", "--time", "soon", "-o", tmp_path / "r2"),
                       "'soon' is not a length of time")
    assert_clear_error(run_cli("train", "--dataset", "digits", "--time", "5s", "-o", tmp_path / "r3"),
                       "--time must be from 10 seconds")
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()


@pytest.mark.slow
def test_a_run_for_a_time_says_how_well_it_kept_it(tmp_path, digit_folders):
    out = tmp_path / "run"
    result = run_cli("train", "--train_path", digit_folders, "-b", "convnet", "--batch-size", "16", "--time", "20s",
                     "-q", "-o", out)
    assert result.returncode == 0, result.stderr
    last = result.stdout.strip().splitlines()[0]
    assert "of its 20 s budget" in last, result.stdout
    status = json.loads((out / "status.json").read_text())
    assert status["time_budget"] == 20 and 0 < status["budget_used"] <= 21
    assert f"{round(status['budget_used'])} s of its 20 s budget" in last
