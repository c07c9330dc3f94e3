"""What the Verify page needs besides the model: uploaded checkpoints, and many pairs at once.

- store_checkpoint: an uploaded .pt is checked (read with weights_only=True, and it must be one
  of ours) and kept atomically under <runs>/.uploads/checkpoints/<content hash>.pt.
- check_pairs_upload: a CSV naming pairs plus a zip of the images, or a zip of pair folders
  (each holding exactly two images), unpacked safely and scored in batches; a pair that fails
  gets its reason in the table instead of stopping the others.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd

from .. import settings
from ..data import uploads
from ..data.images import holds_image
from ..data.uploads import content_hash, uploads_root
from ..errors import UserError
from ..files import write_bytes
from ..models.memory import check_model
from ..runs.rundir import NotACheckpoint, UnsafeCheckpoint, load_checkpoint
from .model import pairs_accuracy, read_pairs_csv, verify_pairs

# ---------------------------------------------------------------- checkpoints

def store_checkpoint(data: bytes, name: str = "The uploaded file") -> Path:
    """Keep an uploaded checkpoint under the runs folder and return its path; UserError when it is not ours.

    Nothing is unpickled: the file is read with torch.load(weights_only=True) through
    runs.load_checkpoint. A refused file leaves nothing behind.
    """
    if not data:
        raise UserError(f"{name} is empty (0 bytes): choose the checkpoint file again.")
    cap = settings.max_checkpoint_bytes()
    if len(data) > cap:
        raise UserError(f"{name} is larger than {cap / 2**20:g} MB (SIAMESE_MAX_CHECKPOINT_MB): that is not a "
                        "checkpoint of this app.")
    folder = uploads_root() / "checkpoints"
    path = folder / f"{content_hash(data)}.pt"
    if path.is_file():
        return path  # the same file was uploaded before and already passed the checks
    candidate = folder / f".{path.stem}.checking"
    write_bytes(candidate, data)
    try:
        checkpoint = load_checkpoint(candidate, name=name)  # its sentence names the file as the person knows it
        check_model(checkpoint["spec"], name)  # a valid checkpoint can still ask for more memory than the server has
    except UnsafeCheckpoint:  # its own sentence: it holds Python objects
        candidate.unlink(missing_ok=True)
        raise
    except NotACheckpoint:
        candidate.unlink(missing_ok=True)
        raise UserError(f"{name} is not a Siamese Studio checkpoint. Upload a best.pt or last.pt from a "
                        "run's checkpoints/ folder (made by this app or its command line).") from None
    except UserError:  # one of ours, damaged or edited: its own sentence says which field
        candidate.unlink(missing_ok=True)
        raise
    candidate.replace(path)  # same folder: atomic
    return path


# ---------------------------------------------------------------- many pairs

def pair_folders(root) -> list:
    """(folder name, image a, image b or None, problem) for each folder of a zip of pair folders.

    A pair folder holds exactly two images; a folder with another count is reported, not guessed.
    Folders are those that hold images directly, found at any depth (a wrapping folder is fine).
    """
    root = Path(root)
    found = []
    for folder in sorted({p.parent for p in root.rglob("*") if holds_image(p)}):
        if any(part.startswith(".") or part == "__MACOSX" for part in folder.relative_to(root).parts):
            continue
        images = sorted(p for p in folder.iterdir() if holds_image(p))
        name = str(folder.relative_to(root)) if folder != root else "(top folder)"
        if len(images) == 2:
            found.append((name, str(images[0].relative_to(root)), str(images[1].relative_to(root)), ""))
        else:
            found.append((name, str(images[0].relative_to(root)), "",
                          f"holds {len(images)} images; a pair folder needs exactly 2"))
    return found


def check_pairs_upload(model, zip_bytes: bytes, csv_bytes: Optional[bytes] = None,
                       threshold: Optional[float] = None, *, zip_digest: Optional[str] = None,
                       csv_digest: Optional[str] = None, on_progress=None):
    """Score the pairs of an upload: a CSV and a zip of images, or a zip of pair folders alone.

    The digests are the files' content hashes when the caller has them already (uploads.upload_digest).
    `on_progress(done, total)` is called as pairs are read, for a progress bar.
    Returns (pandas table: pair, image_a, image_b, score, verdict, outside, error and same when the CSV
    has it; {"accuracy", "pairs"} or None).
    """
    folder = uploads.staging_dir(zip_digest or content_hash(zip_bytes), "pairs")
    uploads.unpack_once(zip_bytes, folder)
    if csv_bytes is not None:
        csv_path = uploads_root() / "pairs" / f"{csv_digest or content_hash(csv_bytes)}.csv"
        if not csv_path.is_file():
            write_bytes(csv_path, csv_bytes)
        pairs, _ = read_pairs_csv(csv_path, name="The uploaded CSV")  # not the hash it is staged under
        if not pairs:
            raise UserError("The CSV names no pairs: one row per pair, two columns naming the two images.")
        check_pair_count(len(pairs))
        base = uploads.find_images_root(folder, [pairs[0][0]])
        rows = verify_pairs(model, pairs, base, threshold, confine=True, on_pair=_progress(on_progress, len(pairs)))
        names = [str(i + 1) for i in range(len(rows))]
    else:
        found = pair_folders(folder)
        if not found:
            raise UserError("The zip holds no images. Put each pair in its own folder (pair1/a.png, pair1/b.png, "
                            "pair2/...), or upload a CSV naming the pairs together with the zip.")
        check_pair_count(len(found))
        good = [(a, b, None) for _, a, b, problem in found if not problem]
        scored = iter(verify_pairs(model, good, folder, threshold, confine=True,
                                   on_pair=_progress(on_progress, len(good))))
        rows = [next(scored) if not problem else
                {"image_a": a, "image_b": b, "score": None, "verdict": "", "outside": "",
                 "error": f"The folder {problem}."}
                for _, a, b, problem in found]
        names = [name for name, *_ in found]
    table = pd.DataFrame(rows)
    table.insert(0, "pair", names)
    return table, pairs_accuracy(rows)


def _progress(on_progress, total: int):
    return None if on_progress is None else (lambda done: on_progress(done, total))


def check_pair_count(n: int) -> None:
    """Refuse more pairs than one upload may hold (settings.max_pairs), in words that name the cap."""
    cap = settings.max_pairs()
    if n > cap:
        raise UserError(f"The upload names {n:,} pairs; the app checks at most {cap:,} at once (SIAMESE_MAX_PAIRS): "
                        "split it, or use the command line (verify --pairs), which has no such limit.")
