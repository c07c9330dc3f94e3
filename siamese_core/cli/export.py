"""`export`: write a checkpoint as ONNX for other apps, with a JSON sidecar and a model card."""

from __future__ import annotations


def add_export_parser(commands) -> None:
    x = commands.add_parser("export", help="write a checkpoint as ONNX for other apps, with a JSON sidecar and a "
                                           "model card",
                            description="Write the embedding network as ONNX (input: images, pixels / 255, any "
                                        "batch size; output: one vector per image), for pair models the pair head "
                                        "as a second ONNX file (NAME.pair-head.onnx), a JSON sidecar (NAME.json: "
                                        "input size, channels, normalisation, input pipeline, how to score a pair, "
                                        "threshold, class word) and a model card (NAME.md: data, recipe, figures).")
    x.add_argument("-c", "--checkpoint", required=True)
    x.add_argument("-o", "--out", required=True, help="the ONNX file to write, e.g. model.onnx; the others go beside it")
    x.add_argument("--force", action="store_true",
                   help="replace files at those names that an earlier export did not write (by default they are "
                        "left alone and the command stops)")
    x.set_defaults(handler=run_export)


def run_export(args) -> int:
    from ..inference.export import write_export

    written = write_export(args.checkpoint, args.out, force=args.force)
    print("Written: " + ", ".join(str(path) for path in written))
    return 0
