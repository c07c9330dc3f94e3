"""Runs: every training run with its state and figures; open one for its curves, checkpoint and delete."""

import time

import pandas as pd
import streamlit as st

from app_pages.shared import run_view
from app_pages.shared.icons import ICONS
from siamese_core import jobs

st.title("Runs")
deleted = run_view.just_deleted()
if deleted:
    st.success(f"Deleted {deleted}.")
runs = jobs.list_runs()
if not runs:
    st.info("No runs yet. Start one on the Train page (the Quick preset trains on digits in about a minute), "
            "or from the command line:\n\n`python -m siamese_core train --dataset digits -b convnet -e 5`")
    st.page_link("app_pages/train/page.py", label="Go to Train", icon=ICONS["train"])
    st.stop()

rows = []
for info in runs:
    status, config = info.status, info.config
    created = status.get("created_at")
    rows.append({"run": info.name, "state": run_view.STATE_WORDS.get(info.state, info.state),
                 "epoch": f"{status.get('epoch', 0)} of {status.get('total_epochs', '?')}",
                 "best accuracy": status.get("best_accuracy"),
                 "data": config.get("dataset", ""), "backbone": config.get("backbone", ""),
                 "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(created)) if created else ""})
st.dataframe(pd.DataFrame(rows), hide_index=True, column_config={
    "best accuracy": st.column_config.ProgressColumn("best validation accuracy", format="percent",
                                                     min_value=0, max_value=1)})

chosen = st.selectbox("Open a run", [info.name for info in runs], key="open-run")
run_view.show_run(chosen, allow_delete=True)
