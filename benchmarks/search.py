"""Nearest-neighbour search at 10k, 100k and 1M vectors: numpy brute force, FAISS exact, FAISS approximate.

For each size it builds each engine of siamese_core.inference.index on the same float32 vectors and times one
search of all the queries at once (the per-query time is that over the number of queries):
- numpy, one query at a time: the brute force `nearest_vectors` did before this index (each query
  against every row, elementwise), timed on 5 to 50 queries;
- numpy brute force: the index's numpy engine (a matrix product per block of queries, then the exact
  re-rank), the baseline of the ratios;
- FAISS exact: IndexFlatL2 / IndexFlatIP (the same answers as the brute force: checked);
- FAISS approximate: IVF-Flat with about sqrt(N) lists, at several numbers of lists probed, with its
  recall@10 against the brute force's top 10.
--data random draws N(0, 1) vectors (no structure: the hardest case for any approximate index);
--data clustered draws them around N/50 centres (like embeddings of many classes, 50 images each).

    python benchmarks/search.py [--sizes 10k,100k,1M] [--dim 512] [--queries 300] [--data random|clustered]
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_utils import OtherLoad, load_average, print_table  # noqa: E402

from siamese_core.inference import index as ix  # noqa: E402

K = 10


def parse_size(text: str) -> int:
    text = text.strip().lower().replace("_", "").replace(",", "")
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text.rstrip("km")) * scale)


def vectors(n: int, dim: int, queries: int, kind: str, seed: int):
    """(gallery, queries): float32 N(0, 1), or points around N/50 centres with spread 0.5 per number."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.standard_normal((n, dim), dtype=np.float32), rng.standard_normal((queries, dim), dtype=np.float32)
    centres = rng.standard_normal((max(1, n // 50), dim), dtype=np.float32)
    gallery = centres[rng.integers(0, len(centres), n)]
    gallery += 0.5 * rng.standard_normal((n, dim), dtype=np.float32)
    query = centres[rng.integers(0, len(centres), queries)] + 0.5 * rng.standard_normal((queries, dim), dtype=np.float32)
    return gallery, query


def old_nearest(query, gallery, k):
    """nearest_vectors as it was before siamese_core.inference.index: one query, every row, elementwise."""
    distances = np.sqrt(np.maximum(((gallery - query) ** 2).sum(axis=1), 0.0))
    top = np.argpartition(distances, k - 1)[:k]
    return top[np.argsort(distances[top], kind="stable")]


def timed(work):
    with OtherLoad() as load:
        start = time.perf_counter()
        result = work()
        seconds = time.perf_counter() - start
    return result, seconds, load


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(a[a >= 0]) & set(b)) / len(b) for a, b in zip(found, truth)]))


