"""One run, live: progress, curves, the log's last lines, Stop; and what to do once it has finished."""

from __future__ import annotations

import html
from typing import Optional

import plotly.graph_objects as go
import streamlit as st

from app_pages.shared import models, text
from app_pages.shared.icons import ICONS
from siamese_core import jobs
from siamese_core.errors import UserError
from siamese_core.runs import RunDir, runs_root

STATE_WORDS = {"queued": "starting", "running": "training", "done": "done", "stopped": "stopped", "failed": "failed"}
STATE_ICONS = {"queued": ":material/hourglass_top:", "running": ":blue[:material/directions_run:]",
               "done": ":green[:material/check_circle:]", "stopped": ":material/stop_circle:",
               "failed": ":red[:material/error:]"}
REFRESH_SECONDS = 1.5
_DELETED = "run-view-deleted"  # the run deleted by the last click, for the page to say so after its rerun


def just_deleted() -> Optional[str]:
    """The name of the run deleted by the click that reran the page, once; None otherwise."""
    return st.session_state.pop(_DELETED, None)


def show_run(name: str, *, allow_delete: bool = False) -> None:
    run = RunDir(runs_root() / name)
    if not (run.path / "status.json").is_file():
        st.warning(f"The run '{text.plain(name)}' no longer exists.")
        return
    info = jobs.info(run)
    # Only this part redraws while the run trains, so the rest of the page stays put.
    st.fragment(_live, run_every=REFRESH_SECONDS if info.active else None)(run, info.active)
    if not info.active:
        _finished_actions(info, allow_delete)


def _live(run: RunDir, was_active: bool) -> None:
    info = jobs.info(run)
    if was_active and not info.active:
        st.rerun()  # it just finished: redraw the whole page, with what can be done next
    status = info.status
    st.markdown(f"#### {html.escape(run.path.name)} &nbsp; {STATE_ICONS.get(info.state, '')} "
                f"<small>{STATE_WORDS.get(info.state, info.state)}</small>",
                unsafe_allow_html=True)  # the folder name may come from the command line's -o
    p = jobs.progress(status)
    line = (f"Epoch {status.get('epoch', 0)} of {status.get('total_epochs', '?')} · "
            f"{_duration(p['elapsed'])} elapsed")
    if p["left"] is not None:
        line += f" · about {_duration(p['left'])} left"
    st.progress(p["fraction"], text=line)
    records = run.read_metrics()
    epochs = [r for r in records if r.get("type") == "epoch"]
    _figures(status, epochs)
    _curves(run.path.name, records, epochs, status)
    for warning in jobs.warnings(run):
        st.warning(warning)
    if info.state == "failed":
        st.error(f"This run failed: {text.plain(status.get('error') or 'see the log below.')}")
    with st.expander("Log (last lines)", expanded=info.active or info.state == "failed"):
        lines = jobs.tail(run.log_path, 12) or jobs.tail(run.path / jobs.OUTPUT_FILE, 12)
        st.code("\n".join(lines) or "(nothing logged yet)", language=None)
    if info.active:
        if st.button("Stop training", icon=":material/stop_circle:", key=f"stop-{run.path.name}",
                     help="Stops after the current batch; the weights trained so far are kept."):
            jobs.stop(run)
            st.toast("Stopping: the run saves its weights, then stops.")


def _duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _figures(status: dict, epochs: list) -> None:
    if not epochs:
        return
    last = epochs[-1]
    loss = last.get("train_loss")
    cols = st.columns(4)
    cols[0].metric("Best validation accuracy", _percent(status.get("best_accuracy")))
    cols[1].metric("Training loss", f"{loss:.4f}" if loss is not None else "–")
    cols[2].metric("Precision", _percent(last.get("precision")),
                   help="Of the pairs it called 'same', the share that really were the same.")
    cols[3].metric("Recall", _percent(last.get("recall")),
                   help="Of the pairs that really were the same, the share it called 'same'.")


def _percent(value) -> str:
    return f"{100 * value:.1f}%" if value is not None else "–"  # None: not measured (JSON has no NaN)


