"""Files written whole or not at all: to a temporary file in the same folder, then renamed over the target.

A reader never sees half a file and a crash never leaves a broken one. Every stage writes this way (runs,
checkpoints, uploads, indexes, exports), so it lives below them all.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from pathlib import Path

# mkstemp makes files only their owner can read; the files written here get the usual mode instead
# (a run shared with a class, an exported model copied to another app). Read once: umask can only be swapped.
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write(path: Path, write) -> None:
    """Write `path` by calling `write(file)` on a temporary file beside it, then renaming it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def json_safe(value):
    """NaN and infinity are not JSON: write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_bytes(path, data: bytes) -> None:
    atomic_write(Path(path), lambda fh: fh.write(data))



def write_png(path, image) -> None:
    """Save a PIL image as PNG atomically (a reader never sees half a picture)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    write_bytes(path, buffer.getvalue())

def write_text(path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path, data) -> None:
    text = json.dumps(json_safe(data), indent=2, sort_keys=True)
    atomic_write(Path(path), lambda fh: fh.write(text.encode()))


def read_json(path, default=None):
    """The JSON in `path`, or `default` when it is missing or is not JSON (not UTF-8 included)."""
    try:
        return json.loads(Path(path).read_bytes())
    except (FileNotFoundError, IsADirectoryError, ValueError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return default
