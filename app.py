"""Siamese Studio: the browser app. Entry point: `streamlit run app.py`.

Pages live in pages/ and stay thin: widgets and layout, calling into siamese_core.
Nothing heavy (torch, timm) is imported here, so the first page is up in seconds.
"""

import streamlit as st

from pages import ui

st.set_page_config(page_title="Siamese Studio", page_icon="🐈", layout="wide")

pages = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/train.py", title="Train", icon="🏋️"),
    st.Page("pages/runs.py", title="Runs", icon="📈"),
    st.Page("pages/verify.py", title="Verify", icon="🔍"),
    st.Page("pages/explore.py", title="Explore", icon="🧭"),
    st.Page("pages/evaluate.py", title="Evaluate", icon="🎯"),
]
page = st.navigation(pages)
ui.sidebar()
page.run()
