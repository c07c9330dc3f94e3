"""A class on one server: N students at once against one `streamlit run app.py` (issue 24, item 12).

One server per N (headless, a free port, a temporary runs folder: no user run is touched; so the demo model is
the model in use), one Chromium, N browser contexts at once (Playwright for Python). Each student does what a
student does in a lesson, through the sidebar as a person would, in one browser session:

  home     open the app (Home) until its script has run
  verify   open Verify until the verdict on the two default samples shows
  try      click "Try: different digits" until the "Different digits" verdict shows
  draw     switch image A to Draw, draw a 3 with the mouse; timed from the last stroke's release until the verdict
           on the drawing shows (the strokes themselves are the student's time, not the server's)
  explore  open Explore until the map's plot is drawn in its iframe

Students start at a random moment in the first 2 s (people do not click in the same millisecond); nothing else
is staggered. An error is an action that timed out or a page showing a traceback or exception text.

Memory: the server's resident memory summed over its process tree, sampled every 0.2 s (psutil when installed,
else /proc), its peak above its idle level (measured once the server is up, before any page is opened).

The browser runs on the same machine as the server, so N Chromium pages (each parsing Streamlit's and plotly's
JavaScript, drawing WebGL in software) compete with the server for the CPU: the latencies are an upper bound of what
students on their own computers would see. The table says whose the time was: the CPU seconds of the server's
process tree and of the browser. `--browser-nice 19` runs Chromium at the lowest CPU priority.

    python benchmarks/classroom.py [--sessions 1 10 30] [--timeout 180] [--screenshot DIR] [--browser-nice 0]
    python benchmarks/classroom.py --sessions 1 3            # a check in a few minutes
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT / "tests"))  # drawn_digits, browser_page: as the browser tests

from bench_utils import load_average, print_table  # noqa: E402
from browser_page import APP_IDLE_JS, CHROMIUM_ARGS  # noqa: E402
from drawn_digits import points  # noqa: E402

ACTIONS = ["home", "verify", "try", "draw", "explore"]
MAP_FRAME = 'iframe[title*="embedding map"]'
NAV = '[data-testid="stSidebarNav"] a'
PROBLEM_TEXT = ("Traceback (most recent call last)", "Exception:", "Error:")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 10, 30], metavar="N",
                        help="students at once, one server run per number (default 1 10 30)")
    parser.add_argument("--timeout", type=float, default=180.0, metavar="S",
                        help="an action taking longer is an error (default 180 s)")
    parser.add_argument("--screenshot", type=Path, default=None, metavar="DIR",
                        help="save the first and the last student's Explore and Verify pages there, per N")
    parser.add_argument("--browser-nice", type=int, default=0, metavar="N",
                        help="CPU priority of Chromium (a nice value; default 0: the server's): 19 lets 30 pages "
                             "drawing on the same cores slow the server less, but on a machine busy with other work "
                             "it starves the pages themselves")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


# ------------------------------------------------------------------ the server and its memory

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def start_server(runs_dir: Path, log_path: Path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "SIAMESE_RUNS_DIR": str(runs_dir), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
               "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while not healthy(url):
        if process.poll() is not None or time.monotonic() > deadline:
            stop_server(process)
            raise SystemExit(f"the server did not start; its log: {log_path}")
        time.sleep(0.2)
    return process, url


def stop_server(process) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def tree_rss_bytes(pid: int) -> int:
    """Resident memory of a process and all its descendants."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            root = psutil.Process(pid)
            procs = [root] + root.children(recursive=True)
        except psutil.NoSuchProcess:
            return 0
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    total, todo = 0, [pid]
    page = os.sysconf("SC_PAGE_SIZE")
    while todo:
        current = todo.pop()
        todo += children.get(current, [])
        try:
            with open(f"/proc/{current}/statm") as fh:
                total += int(fh.read().split()[1]) * page
        except (OSError, IndexError, ValueError):
            pass
    return total


