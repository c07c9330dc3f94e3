"""Verify: two images in, a plain verdict out; many pairs from a file; the most similar images."""

import streamlit as st

from app_pages.shared.models import load_model, model_picker
from app_pages.verify import batch, pair, similar

st.title("Verify")
st.caption("Give the model two images: it says whether they show the same thing, and how sure it is.")

choice = model_picker("verify", allow_upload=True)
model = load_model(choice)
if model is None:
    st.stop()

pair_tab, many_tab, similar_tab = st.tabs(["Check a pair", "Check many pairs", "Find similar"])
# Every tab runs on every rerun (Streamlit draws them all): none may stop the script.
with pair_tab:
    threshold = pair.show(model, choice)
with many_tab:
    batch.show(model, choice, threshold)  # the pair tab's slider sets the verdicts here too
with similar_tab:
    similar.show(model, choice)