def one_query_ms(index, queries) -> float:
    """The median time of searching one query alone, as `similar` does."""
    times = []
    for q in queries[:5]:
        start = time.perf_counter()
        index.search(q[None], K)
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def measure(n: int, dim: int, n_queries: int, kind: str, seed: int, probes, notes: list) -> list:
    gallery, queries = vectors(n, dim, n_queries, kind, seed)
    rows = []

    def row(method, build, seconds, count, base, found_recall, load, index, note=""):
        per_query = 1e3 * seconds / count
        ratio = "1.00x" if base is None else f"{base / per_query:.1f}x"
        rows.append([f"{n:,}", method, "-" if build is None else f"{build:.2f}", f"{per_query:.3f}", ratio,
                     f"{one_query_ms(index, queries):.2f}", "-" if found_recall is None else f"{found_recall:.3f}",
                     str(load), note])

    few = queries[:max(5, min(50, 2_000_000 // n))]  # the old way takes 1.5 s a query at 1M
    _, seconds, old_load = timed(lambda: [old_nearest(q, gallery, K) for q in few])
    old_ms = 1e3 * seconds / len(few)

    brute, build, _ = timed(lambda: ix.VectorIndex(gallery, "euclidean", "numpy"))
    (truth, truth_d), seconds, load = timed(lambda: brute.search(queries, K))
    base = 1e3 * seconds / n_queries
    rows.append([f"{n:,}", "numpy, one query at a time (before)", "-", f"{old_ms:.3f}", f"{base / old_ms:.2f}x",
                 f"{old_ms:.2f}", "1.000", str(old_load), f"{len(few)} queries, one by one"])
    row("numpy brute force (matrix product)", build, seconds, n_queries, None, 1.0, load, brute)
    brute = None  # free its memory before the next engine's
    gc.collect()

    if not ix.faiss_available():
        rows.append([f"{n:,}", "FAISS", "-", "-", "-", "-", "-", "-", "faiss is not installed"])
        return rows
    flat, build, _ = timed(lambda: ix.VectorIndex(gallery, "euclidean", "faiss-flat"))
    (found, found_d), seconds, load = timed(lambda: flat.search(queries, K))
    same = np.array_equal(found, truth) and np.array_equal(found_d, truth_d)
    row("FAISS exact (IndexFlatL2)", build, seconds, n_queries, base, recall(found, truth), load, flat,
        "same as brute force" if same else "DIFFERS from brute force")
    flat = None
    gc.collect()

    (ivf, chosen, calibrated), build, _ = timed(lambda: ix.ivf_index(gallery, "euclidean"))
    approximate = ix.VectorIndex.from_faiss(ivf, "euclidean")  # the product's search path around this index
    for nprobe in sorted(set(probes) | ({chosen} if chosen else set())):
        if nprobe > ivf.nlist:
            continue
        approximate.nprobe = nprobe
        (found, _), seconds, load = timed(lambda: approximate.search(queries, K))
        note = f"{nprobe} of {ivf.nlist} lists" + (" (the product's choice)" if nprobe == chosen else "")
        row("FAISS approximate (IVF-Flat)", build, seconds, n_queries, base, recall(found, truth), load, approximate,
            note)
    notes.append(f"{n:,}: " + (
        f"the product probes {chosen} of {ivf.nlist} lists (recall@10 {calibrated:.3f} on its held-out rows)"
        if chosen else f"no setting up to {max(1, ivf.nlist // 8)} of {ivf.nlist} lists found {ix.APPROXIMATE_RECALL} "
        f"of the true 10 nearest of its held-out rows (best {calibrated:.3f}): the product keeps the exact index"))
    return rows


def peak_gigabytes() -> float:
    try:
        import resource
    except ImportError:  # not on Windows
        return float("nan")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KB on Linux


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10k,100k,1M", help="gallery sizes, e.g. 10k,100k,1M")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--data", choices=("random", "clustered"), default="random")
    parser.add_argument("--probes", default="1,4,16,64", help="lists an IVF index probes, e.g. 1,4,16,64")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    probes = [int(p) for p in args.probes.split(",") if p.strip()]
    gigabytes = max(sizes) * args.dim * 4 / 2**30
    print(f"{args.data} float32 vectors of {args.dim} numbers; {args.queries} queries, k={K}; the largest gallery "
          f"takes {gigabytes:.1f} GB (the run peaks near 4.5x that). Load average before: {load_average()}.")
    started = time.perf_counter()
    table, notes = [], []
    for n in sizes:
        table += measure(n, args.dim, args.queries, args.data, args.seed, probes, notes)
        gc.collect()
    print_table(["vectors", "method", "build s", f"ms per query ({args.queries} at once)", "vs brute force",
                 "ms for one query", "recall@10", "other load", "note"], table, figures_from=2)
    print("\nApproximate index, as the product builds it (IVF only from "
          f"{ix.APPROXIMATE_THRESHOLD:,} vectors):\n" + "\n".join(f"- {note}" for note in notes))
    print(f"\nQueries searched {args.queries} at once (ms per query = time / queries); FAISS on "
          f"{ix._faiss().omp_get_max_threads() if ix.faiss_available() else 0} threads. "
          f"Wall time {time.perf_counter() - started:.0f} s; peak memory {peak_gigabytes():.1f} GB; "
          f"load average after: {load_average()}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
