"""siamese_core: train, evaluate and use Siamese networks on images. Imports no streamlit.

    from siamese_core import TrainConfig, train, SiameseModel
    train(TrainConfig(dataset="digits", backbone="convnet", epochs=5), "runs/demo")
    model = SiameseModel.load("runs/demo/checkpoints/best.pt")
    model.verify("a.png", "b.png")   # Verdict(same=..., score=..., threshold=..., distance=...)

Names are imported on first use, so `import siamese_core` is instant and pulls in torch
only when a model or the trainer is asked for.

Sub-packages by stage, each importing only from itself and the stages above it in this list (checked by
tests/test_architecture.py, which also finds any import circle):
- errors, settings, files (atomic writes), words (class words, plurals): the ground floor;
- config: TrainConfig, everything needed to rebuild a run's data and model;
- data/: sources and splits, samplers, decoding, the input pipelines, augmentation, uploads, the data-set builder;
- models/: backbones, heads, weights;
- runs/: the run directory and its checkpoint format, jobs and the queue, a model's context;
- inference/: the loaded model and its verdicts, galleries, the search index, export, explanations;
- evaluation/: verification, retrieval and re-identification metrics, the evaluation report;
- maps/: the embedding map, the epoch map and its snapshots, projections, map metadata;
- training/: one skeleton (resume, status, checkpoints, the epoch map, stop) with the whole-network loop and the
  frozen-backbone path as its two trainers; losses, distributed training;
- cli/: the command line, one module per command.

Modules that import torch are imported lazily, inside the function that needs them, by the torch-free
modules the app and the command line's parser load at start, so `import app` and `python -m siamese_core
--help` never load torch; every sub-package's __init__ imports nothing but cli's, which puts its torch-free
command modules together. Optional heavy packages (timm, torchvision, huggingface_hub, safetensors, umap,
scikit-learn's manifold methods) are imported by the function that uses them.
"""

from importlib import import_module

_EXPORTS = {
    "TrainConfig": "config",
    "UserError": "errors",
    "train": "training.loop",
    "prepare_data": "data.prepare",
    "SiameseModel": "inference.model",
    "Verdict": "inference.model",
    "evaluate": "evaluation.evaluate",
    "RunDir": "runs.rundir",
    "load_checkpoint": "runs.rundir",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'siamese_core' has no attribute {name!r}")
