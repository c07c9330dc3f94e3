"""Siamese Studio: the browser app. Entry point: `streamlit run app.py`.

Each page lives in its own folder, app_pages/<page>/ (page.py and its parts), what pages share in
app_pages/shared/; they stay thin: widgets and layout, calling into siamese_core.
Nothing heavy (torch, timm) is imported here, so the first page is up in seconds.
"""

import logging

import streamlit as st

from app_pages.shared import runs
from app_pages.shared.icons import ICONS
from app_pages.shared.models import keep_in_url
from app_pages.shared.paths import TAB_ICON
from app_pages.shared.sidebar import sidebar
from siamese_core.errors import plain_words

st.set_page_config(page_title="Siamese Studio", page_icon=str(TAB_ICON), layout="wide")  # a local file: offline

pages = [
    st.Page("app_pages/home/page.py", title="Home", url_path="home", icon=ICONS["home"], default=True),
    st.Page("app_pages/train/page.py", title="Train", url_path="train", icon=ICONS["train"]),
    st.Page("app_pages/runs/page.py", title="Runs", url_path="runs", icon=ICONS["runs"]),
    st.Page("app_pages/verify/page.py", title="Verify", url_path="verify", icon=ICONS["verify"]),
    st.Page("app_pages/explore/page.py", title="Explore", url_path="explore", icon=ICONS["explore"]),
    st.Page("app_pages/evaluate/page.py", title="Evaluate", url_path="evaluate", icon=ICONS["evaluate"]),
]
page = st.navigation(pages)


def guarded(part, name: str) -> None:
    """The one error boundary: what no page caught is a sentence here, the traceback only in the server's log."""
    try:
        part()
    except Exception as exc:  # noqa: BLE001  Streamlit's rerun and stop are BaseExceptions: they pass through
        logging.getLogger("siamese_core").exception("%s failed", name)
        st.error(plain_words(exc))


runs.load()  # once per page load: moves the queue on, then lists the runs the sidebar and the page show
guarded(keep_in_url, "The model in the URL")  # before the sidebar: a reload reads the model from the URL
guarded(sidebar, "The sidebar")  # a sidebar that fails leaves the page itself working
guarded(page.run, f"The {page.title} page")
