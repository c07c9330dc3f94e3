"""One run, live: progress, curves, the log's last lines, Stop; and what to do once it has finished."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Optional

import plotly.graph_objects as go
import streamlit as st

from app_pages.shared import models, state, text
from app_pages.shared import runs as shared_runs
from app_pages.shared.icons import ICONS
from siamese_core.config import duration_words
from siamese_core.errors import UserError
from siamese_core.runs import jobs
from siamese_core.runs.context import data_words
from siamese_core.runs.rundir import RunDir, epoch_in_progress
from siamese_core.runs.status import RunStatus
from siamese_core.settings import runs_dir
from siamese_core.words import ordinal

STATE_WORDS = {"waiting": "waiting its turn", "queued": "starting", "running": "training", "done": "done",
               "stopped": "stopped", "failed": "failed", "cancelled": "cancelled"}
STATE_ICONS = {"waiting": ":material/schedule:", "queued": ":material/hourglass_top:",
               "running": ":blue[:material/directions_run:]", "done": ":green[:material/check_circle:]",
               "stopped": ":material/stop_circle:", "failed": ":red[:material/error:]",
               "cancelled": ":material/cancel:"}
REFRESH_SECONDS = 1.5


def just_deleted() -> Optional[str]:
    """The name of the run deleted by the click that reran the page, once; None otherwise."""
    return st.session_state.pop(state.DELETED_RUN, None)


def queue_words(place: jobs.QueuePlace, training: int) -> str:
    """What a waiting run says of itself: that it is this run that waits, why, and when it should start
    (`training`: how many runs train now)."""
    cap = jobs.max_training_runs()
    why = (f"this machine trains {_runs(cap)} at a time and {_runs(training, 'is', 'are')} training now"
           if training else "every training slot is taken")
    head = f"This run is waiting its turn, {ordinal(place['place'])} in line: {why}."
    seconds = place["starts_in"]
    if seconds is None:
        return f"{head} It starts when a slot frees up."
    if seconds < 30:
        return f"{head} It starts in a moment."
    minutes = max(1, round(seconds / 60))
    when = f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"
    ahead = place["place"] - 1 + training
    return f"{head} It starts when the {_runs(ahead)} ahead of it {'end' if ahead > 1 else 'ends'}, in about {when}."


def _runs(n: int, one: str = "", many: str = "") -> str:
    """'1 run', '2 runs' (with a verb: '1 run is', '2 runs are')."""
    words = f"{n} run" + ("" if n == 1 else "s")
    verb = one if n == 1 else many
    return f"{words} {verb}" if verb else words


def queue_note(runs: list) -> Optional[str]:
    """What Start will do when every slot is taken (`runs`: every run of the folder); None when it starts at once.
    Said of the run not started yet, so that nobody reads it as their own run waiting."""
    training = sum(info.active for info in runs)
    waiting = sum(info.waiting for info in runs)
    cap = jobs.max_training_runs()
    if training < cap and not waiting:
        return None
    busy = f"{_runs(training, 'is', 'are')} training now (this machine trains {_runs(cap)} at a time)"
    if waiting:
        busy += f" and {_runs(waiting, 'is', 'are')} waiting"
    return (f"{busy}: a run you start now waits its turn, {ordinal(waiting + 1)} in line, and starts by itself "
            "when a slot frees up.")


START_AGAIN = "Start it again from the Train page."  # what the Runs page says; the Train page says its own words


def show_run(name: str, *, allow_delete: bool = False, start_again: str = START_AGAIN) -> None:
    """One run; `start_again`: how to start it again, in the words of the page it is on."""
    run = RunDir(runs_dir() / name)
    if not (run.path / "status.json").is_file():
        st.warning(f"The run '{text.plain(name)}' no longer exists.")
        return
    info = jobs.info(run)
    # Only this part redraws while the run waits or trains, so the rest of the page stays put.
    st.fragment(_live, run_every=REFRESH_SECONDS if info.unfinished else None)(run, info.unfinished)
    if not info.unfinished:
        _finished_actions(info, allow_delete, start_again)


def _live(run: RunDir, was_unfinished: bool) -> None:
    alone = shared_runs.redrawn_alone("run-view")
    info = jobs.info(run)
    if was_unfinished and not info.unfinished:
        st.rerun()  # it just finished (or was cancelled): redraw the whole page, with what can be done next
    status = info.status
    st.markdown(f"#### {html.escape(models.run_title(info))} &nbsp; {STATE_ICONS.get(info.state, '')} "
                f"<small>{STATE_WORDS.get(info.state, info.state)}</small>",
                unsafe_allow_html=True)  # the label and folder name are the user's words: escaped
    st.caption(f"{text.plain(data_words(info.config))} · folder `{run.path.name}`")
    if info.waiting:
        _waiting(info, alone)
        return
    if info.state == jobs.CANCELLED:
        return  # it never trained: no progress, curves or log to show
    p = jobs.progress(status)
    line = (f"Epoch {epoch_in_progress(status)} of {status.total_epochs or '?'} · "
            f"{_duration(p['elapsed'])} elapsed")
    if p["left"] is not None:
        line += f" · about {duration_words(p['left'])} left"
    kept = jobs.budget_words(status)
    if kept:
        line += f" · {kept}"
    st.progress(p["fraction"], text=line)
    records = run.read_metrics()
    epochs = [r for r in records if r.get("type") == "epoch"]
    _figures(status, run.best_epoch(records))
    _curves(run.path.name, records, epochs, status)
    _epoch_map(run, info)
    for warning in jobs.warnings(run):
        st.warning(warning)
    if info.state == "failed":
        st.error(f"This run failed: {text.plain(status.error or 'see the log below.')}")
    with st.expander("Log (last lines)", expanded=info.active or info.state == "failed"):
        lines = jobs.tail(run.log_path, 12) or jobs.tail(run.path / jobs.OUTPUT_FILE, 12)
        st.code("\n".join(lines) or "(nothing logged yet)", language=None, wrap_lines=True)
    if info.active:
        if st.button("Stop training", icon=":material/stop_circle:", key=f"stop-{run.path.name}",
                     help="Stops after the current batch; the weights trained so far are kept."):
            jobs.stop(run)
            st.toast("Stopping: the run saves its weights, then stops.")


def _epoch_map(run: RunDir, info: jobs.RunInfo) -> None:
    """The run's map, epoch by epoch (nothing for runs without snapshots)."""
    from app_pages.explore.epochs import show_live
    from siamese_core.runs.context import run_class_word

    show_live(run.path, run_class_word(run, info.config or {}), training=info.active)


