"""Browser (end-to-end) tests: a real `streamlit run app.py` server driven by headless Chromium.

Fixtures
    app_server  (session)  the running app: .url .port .runs_dir .started_at .log_path, .log()
    cold_app_server (function) a server of the test's own, started for it, no page opened on it yet
    browser     (session)  a Playwright Chromium Browser (headless)
    page        (function) a fresh Page, viewport 1400x900, default timeout 30 s; on failure a
                           screenshot lands in test-artifacts/screenshots/FAILED-<test>.png
Helpers
    find_chromium(), screenshot(page, name), wait_for_app(page), assert_no_exception(page),
    read_server_log(server), nav_link_label(link) with NAV_LINKS

Chromium is looked for in $SIAMESE_CHROMIUM, /usr/bin/chromium, /usr/bin/chromium-browser,
/usr/bin/google-chrome, then Playwright's own download (`python -m playwright install chromium`).
Without any, the tests are skipped -- except under CI (env CI non-empty), where that is a failure.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from browser_page import APP_IDLE_JS, CHROMIUM_ARGS
from conftest import stop_all_runs  # tests/conftest.py: tests/ is on sys.path, as for every test module

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
SERVER_START_TIMEOUT_S = 60
PAGE_TIMEOUT_MS = 30_000
HOW_TO_GET_A_BROWSER = (
    "no Chromium could be launched for the browser tests. Get one with "
    "`python -m playwright install chromium` (or `apt-get install chromium`), "
    "or point SIAMESE_CHROMIUM at a Chromium/Chrome executable."
)


# --------------------------------------------------------------------------- marker

def pytest_collection_modifyitems(config, items):
    """Every test under tests/e2e gets the `browser` marker (deselect with `-m "not browser"`), and `slow`: a
    browser test takes seconds, so `-m "not slow"` (the fast inner loop) leaves them out too."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item, so the `page` fixture knows whether the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


# --------------------------------------------------------------------------- browser discovery

def find_chromium() -> str | None:
    """A Chromium executable to use, or None for "Playwright's own downloaded browser, if installed"."""
    env = os.environ.get("SIAMESE_CHROMIUM")
    if env:
        return env
    for candidate in CHROMIUM_CANDIDATES:
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _no_browser(reason: str):
    message = f"{HOW_TO_GET_A_BROWSER} ({reason})"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:  # requirements-dev.txt not installed
        _no_browser(f"playwright is not installed: {e}; `pip install -r requirements-dev.txt`")
    with sync_playwright() as pw:
        executable = find_chromium()
        attempts = [executable, None] if executable else [None]
        errors = []
        launched = None
        for path in attempts:
            try:
                launched = pw.chromium.launch(headless=True, executable_path=path, args=CHROMIUM_ARGS)
                break
            except Exception as e:  # noqa: BLE001 - any launch failure means "try the next one"
                errors.append(f"{path or 'playwright-managed chromium'}: {str(e).splitlines()[0]}")
        if launched is None:
            _no_browser("; ".join(errors))
        yield launched
        launched.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(PAGE_TIMEOUT_MS)
    yield pg
    failed = any(getattr(request.node, f"rep_{when}", None) is not None
                 and getattr(request.node, f"rep_{when}").failed for when in ("setup", "call"))
    if failed:
        try:
            screenshot(pg, f"FAILED-{_safe_name(request.node.name)}")
        except Exception as e:  # noqa: BLE001 - a failed screenshot must not hide the real failure
            print(f"could not save failure screenshot: {e}", file=sys.stderr)
    context.close()


# --------------------------------------------------------------------------- the app server

@dataclass
class AppServer:
    url: str
    port: int
    runs_dir: Path
    started_at: float  # time.monotonic() just before the server process was started
    log_path: Path
    process: subprocess.Popen

    def log(self) -> str:
        return read_server_log(self)


def read_server_log(server: AppServer, tail_chars: int | None = None) -> str:
    """The Streamlit server's stdout+stderr so far (or its last `tail_chars` characters)."""
    try:
        text = server.log_path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return text[-tail_chars:] if tail_chars else text


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200 and response.read().decode().strip() == "ok"
    except OSError:
        return False


def _stop(process: subprocess.Popen):
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


@contextlib.contextmanager
def _serve(runs_dir: Path, log_path: Path):
    """A fresh `streamlit run app.py` on a free port, up and healthy; stopped (with any run it started) on exit."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    # No UMAP warm-up: compiling it in the background slows the server's stop by seconds, and the tests use PCA.
    env = {**os.environ, "SIAMESE_RUNS_DIR": str(runs_dir), "PYTHONUNBUFFERED": "1", "SIAMESE_WARM_UMAP": "0"}
    command = [sys.executable, "-m", "streamlit", "run", "app.py",
               "--server.headless", "true", "--server.port", str(port),
               "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    with open(log_path, "w") as log:
        started_at = time.monotonic()
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    server = AppServer(url, port, runs_dir, started_at, log_path, process)
    try:
        deadline = started_at + SERVER_START_TIMEOUT_S
        while not _healthy(url):  # /_stcore/health opens no app session: the app itself stays cold
            if process.poll() is not None:
                pytest.fail(f"streamlit exited with code {process.returncode} before it was up; log:\n"
                            f"{read_server_log(server, 4000)}", pytrace=False)
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit not healthy at {url} after {SERVER_START_TIMEOUT_S} s; log tail:\n"
                            f"{read_server_log(server, 4000)}", pytrace=False)
            time.sleep(0.1)
        yield server
    finally:
        _stop(process)
        stop_all_runs(runs_dir)  # training outlives the server by design; not the test session


@pytest.fixture(scope="session")
def app_server(tmp_path_factory):
    """The app's server shared by the browser tests."""
    ARTIFACTS.mkdir(exist_ok=True)
    with _serve(tmp_path_factory.mktemp("e2e-runs"), ARTIFACTS / "streamlit-server.log") as server:
        yield server


