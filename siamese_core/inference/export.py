"""A checkpoint as ONNX, for apps outside Python: the network, a JSON sidecar saying how to feed it and read
its answer, and a short model card in Markdown.

`-o model.onnx` writes
  model.onnx            images -> vectors: the embedding network (for pair models, the backbone's features).
                        Input "images", float32 (batch, channels, height, width), pixels / 255 (0 to 1): the
                        normalisation (mean, std) and, where the model uses it, the mirror-image averaging are
                        inside the graph, so its vectors are the app's. The batch axis is dynamic.
  model.pair-head.onnx  pair models only: (vectors_a, vectors_b) -> score, the sigmoid of the pair head. A
                        second file rather than one graph over two images: an app embeds each image once
                        (a gallery once and for all) and scores pairs of stored vectors with this tiny graph,
                        as the Studio does.
  model.json            the sidecar: input size, channels, normalisation, input pipeline, vector size, how to
                        score a pair, the calibrated threshold, the class word.
  model.md              the model card: data, recipe, figures (from the run's best epoch when the checkpoint
                        is a run's).

Exported with PyTorch's TorchScript-based exporter (torch.onnx.export(dynamo=False), opset 17): every
backbone here exports with it and with the torch.export-based one alike, with the same vectors (to 1e-6),
but it takes a tenth of the time (a button press on the Runs page, a test) and needs only the onnx package.

The files are written as a set, all or none (siamese_core.files.write_all): a full disk leaves neither
model.onnx without model.json nor half a file. A file already at one of the names is replaced only when an
earlier export wrote it, which the sidecar there says (its format, the checkpoint's digest, the files it
names), or with `force`: `-o docs/README.onnx` does not replace docs/README.md. Every name in the card (the
run's, the classes' word, notes, files) is escaped, so Markdown shows it as written.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..config import image_hw
from ..errors import UserError
from ..files import file_sha256, read_json, write_all
from ..models.memory import check_model
from ..runs.context import data_words, run_class_word, run_of_checkpoint
from ..runs.rundir import load_checkpoint
from ..words import markdown_text, plural

FORMAT = "siamese-studio-onnx"
VERSION = 1
OPSET = 17
PIPELINE_WORDS = {
    "resize": "the whole image, in the model's colours, resized (bilinear) to height x width pixels",
    "fit": "the whole image, in the model's colours, resized (bilinear) to fit inside height x width keeping its "
           "shape, centred, and the rest filled by repeating its edge pixels (siamese_core.data.pipelines)",
    "digit": "the digit's ink found and prepared as MNIST's digits are: grey, light ink on black, its box scaled "
             "to 20 pixels on its longer side and its centre of mass placed in the middle of a 28x28 field "
             "(siamese_core.data.digit_input.normalize_digit), then resized to height x width",
    "ink": "grey; the paper's level and uneven light removed, the ink made light on black; the ink's box kept at "
           "its own shape, scaled to fit inside height x width with a 4% margin and centred "
           "(siamese_core.data.ink_input.normalize_ink)",
}


@dataclass
class Exported:
    """The export of one checkpoint, in memory: `files()` names them for a given output name."""

    embedding: bytes  # model.onnx
    pair_head: Optional[bytes]  # model.pair-head.onnx, for pair models
    sidecar: dict  # model.json; its "files" are filled in by files()
    card: str  # model.md

    def files(self, onnx_name: str) -> dict:
        """{file name: bytes} for an embedding file called `onnx_name` (ending in .onnx)."""
        stem = onnx_name[: -len(".onnx")]
        names = {"embedding": onnx_name, "pair_head": f"{stem}.pair-head.onnx" if self.pair_head else None,
                 "sidecar": f"{stem}.json", "card": f"{stem}.md"}
        sidecar = {**self.sidecar, "files": names}
        out = {onnx_name: self.embedding}
        if self.pair_head:
            out[names["pair_head"]] = self.pair_head
        out[names["sidecar"]] = (json.dumps(sidecar, indent=2) + "\n").encode()
        out[names["card"]] = self.card.replace("{onnx}", _code(onnx_name)).replace(
            "{pair_head}", _code(names["pair_head"] or "")).replace("{sidecar}", _code(names["sidecar"])).encode()
        return out


def export_checkpoint(checkpoint_path, name: Optional[str] = None) -> Exported:
    """Export a checkpoint (checked as the app checks it: a bad file is one UserError sentence)."""
    from ..models.networks import build_model

    if importlib.util.find_spec("onnx") is None:  # torch's exporter writes the graphs with it
        raise UserError("Exporting to ONNX needs the onnx package: pip install -r requirements.txt.")
    path = Path(checkpoint_path)
    checkpoint = load_checkpoint(path, name=name)
    spec = checkpoint["spec"]
    check_model(spec, name or f"'{path.name}'")
    net = build_model(spec, pretrained=False)
    net.load_state_dict(checkpoint["state_dict"])
    net.eval()
    height, width = image_hw(spec["image_size"])
    example = torch.rand(2, spec["channels"], height, width, generator=torch.Generator().manual_seed(0))
    embedding = _onnx(_Embedder(net).eval(), (example,), ["images"], ["vectors"])
    pair_head = None
    if not net.is_embedding:
        with torch.inference_mode():
            vectors = net.embed(example)
        pair_head = _onnx(_PairScore(net).eval(), (vectors, vectors.flip(0)), ["vectors_a", "vectors_b"], ["score"])
        vector_size = int(vectors.shape[1])
    else:
        vector_size = int(spec["embedding_dim"])
    run = run_of_checkpoint(path)
    sidecar = _sidecar(checkpoint, path, run, vector_size, torch.__version__)
    return Exported(embedding, pair_head, sidecar, model_card(checkpoint, path, run, sidecar))


def write_export(checkpoint_path, out, force: bool = False) -> list:
    """Export a checkpoint to `out` (a .onnx path) and the files beside it, all or none; returns the paths
    written. A file already at one of those names that no earlier export wrote is a UserError unless `force`."""
    out = Path(out)
    if out.suffix.lower() != ".onnx":
        raise UserError(f"-o names the ONNX file to write, ending in .onnx (got '{out.name}').")
    if out.is_dir():
        raise UserError(f"'{out}' is a folder: give the name of the ONNX file to write in it, e.g. {out / 'model.onnx'}.")
    exported = export_checkpoint(checkpoint_path)
    files = {out.with_name(name): data for name, data in exported.files(out.name).items()}
    taken = [path for path in files if os.path.lexists(path)]
    if taken and not force:
        ours = _written_by_export(out.with_name(out.name[: -len(".onnx")] + ".json"))
        foreign = [path for path in taken if path.name not in ours or not path.is_file()]
        if foreign:
            listed = ", ".join(str(path) for path in foreign)
            raise UserError(f"Exporting to '{out.name}' would replace {listed}, which no earlier export wrote: "
                            "choose another -o name, or add --force to replace them.")
    try:
        return write_all(files)  # each to a temporary file, then all renamed: a failure changes nothing
    except OSError as exc:  # named after the file asked for, not a temporary one
        raise type(exc)(exc.errno, exc.strerror, str(out)) from None


def _written_by_export(sidecar_path: Path) -> set:
    """The names of the files an earlier export wrote beside `sidecar_path`, as its sidecar says: a sidecar of
    this format that names the checkpoint's digest and its files (it and they may be replaced); else none."""
    sidecar = read_json(sidecar_path, max_bytes=2**20)
    if not isinstance(sidecar, dict) or sidecar.get("format") != FORMAT:
        return set()
    source, files = sidecar.get("source"), sidecar.get("files")
    digest = source.get("checkpoint_sha256") if isinstance(source, dict) else None
    if not (isinstance(digest, str) and len(digest) == 64 and isinstance(files, dict)):
        return set()
    return {name for name in files.values() if isinstance(name, str)} | {sidecar_path.name}