def _waiting(info: jobs.RunInfo, alone: bool) -> None:
    """A run waiting its turn: where it stands in line, when it should start, and a way out of the queue."""
    runs = shared_runs.latest(alone)  # on this part's own redraws, also starts the run when a slot frees
    place = jobs.queue_places(runs).get(info.name)
    if place is None:  # it left the queue between two reads: the next redraw shows it starting
        st.caption("Starting...")
        return
    st.info(queue_words(place, sum(r.active for r in runs)), icon=":material/schedule:")
    if st.button("Cancel", icon=":material/cancel:", key=f"cancel-{info.name}",
                 help="Takes this run out of the queue: it never starts. It stays listed until you delete it."):
        jobs.stop(info.run)  # cancels it; should it have started a moment ago, stops it
        st.rerun()


def _duration(seconds: Optional[float]) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _figures(status: RunStatus, best: Optional[dict]) -> None:
    """The run's headline figures, all from one epoch: the best one, whose weights checkpoints/best.pt holds."""
    if best is None:
        return
    cols = st.columns(4)
    cols[0].metric("Best epoch", f"{best['epoch']} of {status.total_epochs or '?'}",
                   help="The epoch with the highest validation accuracy: its weights are the run's best checkpoint, "
                        "and every figure here is from it.")
    cols[1].metric("Validation accuracy", _percent(best.get("accuracy")),
                   help="Share of validation pairs judged right. Half the pairs are the same, half different, so "
                        "guessing scores 50%.")
    cols[2].metric("Precision", _percent(best.get("precision")),
                   help="Of the pairs it called 'same', the share that really were the same.")
    cols[3].metric("Recall", _percent(best.get("recall")),
                   help="Of the pairs that really were the same, the share it called 'same'.")
    pairs = status.val_pairs
    st.caption(f"All from epoch {best['epoch']}" + (f", on {pairs:,} validation pairs" if pairs else "")
               + ": half the same, half different, so guessing scores 50%.")


