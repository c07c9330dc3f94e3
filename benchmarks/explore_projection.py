"""How fast the Explore page's map is: embed, project to 3D (PCA, UMAP cold and warm, t-SNE), the HTML
sent to the browser, and the time from a hover to the thumbnail showing in Chromium.

Run from the project root:  python benchmarks/explore_projection.py [--data ../shared/data/mnist]
                                [--tsne-all] [--no-browser] [--no-umap-cold]

For the built-in digits (1,797) and, when present, the 10,000 MNIST test digits (the original IDX
files in --data), with the demo model. UMAP "cold" is a fresh Python process's first fit (it pays
umap's import and numba's compiling); "after warm-up" is a fresh process that ran
projection.warm_umap() first, as the Explore page does when it opens; "warm" is a second fit.
The browser figures open the map's HTML from a file in headless Chromium (software WebGL, no GPU):
"ready" is from navigation to the plot drawn, "hover" is from the mouse event to the thumbnail's
image loaded, measured inside the page with performance.now(), median of 20 hovers over
different points.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_utils import OtherLoad, load_average, print_table  # noqa: E402

DEMO = ROOT / "assets" / "demo" / "digits-convnet.pt"

# A fresh process: import umap, optionally warm it, then fit twice (cold or warmed-up, then warm).
UMAP_CHILD = r"""
import json, sys, time
sys.path.insert(0, {root!r})
import numpy as np
t0 = time.perf_counter()
from siamese_core.maps import projection as P
P._import_umap()
imported = time.perf_counter() - t0
warm = None
if {warm}:
    warm = P.warm_umap(background=False)["seconds"]
