"""What the checkpoint's threshold costs on balanced pairs of new identities, against the best threshold there.

Each row trains a model through the library's own `train()` with no threshold setting named (so the checkpoint
holds both thresholds: the verdict's, the middle of the medians, and the rare-same one), then scores pairs of
people, signers or digits it never saw. On the same test scores it prints the ROC AUC, the best accuracy any one
threshold reaches on them (chosen on the test pairs: the ceiling, not an honest figure), the accuracy at the
threshold the old policy takes from the same validation pairs (calibrate_threshold with same_share 0.3: the middle
of the band of near-best share-weighted accuracy), the accuracy at the new policy's (the checkpoint's threshold),
and the cost of each in points against the best. Both policies read the same model and the same validation pairs;
the best epoch is the one the new policy picked.

Rows (data from ../shared/data; a row whose data is missing is skipped with a note):

  faces       AT&T faces: train on people s1-s30 (product defaults, which hold out some of them for validation),
              test 900 balanced pairs (seed) of s31-s40, as real_data.py's faces row.
  quick       the Train page's Quick preset (the default recipe, 5 epochs, no pretrained weights) on 10 AT&T
              people (s1-s10), judged on 900 balanced pairs of 10 others (s31-s40).
  signatures  CEDAR genuine signatures, split by signer (a seeded shuffle: 40 signers to train, 15 new ones):
              1,000 balanced pairs (seed) of genuine signatures of the new signers.
  mnist       real_data.py's mnist protocol (`-b convnet -e 10` on MNIST test images 0-6,999, validation
              7,000-7,999): 1,000 balanced pairs of 8,000-9,999 for the cost, and a second table on the 1,000
              sequential pairs (8000,8001), ... (about 6% same): accuracy, precision, recall at the old policy's
              threshold, the new verdict's and the rare-same point's.

    python benchmarks/threshold_cost.py [--rows faces quick signatures mnist] [--quick] [--data DIR] [--seed N]

--quick trains each row for one epoch (MNIST on 2,000 images): it checks the script runs, its figures are not
the recipe's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # real_data's helpers; it puts the project on sys.path

from bench_utils import load_average, print_table  # noqa: E402
from real_data import (DEFAULT_DATA, FACES_PAIRS, FACES_TRAIN_PEOPLE, N_DEVELOP, N_MNIST, N_TRAIN,  # noqa: E402
                       held_out, pair_scores, vectors_of, write_mnist_folders)

ROWS = ("faces", "quick", "signatures", "mnist")
OLD_SHARE = 0.3  # the old policy: the verdict tuned as if 30% of pairs were the same
SIGNATURE_TEST_SIGNERS, SIGNATURE_PAIRS = 15, 1000
QUICK_PEOPLE = 10


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS))
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--keep", type=Path, help="save each row's validation and test scores here (.npz)")
    p.add_argument("--quick", action="store_true", help="one epoch per row: checks the script, not the recipe")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    print(f"Data from {args.data}; rows: {', '.join(args.rows)}; seed {args.seed}"
          f"{'; --quick: one epoch per row, not the recipe' if args.quick else ''}; load {load_average()}.")
    costs, sequential, notes = [], [], []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="threshold-cost-") as tmp:
        for row in args.rows:
            began = time.perf_counter()
            print(f"\n## {row}", flush=True)
            found = ROW_FUNCTIONS[row](args, Path(tmp) / row, notes)
            if found is not None:
                costs.append(found["cost"])
                sequential += found.get("sequential", [])
                notes.append(f"{row}: {time.perf_counter() - began:.0f} s (training and scoring).")
    print("\n## The checkpoint's threshold against the best one, on balanced pairs of new identities\n")
    print_table(("row", "pairs", "ROC AUC", "best accuracy", *POLICIES, "checkpoint's verdict"), costs, figures_from=1)
    if sequential:
        print("\n## MNIST sequential pairs (8000, 8001), (8002, 8003), ...: each threshold from the validation pairs\n")
        print_table(("threshold", "value", "accuracy", "precision", "recall"), sequential)
    print("\nCost: accuracy at the threshold minus the best accuracy on the same test scores, in points.")
    for note in notes:
        print(f"- {note}")
    print(f"Total {time.perf_counter() - started:.0f} s; load {load_average()}.")
    return 0


# ---------------------------------------------------------------- the measure, the same for every row

def trained(config, out: Path):
    """Train through the library's own path; the best checkpoint, its resolved config and its validation scores."""
    from siamese_core.inference.model import SiameseModel
    from siamese_core.training.loop import train

    status = train(config, out)
    if status.state != "done":
        raise SystemExit(f"training ended '{status.state}': {status.error}")
    model = SiameseModel.load(out / "checkpoints" / "best.pt")
    data = held_out(model.checkpoint["config"])
    val_vectors = vectors_of(model, data.val)
    val_scores = pair_scores(model, val_vectors, data.val_pairs)
    VECTORS.update(val_vectors=val_vectors.numpy(), val_labels=data.val.labels,
                   train_vectors=vectors_of(model, data.train).numpy(), train_labels=data.train.labels)
    return model, val_scores, data.val_pairs[2]


