"""`eval`: evaluate a checkpoint on pairs of an evaluation set and write its figures and pictures."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import UserError
from ..evaluation.reid import CAMERA_PATTERN, IDENTITY_PATTERN


def add_eval_parser(commands) -> None:
    e = commands.add_parser("eval", help="evaluate a checkpoint: metrics.json, ROC and score plots, pair images",
                            description="Evaluate a checkpoint on pairs of an evaluation set: accuracy, precision, "
                                        "recall, F1, ROC AUC, equal error rate, true-accept rate at chosen false-accept "
                                        "rates, 10-fold threshold choice, and (when images have labels) retrieval "
                                        "figures. Writes metrics.json, roc.png, scores.png and pairs/*.png.")
    e.add_argument("-c", "--checkpoint", required=True)
    e.add_argument("-v", "--val_path", "--val-path", dest="val_path",
                   help="class folders to evaluate on, or a folder of images named by identity such as "
                        "Market-1501 crops (default: the checkpoint's own validation split)")
    e.add_argument("-o", "--out", required=True, help="folder for metrics.json, roc.png, scores.png and pairs/")
    e.add_argument("--pairs", type=int, default=1000, help="number of balanced evaluation pairs")
    e.add_argument("--sequential", action="store_true", help="pairs (0,1), (2,3), ... instead of balanced pairs")
    e.add_argument("--images", type=int, default=16, help="pair pictures to save (most confident mistakes first)")
    e.add_argument("--threshold", type=float,
                   help="decision threshold on the score, 0 to 1 (default: the checkpoint's)")
    e.add_argument("--far", type=float, nargs="+", default=[0.001, 0.01, 0.1],
                   help="false-accept rates to report the true-accept rate at (default: 0.001 0.01 0.1)")
    e.add_argument("--folds", type=int, default=10,
                   help="k of the k-fold threshold choice on this set (LFW protocol; default 10, 0 = skip)")
    e.add_argument("--n-way", type=int, default=5, help="classes per N-way one-shot episode (default 5)")
    e.add_argument("--episodes", type=int, default=500, help="one-shot episodes, drawn with --seed (default 500)")
    e.add_argument("--no-retrieval", dest="retrieval", action="store_false",
                   help="skip precision at 1, MAP@R and one-shot accuracy (they compare every image with every other)")
    e.add_argument("--reid", action=argparse.BooleanOptionalAction, default=None,
                   help="person re-identification figures (CMC rank-1/5/10, mAP; Market-1501 protocol: one query "
                        "per person and camera drawn with --seed, same-camera matches left out); default: "
                        "computed when every file name gives person and camera; --reid requires them, --no-reid skips")
    e.add_argument("--identity-pattern", default=IDENTITY_PATTERN,
                   help="regex whose first group reads the person (class) from a file name (default: %(default)s)")
    e.add_argument("--camera-pattern", default=CAMERA_PATTERN,
                   help="regex whose first group reads the camera from a file name (default: %(default)s)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--device", default="auto")
    e.set_defaults(handler=run_eval)


def run_eval(args) -> int:
    from ..evaluation.evaluate import evaluate

    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise UserError(f"--threshold is a score between 0 and 1 (got {args.threshold}).")
    if any(not 0.0 < far < 1.0 for far in args.far):
        raise UserError("--far takes rates between 0 and 1, such as 0.01 for one false accept in a hundred.")
    if args.pairs < 2 or args.folds < 0 or args.folds == 1 or args.episodes < 1 or args.n_way < 2:
        raise UserError("--pairs needs at least 2, --folds 0 (skip) or at least 2, --n-way at least 2, "
                        "--episodes at least 1.")
    result = evaluate(args.checkpoint, args.out, val_path=args.val_path, n_pairs=args.pairs, seed=args.seed,
                      sequential=args.sequential, n_images=args.images, device=args.device, threshold=args.threshold,
                      fars=args.far, folds=args.folds, n_way=args.n_way, episodes=args.episodes,
                      retrieval=args.retrieval, reid=args.reid, identity_pattern=args.identity_pattern,
                      camera_pattern=args.camera_pattern)
    for line in summary_lines(result):
        print(line)
    print(f"Written: {Path(args.out) / 'metrics.json'}, roc.png, scores.png"
          + (", pairs/" if args.images > 0 else ""))
    return 0


def _percent(x: float, digits: int = 1) -> str:
    return "n/a" if x != x else f"{100 * x:.{digits}f}%"


def operating_point_lines(points: list) -> list:
    """The checkpoint's thresholds on these pairs, one line each, the verdict's first."""
    return [f"{'verdict' if p['verdict'] else 'also   '}  {p['label'].lower()}, threshold {p['threshold']:.3f}: "
            f"accuracy {100 * p['accuracy']:.2f}%  precision {100 * p['precision']:.2f}%  "
            f"recall {100 * p['recall']:.2f}%" for p in points]


def summary_lines(result: dict) -> list:
    """The figures of an evaluation in a few lines, for people."""
    lines = [f"accuracy {100 * result['accuracy']:.2f}%  precision {100 * result['precision']:.2f}%  "
             f"recall {100 * result['recall']:.2f}%  F1 {100 * result['f1']:.2f}%  ROC AUC {result['roc_auc']:.4f}  "
             f"on {result['pairs']} pairs at threshold {result['threshold']:.3f}",
             f"threshold: {result['threshold_source']}",
             *operating_point_lines(result.get("operating_points") or []),
             f"equal error rate {_percent(result['eer']['eer'], 2)}  "
             + "  ".join(f"TAR@FAR={tar['far']:g}: {_percent(tar['tar'])}" + ("" if tar["measurable"] else " (too few pairs)")
                         for tar in result["tar_at_far"])]
    if result["eer"]["eer"] != result["eer"]["eer"]:  # NaN: the pairs are all same or all different
        lines[-1] = "equal error rate, true-accept rates, ROC AUC: n/a (the pairs are all of one kind)"
    if "kfold" in result:
        k = result["kfold"]
        lines.append(f"{k['folds']}-fold threshold choice on this set: accuracy {100 * k['accuracy_mean']:.2f}% "
                     f"+- {100 * k['accuracy_std']:.2f}%")
    retrieval = result.get("retrieval", {})
    if "precision_at_1" in retrieval:
        line = (f"retrieval over {retrieval['images']} images: precision at 1 {100 * retrieval['precision_at_1']:.2f}%  "
                f"MAP@R {100 * retrieval['map_at_r']:.2f}%")
        if "one_shot" in retrieval:
            o = retrieval["one_shot"]
            line += (f"  {o['n_way']}-way one-shot {100 * o['accuracy']:.1f}% "
                     f"(95% interval {100 * o['low']:.1f}-{100 * o['high']:.1f}%, chance {100 * o['chance']:.0f}%)")
        lines.append(line)
    elif retrieval.get("note"):
        lines.append(f"retrieval: {retrieval['note']}")
    reid = result.get("reid", {})
    if "cmc" in reid:
        lines.append("re-identification: CMC " + " ".join(f"rank-{k} {_percent(v)}" for k, v in reid["cmc"].items())
                     + f" mAP {_percent(reid['map'])} over {reid['queries']} queries and {reid['gallery']} "
                       "gallery images")
    return lines