x = np.load({vectors!r})
t1 = time.perf_counter(); P.project(x, "umap", 3, seed=0); first = time.perf_counter() - t1
t2 = time.perf_counter(); P.project(x, "umap", 3, seed=1); second = time.perf_counter() - t2
print(json.dumps({{"import": imported, "warm_up": warm, "first": first, "second": second}}))
"""



def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - started


def umap_in_fresh_process(vectors_path: Path, warm: bool) -> dict:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    code = UMAP_CHILD.format(root=str(ROOT), warm=warm, vectors=str(vectors_path))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=1800)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def browser_figures(html_path: Path, hovers: int = 20) -> dict:
    """(seconds to the plot drawn, median and 90th percentile ms from mouse move to thumbnail loaded)."""
    from playwright.sync_api import sync_playwright

    chromium = next((p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if os.path.exists(p)), None)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1200, "height": 720})
        started = time.perf_counter()
        page.goto(html_path.as_uri())
        page.wait_for_selector("body[data-ready='1']", timeout=120_000)
        ready = time.perf_counter() - started
        page.evaluate("""() => {
            window.__moved = 0; window.__lat = [];
            window.addEventListener('mousemove', () => { window.__moved = performance.now(); }, true);
            const thumb = document.getElementById('hover-thumb');
            thumb.addEventListener('load', () => { window.__lat.push(performance.now() - window.__moved); });
        }""")
        box = page.locator("#map").bounding_box()
        spots, seen = [], set()
        steps = 40
        for fy in np.linspace(0.2, 0.8, steps):
            for fx in np.linspace(0.2, 0.8, steps):
                x, y = box["x"] + box["width"] * fx, box["y"] + box["height"] * fy
                page.mouse.move(x, y)
                point = page.evaluate("document.getElementById('hover-panel').dataset.point")
                if point is not None and point not in seen:
                    seen.add(point)
                    spots.append((x, y))
                if len(spots) >= hovers:
                    break
            if len(spots) >= hovers:
                break
        page.evaluate("() => { window.__lat = []; }")
        for x, y in spots:
            page.mouse.move(x, y)
            page.wait_for_timeout(150)
        latencies = page.evaluate("window.__lat")
        browser.close()
    lat = np.array(latencies) if latencies else np.array([np.nan])
    return {"ready_s": ready, "hover_ms_median": float(np.median(lat)), "hover_ms_p90": float(np.percentile(lat, 90)),
            "hovers": len(latencies)}


def run_set(name: str, image_set, model, args, out: Path) -> list:
    from siamese_core.maps import embedding_map as M
    from siamese_core.maps import projection as P

    rows = []
    vectors, t = timed(M.embed_image_set, model, image_set)
    n = len(vectors)
    rows.append((name, "embed (demo model)", f"{n:,}", f"{t:.2f} s", f"{n / t:,.0f} images/s"))
    pca, t_pca = timed(P.project, vectors, "pca", 3)
    rows.append((name, "PCA 3D", f"{n:,}", f"{t_pca:.2f} s", "1.0x (baseline)"))
    vectors_path = out / f"{name}-vectors.npy"
    np.save(vectors_path, vectors)
    if not args.no_umap_cold:
        cold = umap_in_fresh_process(vectors_path, warm=False)
        rows.append((name, "UMAP 3D, cold (fresh process, first fit)", f"{n:,}", f"{cold['first']:.1f} s",
                     f"{cold['first'] / t_pca:,.0f}x; +{cold['import']:.1f} s import"))
    warmed = umap_in_fresh_process(vectors_path, warm=True)
    rows.append((name, "UMAP warm-up (warm_umap, once per process)", "4,200", f"{warmed['warm_up']:.1f} s",
                 "in the background"))
    rows.append((name, "UMAP 3D, after warm-up", f"{n:,}", f"{warmed['first']:.1f} s",
                 f"{warmed['first'] / t_pca:,.0f}x"))
    rows.append((name, "UMAP 3D, warm (second fit)", f"{n:,}", f"{warmed['second']:.1f} s",
                 f"{warmed['second'] / t_pca:,.0f}x"))
    sample = P.sample_per_class(image_set.labels, P.TSNE_SAMPLE)
    _, t = timed(P.project, vectors[sample], "tsne", 3)
    rows.append((name, f"t-SNE 3D, sample of {len(sample):,}", f"{len(sample):,}", f"{t:.1f} s", f"{t / t_pca:,.0f}x"))
    if args.tsne_all and len(sample) < n:
        _, t = timed(P.project, vectors, "tsne", 3)
        rows.append((name, "t-SNE 3D, all points", f"{n:,}", f"{t:.1f} s", f"{t / t_pca:,.0f}x"))

    def page(coords=pca):
        neighbours, distances = M.nearest_table(vectors)
        points = M.MapPoints(coords, M.label_names(image_set).tolist(), list(image_set.names),
                             M.thumbnail_uris(image_set, np.arange(n)), list(range(n)), neighbours, distances)
        return M.build_map_html(points, "digit", [str(d) for d in range(10)])

    M.plotly_js()  # read once per process, not part of a page's cost
    html, t = timed(page)
    html_path = out / f"{name}-map.html"
    html_path.write_text(html, encoding="utf-8")
    thumbs = len(html.encode()) - len(M.plotly_js().encode())
    rows.append((name, "map HTML: build (thumbnails, neighbours, JSON)", f"{n:,}", f"{t:.1f} s",
                 f"{len(html.encode()) / 2**20:.1f} MB ({len(M.plotly_js().encode()) / 2**20:.1f} MB plotly.js "
                 f"+ {thumbs / 2**20:.1f} MB points)"))
    if not args.no_browser:
        b = browser_figures(html_path)
        rows.append((name, "Chromium: page opened to plot drawn", f"{n:,}", f"{b['ready_s']:.1f} s", "software WebGL"))
        rows.append((name, "Chromium: hover to thumbnail shown, 3D", f"{n:,}", f"{b['hover_ms_median']:.1f} ms",
                     f"p90 {b['hover_ms_p90']:.1f} ms over {b['hovers']} hovers"))
        flat = out / f"{name}-map-2d.html"
        flat.write_text(page(P.project(vectors, "pca", 2)), encoding="utf-8")
        b = browser_figures(flat)
        rows.append((name, "Chromium: hover to thumbnail shown, 2D", f"{n:,}", f"{b['hover_ms_median']:.1f} ms",
                     f"p90 {b['hover_ms_p90']:.1f} ms over {b['hovers']} hovers"))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "mnist"),
                        help="folder holding the MNIST test IDX files")
    parser.add_argument("--tsne-all", action="store_true", help="also t-SNE every point (minutes for MNIST)")
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium figures")
    parser.add_argument("--no-umap-cold", action="store_true", help="skip the cold UMAP process")
    parser.add_argument("--only", choices=["digits", "mnist"], help="one image set only")
    args = parser.parse_args()

    import torch

    from siamese_core.data.sources import load_digits, load_mnist, mnist_parts_available
    from siamese_core.inference.model import SiameseModel

    model = SiameseModel.load(DEMO)
    sets = []
    if args.only in (None, "digits"):
        sets.append(("digits", load_digits(model.image_size, model.channels)))
    if args.only in (None, "mnist"):
        if "test" in mnist_parts_available(args.data):
            sets.append(("mnist", load_mnist(args.data, "test", model.image_size, model.channels)))
        else:
            print(f"MNIST test files not found in {args.data}: only the built-in digits are measured.")
    print(f"CPU: {os.cpu_count()} cores, torch threads {torch.get_num_threads()}; load average before: {load_average()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp, OtherLoad() as other:
        for name, image_set in sets:
            rows += run_set(name, image_set, model, args, Path(tmp))
    print_table(["images", "step", "points", "time", "notes"], rows, figures_from=2)
    print(f"\nOther processes kept {other} cores busy on average while this ran (figures are only comparable "
          f"near 0); load average after: {load_average()}.")


if __name__ == "__main__":
    main()
