"""siamese_core: train, evaluate and use Siamese networks on images. Imports no streamlit.

    from siamese_core import TrainConfig, train, SiameseModel
    train(TrainConfig(dataset="digits", backbone="convnet", epochs=5), "runs/demo")
    model = SiameseModel.load("runs/demo/checkpoints/best.pt")
    model.verify("a.png", "b.png")   # Verdict(same=..., score=..., threshold=..., distance=...)

Names are imported on first use, so `import siamese_core` is instant and pulls in torch
only when a model or the trainer is asked for.
"""

from importlib import import_module

_EXPORTS = {
    "TrainConfig": "config",
    "UserError": "errors",
    "train": "training",
    "prepare_data": "training",
    "SiameseModel": "inference",
    "Verdict": "inference",
    "evaluate": "evaluation",
    "RunDir": "runs",
    "load_checkpoint": "runs",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'siamese_core' has no attribute {name!r}")