VECTORS: dict = {}  # the last row's vectors (validation, training, test) that --keep saves beside the scores


POLICIES = {  # name in the table: how the threshold is taken from the validation pairs
    f"share {OLD_SHARE:g} (old)": lambda s, y: _m().calibrate_threshold(s, y, same_share=OLD_SHARE),
    "share 0.5": lambda s, y: _m().calibrate_threshold(s, y, same_share=0.5),
    "EER point": lambda s, y: _m().equal_error_rate(s, y)["threshold"],
    "medians": lambda s, y: _m().medians_threshold(s, y),
}


def kept(args, val_scores, val_same) -> tuple:
    """Where cost_row saves a row's scores (--keep, one folder per seed), and the validation scores it saves."""
    return (args.keep / f"seed{args.seed}" if args.keep else None), (val_scores, val_same)


def _m():
    from siamese_core.evaluation import metrics

    return metrics


def thresholds(model, val_scores, val_same) -> dict:
    """Each policy's threshold on the validation pairs, the checkpoint's verdict and its rare-same point."""
    points = model.operating_points
    again = _m().medians_threshold(val_scores, val_same)
    if abs(again - points["medians_threshold"]) > 1e-4:  # the validation scored here is the one the trainer scored
        print(f"  note: medians threshold {again:.4f} re-counted, {points['medians_threshold']:.4f} in the checkpoint")
    found = {name: float(policy(val_scores, val_same)) for name, policy in POLICIES.items()}
    return {**found, "old": found[f"share {OLD_SHARE:g} (old)"], "new": model.threshold,
            "rare": points["rare_same_threshold"], "share": points["same_share"]}


def cost_row(name: str, scores: np.ndarray, same: np.ndarray, at: dict, keep=None, val=None) -> list:
    """AUC, the best accuracy on these test scores, and each policy's accuracy (its cost against the best)."""
    m = _m()
    best = m.verification_metrics(scores, same, m.calibrate_threshold(scores, same, tolerance=0.0))["accuracy"]
    cells = []
    for policy in (*POLICIES, "new"):
        accuracy = m.verification_metrics(scores, same, at[policy])["accuracy"]
        cells.append(f"{100 * accuracy:.2f}% ({100 * (accuracy - best):+.1f})")
    print("  thresholds: " + ", ".join(f"{k} {at[k]:.3f}" for k in (*POLICIES, "new")) + f"; best {100 * best:.2f}%",
          flush=True)
    if keep is not None:  # the scores, for trying another policy without training again
        keep.mkdir(parents=True, exist_ok=True)
        np.savez(keep / f"{name.split(':')[0].replace(' ', '_')}.npz", test_scores=scores, test_same=same,
                 val_scores=val[0], val_same=val[1], checkpoint_threshold=at["new"], **VECTORS)
    return [name, f"{len(scores):,}", f"{m.roc_auc(scores, same):.4f}", f"{100 * best:.2f}%", *cells]


def scored_files(model, files, labels, n_pairs: int, seed: int):
    """Balanced pairs (seeded) of these files, each image prepared as an upload is."""
    from siamese_core.data import sources as D

    pairs = D.evaluation_pairs(np.array(labels), n_pairs, seed)
    vectors = vectors_of(model, np.stack([model.prepare(f) for f in files]))
    VECTORS.update(test_vectors=vectors.numpy(), test_labels=np.array(labels), test_pairs=np.stack(pairs))
    return pair_scores(model, vectors, pairs), pairs[2].astype(bool)


def image_files(folders) -> tuple:
    from siamese_core.data.images import is_image_file

    files, labels = [], []
    for label, folder in enumerate(folders):
        found = sorted(p for p in folder.iterdir() if is_image_file(p))
        files += found
        labels += [label] * len(found)
    return files, labels


def linked(folders, where: Path) -> Path:
    """Class folders of symlinks to `folders`, for train_path."""
    where.mkdir(parents=True)
    for folder in folders:
        (where / folder.name).symlink_to(folder, target_is_directory=True)
    return where


# ---------------------------------------------------------------- rows

def att_people(args, notes):
    root = args.data / "att_faces"
    people = [root / f"s{i}" for i in range(1, 41)]
    if not all(p.is_dir() for p in people):
        notes.append(f"faces/quick: skipped: '{root}' does not hold the AT&T folders s1 ... s40.")
        return None
    return people