def _percent(value) -> str:
    return f"{100 * value:.1f}%" if value is not None else "–"  # None: not measured (JSON has no NaN)


def _curves(name: str, records: list, epochs: list, status: RunStatus) -> None:
    steps = [r for r in records if r.get("type") == "step"]
    if not steps and not epochs:
        st.caption("The curves appear here as soon as the first batches are trained.")
        return
    left, right = st.columns(2)
    # The whole run on the x axis for short runs; long runs widen it as they go, so early epochs stay legible.
    reached = max([r["epoch"] for r in records] or [1])
    x_max = min(status.total_epochs or reached, max(5, reached + 1))
    loss = go.Figure()
    if steps:
        # Steps restart at 1 each epoch: place them at epoch - 1 + step / steps per epoch.
        per_epoch = status.steps_per_epoch or max(r["step"] for r in steps)
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
    from siamese_core.runs.rundir import load_checkpoint

    try:
        load_checkpoint(path, name="it")
    except UserError as exc:
        return str(exc)
    return None


# Downloads are served from bytes built once per checkpoint version, never from a callable run on click: Streamlit
# forgets a click's callable at the page's next full redraw and sweeps the file it made at the next redraw of any
# part (the sidebar redraws every 2 s while a run trains), so such clicks failed while runs trained. Bytes given to
# the button are kept for as long as the button is on the page; the same bytes every redraw are the same file.
@st.cache_resource(max_entries=8, show_spinner=False)
def checkpoint_bytes(path: str, modified: float) -> bytes:
    """A checkpoint's file, read once per file version (shared by every session: no copy per redraw)."""
    return Path(path).read_bytes()


@st.cache_resource(max_entries=4, show_spinner=False)
def onnx_zip(path: str, modified: float, name: str) -> bytes:
    """A run's checkpoint exported for other apps (siamese_core.inference.export), zipped; once per file version."""
    from siamese_core.inference.export import export_zip

    return export_zip(path, f"{name}.onnx", name="it")


def _finished_actions(info: jobs.RunInfo, allow_delete: bool, start_again: str) -> None:
    """What the run offers now that it has ended: exactly the checkpoint that exists, named as what it is."""
    run, name = info.run, info.run.path.name
    usable = models.usable_checkpoint(info)
    problem = checkpoint_problem(str(usable), usable.stat().st_mtime) if usable is not None else None
    best = run.best_epoch()
    if problem:  # say so instead of "finished", and offer nothing built on a broken file
        st.error(f"This run's {usable.stem} checkpoint cannot be used: {text.plain(problem)}")
    elif info.state == jobs.CANCELLED:
        st.info(f"This run was cancelled before its turn came: it never trained. {start_again}")
    elif usable is None:
        st.warning("This run saved no weights that can be used" + (": it failed before its first epoch ended."
                   if info.state == "failed" else ".") + f" {start_again}")
    elif usable.stem == "last":
        st.info("This run was stopped before its first epoch ended, so nothing was checked on validation pairs. "
                "Its last weights are kept and can be tried, but their verdict threshold is a neutral 50%, "
                "not one calibrated on validation pairs.")
    elif info.state == "done":
        st.success(f"Training finished: best validation accuracy {_percent(best and best.get('accuracy'))}"
                   + (f", at epoch {best['epoch']}." if best else "."))
    else:
        ended = "failed" if info.state == "failed" else "was stopped"
        st.info(f"This run {ended} after epoch {info.status.epoch or 0}. Its best checkpoint "
                + (f"(epoch {best['epoch']}, {_percent(best.get('accuracy'))} validation accuracy) " if best else "")
                + "can be used.")
    if usable is not None and not problem:
        which = "best" if usable.stem == "best" else "last"
        # Exported only once validated: its threshold is calibrated, and the model card has figures to show.
        cols = st.columns(4 if which == "best" else 3)
        if cols[0].button("Verify with this model", icon=ICONS["verify"], key=f"verify-{name}", type="primary"):
            models.use_model(f"run:{name}")
            st.switch_page("app_pages/verify/page.py")
        if cols[1].button("Explore its embeddings", icon=ICONS["explore"], key=f"explore-{name}"):
            models.use_model(f"run:{name}")
            st.switch_page("app_pages/explore/page.py")
        version = (str(usable), usable.stat().st_mtime)
        cols[2].download_button(f"Download {which} checkpoint", icon=":material/download:",
                                data=checkpoint_bytes(*version), file_name=f"{name}-{which}.pt",
                                mime="application/octet-stream", key=f"download-{name}", on_click="ignore")
        if which == "best":
            _onnx_download(cols[3], version, name)
    if allow_delete:
        _class_word(info)
        _delete(run)


