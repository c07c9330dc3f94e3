"""What the app shares between its sessions (a class of thirty on one server, issue 24 item 12): loaded once for
all, made once when they ask together, and never served stale once the file on disk changes.

Sessions are threads in one Streamlit server: here two threads call the app's own cached functions at once, the
work they share made slow enough (a pause before the real call) that they overlap."""

from __future__ import annotations

import os
import shutil
import threading
import time

import torch

from conftest import ROOT
from siamese_core.runs.rundir import load_checkpoint, save_checkpoint

DEMO = ROOT / "assets" / "demo" / "digits-convnet.pt"


def at_once(call, n: int = 2) -> list:
    """`call()` from `n` threads started together; their results."""
    results, errors, start = [None] * n, [], threading.Barrier(n)

    def one(i):
        start.wait()
        try:
            results[i] = call()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return results


def counted(monkeypatch, owner, name: str, pause: float = 0.3) -> list:
    """Replace owner.name by itself, counted and slowed: the list of calls it returns grows by one per call."""
    real, calls = getattr(owner, name), []

    def slow(*args, **kwargs):
        calls.append(args)
        time.sleep(pause)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, slow)
    return calls


def test_two_sessions_asking_for_one_model_load_it_once(monkeypatch, tmp_path):
    from app_pages.shared import models
    from siamese_core.inference import model as inference_model

    path = shutil.copy(DEMO, tmp_path / "best.pt")
    choice = models.ModelChoice("run:lesson", "Run lesson", path=type(DEMO)(path))
    models._load.clear()
    loads = counted(monkeypatch, inference_model.SiameseModel, "load")
    first, second = at_once(lambda: models.load_quietly(choice))
    assert len(loads) == 1 and first is second and first is not None


def test_two_sessions_opening_one_map_embed_its_images_once(monkeypatch):
    from app_pages.explore import data as explore_data
    from app_pages.shared import models
    from siamese_core.data.sources import load_digits
    from siamese_core.maps import embedding_map

    choice = models.ModelChoice(models.DEMO_KEY, "Demo", DEMO)
    model = models.load_quietly(choice)
    source = explore_data.ImageSource("digits:shared-cache-test", "the built-in digits",
                                      lambda: load_digits(28, 1, "resize"), 1797)
    explore_data._kept.clear()
    embeddings = counted(monkeypatch, embedding_map, "embed_image_set")
    first, second = at_once(lambda: explore_data.embedded(model, choice, source))
    assert len(embeddings) == 1 and first is second
    assert first.vectors.shape[0] == 1797


def test_a_retrained_checkpoint_is_loaded_afresh_not_served_from_the_cache(tmp_path):
    """best.pt re-written by a run (renamed into place) on a file system keeping times to the second: the same
    modification time, yet the new weights and threshold are what the next page load gets."""
    from app_pages.shared import models

    path = tmp_path / "best.pt"
    shutil.copy(DEMO, path)
    choice = models.ModelChoice("run:lesson", "Run lesson", path)
    before = models.load_quietly(choice)
    assert models.load_quietly(choice) is before  # unchanged: shared, not loaded again
    stamp = path.stat()

    payload = load_checkpoint(path)
    payload["state_dict"] = {k: (v * 0.5 if v.is_floating_point() else v) for k, v in payload["state_dict"].items()}
    save_checkpoint(path, spec=payload["spec"], state_dict=payload["state_dict"], threshold=0.123,
                    metrics=payload["metrics"], epoch=payload["epoch"] + 1, config=payload["config"],
                    classes=payload["classes"])
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # the same time as the file it replaced

    after = models.load_quietly(choice)
    assert after is not before and after.threshold == 0.123
    weights = next(iter(after.net.state_dict().values()))
    assert not torch.equal(weights, next(iter(before.net.state_dict().values())))