def export_zip(checkpoint_path, onnx_name: str = "model.onnx", name: Optional[str] = None) -> bytes:
    """The export as one zip (for a browser download): the ONNX file(s), the sidecar and the card."""
    exported = export_checkpoint(checkpoint_path, name=name)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file_name, data in exported.files(onnx_name).items():
            archive.writestr(file_name, data)
    return buffer.getvalue()


# ---------------------------------------------------------------- the graphs

class _Embedder(nn.Module):
    """Images in [0, 1] -> the vectors SiameseNet.embed gives in eval mode, mirror averaging included.

    The mirror image goes through the backbone as a second pass rather than stacked into one batch
    (as SiameseNet.embed does): the same numbers in eval mode, and no split of a dynamic batch axis."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, images):
        vectors = self.net._vectors(images)
        if self.net.flip_test:
            vectors = (vectors + self.net._vectors(images.flip(-1))) / 2
            if self.net.is_embedding:
                vectors = F.normalize(vectors, dim=1)
        return vectors


class _PairScore(nn.Module):
    """Two batches of vectors -> the pair head's score in [0, 1] (SiameseNet.pair_scores)."""

    def __init__(self, net):
        super().__init__()
        self.head = net.pair_head

    def forward(self, vectors_a, vectors_b):
        return self.head(vectors_a, vectors_b).sigmoid()


