"""The Evaluate page's threshold and figures: numbers, ROC curve, score histograms, confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import plotly.graph_objects as go
import streamlit as st

from app_pages.shared import state
from siamese_core.words import plotly_text, plural

SAME_COLOUR, DIFFERENT_COLOUR, THRESHOLD_COLOUR = "#1f77b4", "#ff7f0e", "#c00000"
FOLDS = 10
FARS = {"0.1%": 0.001, "1%": 0.01, "10%": 0.1}
NO_BAR = {"displayModeBar": False}


@dataclass
class Threshold:
    value: float  # 0..1
    origin: str  # "model", "kfold" or "hand"
    words: str  # which set chose it, in plain words


def shown(x: float, percent: bool = True) -> str:
    """A figure for people: '98.3%' (or '0.999'), and 'n/a' where it is undefined (NaN)."""
    if x != x:
        return "n/a"
    return f"{100 * x:.1f}%" if percent else f"{x:.3f}"


def _percent(x: float) -> float:
    return round(100 * x, 1)


def threshold_controls(ev, identity: str, kfold: Optional[dict]) -> Threshold:
    """The threshold slider and its two shortcuts; says which set chose the threshold in use."""
    # Another model or set: start from the model's own threshold.
    if st.session_state.get(state.EVAL_THRESHOLD_FOR) != identity:
        st.session_state[state.EVAL_THRESHOLD_FOR] = identity
        st.session_state[state.EVAL_THRESHOLD] = _percent(ev.model_threshold)
        st.session_state[state.EVAL_THRESHOLD_ORIGIN] = "model"

    def set_to(value: float, origin: str):
        st.session_state[state.EVAL_THRESHOLD] = _percent(value)
        st.session_state[state.EVAL_THRESHOLD_ORIGIN] = origin

    other = next((p for p in ev.model_points if not p["verdict"]), None)  # the rare-same point, beside the verdict's
    left, middle, *others, right = st.columns([5, 2, 2, 2] if other else [5, 2, 2], vertical_alignment="bottom")
    chosen = left.slider("Threshold: the model says 'same' from this score up", 0.0, 100.0, step=0.1,
                         format="%.1f%%", key=state.EVAL_THRESHOLD,
                         on_change=lambda: st.session_state.update({state.EVAL_THRESHOLD_ORIGIN: "hand"}),
                         help="Move it to see every figure below change: a lower threshold accepts more pairs "
                              "as 'same' (fewer false rejects, more false accepts); a higher one the opposite.")
    middle.button(f"Model's own: {_percent(ev.model_threshold):.1f}%", key="eval-use-model-threshold",
                  on_click=set_to, args=(ev.model_threshold, "model"), width="stretch",
                  help="The threshold saved with the model when it was trained: the one its verdicts use.")
    if other:
        others[0].button(f"{other['label']}: {_percent(other['threshold']):.1f}%", key="eval-use-other-threshold",
                         on_click=set_to, args=(other["threshold"], "other"), width="stretch",
                         help=f"The model's second threshold, {other['words']}.")
    right.button(f"{FOLDS}-fold on this set: {_percent(kfold['threshold']):.1f}%" if kfold else f"{FOLDS}-fold on this set",
                 key="eval-use-kfold", on_click=set_to, args=(kfold["threshold"] if kfold else 0.5, "kfold"),
                 width="stretch", disabled=kfold is None,
                 help=f"Split the pairs into {FOLDS} parts; choose a threshold on {FOLDS - 1}, score it on the one "
                      "left out; repeat for each part (the LFW protocol).")
    origin = st.session_state.get(state.EVAL_THRESHOLD_ORIGIN, "hand")
    if origin == "model" and chosen == _percent(ev.model_threshold):
        return Threshold(ev.model_threshold, "model",
                         f"The model's own threshold, {ev.model_threshold_note}.")
    if origin == "other" and other and chosen == _percent(other["threshold"]):
        return Threshold(other["threshold"], "model",
                         f"The model's second threshold ({other['label'].lower()}), {other['words']}. Like its "
                         f"verdict's threshold, {ev.model_threshold_note}.")
    if origin == "kfold" and kfold and chosen == _percent(kfold["threshold"]):
        return Threshold(kfold["threshold"], "kfold",
                         f"Chosen on this set by {kfold['folds']}-fold cross-validation (the middle of the "
                         f"{kfold['folds']} thresholds). Its honest accuracy is the held-out one, "
                         f"{100 * kfold['accuracy_mean']:.1f}% ± {100 * kfold['accuracy_std']:.1f}%; the figures "
                         "below score it on all of this set, which chose it, so they flatter a little.")
    return Threshold(chosen / 100, "hand", "Set by hand on this page. If you moved it to where the figures look "
                                           "best, this set chose it, and the figures flatter the model.")


def honesty_box(threshold: Threshold, kfold: Optional[dict]) -> None:
    text = f"**Which set chose the threshold?** {threshold.words}"
    if kfold is None:
        text += ("  \nThese pairs are all of one kind (all same, or all different), so no threshold can be chosen "
                 "on them and the curves are undefined: draw balanced pairs instead.")
    elif threshold.origin != "kfold":
        text += (f"  \nWith only this set at hand, {kfold['folds']}-fold choice gives an honest accuracy: "
                 f"**{100 * kfold['accuracy_mean']:.1f}% ± {100 * kfold['accuracy_std']:.1f}%**.")
    (st.info if threshold.origin == "kfold" else st.warning if threshold.origin == "hand" else st.info)(text)


def numbers(ev, at: dict, eer: dict, word: str) -> None:
    """The headline figures: first those the slider moves, then those that hold for every threshold."""
    cells = st.columns(4)
    cells[0].metric("Accuracy", shown(at["accuracy"]),
                    help="Share of all pairs the model gets right (same called same, different called different).")
    cells[1].metric("Precision", shown(at["precision"]),
                    help="When the model says 'same', how often it is right.")
    cells[2].metric("Recall", shown(at["recall"]),
                    help=f"Of the pairs that really show the same {word}, how many the model calls 'same' "
                         "(the true-accept rate).")
    cells[3].metric("F1", shown(at["f1"]),
                    help="Precision and recall in one number (their harmonic mean): high only when both are.")
    st.caption("These four change with the threshold. The three below describe the model over all thresholds, "
               "so the slider does not move them.")
    cells = st.columns(4)
    cells[0].metric("ROC AUC", shown(at["roc_auc"], percent=False),
                    help="Chance that a random same pair scores higher than a random different pair: 1 is "
                         "perfect, 0.5 is guessing.")
    cells[1].metric("Equal error rate", shown(eer["eer"]),
                    help=f"The error rate at the threshold ({shown(eer['threshold'])}) where false accepts "
                         "and false rejects are equally common. Lower is better.")
    far_words = cells[3].segmented_control("Allowed false accepts", list(FARS), default="1%", key="eval-far",
                                           help="The share of different pairs you can afford to see wrongly "
                                                "accepted as 'same'.") or "1%"
    tar = ev.tar(FARS[far_words])
    cells[2].metric(f"True accepts at {far_words} false accepts", shown(tar["tar"]),
                    help="The share of same pairs accepted when the threshold is set so that at most this share "
                         "of different pairs is wrongly accepted (the best threshold that really achieves it; no "
                         "interpolation)." + ("" if tar["measurable"] else
                                              " Too few different pairs to measure a rate this small: this is "
                                              "the rate with no false accept at all."))


def operating_points(ev) -> None:
    """The checkpoint's thresholds (the verdict's and the rare-same one) with their figures on these pairs."""
    points = ev.operating_points()
    if len(points) < 2:
        return
    rows = ["The model's thresholds, on these pairs:"]  # lines, not a table: a phone's width holds them
    for p in points:
        which = " (its verdicts use this one)" if p["verdict"] else ""
        rows.append(f"- **{p['label']}**{which}: 'same' from {shown(p['threshold'])}; accuracy "
                    f"{shown(p['accuracy'])}, precision {shown(p['precision'])}, recall {shown(p['recall'])}")
    st.markdown("\n".join(rows))
    st.caption(" ".join(f"{p['label']}: {p['words']}." for p in points)
               + " Both were chosen on the model's validation pairs; the figures are on the pairs scored here.")


def roc_figure(ev, at: dict, eer: dict) -> go.Figure:
    roc = ev.roc(400)
    figure = go.Figure()
    figure.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="guessing",
                                line={"dash": "dash", "color": "#aaaaaa"}, hoverinfo="skip"))
    figure.add_trace(go.Scatter(x=roc["fpr"], y=roc["tpr"], mode="lines", name=f"model (AUC {at['roc_auc']:.3f})",
                                line={"color": SAME_COLOUR, "width": 3}, customdata=[100 * t for t in roc["thresholds"]],
                                hovertemplate="threshold %{customdata:.1f}%<br>false accepts %{x:.1%}<br>"
                                              "true accepts %{y:.1%}<extra></extra>"))
    figure.add_trace(go.Scatter(x=[eer["eer"]], y=[1 - eer["eer"]], mode="markers", name="equal error rate",
                                marker={"symbol": "square-open", "size": 12, "color": "#333333"}))
    figure.add_trace(go.Scatter(x=[at["far"]], y=[1 - at["frr"]], mode="markers", name="the threshold",
                                marker={"size": 14, "color": THRESHOLD_COLOUR}))
    figure.update_layout(height=380, margin={"l": 10, "r": 10, "t": 30, "b": 10}, title="ROC curve",
                         xaxis={"title": "false accepts (share of different pairs called 'same')", "range": [-0.01, 1]},
                         yaxis={"title": "true accepts (share of same pairs called 'same')", "range": [0, 1.01]},
                         legend={"x": 0.45, "y": 0.1})
    return figure


def histogram_figure(ev, threshold: float, word: str, log_scale: bool) -> go.Figure:
    hist = ev.histogram(40)
    centres = [(lo + hi) / 2 for lo, hi in zip(hist["edges"][:-1], hist["edges"][1:])]
    figure = go.Figure()
    figure.add_trace(go.Bar(x=centres, y=hist["different"], name=plotly_text(f"different {plural(word)}"),
                            marker_color=DIFFERENT_COLOUR,
                            opacity=0.65, width=0.025))
    figure.add_trace(go.Bar(x=centres, y=hist["same"], name=plotly_text(f"same {word}"), marker_color=SAME_COLOUR,
                            opacity=0.65, width=0.025))
    figure.add_vline(x=threshold, line={"color": THRESHOLD_COLOUR, "width": 3},
                     annotation_text=f"threshold {100 * threshold:.1f}%",
                     annotation_position="top right" if threshold < 0.7 else "top left")
    figure.update_layout(barmode="overlay", height=380, margin={"l": 10, "r": 10, "t": 50, "b": 10},
                         title="Scores of same and different pairs", xaxis={"title": "score (higher = more alike)",
                                                                          "range": [0, 1], "tickformat": ".0%"},
                         yaxis={"title": "pairs", "type": "log" if log_scale else "linear"},
                         legend={"x": 0.35, "y": 0.98})
    return figure


def confusion_figure(at: dict, word: str) -> go.Figure:
    counts = [[at["tp"], at["fn"]], [at["fp"], at["tn"]]]
    names = [["true accepts", "false rejects"], ["false accepts", "true rejects"]]
    text = [[f"{names[r][c]}<br><b>{counts[r][c]:,}</b>" for c in range(2)] for r in range(2)]
    right = [[1, 0], [0, 1]]  # colour: green where right, red where wrong, deeper for more pairs
    total = max(1, sum(map(sum, counts)))
    # any mistake shows red, however few: a faint cell would hide them next to hundreds of right answers
    z = [[(0.15 + 0.85 * counts[r][c] / total if counts[r][c] else 0) * (1 if right[r][c] else -1) for c in range(2)]
         for r in range(2)]
    figure = go.Figure(go.Heatmap(z=z, x=["model: same", "model: different"],
                                  y=[plotly_text(f"truth: same {word}"), plotly_text(f"truth: different {plural(word)}")],
                                  text=text,
                                  texttemplate="%{text}", textfont={"size": 16}, showscale=False, zmin=-0.6, zmax=0.6,
                                  colorscale=[[0, "#d62728"], [0.5, "#ffffff"], [1, "#2ca02c"]], hoverinfo="skip"))
    figure.update_layout(height=300, margin={"l": 10, "r": 10, "t": 30, "b": 10}, title="Confusion matrix",
                         yaxis={"autorange": "reversed"})
    return figure


def show(ev, threshold: Threshold, kfold: Optional[dict]) -> dict:
    """All figures at the threshold; returns them (for the tests and the rest of the page)."""
    word = ev.class_word
    at = ev.at(threshold.value)
    eer = ev.eer()
    honesty_box(threshold, kfold)
    numbers(ev, at, eer, word)
    operating_points(ev)
    st.caption(f"{at['pairs']:,} pairs ({ev.positives:,} same, {at['pairs'] - ev.positives:,} different) from "
               f"{ev.set_name}: {ev.protocol}. At this threshold: **{at['fp']:,} false accepts** (different "
               f"{plural(word)} called 'same') and **{at['fn']:,} false rejects** (the same {word} called 'different').")
    left, right = st.columns(2)
    left.plotly_chart(roc_figure(ev, at, eer), key="eval-roc", config=NO_BAR)
    left.caption("Each point of the curve is one threshold: how many same pairs it accepts (up) against how many "
                 "different pairs it wrongly accepts (right). The red dot is the slider's threshold. A curve hugging "
                 "the top-left corner is a good model; the dashed diagonal is guessing.")
    log_scale = right.toggle("Show small counts (log scale)", key="eval-log-scale",
                             help="Mistakes are often a handful of pairs next to hundreds of easy ones.")
    right.plotly_chart(histogram_figure(ev, threshold.value, word, log_scale), key="eval-histogram", config=NO_BAR)
    right.caption(f"How alike the model finds each pair. Blue pairs (same {word}) should sit right of the red line, "
                  f"orange pairs (different {plural(word)}) left of it. Orange bars right of the line are false accepts; "
                  "blue bars left of it are false rejects. Where the colours overlap, no threshold is right for all.")
    left, right = st.columns([1, 1])
    left.plotly_chart(confusion_figure(at, word), key="eval-confusion", config=NO_BAR)
    right.markdown(
        "**Reading the numbers**\n"
        f"- **Accuracy**: right answers out of all pairs ({at['tp'] + at['tn']:,} of {at['pairs']:,}).\n"
        f"- **Precision**: of the {at['tp'] + at['fp']:,} pairs called 'same', {at['tp']:,} really are.\n"
        f"- **Recall** (true-accept rate): of the {at['tp'] + at['fn']:,} same pairs, {at['tp']:,} were found.\n"
        "- **Threshold**: the score from which the model says 'same'. Raising it trades false accepts for false "
        "rejects: a bank checking signatures wants few false accepts; a photo app grouping friends, few false "
        "rejects.\n"
        "- **Honest figures** come from pairs that did not choose the threshold: a threshold tuned on the very "
        "pairs it is scored on always looks better than it will on new pairs.")
    return at
