import streamlit as st

st.title("Siamese Studio")
st.markdown(
    """
A **Siamese network** learns whether two images show the *same* thing — the same person, the same
digit, the same signature — by passing both through one shared network and comparing what comes out.
It never needs to have seen that person or digit before: it learns what "same" looks like.

**What you can do here today**

- **Train** from the command line on the built-in handwritten digits (about 20 seconds, no download):
  `python -m siamese_core train --dataset digits -b convnet -o runs/demo -e 5`
- **Watch** your runs on the *Runs* page: their state and accuracy, epoch by epoch.
- **Check a pair** of images with a trained model:
  `python -m siamese_core verify -c runs/demo/checkpoints/best.pt first.png second.png`

Training, verifying and exploring in the browser are on their way.
"""
)