def descendants(pid: int) -> set:
    """A process and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    children.setdefault(int(fh.read().rsplit(")", 1)[1].split()[1]), []).append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    found, todo = set(), [pid]
    while todo:
        current = todo.pop()
        found.add(current)
        todo += children.get(current, [])
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used (its own, not its children's)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


class MemorySampler(threading.Thread):
    """Every 0.2 s: the server tree's resident memory (`peak`: the largest seen), and the CPU seconds used by the
    server's tree and by the rest of this script's descendants (the browser: Chromium and Playwright's driver),
    each process's last reading kept, so a page closed meanwhile still counts."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self._done = pid, 0, threading.Event()
        self._cpu: dict = {}  # pid -> (is the server's, CPU seconds at the first reading, at the last)
        self._at_start = descendants(os.getpid())

    def run(self):
        while not self._done.is_set():
            self.peak = max(self.peak, tree_rss_bytes(self.pid))
            server = descendants(self.pid)
            for pid in descendants(os.getpid()) - {os.getpid()}:
                used = cpu_seconds(pid)
                first = self._cpu.get(pid, (None, used, used))[1]
                self._cpu[pid] = (pid in server, first, used)
            self._done.wait(0.2)

    def cpu(self, of_server: bool) -> float:
        """CPU seconds used while sampling (a process started meanwhile: all it used)."""
        return sum(last - (first if pid in self._at_start else 0.0)
                   for pid, (server, first, last) in self._cpu.items() if server == of_server)

    def stop(self):
        self._done.set()
        self.join()


# ------------------------------------------------------------------ one student

async def wait_idle(page, timeout_s: float, settle_s: float = 0.3) -> None:
    deadline, idle_since = time.monotonic() + timeout_s, None
    while True:
        if await page.evaluate(APP_IDLE_JS):
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= settle_s:
                return
        else:
            idle_since = None
        if time.monotonic() > deadline:
            raise TimeoutError("the page stayed busy")
        await asyncio.sleep(0.1)


async def full_screenshot(page, path: Path) -> None:
    """The whole page (as tests/e2e/conftest.py's screenshot: the window grown to the content for the shot)."""
    height = await page.evaluate("() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
                                 "[data-testid=stAppViewContainer], section')].map(e => e.scrollHeight), 0)")
    await page.set_viewport_size({"width": 1400, "height": max(900, min(height, 6000))})
    try:
        await page.screenshot(path=str(path), full_page=True)
    finally:
        await page.set_viewport_size({"width": 1400, "height": 900})


async def problem_on_page(page) -> str:
    """Exception boxes or traceback words on the page (the map's iframe included), '' when none."""
    if await page.locator('[data-testid="stException"]').count():
        return "an exception box"
    body = await page.locator("body").inner_text()
    found = [t for t in PROBLEM_TEXT if t in body]
    return f"the words {found[0]!r}" if found else ""


async def student(browser, url: str, number: int, timeout_s: float, rng: random.Random, shots: Path | None,
                  errors_shots: Path | None):
    """One student's lesson: {action: seconds or None (an error)} and the errors' reasons."""
    times: dict[str, float | None] = {}
    reasons: list[str] = []
    await asyncio.sleep(rng.uniform(0, 2))  # students do not click in the same millisecond
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    page.set_default_timeout(timeout_s * 1000)

    async def timed(name, action):
        started = time.monotonic()
        try:
            counted_from = await asyncio.wait_for(action(), timeout_s)  # an action may start its clock later
            taken = time.monotonic() - (counted_from or started)
            problem = await problem_on_page(page)
            if problem:
                reasons.append(f"student {number}, {name}: {problem}")
                times[name] = None
            else:
                times[name] = taken
        except Exception as exc:  # noqa: BLE001  a timeout or a missing element: this action failed
            times[name] = None
            words = (str(exc).splitlines() or ["no message"])[0][:120]
            reasons.append(f"student {number}, {name}: {type(exc).__name__}: {words}")
            if errors_shots is not None:
                with contextlib.suppress(Exception):
                    await full_screenshot(page, errors_shots / f"error-student{number:02d}-{name}.png")

    pair = page.get_by_role("tabpanel", name="Check a pair")

    async def home():
        await page.goto(url)
        await page.get_by_role("heading", name="Siamese Studio").first.wait_for()
        await wait_idle(page, timeout_s)

    async def verify():
        await page.locator(NAV).filter(has_text="Verify").click()
        await pair.locator('[data-testid="stAlertContentSuccess"], [data-testid="stAlertContentInfo"]') \
            .filter(has_text="digit").first.wait_for()
        await wait_idle(page, timeout_s)

    async def try_pair():
        await pair.get_by_role("button", name="Try: different digits").click()
        await pair.locator('[data-testid="stAlertContentInfo"]').filter(has_text="Different digits").first.wait_for()
        await wait_idle(page, timeout_s)

    async def draw():
        await pair.get_by_role("radiogroup", name="Image A").get_by_text("Draw").click()
        pad = pair.locator(".dc-container").first
        await pad.wait_for()
        await pair.get_by_text("Draw a digit on the pad.").wait_for()
        await wait_idle(page, timeout_s)
        await pad.scroll_into_view_if_needed()
        box = await pad.bounding_box()
        for stroke in points("3", box["width"]):
            (x, y), rest = stroke[0], stroke[1:]
            await page.mouse.move(box["x"] + x, box["y"] + y)
            await page.mouse.down()
            for x, y in rest:
                await page.mouse.move(box["x"] + x, box["y"] + y, steps=6)
            await page.mouse.up()
        released = time.monotonic()  # the strokes are the student's own time: the server's starts here
        await pair.locator('[data-testid="stAlertContentSuccess"], [data-testid="stAlertContentInfo"]') \
            .filter(has_text="digit").first.wait_for()
        await wait_idle(page, timeout_s)
        return released

    async def explore():
        await page.locator(NAV).filter(has_text="Explore").click()
        frame = page.frame_locator(MAP_FRAME)
        await frame.locator("body[data-ready='1'] .js-plotly-plot").wait_for()
        await wait_idle(page, timeout_s)

    await timed("home", home)
    await timed("verify", verify)
    await timed("try", try_pair)
    await timed("draw", draw)
    if shots is not None:
        await full_screenshot(page, shots / f"student{number:02d}-verify.png")
    await timed("explore", explore)
    if shots is not None:
        await full_screenshot(page, shots / f"student{number:02d}-explore.png")
    await context.close()
    return times, reasons


def niced_chromium(nice: int, folder: Path) -> str | None:
    """The Chromium to launch: /usr/bin/chromium if present, else Playwright's own; started through `nice` when
    `nice` is not 0 (a wrapper script: Playwright launches an executable)."""
    executable = "/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None
    if not nice:
        return executable
    if executable is None:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as pw:
            executable = pw.chromium.executable_path
    wrapper = folder / "chromium-niced"
    wrapper.write_text(f'#!/bin/sh\nexec nice -n {int(nice)} "{executable}" "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


async def lesson(url: str, n: int, timeout_s: float, seed: int, shots: Path | None, executable: str | None):
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(headless=True, executable_path=executable, args=CHROMIUM_ARGS)
        try:
            shot_of = lambda i: shots if shots is not None and i in (0, n - 1) else None  # noqa: E731
            return await asyncio.gather(*(student(browser, url, i, timeout_s, random.Random(seed * 1000 + i),
                                                  shot_of(i), shots) for i in range(n)))
        finally:
            await browser.close()


# ------------------------------------------------------------------ one class

def percentile(values: list, share: float) -> float:
    """Nearest-rank percentile: with 30 values, p95 is the 29th."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, -(-int(share * 100) * len(ordered) // 100) - 1))]


def one_class(n: int, args) -> dict:
    with tempfile.TemporaryDirectory(prefix="classroom-") as tmp:
        runs = Path(tmp) / "runs"
        runs.mkdir()
        log_path = Path(tmp) / "server.log"
        process, url = start_server(runs, log_path)
        try:
            time.sleep(1.0)
            idle = tree_rss_bytes(process.pid)
            sampler = MemorySampler(process.pid)
            sampler.start()
            shots = None
            if args.screenshot is not None:
                shots = args.screenshot / f"n{n}"
                shots.mkdir(parents=True, exist_ok=True)
            started = time.monotonic()
            executable = niced_chromium(args.browser_nice, Path(tmp))
            results = asyncio.run(lesson(url, n, args.timeout, args.seed, shots, executable))
            wall = time.monotonic() - started
            sampler.stop()
            log = log_path.read_text(errors="replace")
        finally:
            stop_server(process)
    reasons = [r for _, rs in results for r in rs]
    if "Traceback (most recent call last)" in log:
        last = log.split("Traceback (most recent call last)")[1]
        reasons.append("the server's log holds a traceback: " + last[-300:])
    return {"n": n, "results": results, "reasons": reasons, "idle": idle, "peak": sampler.peak,
            "server_cpu": sampler.cpu(True), "browser_cpu": sampler.cpu(False),
            "wall": wall, "log_traceback": "Traceback (most recent call last)" in log}


def main(argv=None) -> None:
    args = parse_args(argv)
    print(f"classroom: {args.sessions} students at once; load average before: {load_average()} "
          f"({os.cpu_count()} cores); the browser shares the machine with the server, at nice {args.browser_nice}")
    rows, summary = [], []
    for n in args.sessions:
        got = one_class(n, args)
        label = str(n)
        for action in ACTIONS:
            done = [t[action] for t, _ in got["results"] if t.get(action) is not None]
            errors = sum(1 for t, _ in got["results"] if t.get(action) is None)
            rows.append([label, action, f"{statistics.median(done):.2f}" if done else "-",
                         f"{percentile(done, 0.95):.2f}" if done else "-", errors])
        errors = sum(1 for t, _ in got["results"] for a in ACTIONS if t.get(a) is None)
        verdicts = [t[a] for t, _ in got["results"] for a in ("verify", "try", "draw") if t.get(a) is not None]
        summary.append([label, errors + got["log_traceback"],
                        f"{percentile(verdicts, 0.95):.2f}" if verdicts else "-",
                        f"{got['idle'] / 2**20:.0f}", f"{got['peak'] / 2**20:.0f}",
                        f"{(got['peak'] - got['idle']) / 2**20:.0f}", f"{got['wall']:.0f}",
                        f"{got['server_cpu']:.0f}", f"{got['browser_cpu']:.0f}"])
        for reason in got["reasons"][:10]:
            print(f"  error at N={label}: {reason}")
        print(f"  N={label} done in {got['wall']:.0f} s; load average now {load_average()}", flush=True)
    print("\nPer action, seconds (p95: nearest rank)")
    print_table(["students", "action", "median s", "p95 s", "errors"], rows, figures_from=2)
    print("\nPer class (verdict p95 over verify, try and draw; memory: the server's process tree)")
    print_table(["students", "errors", "verdict p95 s", "idle MB", "peak MB", "peak above idle MB", "wall s",
                 "server CPU s", "browser CPU s"], summary)
    print(f"\nload average after: {load_average()}")


if __name__ == "__main__":
    main()
