"""The run directory: the one contract between the trainer and whoever watches it.

runs/<run-id>/
  config.json      the TrainConfig that rebuilds data and model
  status.json      state (queued/running/done/failed/stopped), epoch, step, totals, times, error, pid
  metrics.jsonl    one JSON object per logged step or epoch
  checkpoints/     best.pt, last.pt, epoch-NNN.pt
  log.txt          the trainer's log

JSON and checkpoint files are written to a temporary file and renamed, so a
reader never sees half a file and a crash never leaves a broken checkpoint.
metrics.jsonl is appended one whole line per write; readers skip a torn line, the next append ends
it first, and a resumed run drops the lines of the epoch a kill cut off. The trainer sweeps the
temporary files a kill left behind when it starts.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Optional

from . import settings
from .errors import UserError

STATES = ("queued", "running", "done", "failed", "stopped")
CHECKPOINT_FORMAT = "siamese-studio-checkpoint"
CHECKPOINT_VERSION = 1


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _json_safe(value):
    """NaN and infinity are not JSON: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_bytes(path, data: bytes) -> None:
    _atomic_write(Path(path), lambda fh: fh.write(data))



def write_png(path, image) -> None:
    """Save a PIL image as PNG atomically (a reader never sees half a picture)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    write_bytes(path, buffer.getvalue())

def write_text(path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path, data) -> None:
    text = json.dumps(_json_safe(data), indent=2, sort_keys=True)
    _atomic_write(Path(path), lambda fh: fh.write(text.encode()))


def read_json(path, default=None):
    """The JSON in `path`, or `default` when it is missing or is not JSON (not UTF-8 included)."""
    try:
        return json.loads(Path(path).read_bytes())
    except (FileNotFoundError, IsADirectoryError, ValueError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return default


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


def runs_root() -> Path:
    """Where runs live (see siamese_core.settings)."""
    return settings.runs_dir()


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

    def create(self) -> "RunDir":
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        return self

    def read_config(self) -> Optional[dict]:
        return read_json(self.config_path)

    def write_config(self, config: dict) -> None:
        write_json(self.config_path, config)

    def read_status(self) -> dict:
        return read_json(self.status_path, default={}) or {}

    def update_status(self, **changes) -> dict:
        status = self.read_status()
        status.update(changes)
        status["updated_at"] = time.time()
        write_json(self.status_path, status)
        return status

    def append_metrics(self, record: dict) -> None:
        line = (json.dumps(_json_safe(record), sort_keys=True) + "\n").encode("utf-8")
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
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records

    def keep_metrics_through(self, epoch: int) -> None:
        """On resume from `epoch`: drop what the cut-off epochs after it logged, so each epoch appears once."""
        kept = [r for r in self.read_metrics() if not isinstance(r.get("epoch"), (int, float)) or r["epoch"] <= epoch]
        write_text(self.metrics_path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))

    def sweep_temp_files(self) -> int:
        """Remove the temporary files a kill during an atomic write left (only the trainer, at start, calls this)."""
        removed = 0
        for folder in (self.path, self.checkpoints):
            for leftover in folder.glob(".*.tmp") if folder.is_dir() else ():
                try:
                    leftover.unlink()
                    removed += 1
                except OSError:
                    pass
        return removed

    def elapsed_before(self) -> float:
        """Training seconds of the run's earlier attempts, carried over when it is resumed."""
        status = self.read_status()
        started = status.get("started_at")
        # The last record the trainer wrote, not the status: after a kill, the status was last written by
        # whoever noticed the dead process, maybe much later.
        times = [r["time"] for r in self.read_metrics() if isinstance(r.get("time"), (int, float))]
        ended = max(times) if times else status.get("finished_at") or status.get("updated_at")
        earlier = float(status.get("elapsed_before") or 0.0)
        if isinstance(started, (int, float)) and isinstance(ended, (int, float)) and ended > started:
            earlier += ended - started
        return earlier


# ---------------------------------------------------------------- checkpoints

def save_checkpoint(path, *, spec: dict, state_dict: dict, threshold: float, metrics: dict,
                    epoch: int, config: dict, classes: list, extra: Optional[dict] = None) -> None:
    """A self-describing checkpoint of plain values and tensors: loads with weights_only=True."""
    import torch  # here, not at the top: reading a run's status must not pay for importing torch

    payload = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "spec": spec,
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "threshold": float(threshold),
        "metrics": _json_safe(metrics),
        "epoch": int(epoch),
        "config": _json_safe(config),
        "classes": list(classes),
        "saved_at": time.time(),
    }
    if extra:
        payload.update(extra)
    _atomic_write(Path(path), lambda fh: torch.save(payload, fh))


def load_checkpoint(path, map_location="cpu") -> dict:
    """Read a checkpoint safely (no pickled objects) and check it is one of ours."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise UserError(f"The checkpoint '{path}' does not exist: check the path.")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception:
        raise UserError(f"'{path}' is not a Siamese Studio checkpoint (it could not be read as one safely).") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"'{path}' is a PyTorch file but not a Siamese Studio checkpoint: "
                        "use a checkpoint from a run's checkpoints/ folder.")
    if payload.get("version", 0) > CHECKPOINT_VERSION:
        raise UserError(f"'{path}' was written by a newer Siamese Studio: update this one to load it.")
    return payload
