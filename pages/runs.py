"""Runs found in runs/: read from each run directory, the trainer's only channel to the app."""

import pandas as pd
import streamlit as st

from siamese_core.runs import RunDir, runs_root

st.title("Runs")
root = runs_root()
found = [RunDir(p) for p in root.glob("*") if (p / "status.json").is_file()]
statuses = {run.path.name: run.read_status() for run in found}  # each status file read once
runs = sorted(found, key=lambda r: statuses[r.path.name].get("created_at") or 0, reverse=True)
if not runs:
    st.info("No runs yet. Train one from the command line:\n\n"
            "`python -m siamese_core train --dataset digits -b convnet -o runs/demo -e 5`")
    st.stop()

rows = []
for run in runs:
    status = statuses[run.path.name]
    config = run.read_config() or {}
    rows.append({"run": run.path.name, "state": status.get("state", "?"),
                 "epoch": f"{status.get('epoch', 0)} of {status.get('total_epochs', '?')}",
                 "best accuracy": status.get("best_accuracy"), "backbone": config.get("backbone", ""),
                 "data": config.get("dataset", "")})
st.dataframe(pd.DataFrame(rows), hide_index=True, column_config={
    "best accuracy": st.column_config.ProgressColumn("best validation accuracy", format="percent", min_value=0, max_value=1)})

chosen = st.selectbox("Show a run's curves", [r.path.name for r in runs])
run = next(r for r in runs if r.path.name == chosen)
epochs = pd.DataFrame([m for m in run.read_metrics() if m.get("type") == "epoch"])
if epochs.empty:
    st.info("No epoch has finished in this run yet.")
else:
    left, right = st.columns(2)
    left.subheader("Training loss")
    left.line_chart(epochs, x="epoch", y="train_loss")
    right.subheader("Validation accuracy, precision, recall")
    right.line_chart(epochs, x="epoch", y=["accuracy", "precision", "recall"])
status = statuses[chosen]
if status.get("state") == "failed" and status.get("error"):
    st.error(f"This run failed: {status['error']}")
