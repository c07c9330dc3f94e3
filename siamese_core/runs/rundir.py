"""The run directory: the one contract between the trainer and whoever watches it.

runs/<run-id>/
  config.json      the TrainConfig that rebuilds data and model
  status.json      state (waiting/queued/running/done/failed/stopped/cancelled), epoch, step, totals, times, error,
                   pid: one RunStatus (siamese_core.runs.status), read by RunDir.status(), written by update_status()
  metrics.jsonl    one JSON object per logged step or epoch
  checkpoints/     best.pt, last.pt, epoch-NNN.pt
  log.txt          the trainer's log
  epoch-map/       a fixed sample of validation images in the model's space before training and after
                   each epoch (siamese_core.maps.snapshots)

JSON and checkpoint files are written to a temporary file and renamed, so a
reader never sees half a file and a crash never leaves a broken checkpoint.
metrics.jsonl is appended one whole line per write; readers skip a torn line, the next append ends
it first, and a resumed run drops the lines of the epoch a kill cut off. The trainer sweeps the
temporary files a kill left behind when it starts.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import time
from pathlib import Path
from typing import Optional

from ..errors import UserError
from ..files import atomic_write, json_safe, loads_json, read_json, write_json, write_text
from .domain_field import DOMAIN_KEY, domain_problem
from .status import RunStatus

CHECKPOINT_FORMAT = "siamese-studio-checkpoint"
CHECKPOINT_VERSION = 1


def process_alive(pid: int) -> bool:
    """Is process `pid` running? A finished child not yet reaped (a zombie) counts as ended."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True  # no /proc (macOS): os.kill said it exists


def process_started_at(pid: int) -> Optional[float]:
    """When process `pid` started (seconds since the epoch), from /proc; None where that is unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            ticks = int(fh.read().rsplit(")", 1)[1].split()[19])  # field 22: start time after boot
        with open("/proc/stat", encoding="ascii") as fh:
            boot = next(int(line.split()[1]) for line in fh if line.startswith("btime "))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def epoch_in_progress(status: RunStatus) -> int:
    """The epoch to show a person: while training, the one being trained (1 from the first step, where the
    status counts the epochs finished, 0); afterwards, the last one finished."""
    done, total = status.epoch or 0, status.total_epochs or 0
    if status.state in ("queued", "running") and (not total or done < total):
        return done + 1
    return done


class RunDir:
    def __init__(self, path):
        self.path = Path(path)

    config_path = property(lambda self: self.path / "config.json")
    status_path = property(lambda self: self.path / "status.json")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    log_path = property(lambda self: self.path / "log.txt")
    checkpoints = property(lambda self: self.path / "checkpoints")

    def checkpoint(self, name: str) -> Path:
        return self.checkpoints / f"{name}.pt"

    def resume_checkpoint(self) -> Optional[Path]:
        """The checkpoint `--resume` continues from: last.pt; when its write failed (a full disk) and only best.pt
        is there, best.pt; None when neither is."""
        return next((p for p in (self.checkpoint("last"), self.checkpoint("best")) if p.is_file()), None)

    def create(self) -> "RunDir":
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        return self

    def read_config(self) -> Optional[dict]:
        return read_json(self.config_path)

    def write_config(self, config: dict) -> None:
        write_json(self.config_path, config)

    def status(self) -> RunStatus:
        """The one reader of status.json: what it says, typed; an empty status when it is missing or unreadable."""
        return RunStatus.from_dict(read_json(self.status_path))

    def update_status(self, **changes) -> RunStatus:
        """The one writer of status.json: these fields changed (by name; RunStatus refuses any it does not
        have), the others kept, written atomically. Returns the status written."""
        status = self.status().changed(**changes, updated_at=time.time())
        write_json(self.status_path, status.to_dict())
        return status

    def append_metrics(self, record: dict) -> None:
        line = (json.dumps(json_safe(record), sort_keys=True) + "\n").encode("utf-8")
        with open(self.metrics_path, "ab+") as fh:
            if fh.tell() > 0:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":  # a kill tore the last line: end it, or this record would join it
                    line = b"\n" + line
            fh.write(line)
            fh.flush()

    def read_metrics(self) -> list:
        """Every whole record; a torn, garbled or non-UTF-8 line is skipped, not fatal."""
        try:
            lines = self.metrics_path.read_bytes().splitlines()
        except FileNotFoundError:
            return []
        records = []
        for line in lines:
            try:
                record = loads_json(line)
            except ValueError:  # BadJson: torn, garbled, or nested too deep to parse safely
                continue
            if isinstance(record, dict):
                records.append(record)
        return records

    def best_epoch(self, records: Optional[list] = None) -> Optional[dict]:
        """The record of the epoch whose checkpoint is `best`: the highest validation accuracy, the earliest
        on a tie (the trainer replaces `best` only on a strict gain). None before an epoch has finished."""
        epochs = [r for r in (self.read_metrics() if records is None else records)
                  if r.get("type") == "epoch" and isinstance(r.get("accuracy"), (int, float))]
        return max(epochs, key=lambda r: (r["accuracy"], -r["epoch"])) if epochs else None

    def keep_metrics_through(self, epoch: int) -> None:
        """On resume from `epoch`: drop what the cut-off epochs after it logged, so each epoch appears once."""
        kept = [r for r in self.read_metrics() if not isinstance(r.get("epoch"), (int, float)) or r["epoch"] <= epoch]
        write_text(self.metrics_path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))

    def sweep_temp_files(self) -> int:
        """Remove the temporary files a kill during an atomic write left (the trainer calls this as it starts).

        Only the trainer writes checkpoints, so every temp file there is a leftover; in the run folder
        the app may be writing at this very moment (a Stop click), so only files older than a few
        seconds go."""
        removed, recent = 0, time.time() - 5.0
        # Only the trainer writes checkpoints and the epoch map's snapshots (siamese_core.maps.snapshots).
        for folder, young_too in ((self.checkpoints, True), (self.path / "epoch-map", True), (self.path, False)):
            for leftover in folder.glob(".*.tmp") if folder.is_dir() else ():
                try:
                    if young_too or leftover.stat().st_mtime < recent:
                        leftover.unlink()
                        removed += 1
                except OSError:
                    pass
        return removed

    def elapsed_before(self) -> float:
        """Training seconds of the run's earlier attempts, carried over when it is resumed."""
        status = self.status()
        started = status.started_at
        # The last record the trainer wrote, not the status: after a kill, the status was last written by
        # whoever noticed the dead process, maybe much later.
        times = [r["time"] for r in self.read_metrics() if isinstance(r.get("time"), (int, float))]
        ended = max(times) if times else status.finished_at or status.updated_at
        earlier = status.elapsed_before or 0.0
        if started is not None and isinstance(ended, (int, float)) and ended > started:
            earlier += ended - started
        return earlier


