"""A run's status.json as one typed record: read tolerantly, written by field name.

The trainer writes it as it goes, the app's jobs module as it queues, starts, cancels a run or finds its
process gone; the pages, the command line and the queue read it. A file from an older version, cut short or
edited by hand still reads: a value of the wrong type or out of range reads as unknown (None), unknown keys
are ignored, anything but a JSON object reads as an empty status. On disk it stays the JSON object it
always was: one key per field that has a value.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Optional

# waiting: for a free slot (jobs); queued: its process is starting
STATES = ("waiting", "queued", "running", "done", "failed", "stopped", "cancelled")
MAX_COUNT = 10 ** 12  # far above any epoch, step or image count; a forged 10**400 reads as unknown
MAX_SECONDS = 1e11  # times are seconds since 1970 (the year 5138); durations are far shorter
MAX_PID = 2 ** 31 - 1  # a pid os.kill accepts; 0 and negative pids would signal whole process groups
MAX_PROCESSES = 10_000
MAX_TEXT = 10_000  # characters kept of a label, phase or error


def _whole(value: Any, low: int, high: int) -> Optional[int]:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    if not isinstance(value, numbers.Integral):
        if not (math.isfinite(value) and float(value).is_integer()):
            return None
    value = int(value)
    return value if low <= value <= high else None


def as_count(value: Any) -> Optional[int]:
    """A whole number from 0 to MAX_COUNT (3.0 counts as 3), else None."""
    return _whole(value, 0, MAX_COUNT)


def as_pid(value: Any) -> Optional[int]:
    """A process id that can only name one process (positive, in range), else None."""
    return _whole(value, 1, MAX_PID)


def as_processes(value: Any) -> Optional[int]:
    return _whole(value, 1, MAX_PROCESSES)


def as_seconds(value: Any) -> Optional[float]:
    """A time (seconds since 1970) or a duration: a finite number from 0 to MAX_SECONDS, else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    value = float(value)
    return value if math.isfinite(value) and 0 <= value <= MAX_SECONDS else None


def as_share(value: Any) -> Optional[float]:
    """A share from 0 to 1 (an accuracy), else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    value = float(value)
    return value if 0 <= value <= 1 else None


def as_text(value: Any) -> Optional[str]:
    return value[:MAX_TEXT] if isinstance(value, str) else None


def as_state(value: Any) -> Optional[str]:
    return value if value in STATES else None


def as_record(value: Any) -> Optional[dict]:
    return value if isinstance(value, dict) else None


def _read(reader):
    return field(default=None, metadata={"read": reader})


@dataclass(frozen=True)
class RunStatus:
    """What status.json says of a run; None where it says nothing (or nothing readable)."""

    state: Optional[str] = _read(as_state)  # one of STATES
    label: Optional[str] = _read(as_text)  # the run's name as given at Start
    pid: Optional[int] = _read(as_pid)  # the trainer's process (rank 0's under torchrun)
    processes: Optional[int] = _read(as_processes)  # training processes asked for; None: one
    phase: Optional[str] = _read(as_text)  # the frozen path's stage: "embedding images", "training the head"
    epoch: Optional[int] = _read(as_count)  # epochs finished
    total_epochs: Optional[int] = _read(as_count)
    step: Optional[int] = _read(as_count)  # steps done in all (the frozen path counts its embedding batches too)
    total_steps: Optional[int] = _read(as_count)
    steps_per_epoch: Optional[int] = _read(as_count)
    epoch_step: Optional[int] = _read(as_count)  # steps done in the epoch being trained
    train_images: Optional[int] = _read(as_count)
    val_pairs: Optional[int] = _read(as_count)
    best_accuracy: Optional[float] = _read(as_share)  # validation accuracy of the best epoch
    best_epoch: Optional[int] = _read(as_count)  # the epoch checkpoints/best.pt holds
    last_metrics: Optional[dict] = _read(as_record)  # the last epoch's record in metrics.jsonl
    error: Optional[str] = _read(as_text)  # why a failed run failed, in words
    created_at: Optional[float] = _read(as_seconds)  # when asked for (the app) or when its process began
    asked_at: Optional[float] = _read(as_seconds)  # when Start was clicked: the queue's order
    started_at: Optional[float] = _read(as_seconds)  # when this attempt began training
    finished_at: Optional[float] = _read(as_seconds)
    updated_at: Optional[float] = _read(as_seconds)  # the last write
    elapsed_before: Optional[float] = _read(as_seconds)  # training seconds of earlier attempts (resumed runs)
    time_budget: Optional[float] = _read(as_seconds)  # the seconds the run may take (--time); None: trained for epochs
    budget_started_at: Optional[float] = _read(as_seconds)  # when the budget's clock began (the process's start)
    budget_used: Optional[float] = _read(as_seconds)  # the seconds a budgeted run took in all, once it is done
    expected_end: Optional[float] = _read(as_seconds)  # when a budgeted run should end, from its measured speed

    @classmethod
    def from_dict(cls, values: Any) -> "RunStatus":
        """The status a parsed status.json says; never raises (see the module's docstring)."""
        if not isinstance(values, dict):
            return cls()
        return cls(**{f.name: f.metadata["read"](values.get(f.name)) for f in dataclasses.fields(cls)})

    def to_dict(self) -> dict:
        """status.json's object: the fields that have a value."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if getattr(self, f.name) is not None}

    def changed(self, **changes) -> "RunStatus":
        """This status with `changes`; a field name it does not have, or a value it would not read back
        (a string for an epoch, a negative pid), is refused: a ValueError, for the code that wrote it."""
        fields = {f.name: f for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - set(fields))
        if unknown:
            raise ValueError(f"A run's status has no field {', '.join(map(repr, unknown))}.")
        read = {}
        for name, value in changes.items():
            read[name] = fields[name].metadata["read"](value)
            if value is not None and read[name] is None:
                raise ValueError(f"{value!r} is not a valid {name} for a run's status.")
        return dataclasses.replace(self, **read)
