"""The Evaluate page's re-identification figures (CMC rank-1/5/10 and mAP), when file names give person and camera."""

from __future__ import annotations

import streamlit as st


def show(ev) -> None:
    if not ev.reid:
        return
    figures = ev.reid
    cmc = figures["cmc"]
    st.subheader("Re-identification")
    st.markdown(f"The right person is the first answer for **{100 * cmc[1]:.0f}%** of queries, and among the first "
                f"ten for **{100 * cmc[10]:.0f}%**: each of {figures['queries']:,} query photos was looked for among "
                f"{figures['gallery']:,} gallery photos taken by other cameras.")
    columns = st.columns(4)
    for column, rank in zip(columns, (1, 5, 10)):
        column.metric(f"Rank-{rank}", f"{100 * cmc[rank]:.1f}%",
                      help=f"Share of queries with the right person among the model's first {rank} answers "
                           f"(the CMC curve at rank {rank}).")
    columns[3].metric("mAP", f"{100 * figures['map']:.1f}%",
                      help="Mean average precision: how early all the photos of the right person come in the "
                           "answers, averaged over queries. 100% means they all come before anyone else.")
    st.caption(f"{ev.reid_note} The Market-1501 protocol; the seed above draws the queries.")
