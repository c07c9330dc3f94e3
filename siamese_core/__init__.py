"""siamese_core: train, evaluate and use Siamese networks on images. Imports no streamlit.

    from siamese_core import TrainConfig, train, SiameseModel
    train(TrainConfig(dataset="digits", backbone="convnet", epochs=5), "runs/demo")
    model = SiameseModel.load("runs/demo/checkpoints/best.pt")
    model.verify("a.png", "b.png")   # Verdict(same=..., score=..., threshold=..., distance=...)

Names are imported on first use, so `import siamese_core` is instant and pulls in torch
only when a model or the trainer is asked for.

Imports sit at the top of each module, so the dependency graph reads from the top, with these exceptions:
- modules that import torch (data, models, losses, augment, digit_input, training, frozen, distributed,
  inference, evaluation, gallery, verification, explain, export) are imported lazily, inside the function that
  needs them, by the torch-free modules the app and the command line's parser load at start (config, settings,
  runs, jobs, context, index, images, uploads, projection, dataset_builder, map_metadata, snapshots, epoch_map,
  cli), so that `import app` and `python -m siamese_core --help` never load torch;
- optional heavy packages are imported by the function that uses them: timm, torchvision, huggingface_hub
  and safetensors (models, frozen: only the backbone family named), torchvision's MNIST download (data),
  scikit-learn and umap in projection (the Explore page imports it at start);
- jobs imports fcntl where it locks (POSIX only).
"""

from importlib import import_module

_EXPORTS = {
    "TrainConfig": "config",
    "UserError": "errors",
    "train": "training.loop",
    "prepare_data": "training.loop",
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
