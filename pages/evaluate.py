"""Evaluate: how good is this model, and where does it fail. (Being built: issue 6.)"""

import streamlit as st

st.title("Evaluate")
st.info("This page is being built.")
