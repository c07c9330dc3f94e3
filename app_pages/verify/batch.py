"""The Verify page's second tab: many pairs from an upload, a table of verdicts to read and download."""

from __future__ import annotations

from typing import Optional

import numpy as np
import streamlit as st

from app_pages.shared import state, text
from app_pages.shared.models import ModelChoice
from app_pages.shared.uploads import upload_digest
from siamese_core.errors import UserError
from siamese_core.files import csv_table

CSV_AND_ZIP = "A CSV naming the pairs, and a zip of the images"
PAIR_FOLDERS = "A zip with one folder per pair"


def scored_pairs(model, model_version: tuple, zip_key: str, csv_key: Optional[str], zip_bytes: bytes,
                 csv_bytes: Optional[bytes]):
    """Scores at the model's own threshold, once per model and upload (the page applies the slider's), with a
    progress bar while the pairs are read. Only the session's last table is kept: memory stays one upload's."""
    from siamese_core.inference.verification import check_pairs_upload

    key = (model_version, zip_key, csv_key)
    kept = st.session_state.get(state.BATCH_SCORED)
    if kept and kept[0] == key:
        return kept[1]
    bar = st.progress(0.0, text="Checking the pairs...")

    def on_progress(done: int, total: int) -> None:
        if done == total or done % 16 == 0:  # a redraw per pair would cost more than the pair
            bar.progress(done / max(total, 1), text=f"Checking the pairs: {done:,} of {total:,} read...")

    try:
        table, _ = check_pairs_upload(model, zip_bytes, csv_bytes, zip_digest=zip_key, csv_digest=csv_key,
                                      on_progress=on_progress)
    finally:
        bar.empty()
    st.session_state[state.BATCH_SCORED] = (key, table)
    return table


def show(model, choice: ModelChoice, threshold: float) -> None:
    """The tab: `threshold` is the one set on the 'Check a pair' tab."""
    st.caption("Check many pairs at once and download the verdicts as a CSV file.")
    layout = st.radio("What you upload", [CSV_AND_ZIP, PAIR_FOLDERS], key="batch-layout", horizontal=True)
    csv_upload = None
    if layout == CSV_AND_ZIP:
        left, right = st.columns(2)
        csv_upload = left.file_uploader("CSV of pairs", type=["csv"], key="batch-csv",
                                        help="One row per pair; columns image_a and image_b name the two files in "
                                             "the zip (e.g. alice/1.jpg). An optional column same (yes/no) gives "
                                             "the true answer, and the accuracy is shown.")
        zip_upload = right.file_uploader("Zip of the images", type=["zip"], key="batch-zip")
        missing = csv_upload is None or zip_upload is None
    else:
        zip_upload = st.file_uploader("Zip of pair folders", type=["zip"], key="batch-folders",
                                      help="Each folder holds exactly the two images to compare: pair1/a.jpg, "
                                           "pair1/b.jpg, pair2/...")
        missing = zip_upload is None
    if missing:
        st.info("Upload the files above: the verdicts appear here as a table.")
        return
    try:
        table = scored_pairs(model, choice.version, upload_digest(zip_upload),
                                upload_digest(csv_upload) if csv_upload else None,
                                zip_upload.getvalue(), csv_upload.getvalue() if csv_upload else None)
    except UserError as exc:
        text.error(exc)
        return
    show_table(table.copy(), threshold)


def show_table(table, threshold: float) -> None:
    from siamese_core.inference.model import pairs_accuracy

    scored = table["score"].notna()
    table.loc[scored, "verdict"] = np.where(table.loc[scored, "score"].astype(float) >= threshold, "same", "different")
    same, failed = int((table["verdict"] == "same").sum()), int((~scored).sum())
    summary = (f"{len(table):,} pair{'s' if len(table) != 1 else ''}: {same:,} same, {int(scored.sum()) - same:,} different"
               + (f", {failed:,} could not be checked (see the error column)" if failed else "")
               + f". 'Same' from a score of {100 * threshold:.1f}% (move it on the 'Check a pair' tab).")
    unlike = table["outside"].isin(["A", "B", "A and B"]) if "outside" in table else np.zeros(len(table), bool)
    if unlike.any():
        summary += (f" {int(unlike.sum()):,} pair{'s hold' if unlike.sum() != 1 else ' holds'} an image unlike the "
                    "images this model learnt (the outside column): their verdicts mean nothing.")
    accuracy = pairs_accuracy(table.to_dict("records")) if "same" in table else None
    if accuracy:
        summary += (f" Agrees with your 'same' column on {100 * accuracy['accuracy']:.1f}% of the "
                    f"{accuracy['pairs']:,} pairs it answers.")
    (st.warning if failed or unlike.any() else st.success)(summary)
    shown = table.assign(score=table["score"].astype(float) * 100)
    st.dataframe(shown, hide_index=True, key="batch-table", column_config={
        "score": st.column_config.ProgressColumn("score", format="%.1f%%", min_value=0, max_value=100),
        "outside": st.column_config.TextColumn("outside", help="The images of the pair (A, B) that do not look like "
                                               "the images this model learnt: its verdict on them means nothing. "
                                               "'not checked': the model was saved without a description of its "
                                               "images."),
        "error": st.column_config.TextColumn("error", width="large")})
    table["threshold"] = round(threshold, 4)
    # Names from the upload that a spreadsheet would run as formulas (=HYPERLINK(...)) are kept as text.
    st.download_button("Download the verdicts (CSV)", csv_table(table).to_csv(index=False).encode(), "verdicts.csv",
                       "text/csv", key="batch-download")
