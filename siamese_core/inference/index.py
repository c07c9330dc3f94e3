"""Nearest-neighbour search over vectors: exact numpy for small sets, FAISS for large ones.

Every search answers as the brute force does: each query's k nearest gallery rows, nearest first,
by Euclidean distance or cosine distance (1 - cosine similarity), equal distances in row order.
An engine proposes a few more candidates than asked for (numpy: one matrix product per block of
queries; FAISS: IndexFlatL2 / IndexFlatIP, exact, or for very large sets IndexIVFFlat, approximate),
then their distances are recomputed elementwise with one formula and sorted stably. So every engine
gives the same distances, bit for bit, and a distance of ~0 stays ~0 (a matrix product loses it
to rounding, which `exclude_self` could not tell from a near neighbour).

FAISS is optional: where `faiss` cannot be imported every search is numpy's, with no error.
faiss-gpu is used where it is importable and sees a GPU. Torch-free, like the app's start-up modules.
"""

from __future__ import annotations

import functools
import hashlib
import io
import logging
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import UserError
from ..files import file_sha256, read_json, write_bytes, write_json

log = logging.getLogger(__name__)

METRICS = ("euclidean", "cosine")
# Gallery rows from which a built index is a FAISS one. benchmarks/search.py, 300 queries at once, 512-d:
# FAISS's exact scan is 0.7x numpy's matrix product at 5k rows, 1.4x at 20k, 4.8x at 50k, 4-5x beyond;
# building it costs a copy of the vectors (0.1 s at 50k). One query at a time the two are alike.
FAISS_THRESHOLD = 50_000
# Gallery rows from which FAISS's index is approximate (IVF-Flat), when it finds the right neighbours
# often enough on a sample of the gallery itself (see APPROXIMATE_RECALL); below it, exact.
APPROXIMATE_THRESHOLD = 1_000_000
APPROXIMATE_RECALL = 0.95  # the recall@10 an IVF index must reach on its own rows, else it stays exact
SELF_DISTANCE = 1e-6  # exclude_self leaves out gallery rows this close to the query: the query itself
ENGINES = ("numpy", "faiss-flat", "faiss-ivf")
INDEX_FORMAT = "siamese-studio-index"
# Candidates fetched beyond k: rounding in a matrix product cannot push a true neighbour out of them.
_SPARE = 16
_BLOCK_FLOATS = 2**24  # numbers per block of queries x gallery rows (64 MB of float32 distances)
_GPU_MAX_K = 2048  # faiss-gpu's largest k
# Below this many queries FAISS's exact scan runs one thread per query (it turns to BLAS from 20,
# faiss.cvar.distance_compute_blas_threshold): numpy's matrix product over the same rows is quicker.
_FEW_QUERIES = 20


@functools.lru_cache(maxsize=1)
def _faiss():
    """The faiss module, or None where it cannot be imported (the product runs without it)."""
    logging.getLogger("faiss.loader").setLevel(logging.WARNING)  # not its "Loading faiss with AVX2" lines
    try:
        import faiss
    except Exception as exc:  # not installed, or built for another numpy: numpy searches instead
        log.debug("faiss is not available (%s): exact numpy search only.", exc)
        return None
    return faiss


def faiss_available() -> bool:
    return _faiss() is not None


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}: use 'euclidean' or 'cosine'")
    return metric


