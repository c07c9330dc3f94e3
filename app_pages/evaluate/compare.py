"""The Evaluate page's comparison: two or more models, their training curves and figures side by side."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app_pages.evaluate import data as evaluate_data
from app_pages.shared import state
from app_pages.shared.models import ModelChoice, load_model, model_choices
from app_pages.shared.text import plain
from siamese_core.runs.context import data_words
from siamese_core.runs.rundir import RunDir
from siamese_core.words import plotly_text

NO_BAR = {"displayModeBar": False}


def _epochs(choice: ModelChoice) -> list:
    if not choice.key.startswith("run:"):
        return []  # the demo model and uploaded checkpoints come without their run's curves
    return [r for r in RunDir(choice.path.parent.parent).read_metrics() if r.get("type") == "epoch"]


def _pc(share):
    """A share (0 to 1) as a percentage for the tables; None (an empty cell) where there is none."""
    return None if share is None or share != share else 100 * share


# Short headers over narrow columns, so a table of ten figures fits the page at 1,400 px instead of being
# cut on the right; each header's tooltip says in full what its figure is.
_HEADERS = {
    "accuracy at its threshold": ("accuracy", "Pairs judged right at the model's own saved threshold."),
    "10-fold accuracy": ("10-fold", "Accuracy with the threshold chosen on nine tenths of the pairs and scored on "
                                    "the rest, in turn: the fairest single figure to compare."),
    "ROC AUC": ("AUC", "Area under the ROC curve: 1 tells every pair apart, 0.5 is guessing."),
    "equal error rate": ("EER", "Equal error rate: where false accepts and false rejects are as many."),
    "true accepts at 1% false": ("TAR@1%", "Same pairs accepted at the threshold where 1% of different pairs are."),
    "precision at 1": ("P@1", "Retrieval: how often an image's nearest neighbour is of its class."),
    "MAP@R": ("MAP@R", "Retrieval: mean average precision over each image's R nearest neighbours."),
    "re-id rank-1": ("rank-1", "Re-identification: how often the first match from another camera is the person."),
    "re-id mAP": ("re-id mAP", "Re-identification: mean average precision over the gallery."),
    "threshold": ("threshold", "The score above which a pair is called the same."),
}


def _columns(table: pd.DataFrame, percent) -> dict:
    """Column settings for a comparison table: the model's name in full, pinned (it stays in view where a narrow
    screen scrolls the figures), the figures narrow with short headers and their meaning as a tooltip."""
    config = {"model": st.column_config.TextColumn("model", pinned=True)}
    for name in table.columns.drop("model", errors="ignore"):
        label, meaning = _HEADERS.get(name, (name, None))
        number_format = "%.1f%%" if name in percent else "%.3f" if name == "ROC AUC" else None
        if number_format or name in _HEADERS:
            config[name] = st.column_config.NumberColumn(label, format=number_format, width="small", help=meaning)
    return config


def curve_figures(curves: list) -> tuple:
    """(accuracy, loss) figures of [(model name, its epoch records)]: one line per model, named as its run (a
    person's words, so made inert: Plotly would render HTML in a legend)."""
    accuracy, loss = go.Figure(), go.Figure()
    for label, epochs in curves:
        if not epochs:
            continue
        x = [r["epoch"] for r in epochs]
        name = plotly_text(label)
        accuracy.add_trace(go.Scatter(x=x, y=[r.get("accuracy") for r in epochs], mode="lines+markers", name=name))
        loss.add_trace(go.Scatter(x=x, y=[r.get("train_loss") for r in epochs], mode="lines+markers", name=name))
    return accuracy, loss


def roc_trace(label: str, points: dict, auc: float):
    """One model's ROC curve, named as its run (made inert)."""
    return go.Scatter(x=points["fpr"], y=points["tpr"], mode="lines", name=plotly_text(f"{label} (AUC {auc:.3f})"))


def _curves(picked: list) -> None:
    accuracy, loss = curve_figures([(choice.label.split(" (")[0], _epochs(choice)) for choice in picked])
    if not accuracy.data:
        st.caption("No training curves to show: the demo model and uploaded checkpoints come without their run's "
                   "history.")
        return
    layout = {"height": 320, "margin": {"l": 10, "r": 10, "t": 30, "b": 10}, "xaxis": {"title": "epoch", "dtick": 1}}
    accuracy.update_layout(title="Validation accuracy per epoch", yaxis={"title": "accuracy", "tickformat": ".0%"},
                           **layout)
    loss.update_layout(title="Training loss per epoch", yaxis={"title": "loss"}, **layout)
    left, right = st.columns(2)
    left.plotly_chart(accuracy, key="eval-compare-accuracy", config=NO_BAR)
    right.plotly_chart(loss, key="eval-compare-loss", config=NO_BAR)
    st.caption("Each model on its own validation pairs, as it trained. Models trained on different data are not "
               "comparable here: evaluate them on one set below.")


def _saved_figures(picked: list) -> None:
    rows = []
    for choice in picked:
        model = load_model(choice)
        if model is None:
            continue
        m = model.checkpoint.get("metrics") or {}
        config = model.checkpoint.get("config") or {}
        rows.append({"model": choice.label.split(" (")[0], "backbone": model.spec.get("backbone"),
                     "mode": model.spec.get("mode"), "trained on": data_words(config) if config else "?",
                     "epoch": model.checkpoint.get("epoch"), "accuracy": _pc(m.get("accuracy")),
                     "precision": _pc(m.get("precision")), "recall": _pc(m.get("recall")), "ROC AUC": m.get("roc_auc"),
                     "threshold": _pc(model.threshold)})
    table = pd.DataFrame(rows)
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config=_columns(table, ("accuracy", "precision", "recall", "threshold")))
    st.caption("Figures saved with each model: its best epoch, on its own validation pairs, at its own threshold.")


