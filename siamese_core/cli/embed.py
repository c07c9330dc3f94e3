"""`embed`: write the vector of every image in a folder (and, if asked, a search index of them)."""

from __future__ import annotations

import io
from pathlib import Path

from ..errors import UserError
from ..files import csv_table, write_bytes, write_text
from ..inference.index import METRICS


def add_embed_parser(commands) -> None:
    m = commands.add_parser("embed", help="write the embedding of every image in a folder",
                            description="Write the vector of every image in a folder. Images are decoded a batch at "
                                        "a time; a large folder's vectors are saved in shards beside the output as "
                                        "they are done, so an interrupted run resumes where it stopped.")
    m.add_argument("-c", "--checkpoint", required=True)
    m.add_argument("-i", "--images", required=True, help="a folder of images, or of class sub-folders")
    m.add_argument("-o", "--out", required=True, help="output file: .csv or .npz")
    m.add_argument("--index", help="also write a FAISS index of the vectors to this file (and its sidecar FILE.json: "
                                   "names, labels, model), for `similar -g FILE`")
    m.add_argument("--metric", choices=METRICS, default="euclidean",
                   help="the index's distance: euclidean (default, as similar uses on folders) or cosine")
    m.add_argument("--shard-size", type=int,
                   help="images per shard of a large folder (default 10,000: inference.SHARD_IMAGES)")
    m.add_argument("--device", default="auto")
    m.set_defaults(handler=run_embed)


def run_embed(args) -> int:
    from ..inference.index import VectorIndex
    from ..inference.model import SHARD_IMAGES, SiameseModel, embed_folder, file_digest, remove_shards

    out = Path(args.out)
    if out.suffix not in (".csv", ".npz"):
        raise UserError(f"-o must end in .csv or .npz (got '{out.name}').")
    index_path = Path(args.index) if args.index else None
    if index_path is not None and index_path.resolve() == out.resolve():
        raise UserError("--index must name another file than -o: the index goes beside the vectors.")
    shard_size = SHARD_IMAGES if args.shard_size is None else args.shard_size
    if shard_size < 1:
        raise UserError(f"--shard-size is a number of images: at least 1 (got {shard_size}).")
    model = SiameseModel.load(args.checkpoint, args.device)
    checkpoint_digest = file_digest(args.checkpoint)
    shards = out.with_name(out.name + ".shards")
    found = embed_folder(model, args.images, shards, shard_size, model_id=checkpoint_digest)
    vectors = found.vectors
    write_vectors(out, found)
    written = ""
    if index_path is not None:
        index = VectorIndex(vectors, args.metric)
        index.save(index_path, names=found.names, labels=found.labels, pixel_digests=found.digests,
                   checkpoint=Path(args.checkpoint).name, checkpoint_sha256=checkpoint_digest, vectors_file=out.name)
        written = f"; index: {index_path} ({args.metric} distance)"
    remove_shards(shards)  # the output holds every vector now
    reused = f", {found.reused:,} of them from an earlier run's shards" if found.reused else ""
    print(f"Embedded {len(found.names)} images ({vectors.shape[1]} numbers each{reused}): {out}{written}")
    return 0


def write_vectors(out: Path, found) -> None:
    """The folder's vectors with each image's path and label: a .npz of three arrays, or a CSV of one row per image."""
    import numpy as np
    import pandas as pd

    vectors = found.vectors
    if out.suffix == ".npz":
        buffer = io.BytesIO()
        np.savez_compressed(buffer, paths=np.array(found.names), labels=np.array(found.labels), vectors=vectors)
        write_bytes(out, buffer.getvalue())
    else:
        table = pd.DataFrame(vectors, columns=[f"e{i}" for i in range(vectors.shape[1])])
        table.insert(0, "label", found.labels)
        table.insert(0, "path", found.names)
        write_text(out, csv_table(table).to_csv(index=False, float_format="%.6g"))
