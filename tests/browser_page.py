"""What the browser tests and benchmarks/classroom.py both need of a Streamlit page in Chromium: the browser's
flags (offline, headless, no sandbox in a container) and the script that says the app is idle. A plain module:
tests/e2e/conftest.py and the benchmark (which puts tests/ on sys.path) import it."""

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]

# True while the app is connected, its script is not running, and no "Running..." widget shows.
# stApp carries data-test-script-state ("initial" before the first run, then "running",
# "rerunRequested", "stopRequested", "notRunning", "compilationError") and
# data-test-connection-state ("CONNECTED" once the websocket is up).
APP_IDLE_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app) return false;
  if (app.getAttribute('data-test-connection-state') !== 'CONNECTED') return false;
  const state = app.getAttribute('data-test-script-state');
  if (state !== 'notRunning' && state !== 'compilationError') return false;
  for (const w of document.querySelectorAll('[data-testid="stStatusWidget"]')) {
    if (w.offsetParent !== null && /running|stopping/i.test(w.innerText || '')) return false;
  }
  return true;
}"""