@pytest.fixture
def cold_app_server(tmp_path, request):
    """A server of its own that no page has been opened on yet: for what only a cold server's first run shows."""
    ARTIFACTS.mkdir(exist_ok=True)
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    with _serve(runs_dir, ARTIFACTS / f"streamlit-server-{_safe_name(request.node.name)}.log") as server:
        yield server


# --------------------------------------------------------------------------- page helpers

def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "page"


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot as test-artifacts/screenshots/<name>.png and return its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{_safe_name(name)}.png"
    # Streamlit scrolls inside its own container, so full_page alone stops at the window's height:
    # grow the window to the content for the shot, then put it back.
    viewport = page.viewport_size
    height = page.evaluate("() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], "
                           "[data-testid=stAppViewContainer], section')].map(e => e.scrollHeight), 0)")
    page.set_viewport_size({"width": viewport["width"], "height": max(viewport["height"], min(height, 6000))})
    try:
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.set_viewport_size(viewport)
    return path


def wait_for_app(page, timeout_s: float = 30, settle_s: float = 0.5):
    """Wait until Streamlit has finished running the page's script (and stayed idle `settle_s`).

    The settle period covers reruns that start right after a run ends (navigation, st.rerun).
    """
    page.wait_for_selector('[data-testid="stApp"]', state="attached", timeout=timeout_s * 1000)
    deadline = time.monotonic() + timeout_s
    idle_since = None
    while True:
        if page.evaluate(APP_IDLE_JS):
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since >= settle_s:
                return
        else:
            idle_since = None
        if time.monotonic() > deadline:
            app = page.query_selector('[data-testid="stApp"]')
            state = app and (app.get_attribute("data-test-script-state"),
                             app.get_attribute("data-test-connection-state"))
            raise AssertionError(f"Streamlit app at {page.url} still busy after {timeout_s} s "
                                 f"(script state, connection state: {state})")
        page.wait_for_timeout(50)


NAV_LINKS = '[data-testid="stSidebarNav"] a'  # the sidebar navigation's page links


def nav_link_label(link) -> str:
    """A nav link's text without its icon: the page title as given to st.Page."""
    label = link.locator('[data-testid="stMarkdownContainer"]')
    return (label.first.inner_text() if label.count() else link.inner_text()).strip()


def sidebar_text(page) -> str:
    """The sidebar's words, with what its boxes show (the model in use is a select box: its value is no text)."""
    sidebar = page.locator('[data-testid="stSidebar"]')
    shown = sidebar.locator('[data-testid="stSelectbox"]').evaluate_all(
        "boxes => boxes.map(b => [...b.querySelectorAll('input')].map(i => i.value || i.placeholder || '')"
        ".concat([...b.querySelectorAll('[value]')].map(e => e.getAttribute('value'))).join(' '))")
    return sidebar.inner_text() + "\n" + "\n".join(shown)


def assert_no_exception(page):
    """Fail if Streamlit shows an exception (a traceback box) on the page."""
    boxes = page.locator('[data-testid="stException"]')
    if boxes.count():
        texts = "\n---\n".join(boxes.all_inner_texts())
        raise AssertionError(f"the page at {page.url} shows {boxes.count()} exception(s):\n{texts}")


def start_training(page, runs_dir, timeout: float = 60.0) -> Path:
    """Click Start on the Train page and wait for the new run's folder (the page may still show an older,
    recently finished run, so its text alone does not say the click was handled). Returns the new run."""
    before = {p.parent for p in Path(runs_dir).glob("*/status.json")}
    page.get_by_role("button", name="Start training").click()
    deadline = time.monotonic() + timeout
    while True:
        new = {p.parent for p in Path(runs_dir).glob("*/status.json")} - before
        if new:
            return new.pop()
        assert time.monotonic() < deadline, "Start training made no run"
        time.sleep(0.2)


def set_epochs(page, epochs: int) -> None:
    """On the Train page: open Advanced settings, train for a number of epochs (not the preset's time), set it."""
    page.get_by_text("Advanced settings").click()
    page.get_by_text("Train for a number of epochs instead").click()
    wait_for_app(page)
    field = page.get_by_label("Epochs", exact=True)
    field.fill(str(epochs))
    field.press("Enter")
    wait_for_app(page)
