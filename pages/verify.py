"""Verify: two images in, a plain verdict out; many pairs from a file; the most similar images."""

import streamlit as st

from pages import ui, verify_batch, verify_pair, verify_similar

st.title("Verify")
st.caption("Give the model two images: it says whether they show the same thing, and how sure it is.")

choice = ui.model_picker("verify", allow_upload=True)
model = ui.load_model(choice)
if model is None:
    st.stop()

pair_tab, many_tab, similar_tab = st.tabs(["Check a pair", "Check many pairs", "Find similar"])
# Every tab runs on every rerun (Streamlit draws them all): none may stop the script.
with pair_tab:
    verify_pair.show(model, choice)
with many_tab:
    verify_batch.show(model, choice)
with similar_tab:
    verify_similar.show(model, choice)