def _on_one_set(picked: list, eval_set, n_pairs: int, seed: int, sequential: bool) -> None:
    label = ("Evaluate each on its own validation split" if eval_set.own_split
             else f"Evaluate them all on {plain(eval_set.label)}")
    if st.button(label, key="eval-compare-go"):
        st.session_state[state.EVAL_COMPARED] = [c.key for c in picked]
    if st.session_state.get(state.EVAL_COMPARED) != [c.key for c in picked]:
        return
    roc, rows = go.Figure(), []
    roc.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="guessing", line={"dash": "dash", "color": "#aaa"}))
    for choice in picked:
        model = load_model(choice)
        ev = evaluate_data.scored(model, choice, eval_set, n_pairs, seed, sequential) if model else None
        if ev is None:
            continue
        name = choice.label.split(" (")[0]
        at, kfold, points = ev.at(ev.model_threshold), ev.kfold(10), ev.roc(300)
        roc.add_trace(roc_trace(name, points, at["roc_auc"]))
        retrieval = ev.retrieval()
        rows.append({"model": name, "accuracy at its threshold": _pc(at["accuracy"]),
                     "10-fold accuracy": _pc(kfold["accuracy_mean"] if kfold else None), "ROC AUC": at["roc_auc"],
                     "equal error rate": _pc(ev.eer()["eer"]), "true accepts at 1% false": _pc(ev.tar(0.01)["tar"]),
                     "precision at 1": _pc(retrieval.get("precision_at_1")), "MAP@R": _pc(retrieval.get("map_at_r")),
                     **({"re-id rank-1": _pc(ev.reid["cmc"][1]), "re-id mAP": _pc(ev.reid["map"])} if ev.reid else {})})
    roc.update_layout(height=380, title="ROC curves", margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis={"title": "false accepts"}, yaxis={"title": "true accepts"})
    st.plotly_chart(roc, key="eval-compare-roc", config=NO_BAR)
    table = pd.DataFrame(rows)
    st.dataframe(table, hide_index=True, width="stretch",
                 column_config=_columns(table, [c for c in table.columns if c not in ("model", "ROC AUC")]))
    st.caption("Each model at its own saved threshold; '10-fold' accuracy chooses the threshold on part of the "
               "pairs and scores the rest, the fairest single figure to compare. Hover a header for its meaning.")


def show(eval_set, n_pairs: int, seed: int, sequential: bool) -> None:
    choices = model_choices()
    if len(choices) < 2:
        st.info("Only the demo model is here. Train a run on the Train page to compare it with the demo model.")
        return
    picked = st.multiselect("Models to compare", choices, format_func=lambda c: c.label, key="eval-compare",
                            placeholder="Pick two or more")
    if len(picked) < 2:
        st.caption("Pick two or more models to see them side by side.")
        return
    _curves(picked)
    _saved_figures(picked)
    if eval_set is not None:
        _on_one_set(picked, eval_set, n_pairs, seed, sequential)
