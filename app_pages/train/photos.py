"""The Train page's Photos preset: the frozen fast path where pretrained weights exist, the default recipe otherwise."""

import math

from app_pages.shared import text
from siamese_core import settings
from siamese_core.data import paths
from siamese_core.errors import UserError

RATES = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2]


def allowed_weights_file(name: str) -> bool:
    """Whether the app may read `name`: the operator's SIAMESE_WEIGHTS_FILE, or a file inside the data root or
    the runs folder (a run's checkpoint). Checked before the file is looked at, so the field probes nothing."""
    if name == settings.weights_file():
        return True
    roots = [settings.data_root(), settings.runs_dir()]
    return any(root is not None and paths.inside(root, name) for root in roots)


def photos_defaults(data, defaults: dict, note, advanced) -> tuple[dict, str]:
    """The settings' defaults for Photos, and the weights file the fast path uses ('' for none).

    Says in `note` which path it takes; the weights file's field goes into `advanced`.
    """
    from siamese_core.training.frozen import photos_recipe  # imports torch: only for this preset

    weights_file = advanced.text_input(
        "Weights file", settings.weights_file(), key="weights-file",
        help="A local file of pretrained backbone weights (.pth, .safetensors, or a run's checkpoint) for the "
             "fast path; SIAMESE_WEIGHTS_FILE sets it for everyone.").strip()
    try:
        if weights_file and not allowed_weights_file(weights_file):
            raise UserError("The weights file must be the one SIAMESE_WEIGHTS_FILE names, or a file inside the data "
                            "root or the runs folder: other files on the server are not read.")
        recipe = photos_recipe(data.settings, weights_file)
    except UserError as exc:
        note.error(text.plain(exc))
        data.problems.append("Name a weights file that exists, or clear the field.")
        recipe = photos_recipe(data.settings)
    else:
        note.info(recipe.message)
    r = recipe.config
    nearest_rate = min(RATES, key=lambda v: abs(math.log(v / r.lr)))
    mode = defaults["mode"] if data.settings.get("dataset") == "triplets" else r.mode  # the triplet design's loss
    return ({**defaults, "backbone": r.backbone, "epochs": r.epochs, "image_size": r.image_size, "mode": mode,
             "pretrained": r.pretrained, "lr": nearest_rate, "frozen": recipe.frozen, "batch_size": r.batch_size,
             "embedding_dim": r.embedding_dim},
            weights_file if recipe.frozen else "")