def _normalised(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _rows_for(vectors, metric: str, dtype=None) -> np.ndarray:
    """Vectors as searched: float (float64 stays float64 in numpy), unit length for cosine."""
    x = np.asarray(vectors)
    wanted = dtype or (x.dtype if x.dtype in (np.float32, np.float64) else np.float32)
    x = x.astype(wanted, copy=False)  # no copy when it is already so: 1M x 512 is 2 GB
    return np.ascontiguousarray(_normalised(x) if metric == "cosine" else x)


def smallest(values: np.ndarray, k: int) -> np.ndarray:
    """Columns of the k smallest values of each row, smallest first, equal values in column order:
    the first k columns of a stable argsort, without sorting whole rows. NaN counts as infinitely far."""
    v = np.asarray(values)
    if v.dtype.kind == "f" and np.isnan(v).any():
        v = np.where(np.isnan(v), np.inf, v)
    rows, n = v.shape
    k = max(0, min(int(k), n))
    if k == 0:
        return np.zeros((rows, 0), dtype=np.int64)
    if 4 * k >= n:  # most of the row: a stable sort is as quick
        return np.argsort(v, axis=1, kind="stable")[:, :k]
    part = np.argpartition(v, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(v, part, axis=1).max(axis=1, keepdims=True)
    keep = v < kth
    tied = v == kth
    need = k - keep.sum(axis=1)
    cut = tied.sum(axis=1) > need  # rows with more values equal to the k-th than places left: lowest columns win
    keep[~cut] |= tied[~cut]
    if cut.any():
        keep[cut] |= tied[cut] & (np.cumsum(tied[cut], axis=1) <= need[cut, None])
    columns = np.nonzero(keep)[1].reshape(rows, k)  # in column order within each row
    order = np.argsort(np.take_along_axis(v, columns, axis=1), axis=1, kind="stable")
    return np.take_along_axis(columns, order, axis=1)


def _exact_distances(queries: np.ndarray, rows: np.ndarray, candidates: np.ndarray, metric: str) -> np.ndarray:
    """The one distance formula, elementwise, for each query's candidate rows; inf where there is none (-1)."""
    picked = rows[np.maximum(candidates, 0)]  # (B, C, D)
    if metric == "cosine":
        d = 1.0 - (picked * queries[:, None, :]).sum(axis=-1)
    else:
        d = np.sqrt(np.maximum(((picked - queries[:, None, :]) ** 2).sum(axis=-1), 0.0))
    d[candidates < 0] = np.inf
    return d


class VectorIndex:
    """Gallery vectors ready to be searched many times: built once, then `search(queries, k)`.

    `engine` "auto" picks numpy below FAISS_THRESHOLD rows (or without faiss), FAISS's exact flat index
    up to APPROXIMATE_THRESHOLD, then an IVF-Flat index when it reaches APPROXIMATE_RECALL on a sample
    of the gallery (else the flat one). `save`/`load` keep a FAISS index on disk with its sidecar.
    """

    def __init__(self, vectors, metric: str = "euclidean", engine: str = "auto"):
        self.metric = check_metric(metric)
        x = np.asarray(vectors)
        if x.ndim != 2:
            raise ValueError(f"vectors must be a 2-D array (rows x numbers), not of shape {x.shape}")
        self.recall = 1.0  # of the approximate index on its own rows; 1.0 for exact engines
        engine = self.choose_engine(len(x)) if engine == "auto" else engine
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}: use 'auto' or one of {', '.join(ENGINES)}")
        if engine != "numpy" and _faiss() is None:
            engine = "numpy"
        self.engine = engine
        self._faiss_index = self._search_index = None
        if engine == "numpy":
            self._rows = _rows_for(x, metric)
        else:
            self._rows = _rows_for(x, metric, np.float32)
            self._faiss_index = self._build_faiss(self._rows)
            self._search_index = _on_gpu(self._faiss_index)
            if self.engine == "faiss-flat":  # re-rank from FAISS's own copy: the vectors are held once
                self._rows = _stored_rows(_faiss(), self._faiss_index)
        self._squares = (self._rows ** 2).sum(axis=1) if metric == "euclidean" else None

    @staticmethod
    def choose_engine(n: int) -> str:
        if n < FAISS_THRESHOLD or _faiss() is None:  # small sets never import faiss
            return "numpy"
        return "faiss-ivf" if n >= APPROXIMATE_THRESHOLD else "faiss-flat"

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def dimension(self) -> int:
        return int(self._rows.shape[1])

    # -- building

    def _build_faiss(self, rows: np.ndarray):
        if self.engine == "faiss-ivf":
            ivf, nprobe, recall = ivf_index(rows, self.metric)
            if nprobe is not None:
                ivf.nprobe, self.recall = nprobe, recall
                return ivf
            log.info("An approximate index found %.0f%% of the true neighbours at best: exact search instead.",
                     100 * recall)
            self.engine = "faiss-flat"
        index = _flat_index(rows.shape[1], self.metric)
        index.add(rows)
        return index

    @property
    def nprobe(self) -> Optional[int]:
        """The lists an approximate index searches (None for exact engines); more: slower, finds more."""
        return int(self._faiss_index.nprobe) if self.engine == "faiss-ivf" else None

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        self._faiss_index.nprobe = int(value)
        if self._search_index is not self._faiss_index:
            self._search_index = _on_gpu(self._faiss_index)

    # -- searching

    def search(self, queries, k: int, exclude_self: bool = False, own: Optional[Sequence[int]] = None,
               leave_out: Optional[Sequence[int]] = None, block: Optional[int] = None):
        """(indices, distances), each (Q, min(k, N)): each query's nearest gallery rows, nearest first.

        `exclude_self` leaves out rows within SELF_DISTANCE of the query (the query itself, when it is in
        the gallery); `own[i]` is a row query i may not return (its own row); `leave_out` rows are never
        returned. Where fewer rows qualify, the missing places hold index -1 and distance inf.
        """
        q = np.asarray(queries)
        if q.ndim == 1:
            q = q[None]
        if q.shape[1:] != (self.dimension,):
            raise ValueError(f"queries of {q.shape[-1]} numbers cannot be searched among vectors of {self.dimension}")
        q = _rows_for(q, self.metric, None if self.engine == "numpy" else np.float32).astype(self._rows.dtype, copy=False)
        n = len(self._rows)
        k = max(0, min(int(k), n))
        own = None if own is None else np.asarray(own, dtype=np.int64)
        leave_out = np.unique(np.asarray([] if leave_out is None else leave_out, dtype=np.int64))
        indices = np.full((len(q), k), -1, dtype=np.int64)
        distances = np.full((len(q), k), np.inf, dtype=self._rows.dtype)
        if k == 0 or len(q) == 0:
            return indices, distances
        first = min(n, k + _SPARE + len(leave_out) + (own is not None))
        # Queries per block: their candidates' vectors (and numpy's scores against every row) stay ~64 MB.
        widest = max(first * self.dimension, n if self.engine == "numpy" else 1)
        step = block or max(1, _BLOCK_FLOATS // widest)
        for start in range(0, len(q), step):
            rows = slice(start, min(len(q), start + step))
            found = self._search_block(q[rows], k, first, exclude_self, None if own is None else own[rows], leave_out)
            indices[rows], distances[rows] = found
        return indices, distances

    def _search_block(self, q, k, want, exclude_self, own, leave_out):
        n = len(self._rows)
        indices = np.full((len(q), k), -1, dtype=np.int64)
        distances = np.full((len(q), k), np.inf, dtype=self._rows.dtype)
        todo = np.arange(len(q))
        while len(todo):
            candidates = self._candidates(q[todo], want)
            d = _exact_distances(q[todo], self._rows, candidates, self.metric)
            dropped = np.isin(candidates, leave_out)
            if own is not None:
                dropped |= candidates == own[todo, None]
            if exclude_self:
                dropped |= d <= SELF_DISTANCE
            d[dropped] = np.inf
            valid = np.isfinite(d).sum(axis=1)
            # Settled: enough candidates left to be sure of the k nearest, every row was a candidate, or the
            # engine found fewer than asked (an IVF index's probed lists ran out: asking for more finds no more).
            settled = (valid >= min(k + _SPARE, n)) | (want >= n) | (candidates < 0).any(axis=1)
            order = np.lexsort((candidates, d), axis=-1)[:, :k]  # by distance, then row: ties in row order
            best_d = np.take_along_axis(d, order, axis=1)
            best = np.where(np.isfinite(best_d), np.take_along_axis(candidates, order, axis=1), -1)
            indices[todo[settled]], distances[todo[settled]] = best[settled], best_d[settled]
            todo, want = todo[~settled], min(n, 2 * want)  # rows that lost too many: ask again for more
        return indices, distances

    def _candidates(self, q: np.ndarray, want: int) -> np.ndarray:
        """Each query's `want` most likely nearest rows (-1 where there are fewer), in no particular order."""
        few = self.engine == "faiss-flat" and len(q) < _FEW_QUERIES and self._search_index is self._faiss_index
        if self.engine == "numpy" or few:
            products = q @ self._rows.T
            scores = self._squares[None, :] - 2.0 * products if self.metric == "euclidean" else -products
            return smallest(scores, want)
        index = self._search_index if want <= _GPU_MAX_K else self._faiss_index
        return index.search(np.ascontiguousarray(q, dtype=np.float32), want)[1]

    # -- saving

    def save(self, path, **facts) -> None:
        """Write the index to `path` (a FAISS file; an .npy file of the vectors without faiss) and its
        sidecar `path`.json holding `facts` (names, labels, checkpoint...), both atomically."""
        path = Path(path)
        faiss = _faiss()
        if self.engine == "numpy" and faiss is not None:  # a saved index is a FAISS one wherever faiss is
            stored, engine = _flat_index(self.dimension, self.metric), "faiss-flat"
            stored.add(self._rows.astype(np.float32))
        else:
            stored, engine = self._faiss_index, self.engine
        if stored is None:
            buffer = io.BytesIO()
            np.save(buffer, self._rows, allow_pickle=False)
            data = buffer.getvalue()
        else:
            data = faiss.serialize_index(stored)
        write_bytes(path, data)
        write_json(sidecar_path(path), {**facts, "format": INDEX_FORMAT, "version": 2, "engine": engine,
                                        "metric": self.metric, "dimension": self.dimension, "count": len(self),
                                        "recall_at_10": self.recall, "index_bytes": len(data),
                                        "index_sha256": hashlib.sha256(data).hexdigest()})

    @classmethod
    def load(cls, path) -> tuple["VectorIndex", dict]:
        """(the index, its sidecar's facts) from `save`; a missing, damaged or foreign file is a UserError.

        Nothing is allocated on a file's word: a FAISS file is checked field by field against its length
        (check_faiss_file: only the kinds `save` writes), an .npy file is mapped, not read, until its shape
        is known to match; and a sidecar that records the file's SHA-256 (version 2) must match it, so a
        flipped bit in the vectors is refused rather than searched."""
        path = Path(path)
        facts = read_json(sidecar_path(path))
        if not path.is_file():
            raise UserError(f"The index '{path}' does not exist: check the path.")
        if not isinstance(facts, dict) or facts.get("format") != INDEX_FORMAT:
            raise UserError(f"'{path.name}' is not an index written by `embed --index`: it has no readable sidecar "
                            f"'{sidecar_path(path).name}' beside it.")
        again = "write it again with `embed --index`"
        if (facts.get("index_bytes") != path.stat().st_size or facts.get("engine") not in ENGINES
                or facts.get("metric") not in METRICS):
            raise UserError(f"'{path.name}' does not match its sidecar (it was changed or cut short): {again}.")
        if "index_sha256" in facts and facts["index_sha256"] != file_sha256(path):
            raise UserError(f"'{path.name}' does not match its sidecar (its content changed since it was written, "
                            f"or it is damaged): {again}.")
        try:
            if facts["engine"] == "numpy":
                try:
                    stored = np.load(path, mmap_mode="r", allow_pickle=False)  # its header cannot make it allocate
                except ValueError:
                    raise _NotOurIndex("it holds fewer numbers than its header says") from None
                if stored.ndim != 2 or stored.dtype.kind != "f" or stored.shape != (facts.get("count"),
                                                                                    facts.get("dimension")):
                    raise _NotOurIndex("its vectors do not match its sidecar")
                self = cls(np.array(stored), facts["metric"], "numpy")
            else:
                faiss = _faiss()
                if faiss is None:
                    raise UserError(f"'{path.name}' is a FAISS index and faiss is not installed here: "
                                    "pip install faiss-cpu, or give the image folder instead.")
                if check_faiss_file(path) != facts["engine"]:
                    raise _NotOurIndex("its kind is not the one its sidecar names")
                self = cls.from_faiss(faiss.read_index(str(path)), facts["metric"], facts.get("recall_at_10") or 1.0)
        except _NotOurIndex as exc:
            raise UserError(f"'{path.name}' is not an index this app can read ({exc}): {again}.") from None
        except (ValueError, RuntimeError, OSError, AttributeError) as exc:
            raise UserError(f"'{path.name}' could not be read as an index ({type(exc).__name__}): {again}.") from None
        if self._rows.shape != (facts.get("count"), facts.get("dimension")):
            raise UserError(f"'{path.name}' does not match its sidecar (it holds {self._rows.shape[0]} vectors of "
                            f"{self._rows.shape[1]} numbers): write it again with `embed --index`.")
        return self, facts

    @classmethod
    def from_faiss(cls, faiss_index, metric: str, recall: float = 1.0) -> "VectorIndex":
        """Search a built FAISS flat or IVF-Flat index (of rows prepared for `metric`: unit length for cosine)."""
        faiss = _faiss()
        self = cls.__new__(cls)
        self.metric, self.recall = check_metric(metric), float(recall)
        self.engine = "faiss-ivf" if isinstance(faiss.downcast_index(faiss_index), faiss.IndexIVF) else "faiss-flat"
        self._faiss_index = faiss_index
        self._search_index = _on_gpu(faiss_index)
        self._rows = _stored_rows(faiss, faiss_index)
        self._squares = (self._rows ** 2).sum(axis=1) if metric == "euclidean" else None
        return self


def _faiss_metric(metric: str):
    faiss = _faiss()
    return faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2


def _flat_index(d: int, metric: str):
    faiss = _faiss()
    return faiss.IndexFlatIP(d) if metric == "cosine" else faiss.IndexFlatL2(d)


def ivf_index(rows: np.ndarray, metric: str, target: float = APPROXIMATE_RECALL, probes: int = 200):
    """(an IVF-Flat FAISS index of `rows` with about sqrt(N) lists, the fewest lists it must probe to find
    `target` of the true 10 nearest, that recall). Rows are float32 (unit length for cosine).

    The lists to probe are counted on `probes` rows held out, the way a new query would be: the lists
    are trained and filled without them, they are searched for, then added (the gallery's own rows
    found 0.95 at 8 lists of 1,000 where new queries found 0.92). The number is None, with the best
    recall, when probing 1/8 of the lists does not reach `target`: rows with no clusters to exploit,
    such as random noise, where the exact scan is as quick.
    """
    faiss = _faiss()
    n, d = rows.shape
    lists = max(16, int(np.sqrt(n)))
    rng = np.random.default_rng(0)
    held = np.sort(rng.choice(n, min(n // 10, probes), replace=False))
    rest = np.setdiff1d(np.arange(n), held)
    ivf = faiss.IndexIVFFlat(_flat_index(d, metric), d, lists, _faiss_metric(metric))
    ivf.cp.niter = 10  # k-means rounds: 10 place the lists nearly as well as faiss's 25, in 40% of the time
    ivf.train(rows[np.sort(rng.choice(rest, min(len(rest), 40 * lists), replace=False))])
    for start in range(0, len(rest), 100_000):  # in slices: no second copy of a large gallery
        ids = rest[start:start + 100_000]
        ivf.add_with_ids(rows[ids], ids)
    nprobe, recall, best = None, 0.0, 0.0
    if len(held):
        truth = faiss.knn(rows[held], rows, 16, metric=_faiss_metric(metric))[1]
        truth = [t[~np.isin(t, held)][:10] for t in truth]  # the held-out rows are not in the index yet
        tried = 1
        while tried <= max(1, lists // 8):
            ivf.nprobe = tried
            found = ivf.search(rows[held], 10)[1]
            recall = float(np.mean([len(set(a) & set(b)) / max(len(b), 1) for a, b in zip(found, truth)]))
            best = max(best, recall)
            if recall >= target:
                nprobe = tried
                break
            tried *= 2
        ivf.add_with_ids(rows[held], held)
    return ivf, nprobe, recall if nprobe else best


# ---------------------------------------------------------------- reading a FAISS file safely

# FAISS reads a file by trusting its size fields: a 46 KB index whose vector length says 2**39 makes it
# allocate gigabytes before it finds the file too short. So the file is checked first, here, field by field,
# and only the kinds of index `save` writes are read: IndexFlatL2 / IndexFlatIP ("IxF2" / "IxFI") and
# IndexIVFFlat ("IwFl") over one of them, with its lists in memory ("ilar"). Every size must fit in the
# bytes that are really left, and the file must end where the last field ends; then read_index allocates
# nothing beyond the file's own size. (The layout is faiss/impl/index_write.cpp's, unchanged since 1.5.)
_FLAT_KINDS = {b"IxF2": 1, b"IxFI": 0}  # fourcc -> the metric it must say (METRIC_L2 = 1, METRIC_INNER_PRODUCT = 0)
_MAX_DIMENSION = 65536


class _NotOurIndex(ValueError):
    """Why a file is not an index `save` writes, in words."""


class _Reader:
    def __init__(self, fh, size: int):
        self.fh, self.size = fh, size

    @property
    def left(self) -> int:
        return self.size - self.fh.tell()

    def take(self, n: int) -> bytes:
        if n > self.left:
            raise _NotOurIndex("it is cut short")
        return self.fh.read(n)

    def number(self, fmt: str) -> int:
        import struct

        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt)))[0]

    def skip_items(self, count: int, item: int, what: str) -> None:
        if count < 0 or count * item > self.left:
            raise _NotOurIndex(f"its {what} says more than the file holds")
        self.fh.seek(count * item, io.SEEK_CUR)

    def vector(self, item: int, what: str) -> int:
        """A vector as FAISS writes it (its length, then its items): skipped; its length returned."""
        count = self.number("Q")
        self.skip_items(count, item, what)
        return count


def _header(reader: _Reader, kind: bytes) -> tuple[int, int]:
    """(d, ntotal) of an index header, checked; the metric must be the one `kind` stores."""
    d, ntotal = reader.number("i"), reader.number("q")
    reader.take(16)  # two unused fields
    reader.take(1)  # is_trained
    metric = reader.number("i")
    if metric > 1:
        raise _NotOurIndex("it uses a distance this app does not write")
    if not 0 < d <= _MAX_DIMENSION or ntotal < 0:
        raise _NotOurIndex("its vector size or count is impossible")
    if kind in _FLAT_KINDS and metric != _FLAT_KINDS[kind]:
        raise _NotOurIndex("its distance does not match its kind")
    return d, ntotal


def _flat(reader: _Reader, kind: bytes) -> tuple[int, int]:
    d, ntotal = _header(reader, kind)
    if reader.number("Q") != ntotal * d or ntotal * d * 4 > reader.left:
        raise _NotOurIndex("its vectors do not match its count")
    reader.skip_items(ntotal * d, 4, "vectors")
    return d, ntotal


def check_faiss_file(path) -> str:
    """The engine ("faiss-flat" or "faiss-ivf") of a FAISS file `save` could have written, checked field by field
    against its length before FAISS reads it; _NotOurIndex, in words, for anything else."""
    size = Path(path).stat().st_size
    with open(path, "rb") as fh:
        reader = _Reader(fh, size)
        kind = reader.take(4)
        if kind in _FLAT_KINDS:
            _flat(reader, kind)
            engine = "faiss-flat"
        elif kind == b"IwFl":
            d, ntotal = _header(reader, kind)
            nlist, nprobe = reader.number("Q"), reader.number("Q")
            quantizer = reader.take(4)
            if quantizer not in _FLAT_KINDS:
                raise _NotOurIndex("its coarse quantizer is not a flat index")
            qd, centroids = _flat(reader, quantizer)
            if qd != d or centroids != nlist or not 0 < nprobe <= max(nlist, 1):
                raise _NotOurIndex("its lists do not match its coarse quantizer")
            if reader.number("b") not in (0, 1):  # a direct map: none, or an array of ids
                raise _NotOurIndex("it keeps a kind of id map this app does not write")
            mapped = reader.vector(8, "id map")
            if mapped not in (0, ntotal):
                raise _NotOurIndex("its id map does not match its count")
            if reader.take(4) != b"ilar" or reader.number("Q") != nlist or reader.number("Q") != 4 * d:
                raise _NotOurIndex("its lists are not kept the way this app writes them")
            layout = reader.take(4)
            count = reader.number("Q")
            if layout == b"full" and count == nlist:
                sizes = reader.take(8 * count)
                lengths = np.frombuffer(sizes, dtype="<u8")
            elif layout == b"sprs" and count % 2 == 0 and count <= 2 * nlist:
                pairs = np.frombuffer(reader.take(8 * count), dtype="<u8").reshape(-1, 2)
                if len(pairs) and (pairs[:, 0].max() >= nlist or len(np.unique(pairs[:, 0])) != len(pairs)):
                    raise _NotOurIndex("its lists are numbered beyond its list count")
                lengths = pairs[:, 1]
            else:
                raise _NotOurIndex("its lists are not kept the way this app writes them")
            if lengths.size and lengths.max() > size or int(lengths.sum()) != ntotal:
                raise _NotOurIndex("its lists do not hold its count of vectors")
            reader.skip_items(ntotal, 4 * d + 8, "lists")  # each vector's numbers and its id
            engine = "faiss-ivf"
        else:
            raise _NotOurIndex("it is another kind of FAISS index than the flat and IVF-Flat ones `embed --index` "
                               "writes")
        if reader.left:
            raise _NotOurIndex("it holds more than an index of its kind")
    return engine


def sidecar_path(path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".json")


def _stored_rows(faiss, index) -> np.ndarray:
    """The vectors a FAISS index holds, in row order: a view of a flat index's memory, else a copy."""
    flat = faiss.downcast_index(index)
    if isinstance(flat, faiss.IndexFlat):
        return faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d)
    flat.make_direct_map()  # IVF: rows are kept by list; the map lets them be read back by number
    # Into an array given: once anything imports faiss.contrib.torch_utils, reconstruct_n makes a torch tensor.
    rows = np.empty((flat.ntotal, flat.d), dtype=np.float32)
    flat.reconstruct_n(0, flat.ntotal, rows)
    return rows


def _on_gpu(index):
    """The same index on the GPUs where faiss-gpu is installed and sees one; else the index itself."""
    faiss = _faiss()
    if not hasattr(faiss, "index_cpu_to_all_gpus") or faiss.get_num_gpus() < 1:
        return index
    try:
        return faiss.index_cpu_to_all_gpus(index)
    except Exception as exc:  # too little GPU memory, an unsupported index: the CPU copy answers
        log.info("FAISS stays on the CPU (%s).", exc)
        return index


def search(queries, vectors, k: int, metric: str = "euclidean", exclude_self: bool = False,
           own: Optional[Sequence[int]] = None, leave_out: Optional[Sequence[int]] = None):
    """One search without keeping an index: (indices, distances), each (Q, k); see VectorIndex.search.
    A few queries go straight to numpy: building a FAISS index copies the vectors and would not pay."""
    few = np.ndim(queries) == 1 or len(queries) < _FEW_QUERIES
    return VectorIndex(vectors, metric, "numpy" if few else "auto").search(queries, k, exclude_self=exclude_self,
                                                                           own=own, leave_out=leave_out)
