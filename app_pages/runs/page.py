"""Runs: every training run with its state and figures; open one for its curves, checkpoint and delete."""

import time

import pandas as pd
import streamlit as st

from app_pages.shared import run_view
from app_pages.shared.icons import ICONS
from app_pages.shared.models import run_title
from app_pages.shared.runs import listed
from siamese_core.runs import jobs
from siamese_core.runs.context import data_words
from siamese_core.runs.rundir import epoch_in_progress
from siamese_core.words import ordinal

st.title("Runs")
deleted = run_view.just_deleted()
if deleted:
    st.success(f"Deleted {deleted}.")
runs = listed()
if not runs:
    st.info("No runs yet. Start one on the Train page (the Quick preset trains on digits for one minute), "
            "or from the command line:\n\n`python -m siamese_core train --dataset digits -b convnet -e 5`")
    st.page_link("app_pages/train/page.py", label="Go to Train", icon=ICONS["train"])
    st.stop()

places = jobs.queue_places(runs)
rows = []
for info in runs:
    status, config = info.status, info.config
    created = status.created_at
    state = run_view.STATE_WORDS.get(info.state, info.state)
    if info.name in places:
        state += f" ({ordinal(places[info.name]['place'])} in line)"
    rows.append({"run": status.label or info.name, "state": state,
                 "epoch": f"{epoch_in_progress(status)} of {status.total_epochs or '?'}",
                 "best accuracy": status.best_accuracy,
                 "best epoch": str(status.best_epoch) if status.best_epoch else "–",  # not "None": none validated yet
                 "time": jobs.budget_words(status) or "",
                 "data": data_words(config) if config else "", "backbone": config.get("backbone", ""),
                 "started": time.strftime("%Y-%m-%d %H:%M", time.localtime(created)) if created else "",
                 "folder": info.name})
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", column_config={
    "best accuracy": st.column_config.ProgressColumn("best validation accuracy", format="percent",
                                                     min_value=0, max_value=1),
    "best epoch": st.column_config.TextColumn("best epoch", help="The epoch the figures and best.pt come from; "
                                              "– while no epoch has been checked on validation pairs.")})

titles = {info.name: run_title(info) for info in runs}
chosen = st.selectbox("Open a run", list(titles), format_func=titles.get, key="open-run")
with st.spinner("Opening the run: its figures, curves and checkpoint..."):  # seconds while other runs train
    run_view.show_run(chosen, allow_delete=True)