def _onnx_download(place, version: tuple, name: str) -> None:
    """'Download for other apps': exported on a first click (seconds: say so), then a plain download of those bytes."""
    prepared = state.onnx_prepared()
    if version not in prepared:
        if not place.button("Prepare for other apps", icon=":material/deployed_code:", key=f"prepare-onnx-{name}",
                            help=ONNX_HELP + " Making it takes a few seconds."):
            return
        with place.status("Making the files for other apps (ONNX): a few seconds...") as making:
            try:
                onnx_zip(*version, name)
            except UserError as exc:
                making.update(label="The files for other apps could not be made", state="error")
                text.error(exc)
                return
            making.update(label="Ready to download", state="complete")
        prepared.add(version)
        st.rerun()  # the button becomes the download itself
    place.download_button("Download for other apps", icon=":material/deployed_code:", data=onnx_zip(*version, name),
                          file_name=f"{name}-onnx.zip", mime="application/zip", key=f"download-onnx-{name}",
                          on_click="ignore", help=ONNX_HELP)


ONNX_HELP = ("A zip for apps outside this one (phones, web pages, other languages): the model as ONNX files, a JSON "
             "file saying how to feed it images and read its verdict, and a model card with its data, recipe and "
             "figures.")


CLASS_WORD_LABEL = "Each class is one..."  # completed by the word: "Each class is one... person"


def _class_word(info: jobs.RunInfo) -> None:
    """Rename what one class of the run is called: every page that uses its model then speaks of it so."""
    from siamese_core.runs.context import run_class_word, set_class_word

    current = run_class_word(info.run, info.config)
    with st.expander(f"What each class is: {text.plain(current)}"):
        word = st.text_input(CLASS_WORD_LABEL, current, max_chars=30, key=f"class-word-{info.name}",
                             help="The verdicts say 'same person' or 'different digits' with this word.")
        if st.button("Save", key=f"class-word-save-{info.name}", disabled=word.strip() == current):
            kept = set_class_word(info.run, word)
            st.toast(f"Now: 'same {kept}'.")
            st.rerun()


def _delete(run: RunDir) -> None:
    name = run.path.name
    if st.session_state.get(state.CONFIRM_DELETE) != name:
        if st.button("Delete this run", icon=":material/delete:", key=f"delete-{name}"):
            st.session_state[state.CONFIRM_DELETE] = name
            st.rerun()
        return
    st.warning(f"Delete **{text.plain(name)}** with its checkpoints and uploaded data? This cannot be undone.")
    yes, no = st.columns(2)
    if yes.button("Yes, delete it", key=f"delete-yes-{name}", type="primary"):
        st.session_state.pop(state.CONFIRM_DELETE, None)
        try:
            jobs.delete(run)
        except UserError as exc:
            text.error(exc)
            return
        st.session_state[state.DELETED_RUN] = name
        st.rerun()
    if no.button("Cancel", key=f"delete-no-{name}"):
        st.session_state.pop(state.CONFIRM_DELETE, None)
        st.rerun()
