"""`verify`: same or different? for one pair of images, or for every pair a CSV names."""

from __future__ import annotations

import json

from ..errors import UserError
from ..files import csv_table, write_text
from ..words import plural


def add_verify_parser(commands) -> None:
    v = commands.add_parser("verify", help="same or different? for one pair, or a CSV of pairs")
    v.add_argument("-c", "--checkpoint", required=True)
    v.add_argument("image_a", nargs="?")
    v.add_argument("image_b", nargs="?")
    v.add_argument("--pairs", help="CSV with columns image_a,image_b and optionally same (1/0)")
    v.add_argument("--images", help="folder the CSV's paths are relative to (default: the CSV's folder); "
                                    "a row naming a file outside it is not read")
    v.add_argument("--allow-outside", action="store_true",
                   help="read the files a trusted CSV names wherever they are (absolute paths, '..')")
    v.add_argument("-o", "--out", help="CSV of results, with --pairs")
    v.add_argument("--threshold", type=float, help="decision threshold on the score (default: the checkpoint's)")
    v.add_argument("--json", action="store_true", help="print the result as JSON")
    v.add_argument("--show-score", action="store_true",
                   help="print the score even when an image does not look like the model's own (it then means nothing)")
    v.add_argument("--device", default="auto")
    v.set_defaults(handler=run_verify)


def run_verify(args) -> int:
    from ..inference.model import SiameseModel

    if args.pairs:
        if args.image_a or args.image_b:
            raise UserError("Give either two images or --pairs CSV, not both.")
        if not args.out:
            raise UserError("--pairs needs -o OUT.csv for the results.")
        model = SiameseModel.load(args.checkpoint, args.device)
        return verify_many(model, args)
    if not (args.image_a and args.image_b):
        raise UserError("Give two images to compare (verify -c CHECKPOINT IMAGE_A IMAGE_B), or --pairs CSV.")
    model = SiameseModel.load(args.checkpoint, args.device)
    verdict = model.verify(args.image_a, args.image_b, threshold=args.threshold)
    if args.json:
        print(json.dumps(verdict.to_dict()))
        return 0
    figures = (f"score {100 * verdict.score:.1f}% (threshold {100 * verdict.threshold:.1f}%, "
               f"distance {verdict.distance:.4f})")
    if verdict.outside:  # a sentence, not a confident verdict on images the model knows nothing about
        print(verdict.sentence)
        print(f"Its {figures}, not a verdict." if args.show_score else "(--show-score prints its score anyway.)")
        return 0
    said = f"Same {model.class_word}" if verdict.same else f"Different {plural(model.class_word)}"
    print(f"{said}: {figures}")
    if verdict.note:
        print(verdict.note)
    return 0


def verify_many(model, args) -> int:
    """Score every pair the --pairs CSV names and write one row per pair to -o; a pair that fails says why there."""
    from ..inference.domain import UNCHECKED_NOTE
    from ..inference.model import verify_csv

    table, accuracy = verify_csv(model, args.pairs, args.images, args.threshold, confine=not args.allow_outside,
                                 images_word="the images in the --images folder (--allow-outside reads any path)")
    write_text(args.out, csv_table(table).to_csv(index=False))  # a name like =HYPERLINK(...) stays text
    scored = int((table["error"] == "").sum())
    failed = len(table) - scored
    threshold = model.threshold if args.threshold is None else args.threshold
    print(f"Scored {scored} of {len(table)} pairs at threshold {threshold:.3f}: {args.out}"
          + (f" ({failed} could not be read: see the error column)" if failed else ""))
    if accuracy is not None:
        print(f"accuracy {100 * accuracy['accuracy']:.2f}% on {accuracy['pairs']} labelled pairs")
    unlike = int(table["outside"].isin(["A", "B", "A and B"]).sum())
    if unlike:
        print(f"{unlike} pair(s) hold an image that does not look like the images this model learnt: see the "
              "outside column; their scores would mean nothing.")
    elif scored and (table["outside"] == "not checked").any():
        print(UNCHECKED_NOTE)
    return 0