def _onnx(module, example: tuple, inputs: list, outputs: list) -> bytes:
    axes = {name: {0: "batch"} for name in inputs + outputs}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The TorchScript-based exporter announces its deprecation on every call; it is chosen on purpose
        # (see the module's docstring), and the warning would reach the app's log and the CLI's user.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(module, example, buffer, input_names=inputs, output_names=outputs, dynamic_axes=axes,
                          opset_version=OPSET, dynamo=False)
    return buffer.getvalue()


# ---------------------------------------------------------------- the sidecar and the card

def _sidecar(checkpoint: dict, path: Path, run, vector_size: int, torch_version: str) -> dict:
    spec, config = checkpoint["spec"], checkpoint.get("config") or {}
    embedding = spec["mode"] != "pair"
    channels, size = spec["channels"], spec["image_size"]
    height, width = image_hw(size)
    pipeline = spec.get("input") or "resize"
    threshold = float(checkpoint["threshold"])
    word = run_class_word(run, config) if run is not None else str(config.get("class_word") or "class")
    flip = bool(spec.get("flip_test"))
    return {
        "format": FORMAT,
        "version": VERSION,
        "class_word": word,
        "input": {
            "name": "images",
            "shape": ["batch", channels, height, width],
            "dtype": "float32",
            "layout": "NCHW",
            "height": height,
            "width": width,
            "image_size": size,  # as the checkpoint stores it: a whole number when square, else [height, width]
            "channels": channels,
            "colours": "grey" if channels == 1 else "RGB",
            "scale": "pixel values / 255, so from 0 to 1",
            "pipeline": pipeline,
            "pipeline_words": PIPELINE_WORDS.get(pipeline, pipeline),
            "normalisation": {"mean": list(spec.get("mean") or [0.5] * channels),
                              "std": list(spec.get("std") or [0.5] * channels),
                              "inside_graph": True,
                              "words": "(x - mean) / std per channel is done by the graph: give it x from 0 to 1"},
        },
        "test_time_flip": {"used": flip, "inside_graph": flip,
                           "words": ("the graph averages each image's vector with its mirror image's"
                                     + (" and normalises the mean" if embedding else "") + ", as the model was "
                                     "validated" if flip else "none: the model looks at each image once")},
        "output": {"name": "vectors", "shape": ["batch", vector_size], "size": vector_size,
                   "kind": "embedding, L2-normalised to length 1" if embedding else "backbone features"},
        "mode": spec["mode"],
        "metric": "euclidean" if embedding else "pair head",
        "score": ("1 - distance / 2, distance the Euclidean distance between two vectors (score from 0 to 1)"
                  if embedding else "the pair-head graph's output: sigmoid of its logit, from 0 to 1"),
        "pair_head": None if embedding else {"inputs": ["vectors_a", "vectors_b"], "output": "score",
                                              "combine": spec.get("head")},
        "threshold": threshold,
        "threshold_words": "say 'same' when score >= threshold (calibrated on validation pairs when trained)",
        "distance_threshold": 2.0 * (1.0 - threshold) if embedding else None,
        "classes": list(checkpoint.get("classes") or []),
        "backbone": spec["backbone"],
        "source": {"checkpoint": path.name, "checkpoint_sha256": file_sha256(path), "epoch": checkpoint.get("epoch"),
                   "run": run.path.name if run is not None else None},
        "exported": {"opset": OPSET, "torch": torch_version, "at": time.strftime("%Y-%m-%d %H:%M:%S UTC",
                                                                                  time.gmtime())},
    }


def _percent(value) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, (int, float)) else "not measured"


def _figures(checkpoint: dict, run) -> list:
    """The model's validation figures as card lines: the run's best epoch, else the checkpoint's own."""
    record, total, pairs = None, None, None
    if run is not None:
        record = run.best_epoch()
        status = run.status()
        total, pairs = status.total_epochs, status.val_pairs
    if record is None:
        record = checkpoint.get("metrics") or {}
        pairs = record.get("pairs")
        where = f"Measured on the validation pairs when the checkpoint was saved (epoch {checkpoint.get('epoch', '?')})"
    else:
        where = f"From the run's best epoch, {record['epoch']} of {total or '?'} (its weights are these)"
    if not record:
        return ["No validation figures were saved with this checkpoint."]
    lines = [where + (f", on {pairs:,} validation pairs" if isinstance(pairs, int) else "") + ":", ""]
    for key, words in (("accuracy", "Accuracy (pairs judged right)"), ("precision", "Precision (of pairs called "
                       "'same', the share that were)"), ("recall", "Recall (of same pairs, the share called 'same')"),
                       ("roc_auc", "ROC AUC")):
        value = record.get(key)
        if value is not None:
            lines.append(f"- {words}: {value:.4f}" if key == "roc_auc" else f"- {words}: {_percent(value)}")
    return lines