class ReadOnlyRun(RunDir):
    """A run directory as the other processes of a distributed training see it: they read it (to resume) but
    only rank 0 writes it, so each record, status and checkpoint is written once."""

    def create(self) -> "ReadOnlyRun":
        return self

    def write_config(self, config: dict) -> None:
        pass

    def update_status(self, **changes) -> RunStatus:
        return self.status().changed(**changes)

    def append_metrics(self, record: dict) -> None:
        pass

    def keep_metrics_through(self, epoch: int) -> None:
        pass

    def sweep_temp_files(self) -> int:
        return 0


# ---------------------------------------------------------------- checkpoints

# A checkpoint's two operating points (evaluation.metrics.operating_points), beside its verdict `threshold`.
OPERATING_POINT_FIELDS = ("threshold_policy", "medians_threshold", "rare_same_threshold", "same_share")


def save_checkpoint(path, *, spec: dict, state_dict: dict, threshold: float, metrics: dict,
                    epoch: int, config: dict, classes: list, extra: Optional[dict] = None,
                    operating_points: Optional[dict] = None) -> None:
    """A self-describing checkpoint of plain values and tensors: loads with weights_only=True.

    `operating_points` (a validation's figures will do: its OPERATING_POINT_FIELDS are kept) holds both
    thresholds chosen on the validation pairs; `threshold` is the verdict's."""
    import torch  # here, not at the top: reading a run's status must not pay for importing torch

    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "spec": spec,
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "threshold": float(threshold),
        "metrics": json_safe(metrics),
        "epoch": int(epoch),
        "config": json_safe(config),
        "classes": list(classes),
        "saved_at": time.time(),
    }
    if operating_points and all(k in operating_points for k in OPERATING_POINT_FIELDS):
        payload["operating_points"] = {k: operating_points[k] for k in OPERATING_POINT_FIELDS}
    if extra:
        payload.update(extra)
    path = Path(path)
    try:
        atomic_write(path, lambda fh: torch.save(payload, fh))  # a failed write leaves no temporary file
    except (OSError, RuntimeError) as exc:
        if not write_failed(exc):
            raise  # a bug, not the disk: its traceback is what a report needs
        raise CheckpointNotWritten(path, exc) from exc


