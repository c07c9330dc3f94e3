"""Real training on small real data: accuracy well above chance, and the run directory contract."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from conftest import ROOT, write_class_folders
from siamese_core.config import TrainConfig
from siamese_core.errors import UserError
from siamese_core.inference.model import SiameseModel
from siamese_core.runs.rundir import RunDir
from siamese_core.training.loop import StopFlag, train


def epochs_of(run_dir):
    return [r for r in RunDir(run_dir).read_metrics() if r["type"] == "epoch"]


def test_digit_convnet_learns_to_verify_unseen_digit_images(digits_run):
    """The classic digit design (ConvNet, absolute difference, BCE) on images it never trained on."""
    records = epochs_of(digits_run)
    assert [r["epoch"] for r in records] == [1, 2, 3]
    best = max(r["accuracy"] for r in records)
    assert best >= 0.95, records
    assert records[-1]["train_loss"] < records[0]["train_loss"]
    for key in ("precision", "recall", "f1", "roc_auc", "threshold", "train_accuracy", "items_per_second"):
        assert key in records[-1]


def test_run_directory_contract(digits_run):
    run = RunDir(digits_run)
    status = run.status()
    assert status.state == "done" and status.epoch == 3 and status.total_epochs == 3
    assert status.pid == os.getpid() and status.finished_at >= status.started_at
    config = TrainConfig.from_dict(run.read_config())
    assert config.backbone == "convnet" and config.split == "image" and config.pairs_per_epoch > 0
    assert any(r["type"] == "step" for r in run.read_metrics())
    assert "Epoch 3/3" in run.log_path.read_text()
    assert {p.name for p in run.checkpoints.iterdir()} == {"best.pt", "last.pt"}
    assert not [p for p in digits_run.rglob("*.tmp")]  # atomic writes leave no temp files


def test_checkpoints_are_self_describing_and_load_without_pickle(digits_run):
    payload = torch.load(digits_run / "checkpoints" / "best.pt", weights_only=True)
    assert payload["format"] == "siamese-studio-checkpoint"
    assert payload["spec"]["backbone"] == "convnet" and payload["spec"]["image_size"] == 28
    assert 0.0 < payload["threshold"] < 1.0
    assert payload["metrics"]["accuracy"] >= 0.95 and payload["metrics"]["threshold_source"] == "validation pairs"
    assert payload["config"]["dataset"] == "digits" and payload["classes"] == [str(d) for d in range(10)]
    last = torch.load(digits_run / "checkpoints" / "last.pt", weights_only=True)
    assert last["epoch"] == 3 and "optimizer" in last
    # two thresholds chosen on the validation pairs: the verdict's (the middle of the medians, as no share was
    # named) and the rare-same one; the best epoch's logged validation figures are those at the verdict's
    points = payload["operating_points"]
    assert points["threshold_policy"] == "medians" and points["same_share"] == 0.1
    assert payload["threshold"] == points["medians_threshold"] == payload["metrics"]["threshold"]
    assert 0.0 <= points["rare_same_threshold"] <= 1.0
    record = [r for r in RunDir(digits_run).read_metrics() if r["type"] == "epoch"][payload["epoch"] - 1]
    assert record["medians_threshold"] == payload["threshold"] and record["accuracy"] == payload["metrics"]["accuracy"]


@pytest.mark.parametrize("mode, mining, floor", [("contrastive", "none", 0.9), ("triplet", "none", 0.9),
                                                 ("triplet", "batch-hard", 0.9), ("triplet", "semi-hard", 0.9)])
@pytest.mark.slow
def test_embedding_modes_learn(tmp_path, mode, mining, floor):
    config = TrainConfig(dataset="digits", backbone="convnet", mode=mode, mining=mining, epochs=2,
                         embedding_dim=64, pairs_per_epoch=6000)
    assert train(config, tmp_path / "run").state == "done"
    best = max(r["accuracy"] for r in epochs_of(tmp_path / "run"))
    assert best >= floor
    model = SiameseModel.load(tmp_path / "run" / "checkpoints" / "best.pt")
    assert model.is_embedding and 0 < model.distance_threshold < 2


def test_unseen_classes_are_verified_above_chance(tmp_path):
    """The honest Siamese test: validation digits are classes never seen in training."""
    root = write_class_folders(tmp_path / "digits", per_class=120)
    config = TrainConfig(dataset="folder", train_path=str(root), backbone="convnet", mode="triplet",
                         mining="batch-hard", epochs=3, embedding_dim=64, pairs_per_epoch=6000, augment=True)
    train(config, tmp_path / "run")
    saved = TrainConfig.from_dict(RunDir(tmp_path / "run").read_config())
    assert saved.split == "class"
    assert max(r["accuracy"] for r in epochs_of(tmp_path / "run")) >= 0.65  # chance is 0.5


@pytest.mark.slow
@pytest.mark.parametrize("backbone", ["timm:efficientnet_b0", "torchvision:resnet18"])
def test_photo_backbones_train_and_their_checkpoints_verify(tmp_path, backbone):
    root = write_class_folders(tmp_path / "photos", classes=range(6), per_class=10, colour=True, formats=("jpg", "png"))
    config = TrainConfig(train_path=str(root), backbone=backbone, pretrained=False, image_size=32, epochs=1,
                         batch_size=16, pairs_per_epoch=128, eval_pairs=60, save_every=1)
    assert train(config, tmp_path / "run").state == "done"
    assert (tmp_path / "run" / "checkpoints" / "epoch-001.pt").is_file()
    model = SiameseModel.load(tmp_path / "run" / "checkpoints" / "best.pt")
    images = sorted((root / "digit_0").iterdir())
    verdict = model.verify(images[0], images[1])
    assert 0.0 <= verdict.score <= 1.0 and verdict.threshold == model.threshold
    assert verdict.same == (verdict.score >= verdict.threshold)


def test_stop_saves_and_resume_continues(tmp_path):
    stop = StopFlag()
    config = TrainConfig(dataset="digits", backbone="convnet", epochs=3, pairs_per_epoch=2000)
    status = train(config, tmp_path / "run", stop=stop, on_epoch=lambda record: stop.set())
    assert status.state == "stopped" and status.epoch == 1
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert last["epoch"] == 1
    with pytest.raises(UserError, match="--resume"):
        train(config, tmp_path / "run")
    status = train(config, tmp_path / "run", resume=True)
    assert status.state == "done"
    assert [r["epoch"] for r in epochs_of(tmp_path / "run")] == [1, 2, 3]


def test_bad_data_marks_the_run_failed_with_the_reason(tmp_path):
    root = write_class_folders(tmp_path / "one", classes=[4], per_class=5)
    with pytest.raises(UserError, match="only one class"):
        train(TrainConfig(train_path=str(root), backbone="convnet"), tmp_path / "run")
    status = RunDir(tmp_path / "run").status()
    assert status.state == "failed" and "only one class" in status.error


@pytest.mark.slow
def test_sigterm_stops_a_command_line_run_cleanly(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "siamese_core", "train", "--dataset", "digits", "-b", "convnet",
                             "-e", "100", "-o", str(out), "-q"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    run = RunDir(out)
    deadline = time.time() + 120
    while time.time() < deadline and not (run.status().state == "running" and (run.status().step or 0) > 0):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode == 3
    assert run.status().state == "stopped"
    assert torch.load(run.checkpoint("last"), weights_only=True)["format"] == "siamese-studio-checkpoint"


def test_sets_too_large_for_memory_are_decoded_per_batch(tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMESE_IMAGE_MEMORY_GB", "0")
    root = write_class_folders(tmp_path / "digits", per_class=40)
    (root / "digit_0" / "broken.png").write_text("not an image")
    config = TrainConfig(train_path=str(root), split="image", backbone="convnet", epochs=2, pairs_per_epoch=3000)
    train(config, tmp_path / "run")
    assert max(r["accuracy"] for r in epochs_of(tmp_path / "run")) >= 0.8


def test_a_crashed_run_can_be_started_again_but_a_live_one_is_left_alone(tmp_path):
    run = RunDir(tmp_path / "run").create()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    run.update_status(state="running", pid=int(dead.stdout))  # its process is gone: crashed
    config = TrainConfig(dataset="digits", backbone="convnet", epochs=1, pairs_per_epoch=2000)
    assert train(config, tmp_path / "run").state == "done"
    live = RunDir(tmp_path / "live").create()
    trainer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # another process, alive
    try:
        live.update_status(state="running", pid=trainer.pid)
        with pytest.raises(UserError, match="being trained right now"):
            train(config, tmp_path / "live")
    finally:
        trainer.kill()
        trainer.wait()
    # A run queued for this very process (as the app's jobs do) is this process's to train.
    queued = RunDir(tmp_path / "queued").create()
    queued.update_status(state="queued", pid=os.getpid())
    assert train(config, tmp_path / "queued").state == "done"


def test_bf16_autocast_trains(tmp_path):
    config = TrainConfig(dataset="digits", backbone="convnet", epochs=1, precision="bf16", pairs_per_epoch=6000)
    train(config, tmp_path / "run")
    assert epochs_of(tmp_path / "run")[0]["accuracy"] >= 0.85


@pytest.mark.slow
def test_a_run_for_a_time_ends_inside_it_when_steps_are_slow_and_its_schedule_reaches_its_end(tmp_path, monkeypatch,
                                                                                            digit_folders):
    """Real training whose steps are made slow on purpose, then slower still part-way (a busier machine): the plan
    takes the measured speed, shortens the rest, and the warm-up and whole cosine schedule end inside the budget."""
    from siamese_core.training import loop

    real_step, steps = loop.train_step, []

    def slow_step(*args, **kwargs):
        steps.append(time.time())
        time.sleep(0.05 if len(steps) <= 6 else 0.25)  # much slower after six steps
        return real_step(*args, **kwargs)

    monkeypatch.setattr(loop, "train_step", slow_step)
    budget, started = 20.0, time.time()
    config = TrainConfig(train_path=str(digit_folders), backbone="convnet", batch_size=16, time_budget=budget)
    status = train(config, tmp_path / "run", clock_start=started)
    wall = time.time() - started
    assert status.state == "done" and wall <= 1.05 * budget, (wall, status)
    assert status.time_budget == budget and abs(status.budget_used - wall) < 0.5
    assert len(steps) == status.total_steps >= 5  # not a token step or two (how fully a plan uses its time is
    # the simulated-clock test's: here the sleep slows the steps alone, and the plan, as it must, expects a machine
    # that slows its steps to slow its validation too)
    epochs = epochs_of(tmp_path / "run")
    assert [r["epoch"] for r in epochs] == list(range(1, status.total_epochs + 1))
    rates = [r["lr"] for r in RunDir(tmp_path / "run").read_metrics() if r["type"] == "step"]
    peak = max(rates)
    assert peak > 0.5 * status_lr(tmp_path / "run")  # warmed up to (about) the full rate...
    assert rates.index(peak) < len(rates) - 1 and rates[-1] < 0.05 * peak  # ...and decayed to about zero at the end
    last = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert last["optimizer"]["param_groups"][0]["lr"] < 1e-9  # the scheduler ran to its end: the last rate is zero
    assert "Time budget:" in (tmp_path / "run" / "log.txt").read_text()


def status_lr(run_dir) -> float:
    return TrainConfig.from_dict(RunDir(run_dir).read_config()).lr


def test_a_plan_keeps_its_deadline_when_steps_slow_down_and_its_rate_never_jumps():
    """The plan itself, on a simulated clock: steps four times slower part-way through, epoch ends that cost what
    they cost; the run (training, validations, the closing description) ends inside the budget, the schedule's
    factor moves smoothly and ends at zero."""
    from siamese_core.training.budget import Budget

    budget = Budget(120.0, 0.0, 50, provisional_steps=500, eval_images=400, images_per_step=64, warmup=0.05,
                    described_images=1000)
    budget.timed_embedding(0.4, 100)  # 4 ms an image, before training
    now, done, epoch, factors, totals = 10.0, 0, 1, [], []  # ten seconds gone starting up
    while epoch <= budget.last_epoch:
        while budget.steps_left_in(epoch, done):
            factors.append(budget.schedule(done))
            now += 0.1 if done < 200 else 0.4  # a busier machine from the 200th step on
            done += 1
            budget.after_step(done, epoch, now)
            totals.append(budget.total_steps)
        spent = 0.3 + 400 * 0.004 * (4 if done > 200 else 1)  # the validation slows down with the steps
        now += spent
        budget.after_epoch_end(spent, done, epoch + 1, now)
        epoch += 1
    now += 0.5 + 2.6 * budget.images_to_describe(now=now) * 0.016  # the description, at the slower speed
    assert now <= 120.0, now
    assert done == budget.total_steps and done > 250  # it used the time, as far as it kept
    assert totals[199] > totals[-1]  # the slowdown shortened the plan
    assert max(factors) > 0.95 and factors[-1] < 0.01 and budget.schedule(done) == 0.0
    assert max(abs(a - b) for a, b in zip(factors, factors[1:])) < 0.05  # no jump when the plan changes


@pytest.mark.slow  # trains a model
def test_a_few_held_out_classes_place_the_threshold_with_pairs_against_trained_classes(tmp_path):
    # ten digit classes split by class: three held out, whose different pairs come from three pairs of classes only;
    # the verdict's threshold also reads their images against training images of the seven others
    from siamese_core.data.prepare import prepare_data
    from siamese_core.evaluation.metrics import medians_threshold
    from siamese_core.training.common import cohort_pairs, cohort_sample

    folders = write_class_folders(tmp_path / "data", classes=range(10), per_class=20)
    status = train(TrainConfig(train_path=str(folders), backbone="convnet", epochs=2, pairs_per_epoch=1024,
                               seed=3), tmp_path / "run")
    assert status.state == "done", status
    model = SiameseModel.load(tmp_path / "run" / "checkpoints" / "best.pt", device="cpu")
    data = prepare_data(TrainConfig.from_dict(model.checkpoint["config"]))
    a, b, same = data.val_pairs
    assert len(set(data.val.labels.tolist())) == 3
    scores = model.score_pairs(data.val.pixels[a].numpy(), data.val.pixels[b].numpy())
    val, trained = cohort_sample(data, 3)
    i, j = cohort_pairs(data.val.labels[val], data.train.labels[trained])
    va, vb = (torch.from_numpy(model.embed(images.pixels[rows].numpy())) for images, rows in ((data.val, val),
                                                                                             (data.train, trained)))
    others = model.net.pair_scores(va[torch.from_numpy(i)], vb[torch.from_numpy(j)]).numpy()
    assert len(others) == len(val) * len(trained)  # every training class differs from the held-out ones
    assert model.threshold == pytest.approx(medians_threshold(scores, same, others), abs=0.005)
    assert abs(model.threshold - medians_threshold(scores, same)) > 0.005  # the pairs beside them moved it


def test_a_small_validation_set_is_costed_at_the_images_it_embeds_not_the_maps_full_sample():
    """The epoch map's sample is drawn from the validation pairs' images: 30 of them are embedded (and mirrored), not
    300. Counting 300 made a 10-people run plan each validation four times too dear and stop a quarter early."""
    from siamese_core.data import sources as D
    from siamese_core.data.prepare import PreparedData
    from siamese_core.maps.snapshots import SAMPLE_SIZE
    from siamese_core.training.common import COHORT_IMAGES
    from siamese_core.training.loop import closing_costs

    def image_set(n, classes):
        labels = np.arange(n) % classes
        return D.ImageSet(torch.zeros(n, 3, 8, 8, dtype=torch.uint8), labels, [str(c) for c in range(classes)],
                          [f"{i}.png" for i in range(n)])

    train_set = image_set(70, 7)
    config = TrainConfig(train_path=".", backbone="small-resnet").resolve()
    for n_val, classes in ((30, 3), (900, 30)):
        val = image_set(n_val, classes)
        data = PreparedData(train_set, val, D.evaluation_pairs(val.labels, 1000, seed=0))
        used = len(np.unique(np.concatenate(data.val_pairs[:2])))
        costs = closing_costs(data, config, "pk")
        # the threshold's pairs against trained classes: only where validation holds out fewer than 8 classes
        cohort = min(COHORT_IMAGES, used) + min(COHORT_IMAGES, len(train_set)) if classes < 8 else 0
        assert costs["eval_images"] == 2 * (used + cohort) + min(SAMPLE_SIZE, used)  # flip_test doubles the pairs'
        # images and the cohort's; the map's sample is embedded once
    assert used > SAMPLE_SIZE  # the large set's sample is the map's full one