def _code(name: str) -> str:
    """A file name as Markdown code (shown as written, HTML included): on one line, without backticks."""
    return "`" + " ".join(str(name).replace("`", "'").split()) + "`"


def model_card(checkpoint: dict, path: Path, run, sidecar: dict) -> str:
    """A short Markdown card: what the model does, its data, recipe and figures, and how to use the files.
    {onnx}, {pair_head} and {sidecar} stand for the file names (Exported.files fills them in). Every name from
    a person or a file (run, class word, data, notes, settings) is escaped by words.markdown_text: an uploaded
    checkpoint's `<img src=x onerror=...>` shows as written in any Markdown viewer."""
    spec, config = checkpoint["spec"], checkpoint.get("config") or {}
    md = markdown_text
    word = md(sidecar["class_word"])
    embedding = spec["mode"] != "pair"
    title = run.status().label if run is not None else None
    title = md(title or (run.path.name if run is not None else path.stem))
    classes = checkpoint.get("classes") or []
    recipe = [f"- Backbone: {md(spec['backbone'])}" + (" (started from pretrained weights)" if config.get("pretrained")
                                                        else ""),
              f"- Mode: {spec['mode']}" + (f", {md(config.get('mining'))} mining" if embedding and config.get("mining")
                                           else f", features combined by {spec.get('head')}" if not embedding else ""),
              f"- Input: {sidecar['input']['height']}x{sidecar['input']['width']} pixels (height x width), "
              f"{sidecar['input']['colours']}, "
              f"{spec.get('input') or 'resize'} pipeline",
              f"- Output: {sidecar['output']['size']} numbers per image ({sidecar['output']['kind']})"]
    for key, words in (("epochs", "Epochs"), ("batch_size", "Batch size"), ("optimizer", "Optimiser"),
                       ("lr", "Learning rate"), ("augment", "Augmentation"), ("seed", "Seed")):
        if config.get(key) is not None:
            recipe.append(f"- {words}: {md(config[key])}")
    use = [f"1. Prepare each image as the model was trained: {sidecar['input']['pipeline_words']}.",
           f"2. Give {{onnx}} a float32 array (batch, {spec['channels']}, {sidecar['input']['height']}, "
           f"{sidecar['input']['width']}) of pixel values / 255; it returns one vector of {sidecar['output']['size']} "
           "numbers per image (" + ("normalisation and mirror-image averaging are" if sidecar["test_time_flip"]["used"]
                                    else "normalisation is") + " done inside the graph)."]
    if embedding:
        use.append("3. Score a pair: 1 - (Euclidean distance between their vectors) / 2. Say 'same "
                   f"{word}' when the score is at least {sidecar['threshold']:.4f} (a distance of at most "
                   f"{sidecar['distance_threshold']:.4f}). Nearest vectors are the most similar images.")
    else:
        use.append("3. Score a pair: give {pair_head} the two vectors (vectors_a, vectors_b); say 'same "
                   f"{word}' when its score is at least {sidecar['threshold']:.4f}.")
    lines = [f"# {title}: a Siamese network for telling {plural(word)} apart", "",
             f"Says whether two images show the same {word}, with a score from 0 to 1. Exported from "
             f"{_code(path.name)} by Siamese Studio on {sidecar['exported']['at']}; {{sidecar}} holds every number "
             "below in a form programs read.", "",
             "## Data", "",
             f"- Trained on {md(data_words(config))}" + (f" ({len(classes)} classes)" if classes else "") + ".",
             f"- One class is a {word}. Images unlike these (another kind of picture, another camera, another "
             "hand) may be judged worse than the figures below say.",
             *[f"- {md(note)}" for note in config.get("notes") or [] if isinstance(note, str)], "",
             "## Recipe", "", *recipe, "",
             "## Figures", "", *_figures(checkpoint, run),
             f"- Threshold: 'same' from a score of {sidecar['threshold']:.4f}", "",
             "## How to use the files", "", *use, ""]
    return "\n".join(lines)