def _curves(name: str, records: list, epochs: list, status: dict) -> None:
    steps = [r for r in records if r.get("type") == "step"]
    if not steps and not epochs:
        st.caption("The curves appear here as soon as the first batches are trained.")
        return
    left, right = st.columns(2)
    # The whole run on the x axis for short runs; long runs widen it as they go, so early epochs stay legible.
    reached = max([r["epoch"] for r in records] or [1])
    x_max = min(status.get("total_epochs") or reached, max(5, reached + 1))
    loss = go.Figure()
    if steps:
        # Steps restart at 1 each epoch: place them at epoch - 1 + step / steps per epoch.
        per_epoch = status.get("steps_per_epoch") or max(r["step"] for r in steps)
        loss.add_scatter(x=[r["epoch"] - 1 + r["step"] / per_epoch for r in steps], y=[r["loss"] for r in steps],
                         mode="lines", name="while training", line={"color": "#9ab"})
    loss.add_scatter(x=[r["epoch"] for r in epochs], y=[r["train_loss"] for r in epochs], mode="lines+markers",
                     name="per epoch", line={"color": "#1f77b4"})
    _style(loss, "Training loss", x_max, name)
    left.plotly_chart(loss, key=f"loss-{name}", config={"displayModeBar": False})
    quality = go.Figure()
    lowest = 50.0
    for key, colour in (("accuracy", "#2ca02c"), ("precision", "#ff7f0e"), ("recall", "#9467bd")):
        values = [100 * r[key] if r.get(key) is not None else None for r in epochs]
        lowest = min([lowest] + [v for v in values if v is not None])
        quality.add_scatter(x=[r["epoch"] for r in epochs], y=values, name=key, mode="lines+markers",
                            line={"color": colour})
    _style(quality, "Validation pairs (%)", x_max, name)
    quality.update_yaxes(range=[lowest - 2, 101])
    right.plotly_chart(quality, key=f"quality-{name}", config={"displayModeBar": False})


def _style(fig: go.Figure, title: str, x_max: int, name: str) -> None:
    fig.update_layout(title=title, height=300, margin={"l": 10, "r": 10, "t": 40, "b": 10}, uirevision=name,
                      legend={"orientation": "h", "x": 1, "xanchor": "right", "y": 1.0, "yanchor": "bottom"})
    fig.update_xaxes(title="epoch", range=[0, x_max + 0.1])


@st.cache_data(max_entries=64, show_spinner=False)
def checkpoint_problem(path: str, modified: float) -> Optional[str]:
    """Why the checkpoint at `path` cannot be loaded (siamese_core's own check), or None; once per file version."""
    from siamese_core.runs import load_checkpoint

    try:
        load_checkpoint(path, name="it")
    except UserError as exc:
        return str(exc)
    return None


def _finished_actions(info: jobs.RunInfo, allow_delete: bool) -> None:
    run = info.run
    best = run.checkpoint("best")
    name = run.path.name
    problem = checkpoint_problem(str(best), best.stat().st_mtime) if best.is_file() else None
    if problem:  # say so instead of "finished", and offer nothing built on a broken file
        st.error(f"This run's best checkpoint cannot be used: {text.plain(problem)}")
    elif info.state == "done":
        st.success(f"Training finished: best validation accuracy {_percent(info.status.get('best_accuracy'))}.")
    elif info.state == "stopped":
        st.info("This run was stopped. Its best checkpoint so far can still be used.")
    if best.is_file() and not problem:
        cols = st.columns(3)
        if cols[0].button("Verify with this model", icon=ICONS["verify"], key=f"verify-{name}", type="primary"):
            models.use_model(f"run:{name}")
            st.switch_page("app_pages/verify/page.py")
        if cols[1].button("Explore its embeddings", icon=ICONS["explore"], key=f"explore-{name}"):
            models.use_model(f"run:{name}")
            st.switch_page("app_pages/explore/page.py")
        cols[2].download_button("Download best checkpoint", icon=":material/download:", data=best.read_bytes,
                                file_name=f"{name}-best.pt", mime="application/octet-stream", key=f"download-{name}")
    if allow_delete:
        _delete(run)


def _delete(run: RunDir) -> None:
    name = run.path.name
    if st.session_state.get("confirm_delete") != name:
        if st.button("Delete this run", icon=":material/delete:", key=f"delete-{name}"):
            st.session_state["confirm_delete"] = name
            st.rerun()
        return
    st.warning(f"Delete **{text.plain(name)}** with its checkpoints and uploaded data? This cannot be undone.")
    yes, no = st.columns(2)
    if yes.button("Yes, delete it", key=f"delete-yes-{name}", type="primary"):
        st.session_state.pop("confirm_delete", None)
        try:
            jobs.delete(run)
        except UserError as exc:
            text.error(exc)
            return
        st.session_state[_DELETED] = name
        st.rerun()
    if no.button("Cancel", key=f"delete-no-{name}"):
        st.session_state.pop("confirm_delete", None)
        st.rerun()