class CheckpointNotWritten(UserError):
    """A checkpoint write that failed (a full disk, a disk gone): the run ends with this one sentence. The file it
    was replacing, and every checkpoint written before, are as they were (atomic_write)."""

    def __init__(self, path: Path, cause: BaseException):
        self.path, self.cause = path, cause
        full = _disk_full(cause)
        why = "the disk is full" if full else f"the write failed ({_reason(cause)})"
        free = "Free some space, then continue" if full else "Check the disk, then continue"
        # The checkpoint's name inside the run, not the server's path: the app shows this sentence too.
        super().__init__(f"Training stopped: checkpoints/{path.name} could not be written because {why}; the "
                         f"checkpoints written before are kept. {free} the run from its last checkpoint "
                         f"(python -m siamese_core train --resume -o <the run's folder>).")


_DISK_FULL_ERRNOS = (28, 122)  # ENOSPC, EDQUOT


def write_failed(exc: BaseException) -> bool:
    """Whether an exception from writing a file says the write itself failed: any OSError, or the RuntimeError
    torch.save's C++ zip writer raises for a short write ("[enforce fail at inline_container.cc:...] ... file
    write failed")."""
    if isinstance(exc, OSError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and ("inline_container" in text or "write failed" in text
                                              or "No space left on device" in text)


def _disk_full(exc: BaseException) -> bool:
    seen = exc
    while seen is not None:  # torch's RuntimeError may carry the OSError of the Python file it wrote to
        if isinstance(seen, OSError) and seen.errno in _DISK_FULL_ERRNOS:
            return True
        if "No space left on device" in str(seen) or "Disk quota exceeded" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    # torch.save writes through the Python file object: its C++ message is only "file write failed"
    return isinstance(exc, RuntimeError) and "inline_container" in str(exc)


def _reason(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__)


MAX_IMAGE_SIZE = 1024  # far above any size this app trains (224 at most); a forged 40,000 would take gigabytes
ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive


class NotACheckpoint(UserError):
    """The file is some other file, not a Siamese Studio checkpoint (as against one of ours, damaged)."""


class UnsafeCheckpoint(NotACheckpoint):
    """The file holds pickled Python objects (which could run code when loaded), not plain values and tensors."""


def load_checkpoint(path, map_location="cpu", name: Optional[str] = None) -> dict:
    """Read a checkpoint safely (no pickled objects), check it is one of ours and that every field
    the app uses has the right type and range, and that its weights fit the network its spec
    describes (checked on the meta device: nothing is allocated). Any failure is one UserError
    sentence that calls the file `name` (default: its path)."""
    import torch

    path = Path(path)
    label = name or f"'{path}'"
    if not path.is_file():
        raise UserError(f"The checkpoint {label} does not exist: check the path.")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:  # whole, but it names Python objects the safe reader will not build
        raise UnsafeCheckpoint(f"{label} is not a Siamese Studio checkpoint this app can read safely: it holds "
                               "Python objects, not only weights, and loading them could run code, so it was not "
                               "loaded.") from None
    except Exception:
        with open(path, "rb") as fh:
            damaged = fh.read(4) == ZIP_MAGIC
        if damaged:
            raise UserError(f"{label} is damaged or incomplete (it may have been cut off while being written or "
                            "copied): use another copy, or the run's other checkpoint.") from None
        raise NotACheckpoint(f"{label} is not a Siamese Studio checkpoint (it could not be read as one safely).") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise NotACheckpoint(f"{label} is a PyTorch file but not a Siamese Studio checkpoint: "
                             "use a checkpoint from a run's checkpoints/ folder.")
    version = payload.get("version", 0)
    if isinstance(version, int) and not isinstance(version, bool) and version > CHECKPOINT_VERSION:
        raise UserError(f"{label} was written by a newer Siamese Studio: update this one to load it.")
    problem = checkpoint_problem(payload)
    if problem is None:
        from ..models.networks import state_dict_problem  # torch and the backbones: only once the fields are sound

        problem = state_dict_problem(payload["spec"], payload["state_dict"])
    if problem:
        raise UserError(f"{label} is damaged or was edited by hand: {problem}.")
    return payload


def _is_int(value, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def checkpoint_problem(payload: dict) -> Optional[str]:
    """What is wrong with a checkpoint's fields (type or range), in words; None when nothing is."""
    import torch

    from ..config import HEADS, INPUTS, MODES

    if not _is_int(payload.get("version", 0), 0, CHECKPOINT_VERSION):
        return "its version is not a whole number"
    spec = payload.get("spec")
    if not isinstance(spec, dict):
        return "it has no network description (spec)"
    if not isinstance(spec.get("backbone"), str):
        return "its spec names no backbone"
    if spec.get("mode") not in MODES:
        return f"its mode {spec.get('mode')!r} is none of {', '.join(MODES)}"
    if spec.get("head") is not None and spec["head"] not in HEADS:
        return f"its head {spec['head']!r} is none of {', '.join(HEADS)}"
    size = spec.get("image_size")
    sides = size if isinstance(size, list) and len(size) == 2 else [size]
    if not all(_is_int(side, 8, MAX_IMAGE_SIZE) for side in sides):
        shown = repr(size)[:40]  # a forged field may be huge: its start is enough to recognise it
        return f"its image size {shown} is neither a whole number nor [height, width], each from 8 to {MAX_IMAGE_SIZE}"
    if spec.get("channels") not in (1, 3) or isinstance(spec.get("channels"), bool):
        return f"its channels {spec.get('channels')!r} is neither 1 nor 3"
    if spec.get("embedding_dim") is not None and not _is_int(spec["embedding_dim"], 1, 16384):
        return f"its embedding size {spec['embedding_dim']!r} is not a whole number from 1 to 16384"
    if spec.get("dropout") is not None and not (_is_number(spec["dropout"]) and 0 <= spec["dropout"] < 1):
        return f"its dropout {spec['dropout']!r} is not a number from 0 to 1"
    if spec.get("input") is not None and spec["input"] not in INPUTS:
        return f"its input pipeline {spec['input']!r} is none of {', '.join(INPUTS)}"
    for key in ("mean", "std"):
        values = spec.get(key)
        if values is not None and not (isinstance(values, list) and len(values) == spec["channels"]
                                       and all(_is_number(v) for v in values)):
            return f"its {key} is not {spec['channels']} number(s)"
    if spec.get("std") and any(v <= 0 for v in spec["std"]):
        return "its std holds a number that is not positive"
    state = payload.get("state_dict")
    if not (isinstance(state, dict) and state and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                     for k, v in state.items())):
        return "it holds no weights (state_dict)"
    if not _is_number(payload.get("threshold")):
        return f"its threshold {payload.get('threshold')!r} is not a number"
    # The threshold is a score: a probability (pair models) or 1 - distance / 2 (embeddings), both from 0 to 1.
    if not 0.0 <= payload["threshold"] <= 1.0:
        return f"its threshold {payload['threshold']!r} is not a score from 0 to 1, where the model's scores lie"
    broken = next((k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())), None)
    if broken is not None:
        return f"its weights hold numbers that are not finite (NaN or infinity, e.g. in {broken})"
    points = payload.get("operating_points")
    if points is not None:
        problem = _operating_points_problem(points)
        if problem:
            return problem
    if payload.get("epoch") is not None and not _is_int(payload["epoch"], 0, 10 ** 6):
        return f"its epoch {payload['epoch']!r} is not a whole number"
    classes = payload.get("classes")
    if classes is not None and not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
        return "its class names are not a list of names"
    for key in ("config", "metrics"):
        if payload.get(key) is not None and not isinstance(payload[key], dict):
            return f"its {key} is not a table of values"
    if payload.get(DOMAIN_KEY) is not None:  # older checkpoints have none: they load, and cannot tell
        return domain_problem(payload[DOMAIN_KEY])
    return None


def _operating_points_problem(points) -> Optional[str]:
    """What is wrong with a checkpoint's operating points (absent in checkpoints before them); None if nothing."""
    from ..config import THRESHOLD_POLICIES

    if not isinstance(points, dict):
        return "its operating points are not a table of values"
    if points.get("threshold_policy") not in THRESHOLD_POLICIES:
        return f"its threshold policy {_shown(points.get('threshold_policy'))} is none of {', '.join(THRESHOLD_POLICIES)}"
    for key in ("medians_threshold", "rare_same_threshold"):
        if not (_is_number(points.get(key)) and 0.0 <= points[key] <= 1.0):
            return f"its {key.replace('_', ' ')} {_shown(points.get(key))} is not a number from 0 to 1"
    if not (_is_number(points.get("same_share")) and 0.0 < points["same_share"] < 1.0):
        return f"its same share {_shown(points.get('same_share'))} is not a number between 0 and 1"
    return None


def _shown(value) -> str:
    """A forged value in a sentence, cut short: a field may hold megabytes."""
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"
