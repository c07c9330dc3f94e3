"""Embeddings to 2D or 3D maps: PCA, t-SNE or UMAP, with real progress and a cache.

`project(vectors, "umap", dims=3, params={"n_neighbors": 15, "min_dist": 0.1}, seed=0,
progress=callback)` returns float32 coordinates (N, dims). `ProjectionCache` keeps results by
`cache_key` (a hash of the vectors plus the method, dimensions, parameters and seed), so turning back to
a map already drawn costs nothing. scikit-learn and umap are imported inside the functions: umap's import alone
takes seconds, and its first fit in a process compiles numba code (`warm_umap` pays that early).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from ..errors import UserError
from ..runs.jobs import child_env

METHODS = ("pca", "tsne", "umap")
METHOD_NAMES = {"pca": "PCA", "tsne": "t-SNE", "umap": "UMAP"}
DEFAULTS = {
    "pca": {},
    "tsne": {"perplexity": 30.0, "max_iter": 1000},
    "umap": {"n_neighbors": 15, "min_dist": 0.1},
}
TSNE_SAMPLE = 2000  # points t-SNE maps by default: 3D t-SNE of 10,000 points takes minutes on 2 cores
PCA_COMPONENTS = 10  # PCA reports the share of the variance of this many of its first components

Progress = Callable[[float, str], None]  # (fraction done in [0, 1], what is happening, in words)


def _quiet(progress: Optional[Progress]) -> Progress:
    return progress or (lambda fraction, message: None)


def full_params(method: str, params: Optional[dict] = None) -> dict:
    """The method's defaults updated with `params`; unknown methods or parameters are errors."""
    if method not in METHODS:
        raise ValueError(f"unknown projection method {method!r}: use one of {', '.join(METHODS)}")
    params = dict(params or {})
    unknown = set(params) - set(DEFAULTS[method])
    if unknown:
        raise ValueError(f"{METHOD_NAMES[method]} takes no parameter {', '.join(sorted(unknown))}")
    return {**DEFAULTS[method], **params}


@dataclass
class Projection:
    """A map and what its method knows about it."""

    coords: np.ndarray  # (N, dims) float32
    # PCA only: the share of all the variance of the vectors along each of its first components (up to
    # PCA_COMPONENTS), largest first; the map draws the first `dims` of them.
    explained_variance: Optional[np.ndarray] = None


def project(vectors, method: str = "pca", dims: int = 3, params: Optional[dict] = None, seed: int = 0,
            progress: Optional[Progress] = None) -> np.ndarray:
    """Coordinates (N, dims) of the rows of `vectors` (N, D), placed so that near rows stay near."""
    return project_detailed(vectors, method, dims, params, seed, progress).coords


def project_detailed(vectors, method: str = "pca", dims: int = 3, params: Optional[dict] = None, seed: int = 0,
                     progress: Optional[Progress] = None) -> Projection:
    """As `project`, with PCA's explained variance per component."""
    if dims not in (2, 3):
        raise ValueError(f"dims must be 2 or 3, not {dims!r}")
    params = full_params(method, params)
    x = np.asarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"vectors must be a 2-D array (points, numbers), not shape {x.shape}")
    if len(x) < 3:
        raise UserError(f"A map needs at least 3 images; there {'is' if len(x) == 1 else 'are'} only {len(x)}.")
    if not np.isfinite(x).all():
        raise UserError("Some embeddings are not finite numbers (the model produced NaN or infinity): "
                        "this model cannot be mapped.")
    progress = _quiet(progress)
    variance = None
    if method == "pca":
        out, variance = _pca_with_variance(x, dims)
    elif method == "tsne":
        out = _tsne(x, dims, params, seed, progress)
    else:
        out = _umap(x, dims, params, seed, progress)
    progress(1.0, "Done")
    return Projection(np.ascontiguousarray(out, dtype=np.float32), variance)


def _pad(coords: np.ndarray, dims: int) -> np.ndarray:
    """Vectors with fewer numbers than `dims` still get `dims` columns (the extra ones zero)."""
    if coords.shape[1] >= dims:
        return coords[:, :dims]
    return np.hstack([coords, np.zeros((len(coords), dims - coords.shape[1]), dtype=coords.dtype)])


def _pca(x: np.ndarray, dims: int) -> np.ndarray:
    return _pca_with_variance(x, dims)[0]


