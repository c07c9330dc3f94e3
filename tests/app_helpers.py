"""Helpers for driving the app with Streamlit's AppTest (no browser): real widgets, real runs, no JavaScript."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

from streamlit.testing.v1 import AppTest

from conftest import ROOT

TIMEOUT = 60


def open_page(page: str) -> AppTest:
    """The whole app (sidebar and navigation included), switched to one page."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    if page != "home":
        at.switch_page(f"app_pages/{page}/page.py").run()
    assert not at.exception, at.exception
    return at


def zip_of(folder: Path, wrap: str = "") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"{wrap}{path.relative_to(folder)}")
    return buffer.getvalue()


def by_key(elements, prefix: str):
    return next(e for e in elements if e.key and e.key.startswith(prefix))


def map_data(at) -> tuple[dict, dict]:
    """(POINTS, FIGURE) of the map page the iframe holds."""
    frames = at.get("iframe")
    assert len(frames) == 1
    page = frames[0].proto.srcdoc
    points = json.loads(re.search(r"const POINTS = (.*);\n", page).group(1))
    figure = json.loads(re.search(r"const FIGURE = (.*);\n", page).group(1))
    return points, figure


def captions(at) -> str:
    return "\n".join(c.value for c in at.caption)
