"""Export for other apps: ONNX graphs that give the PyTorch model's vectors and scores (onnxruntime, to 1e-4) for
any batch size, the sidecar and model card, the command's exit codes, and the Runs page's download."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import zipfile

import numpy as np
import pytest

from app_helpers import open_page
from conftest import ROOT, run_cli

DEMO = ROOT / "assets" / "demo" / "digits-convnet.pt"


def session(data: bytes):
    import onnxruntime

    return onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])


def batch_of(model, paths) -> np.ndarray:
    """Images as the model sees them, as the ONNX graph takes them: float32 pixels / 255."""
    return np.stack([model.prepare(p) for p in paths]).astype(np.float32) / 255.0


def test_a_pair_model_exports_its_embedding_and_head_with_the_run_s_card(people_run, tmp_path):
    from siamese_core.inference.export import write_export
    from siamese_core.inference.model import SiameseModel
    from siamese_core.runs.rundir import RunDir

    checkpoint = people_run / "checkpoints" / "best.pt"
    written = write_export(checkpoint, tmp_path / "faces.onnx")
    assert sorted(p.name for p in written) == ["faces.json", "faces.md", "faces.onnx", "faces.pair-head.onnx"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary file left behind
    umask = os.umask(0o022)
    os.umask(umask)
    # Files to copy to another app or machine: the usual mode, not the temporary file's owner-only one.
    assert {p.stat().st_mode & 0o777 for p in written} == {0o666 & ~umask}

    model = SiameseModel.load(checkpoint, "cpu")
    images = sorted((people_run / "samples").glob("*.png"))[:6]
    embed, head = session((tmp_path / "faces.onnx").read_bytes()), session((tmp_path / "faces.pair-head.onnx").read_bytes())
    for count in (1, 5):  # one batch axis, any size
        x = batch_of(model, images[:count])
        vectors = embed.run(["vectors"], {"images": x})[0]
        assert vectors.shape == (count, model.embed(images[:1]).shape[1])
        np.testing.assert_allclose(vectors, model.embed(images[:count]), atol=1e-4)
    a, b = batch_of(model, images[:5]), batch_of(model, images[1:6])
    va, vb = (embed.run(["vectors"], {"images": x})[0] for x in (a, b))
    scores = head.run(["score"], {"vectors_a": va, "vectors_b": vb})[0]
    np.testing.assert_allclose(scores, model.score_pairs(images[:5], images[1:6]), atol=1e-4)

    sidecar = json.loads((tmp_path / "faces.json").read_text())
    assert sidecar["input"]["shape"] == ["batch", 1, 28, 28] and sidecar["input"]["pipeline"] == "resize"
    assert sidecar["input"]["normalisation"] == {**sidecar["input"]["normalisation"], "mean": [0.5], "std": [0.5],
                                                 "inside_graph": True}
    assert sidecar["threshold"] == pytest.approx(model.threshold) and sidecar["class_word"] == "person"
    assert sidecar["mode"] == "pair" and sidecar["distance_threshold"] is None
    assert sidecar["files"] == {"embedding": "faces.onnx", "pair_head": "faces.pair-head.onnx",
                                "sidecar": "faces.json", "card": "faces.md"}
    assert sidecar["source"]["run"] == people_run.name

    card = (tmp_path / "faces.md").read_text()
    best = RunDir(people_run).best_epoch()
    assert f"From the run's best epoch, {best['epoch']} of 2" in card
    assert f"Accuracy (pairs judged right): {100 * best['accuracy']:.1f}%" in card
    assert "Backbone: convnet" in card and "`faces.pair-head.onnx`" in card and "same person" in card


def test_an_embedding_model_exports_with_its_mirror_averaging_inside(tmp_path):
    """A colour embedding model (small-resnet, random weights) with test-time mirror averaging, as photo models
    have it by default: the graph's vectors are the averaged ones the app computes."""
    import torch

    from siamese_core.inference.export import export_checkpoint
    from siamese_core.inference.model import SiameseModel
    from siamese_core.models.networks import IMAGENET_MEAN, IMAGENET_STD, build_model
    from siamese_core.runs.rundir import save_checkpoint

    spec = {"backbone": "small-resnet", "mode": "triplet", "head": None, "head_norm": False, "dropout": 0.0,
            "embedding_dim": 32, "image_size": 48, "channels": 3, "input": "resize", "neck": True, "flip_test": True,
            "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD)}
    torch.manual_seed(0)
    net = build_model(spec)
    for module in net.modules():  # trained-looking BatchNorm statistics, so eval mode differs from a fresh net
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    path = tmp_path / "photos.pt"
    save_checkpoint(path, spec=spec, state_dict=net.state_dict(), threshold=0.7, metrics={}, epoch=1,
                    config={"class_word": "product"}, classes=[])
    exported = export_checkpoint(path)
    assert exported.pair_head is None
    assert exported.sidecar["test_time_flip"] == {**exported.sidecar["test_time_flip"], "used": True,
                                                  "inside_graph": True}
    assert exported.sidecar["distance_threshold"] == pytest.approx(0.6)
    assert exported.sidecar["class_word"] == "product"
    pixels = np.random.default_rng(1).integers(0, 256, (5, 3, 48, 48), dtype=np.uint8)
    model = SiameseModel.load(path, "cpu")
    graph = session(exported.embedding)
    for count in (1, 5):
        vectors = graph.run(["vectors"], {"images": pixels[:count].astype(np.float32) / 255.0})[0]
        np.testing.assert_allclose(vectors, model.embed(pixels[:count]), atol=1e-4)  # the app's own path
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    with torch.inference_mode():  # the mirror counts: without it the vectors differ
        once = model.net._vectors(torch.from_numpy(pixels).float() / 255.0).numpy()
    assert np.abs(once - vectors).max() > 1e-3


def test_the_export_command_writes_the_files_and_says_what_went_wrong_in_one_line(tmp_path, capsys):
    from siamese_core.cli import main

    result = run_cli("export", "-c", DEMO, "-o", tmp_path / "out" / "digits.onnx")
    assert result.returncode == 0, result.stderr
    assert "Written:" in result.stdout and "digits.json" in result.stdout and "digits.md" in result.stdout
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["digits.json", "digits.md", "digits.onnx"]
    sidecar = json.loads((tmp_path / "out" / "digits.json").read_text())
    assert sidecar["input"]["pipeline"] == "digit" and sidecar["output"]["size"] == 128

    not_a_checkpoint = tmp_path / "notes.pt"
    not_a_checkpoint.write_text("hello")
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    for args, status, words in ((["-c", not_a_checkpoint, "-o", tmp_path / "x.onnx"], 2, "not a Siamese Studio"),
                                (["-c", DEMO, "-o", tmp_path / "x.pt"], 2, "ending in .onnx"),
                                (["-c", DEMO, "-o", blocked / "x.onnx"], 1, "refused")):  # its folder is a file
        assert main(["export", *map(str, args)]) == status
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and words in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "x.onnx").exists()