def _pca_with_variance(x: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """(coordinates (N, dims), share of the variance along each of the first PCA_COMPONENTS components)."""
    from sklearn.decomposition import PCA

    # A few components more than drawn, for the explained-variance chart: the drawn ones are the same.
    components = min(max(dims, PCA_COMPONENTS), x.shape[1], len(x))
    pca = PCA(n_components=components, svd_solver="full" if min(x.shape) <= 64 else "auto", random_state=0)
    coords = pca.fit_transform(x)[:, :dims]
    ratios = np.nan_to_num(np.asarray(pca.explained_variance_ratio_, dtype=np.float64))  # all-equal rows: 0/0
    return _pad(coords, dims), ratios


# ------------------------------------------------------------------ t-SNE, with progress read from its log

# scikit-learn's TSNE reports its iterations only by printing them (verbose=2), and has no callback.
# Reading them by replacing sys.stdout would touch every session of a server at once, so the fit runs
# in a child process whose own output is the log: `python -m siamese_core.maps.projection tsne IN OUT ...`.

def _eta(started: float, done: float) -> str:
    if done <= 0.02:
        return ""
    left = (time.perf_counter() - started) * (1 - done) / done
    return f", about {left:.0f} s left" if left >= 1.5 else ""


def _tsne(x: np.ndarray, dims: int, params: dict, seed: int, progress: Progress) -> np.ndarray:
    n = len(x)
    # t-SNE needs perplexity < n; keep the usual "three neighbours per perplexity unit" margin.
    perplexity = float(min(params["perplexity"], max(1.0, (n - 1) / 3)))
    max_iter = int(params["max_iter"])
    started = time.perf_counter()
    # Share of the time before the iterations: finding neighbours and their probabilities.
    setup = 0.05

    def on_line(line: str) -> None:
        iteration = re.search(r"Iteration (\d+):", line)
        if iteration:
            done = setup + (1 - setup) * min(1.0, int(iteration.group(1)) / max_iter)
            progress(done, f"t-SNE: step {int(iteration.group(1)):,} of {max_iter:,} on {n:,} points"
                           f"{_eta(started, done)}")
        elif "nearest neighbors" in line or "Computing pairwise" in line:
            progress(0.01, f"t-SNE: finding the nearest neighbours of {n:,} points")
        elif "conditional probabilities" in line:
            progress(setup, f"t-SNE: starting the layout of {n:,} points")

    progress(0.0, f"t-SNE: starting on {n:,} points")
    with tempfile.TemporaryDirectory(prefix="siamese-tsne-") as tmp:
        given, fitted = Path(tmp) / "vectors.npy", Path(tmp) / "coords.npy"
        np.save(given, x, allow_pickle=False)
        command = [sys.executable, "-u", "-m", "siamese_core.maps.projection", "tsne", str(given), str(fitted),
                   str(dims), repr(perplexity), str(max_iter), str(seed)]
        child = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True, env=child_env())
        tail: list = []
        try:
            for line in child.stdout:
                tail = (tail + [line.rstrip()])[-5:]
                if line.strip():
                    on_line(line)
            child.wait()
        finally:
            if child.poll() is None:  # the caller stopped (a page rerun, Ctrl-C): so does the fit
                child.kill()
                child.wait()
            child.stdout.close()
        if child.returncode != 0 or not fitted.is_file():
            raise RuntimeError("t-SNE failed: " + " / ".join(t for t in tail if t))
        return np.load(fitted, allow_pickle=False)


def _tsne_child(given: str, fitted: str, dims: str, perplexity: str, max_iter: str, seed: str) -> None:
    """The child process's side: one t-SNE fit that prints its log, its coordinates saved to `fitted`."""
    from sklearn.manifold import TSNE

    tsne = TSNE(n_components=int(dims), perplexity=float(perplexity), max_iter=int(max_iter), init="pca",
                random_state=int(seed), method="barnes_hut", verbose=2)
    np.save(fitted, tsne.fit_transform(np.load(given, allow_pickle=False)), allow_pickle=False)


# ------------------------------------------------------------------ UMAP, with progress from its epoch bar

class _BarSink(io.TextIOBase):
    """A file for tqdm: reads 'k/n' out of the progress bar umap draws over its epochs."""

    def __init__(self, on_step: Callable[[int, int], None]):
        self.on_step = on_step

    def write(self, text: str) -> int:
        found = re.findall(r"(\d+)/(\d+)", text)
        if found:
            self.on_step(int(found[-1][0]), int(found[-1][1]))
        return len(text)

    def flush(self) -> None:
        pass


_umap_import_lock = threading.Lock()


def _import_umap():
    with _umap_import_lock:  # one import at a time: a second thread waits instead of importing half a module
        import umap

        return umap


