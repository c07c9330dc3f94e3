"""How long the Evaluate page waits: the model runs once per evaluation; a threshold move is numpy only.

Prints, for the demo model on its validation split (and on the AT&T faces, 400 images of 40 people,
when ../shared/data/att_faces is present), the time to score the set once with the model (pairs
and the images x images retrieval matrix) against the time of everything a slider move recomputes
(figures at the threshold, the ROC point, the histogram, the gallery order) and of the figures
computed once per set (ROC curve, EER, TAR@FAR, 10-fold threshold choice, retrieval, one-shot).

    python benchmarks/evaluate_speed.py [--pairs 1000] [--repeats 20]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.bench_utils import OtherLoad, load_average, print_table  # noqa: E402


def best_of(repeats: int, work) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def slider_move(ev, threshold: float) -> None:
    ev.at(threshold)
    ev.point(threshold)
    ev.histogram(40)
    ev.pairs_shown(threshold, "mistakes")


def once_per_set(ev) -> None:
    ev.roc(400)
    ev.eer()
    for far in (0.001, 0.01, 0.1):
        ev.tar(far)
    ev.kfold(10)
    ev.retrieval()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    from siamese_core.evaluation.evaluate import evaluation_set, score_evaluation
    from siamese_core.inference.model import SiameseModel

    model = SiameseModel.load(ROOT / "assets" / "demo" / "digits-convnet.pt", "cpu")
    sets = [("demo digits, validation split", None)]
    faces = ROOT.parent / "shared" / "data" / "att_faces"
    if faces.is_dir():
        sets.append(("AT&T faces (40 people)", str(faces)))
    else:
        print(f"({faces} not found: the faces row is left out)")
    rows = []
    with OtherLoad() as other:
        for name, path in sets:
            image_set = evaluation_set(model, path)
            start = time.perf_counter()
            ev = score_evaluation(model, image_set, args.pairs, own_validation_split=path is None)
            model_run = time.perf_counter() - start
            move = best_of(args.repeats, lambda: slider_move(ev, 0.5))
            once = best_of(max(1, args.repeats // 4), lambda: once_per_set(ev))
            one_shot = best_of(max(1, args.repeats // 4), lambda: ev.one_shot(5, 500))
            at = ev.at(ev.model_threshold)
            rows.append([name, len(image_set), len(ev.scores), f"{model_run:.2f}", f"{1000 * move:.1f}",
                         f"{1000 * once:.0f}", f"{1000 * one_shot:.0f}", f"{model_run / move:.0f}x",
                         f"{100 * at['accuracy']:.1f}%", f"{100 * ev.kfold(10)['accuracy_mean']:.1f}%"])
    print_table(["set", "images", "pairs", "model run s", "slider move ms", "once-per-set ms", "5-way one-shot ms",
                 "model run / slider move", "accuracy at model threshold", "10-fold accuracy"], rows)
    print(f"\nload average {load_average()}; other processes kept {other} cores busy meanwhile")
    return 0


if __name__ == "__main__":
    sys.exit(main())
