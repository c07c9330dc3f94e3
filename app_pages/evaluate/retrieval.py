"""The Evaluate page's retrieval figures: precision at 1, MAP@R and N-way one-shot accuracy."""

from __future__ import annotations

import streamlit as st

from siamese_core.words import plural

EPISODES = 500


def show(ev) -> None:
    word = ev.class_word
    if not ev.has_retrieval:
        st.info(f"No retrieval figures here. {ev.retrieval_note}")
        return
    figures = ev.retrieval()
    st.caption(f"Retrieval asks: show the model one image, and have it find others of the same {word} among all "
               f"{figures['images']:,} images of the set (the image itself left out), ranked by how alike it finds "
               f"them. {ev.retrieval_note}")
    left, right = st.columns(2)
    left.metric("Precision at 1", f"{100 * figures['precision_at_1']:.1f}%",
                help=f"How often the single image the model finds most alike shows the same {word}.")
    right.metric("Mean average precision at R (MAP@R)", f"{100 * figures['map_at_r']:.1f}%",
                 help=f"For an image whose {word} has R other images: how many of the model's first R answers are "
                      "right, rewarding right answers that come early; averaged over all images. 100% means all "
                      "same-class images come before any other.")
    top = figures["classes"]
    if top < 2:
        st.info(f"N-way one-shot needs at least two {plural(word)} with two images or more.")
        return
    st.markdown("**N-way one-shot**: show the model one example of each of N classes, then ask it which of them "
                "a new image belongs to.")
    n_way = st.slider("N (classes per question)", 2, top, min(5, top), key="eval-n-way",
                      help="More classes make the question harder; guessing gets 1 in N right.")
    result = ev.one_shot(n_way, EPISODES, seed=0)
    st.metric(f"{n_way}-way one-shot accuracy", f"{100 * result['accuracy']:.1f}%",
              help=f"Averaged over {EPISODES} rounds drawn with seed 0, each with its own example images.")
    st.caption(f"95% interval {100 * result['low']:.1f}% to {100 * result['high']:.1f}% over {EPISODES} rounds; "
               f"guessing would get {100 * result['chance']:.0f}%.")