def row_faces(args, work: Path, notes):
    from siamese_core.config import TrainConfig

    people = att_people(args, notes)
    if people is None:
        return None
    config = TrainConfig(dataset="folder", train_path=str(linked(people[:FACES_TRAIN_PEOPLE], work / "data")),
                         seed=args.seed, class_word="person", **({"epochs": 1} if args.quick else {}))
    model, val_scores, val_same = trained(config, work / "run")
    scores, same = scored_files(model, *image_files(people[FACES_TRAIN_PEOPLE:]), FACES_PAIRS, args.seed)
    return {"cost": cost_row("faces: s1-s30, new people s31-s40", scores, same,
                             thresholds(model, val_scores, val_same), *kept(args, val_scores, val_same))}


def row_quick(args, work: Path, notes):
    from siamese_core.config import TrainConfig

    people = att_people(args, notes)
    if people is None:
        return None
    # the Train page's Quick preset for photos: the default recipe, 5 epochs, no pretrained weights
    config = TrainConfig(dataset="folder", train_path=str(linked(people[:QUICK_PEOPLE], work / "data")),
                         recipe="default", epochs=1 if args.quick else 5, pretrained=False, seed=args.seed,
                         class_word="person")
    model, val_scores, val_same = trained(config, work / "run")
    scores, same = scored_files(model, *image_files(people[-QUICK_PEOPLE:]), FACES_PAIRS, args.seed)
    return {"cost": cost_row(f"Quick preset: {QUICK_PEOPLE} people, {QUICK_PEOPLE} new", scores, same,
                             thresholds(model, val_scores, val_same), *kept(args, val_scores, val_same))}


def row_signatures(args, work: Path, notes):
    from siamese_core.config import TrainConfig

    root = args.data / "signatures" / "genuine"
    signers = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if len(signers) < SIGNATURE_TEST_SIGNERS + 10:
        notes.append(f"signatures: skipped: '{root}' does not hold the CEDAR signer folders.")
        return None
    order = np.random.default_rng(args.seed).permutation(len(signers))
    test = [signers[i] for i in sorted(order[:SIGNATURE_TEST_SIGNERS])]
    train = [signers[i] for i in sorted(order[SIGNATURE_TEST_SIGNERS:])]
    config = TrainConfig(dataset="folder", train_path=str(linked(train, work / "data")), seed=args.seed,
                         class_word="signature", **({"epochs": 1} if args.quick else {}))
    model, val_scores, val_same = trained(config, work / "run")
    scores, same = scored_files(model, *image_files(test), SIGNATURE_PAIRS, args.seed)
    return {"cost": cost_row(f"signatures: {len(train)} signers, {len(test)} new (genuine)", scores, same,
                             thresholds(model, val_scores, val_same), *kept(args, val_scores, val_same))}


def row_mnist(args, work: Path, notes):
    from PIL import Image

    from siamese_core.config import TrainConfig
    from siamese_core.data import sources as D
    from siamese_core.evaluation.metrics import verification_metrics

    root = args.data / "mnist"
    if "test" not in D.mnist_parts_available(root):  # check first: load_mnist would try to download them
        notes.append(f"mnist: skipped: the MNIST test files are not in '{root}'.")
        return None
    full = D.load_mnist(root, "test")
    digits = write_mnist_folders(full, work / "data", 2_000 if args.quick else N_TRAIN)
    config = TrainConfig(dataset="folder", train_path=str(work / "data" / "mnist_train"),
                         val_path=str(work / "data" / "mnist_val"), backbone="convnet",
                         epochs=1 if args.quick else 10, seed=args.seed)
    model, val_scores, val_same = trained(config, work / "run")
    at = thresholds(model, val_scores, val_same)
    test = np.arange(N_DEVELOP, N_MNIST)
    vectors = vectors_of(model, np.stack([model.prepare(Image.fromarray(d)) for d in digits[test]]))
    balanced = D.evaluation_pairs(full.labels[test], 1000, args.seed)
    VECTORS.update(test_vectors=vectors.numpy(), test_labels=full.labels[test], test_pairs=np.stack(balanced))
    cost = cost_row("MNIST: 0-6,999, new images 8,000-9,999", pair_scores(model, vectors, balanced),
                    balanced[2].astype(bool), at, *kept(args, val_scores, val_same))
    pairs = D.sequential_pairs(full.labels[test])
    scores, same = pair_scores(model, vectors, pairs), pairs[2].astype(bool)
    rows = []
    for name, key in ((f"old policy (share {OLD_SHARE:g})", "old"), ("new verdict (medians)", "new"),
                      (f"rare-same point (share {at['share']:g})", "rare")):
        f = verification_metrics(scores, same, at[key])
        rows.append([f"{name}, {int(same.sum())} same of {len(same):,}", f"{at[key]:.3f}", f"{100 * f['accuracy']:.2f}%",
                     f"{100 * f['precision']:.2f}%", f"{100 * f['recall']:.2f}%"])
    return {"cost": cost, "sequential": rows}


ROW_FUNCTIONS = {"faces": row_faces, "quick": row_quick, "signatures": row_signatures, "mnist": row_mnist}


if __name__ == "__main__":
    raise SystemExit(main())
