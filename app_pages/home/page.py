"""Home: what a Siamese network is, what each page does, and a first try that works offline."""

import streamlit as st

from app_pages.shared.icons import ICONS

st.title("Siamese Studio")
st.markdown(
    """
A **Siamese network** learns whether two images show the *same* thing: the same person, the same digit,
the same signature. Both images go through **one shared network**, which turns each into a list of numbers
(an *embedding*); the network then compares the two lists. Because it learns what "same" looks like rather
than a fixed list of classes, it can compare images of people or objects it has never seen.
"""
)

st.subheader("Try it now")
st.markdown(
    """
1. **Train** a small network on the built-in handwritten digits: the *Quick* preset trains for one minute (it ends within it),
   needs no download, and draws its learning curves as it goes.
2. **Verify**: pick two digits (or upload two images) and get *Same* or *Different*, with a score.
3. **Explore**: turn a 3D map of the digits as the network sees them; each digit gathers in its own cloud.
4. **Evaluate**: see how often it is right, where it goes wrong, and what moving the threshold changes.

No time to train? A **demo model**, trained on the same digits, is ready on *Verify*, *Explore* and *Evaluate*:
on *Verify*, pick **Draw** and write two digits with the mouse or a finger.

No data at hand? On *Train*, pick **Make one here**: name a class per person or object, take about ten webcam
pictures of each, and train on them.
"""
)
train, verify, explore, evaluate = st.columns(4)
train.page_link("app_pages/train/page.py", label="Train on digits", icon=ICONS["train"])
verify.page_link("app_pages/verify/page.py", label="Verify two digits", icon=ICONS["verify"])
explore.page_link("app_pages/explore/page.py", label="Explore the 3D map", icon=ICONS["explore"])
evaluate.page_link("app_pages/evaluate/page.py", label="Evaluate a model", icon=ICONS["evaluate"])

st.subheader("The pages")
st.markdown(
    """
| page | what it does |
|---|---|
| **Train** | pick images (built-in digits, MNIST, a zip of class folders, a triplet CSV) or make a data set right there with the webcam or image files; pick a model, and watch it learn, the map of its images forming epoch by epoch; stop it at any time |
| **Runs** | every training run: its curves and figures; download its model, for this app or for other apps (ONNX, with a model card), or delete it |
| **Verify** | two images in (or two digits drawn on pads), a verdict out: same or different, with a score; *Why this verdict?* colours the parts of each image that made them look alike or different; many pairs at once; the most similar images |
| **Explore** | the images as the model places them, in 3D: hover a point to see its image; colour by class, folder or your own attributes; search; show one image with its nearest neighbours; watch the map form epoch by epoch |
| **Evaluate** | how good a model is and where it fails: accuracy, precision, recall, the ROC curve, its mistakes and why |

The same work runs without a browser: `python -m siamese_core train | eval | verify | embed | similar | export`.
"""
)