@pytest.mark.slow
def test_export_replaces_only_what_an_export_wrote_and_writes_the_set_all_or_none(tmp_path, monkeypatch):
    """Issue 24, item 10: `export -o docs/README.onnx` replaced docs/README.md and docs/README.json; a full disk
    left m.onnx without m.json and m.md."""
    import errno

    from siamese_core import files
    from siamese_core.inference.export import write_export

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "README.md").write_text("# The project's own README\n")
    (docs / "README.json").write_text('{"not": "an export"}')
    result = run_cli("export", "-c", DEMO, "-o", docs / "README.onnx")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    said = result.stderr.strip().splitlines()[-1]
    assert said.startswith("error: Exporting to 'README.onnx' would replace ") and "--force" in said
    assert "README.md" in said and "README.json" in said
    assert (docs / "README.md").read_text() == "# The project's own README\n" and not (docs / "README.onnx").exists()
    assert run_cli("export", "-c", DEMO, "-o", docs / "README.onnx", "--force").returncode == 0
    assert json.loads((docs / "README.json").read_text())["format"] == "siamese-studio-onnx"

    first = write_export(DEMO, tmp_path / "m.onnx")
    assert write_export(DEMO, tmp_path / "m.onnx") == first  # an earlier export's files are replaced without asking
    before = {p.name: p.read_bytes() for p in first}
    assert sorted(before) == ["m.json", "m.md", "m.onnx"]

    calls = []

    def full_disk_on_the_third(fd):
        calls.append(fd)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    real_fsync = files.os.fsync
    for out in (tmp_path / "new" / "m.onnx", tmp_path / "m.onnx"):  # a new set, and one replacing an export
        calls.clear()
        monkeypatch.setattr(files.os, "fsync", full_disk_on_the_third)
        with pytest.raises(OSError):
            write_export(DEMO, out)
        monkeypatch.setattr(files.os, "fsync", real_fsync)
        left = sorted(p.name for p in out.parent.iterdir() if p.name.startswith(("m.", ".")))
        assert left == ([] if out.parent.name == "new" else sorted(before)), left  # no temporary file either
    assert {p.name: p.read_bytes() for p in first} == before  # the earlier export, whole

    def fail_second_rename(src, dst, count=[0]):
        count[0] += 1
        if count[0] == 2:
            raise OSError(errno.EIO, "Input/output error")
        return real_replace(src, dst)

    real_replace = files.os.replace
    monkeypatch.setattr(files.os, "replace", fail_second_rename)
    with pytest.raises(OSError):
        write_export(DEMO, tmp_path / "m.onnx")  # the first file was already renamed over: it is put back
    monkeypatch.setattr(files.os, "replace", real_replace)
    assert {p.name: p.read_bytes() for p in first} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["docs", "m.json", "m.md", "m.onnx", "new"]