def _umap(x: np.ndarray, dims: int, params: dict, seed: int, progress: Progress) -> np.ndarray:
    n = len(x)
    if n <= dims + 1:  # UMAP's spectral start needs more points than dimensions
        return _pca(x, dims)
    progress(0.0, "UMAP: loading (the first time takes a few seconds)")
    umap = _import_umap()
    neighbours = int(min(params["n_neighbors"], n - 1))
    started = time.perf_counter()
    setup = 0.3  # neighbours, graph and spectral start: about a third of a warm fit

    def on_step(step: int, total: int) -> None:
        done = setup + (1 - setup) * step / max(total, 1)
        progress(done, f"UMAP: step {step:,} of {total:,} on {n:,} points{_eta(started, done)}")

    reducer = umap.UMAP(n_components=dims, n_neighbors=max(2, neighbours), min_dist=float(params["min_dist"]),
                        random_state=seed, n_jobs=1,  # a seed means one thread in umap anyway; say so
                        tqdm_kwds={"disable": False, "file": _BarSink(on_step), "mininterval": 0.25})
    progress(0.02, f"UMAP: finding the nearest neighbours of {n:,} points")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*n_jobs.*")  # the seed's single thread is a choice
        warnings.filterwarnings("ignore", message=".*spectral initialisation.*")
        return reducer.fit_transform(x)


_warm = {"state": "cold", "seconds": None}
_warm_lock = threading.Lock()


def warm_umap(background: bool = True) -> dict:
    """Compile UMAP's numba code now (a small fit), so a person's first UMAP map does not pay for it.

    Two small fits, on 300 and on 4,200 random points: UMAP finds exact neighbours below 4,096
    points and approximate ones above, so both code paths get compiled. Runs once per process; returns the
    state ({"state": "cold"|"warming"|"warm"|"failed", "seconds": ...}).
    """
    with _warm_lock:
        if _warm["state"] != "cold":
            return dict(_warm)
        _warm["state"] = "warming"

    def work():
        started = time.perf_counter()
        try:
            umap = _import_umap()
            rng = np.random.default_rng(0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for n in (300, 4200):  # exact neighbours below 4,096 points, approximate above
                    points = rng.normal(size=(n, 8)).astype(np.float32)
                    umap.UMAP(n_components=3, n_epochs=5, random_state=0, n_jobs=1).fit_transform(points)
            _warm.update(state="warm", seconds=time.perf_counter() - started)
        except Exception:  # noqa: BLE001 - a failed warm-up only means the first real fit is slower
            _warm.update(state="failed", seconds=time.perf_counter() - started)

    if background:
        threading.Thread(target=work, name="warm-umap", daemon=True).start()
    else:
        work()
    return dict(_warm)


# ------------------------------------------------------------------ sampling and caching

def sample_per_class(labels, limit: int, seed: int = 0) -> np.ndarray:
    """Sorted positions of at most `limit` items, as even across classes as the classes allow.

    Each class gets an equal share; a class smaller than its share gives the rest to the others.
    """
    labels = np.asarray(labels)
    n = len(labels)
    if limit >= n:
        return np.arange(n)
    if limit <= 0:
        return np.arange(0)
    rng = np.random.default_rng(seed)
    classes, inverse = np.unique(labels, return_inverse=True)
    members = [np.flatnonzero(inverse == c) for c in range(len(classes))]
    quota = np.zeros(len(classes), dtype=np.int64)
    left = limit
    open_classes = list(range(len(classes)))
    while left > 0 and open_classes:  # water-filling: raise every open class's share together
        share = max(1, left // len(open_classes))
        for c in list(open_classes):
            take = min(share, len(members[c]) - quota[c], left)
            quota[c] += take
            left -= take
            if quota[c] == len(members[c]):
                open_classes.remove(c)
            if left == 0:
                break
    picked = [rng.choice(m, size=q, replace=False) for m, q in zip(members, quota) if q]
    return np.sort(np.concatenate(picked)) if picked else np.arange(0)


def vectors_digest(vectors) -> str:
    x = np.ascontiguousarray(np.asarray(vectors, dtype=np.float32))
    digest = hashlib.sha256(str(x.shape).encode())
    digest.update(x.data)
    return digest.hexdigest()


def cache_key(vectors, method: str, dims: int, params: Optional[dict], seed: int) -> str:
    """A name for one projection: the same vectors, method, dimensions, parameters and seed give the same key."""
    recipe = json.dumps({"method": method, "dims": dims, "params": full_params(method, params), "seed": seed},
                        sort_keys=True)
    return hashlib.sha256((vectors_digest(vectors) + recipe).encode()).hexdigest()[:32]


class ProjectionCache:
    """Projections kept in memory by cache_key(), the least recently used dropped first; thread-safe.

    (Not functools.lru_cache: the Explore page asks whether a map is kept before it shows a progress bar.)
    """

    def __init__(self, max_entries: int = 16):
        self.max_entries = max_entries
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Optional[np.ndarray]:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
            return self._items.get(key)

    def put(self, key: str, coords: np.ndarray) -> None:
        with self._lock:
            self._items[key] = coords
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)


if __name__ == "__main__":  # the t-SNE child process (see _tsne)
    if len(sys.argv) == 8 and sys.argv[1] == "tsne":
        _tsne_child(*sys.argv[2:])
    else:
        sys.exit("usage: python -m siamese_core.maps.projection tsne VECTORS.npy COORDS.npy DIMS PERPLEXITY MAX_ITER SEED")
