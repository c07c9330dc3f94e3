"""Evaluate: how good is this model, and where does it fail. The figures come from siamese_core.evaluation.evaluate."""

import streamlit as st

from app_pages.evaluate import compare as evaluate_compare
from app_pages.evaluate import data as evaluate_data
from app_pages.evaluate import figures as evaluate_figures
from app_pages.evaluate import gallery as evaluate_gallery
from app_pages.evaluate import reid as evaluate_reid
from app_pages.evaluate import retrieval as evaluate_retrieval
from app_pages.shared.models import load_model, model_picker

st.title("Evaluate")
st.caption("How good is this model, and where does it fail? It scores pairs of images it did not train on; "
           "every figure below comes from those scores, and the threshold slider moves them all together.")

choice = model_picker("evaluate")
model = load_model(choice)
if model is None:
    st.stop()
eval_set = evaluate_data.pick_set(model)
with st.expander("Pairs to score"):
    left, middle, right = st.columns(3)
    n_pairs = left.number_input("Pairs", 20, 20000, 1000, step=100, key="eval-pairs",
                                help="Half same, half different, drawn at random (each pair once).")
    seed = middle.number_input("Seed", 0, 10**6, 0, key="eval-seed",
                               help="The same seed draws the same pairs, so evaluations can be compared.")
    sequential = right.toggle("Sequential pairs (0,1), (2,3), ...", key="eval-sequential",
                              help="Neighbours in file order, as the classic digit script tested; how many are "
                                   "'same' depends on that order.")

evaluation = None
if eval_set is not None:
    evaluation = evaluate_data.scored(model, choice, eval_set, int(n_pairs), int(seed), sequential)
if evaluation is not None:
    kfold = evaluation.kfold(evaluate_figures.FOLDS, int(seed))
    identity = f"{choice.key}|{choice.version}|{eval_set.path}|{n_pairs}|{seed}|{sequential}"
    threshold = evaluate_figures.threshold_controls(evaluation, identity, kfold)

tabs = st.tabs(["Figures", "Where it fails", "Retrieval", "Compare models"])
if evaluation is not None:
    with tabs[0]:
        evaluate_figures.show(evaluation, threshold, kfold)
    with tabs[1]:
        evaluate_gallery.show(evaluation, threshold.value, model, choice.version)
    with tabs[2]:
        evaluate_retrieval.show(evaluation)
        evaluate_reid.show(evaluation)
else:
    for tab in tabs[:3]:
        tab.info("Choose an evaluation set above first.")
with tabs[3]:
    evaluate_compare.show(eval_set, int(n_pairs), int(seed), sequential)
