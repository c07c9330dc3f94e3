"""`similar`: the images of a folder (or of an index written by `embed --index`) most like one image."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError


def add_similar_parser(commands) -> None:
    f = commands.add_parser("similar", help="the images of a folder most like one image, nearest first")
    f.add_argument("-c", "--checkpoint", required=True)
    f.add_argument("query", help="the image to look for")
    f.add_argument("-g", "--gallery", required=True,
                   help="a folder of images, or of class sub-folders, or an index written by embed --index")
    f.add_argument("-k", type=int, default=5, help="how many to list (default 5)")
    f.add_argument("--json", action="store_true", help="print the matches as JSON")
    f.add_argument("--device", default="auto")
    f.set_defaults(handler=run_similar)


def run_similar(args) -> int:
    from ..inference.gallery import find_similar, folder_gallery, saved_gallery
    from ..inference.model import SiameseModel, file_digest

    if args.k < 1:
        raise UserError(f"-k is how many images to list: at least 1 (got {args.k}).")
    model = SiameseModel.load(args.checkpoint, args.device)
    query = model.prepare(args.query)  # a bad query fails here, before the gallery is read
    if not Path(args.gallery).exists():
        raise UserError(f"The gallery '{args.gallery}' does not exist: give a folder of images or an index "
                        "written by embed --index.")
    if Path(args.gallery).is_file():  # an index written by embed --index: no image decoded again
        gallery, vectors = saved_gallery(args.gallery, model, file_digest(args.checkpoint))
    else:
        gallery = folder_gallery(args.gallery, model.image_size, model.channels, model.input_pipeline)
        vectors = model.embed(gallery.pixels)
    matches, left_out = find_similar(model, query, gallery, vectors, args.k)
    if args.json:
        print(json.dumps({"matches": [vars(m) for m in matches], "left_out_as_the_query": left_out}))
        return 0
    space = "embeddings" if model.is_embedding else "backbone features"
    print(f"{len(matches)} nearest of {len(gallery)} images (distance between {space})"
          + (f"; {left_out} left out: the query itself" if left_out else "") + ":")
    for rank, match in enumerate(matches, 1):
        print(f"{rank:3d}. {match.distance:10.4f}  {match.name}" + (f"  ({match.label})" if match.label else ""))
    return 0