def test_the_model_card_shows_every_name_as_written_not_as_html(tmp_path):
    """Issue 24, item 8: the card copied a raw <img src=x onerror=...> from an uploaded checkpoint."""
    import torch

    from siamese_core.inference.export import export_checkpoint

    payload = torch.load(DEMO, weights_only=True)
    payload["config"] = {**(payload.get("config") or {}), "class_word": "<img src=x onerror=alert(1)>",
                         "data_name": "[Session expired: sign in](https://evil.example)",
                         "notes": ["<script>alert(2)</script>"], "optimizer": "`code` | <b>bold</b>"}
    path = tmp_path / "<img src=x onerror=alert(3)>.pt"
    torch.save(payload, path)
    card = export_checkpoint(path).files("m.onnx")["m.md"].decode()
    outside_code = re.sub(r"`[^`\n]*`", "", card)  # code spans show their text as written
    for raw in ("<img", "<script", "<b>", "](https", "`code"):  # each unescaped: no backslash before it
        assert not re.search(r"(?<!\\)" + re.escape(raw), outside_code), raw
    assert "\\<img src=x onerror=alert(1)\\>" in card and "\\[Session expired: sign in\\]" in card
    assert "`<img src=x onerror=alert(3)>.pt`" in card  # a file name in code: shown as written, never run


def test_runs_offers_the_onnx_download_of_a_finished_run(runs_dir, people_run):
    from app_pages.shared.run_view import onnx_zip

    shutil.copytree(people_run, runs_dir / "people-run")
    at = open_page("runs")
    assert [b.label for b in at.get("download_button")] == ["Download best checkpoint"]
    at.button(key="prepare-onnx-people-run").click().run()  # made on a click (seconds), then downloaded as it is
    assert not at.exception
    assert [b.label for b in at.get("download_button")] == ["Download best checkpoint", "Download for other apps"]
    best = runs_dir / "people-run" / "checkpoints" / "best.pt"
    with zipfile.ZipFile(io.BytesIO(onnx_zip(str(best), best.stat().st_mtime, "people-run"))) as archive:
        assert sorted(archive.namelist()) == ["people-run.json", "people-run.md", "people-run.onnx",
                                              "people-run.pair-head.onnx"]
        vectors = session(archive.read("people-run.onnx")).run(None, {"images": np.zeros((3, 1, 28, 28), np.float32)})
    assert vectors[0].shape[0] == 3
