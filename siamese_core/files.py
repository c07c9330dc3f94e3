"""Files written whole or not at all, and files read from people without trusting them.

Writing: to a temporary file in the same folder, then renamed over the target, so a reader never sees
half a file and a crash never leaves a broken one; `write_all` does it for a set of files at once (all
or none). Reading: JSON with a size and nesting guard (`loads_json`), files inside a folder opened
without following a link swapped in (`open_inside`). CSV cells a spreadsheet would run as a formula
are neutralised (`csv_cell`). Every stage reads and writes this way, so it lives below them all.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import math
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Optional

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


# JSON read from files people can give or edit (sidecars, requests, metadata): a sidecar of a million image
# names is ~50 MB and nests 3 deep; anything far beyond is not one of ours. Deep nesting is refused before
# parsing: Python's parser recurses, and 200,000 levels end in a RecursionError.
JSON_MAX_BYTES = 512 * 2**20
JSON_MAX_DEPTH = 64
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')  # a string, escapes included: linear


class BadJson(ValueError):
    """Text that is not JSON this program reads: too large, nested too deep, or not JSON at all."""


def json_depth(data: bytes) -> int:
    """How deep the brackets of JSON text nest (strings skipped), in one pass: no parsing, no recursion."""
    import numpy as np

    codes = np.frombuffer(_JSON_STRING.sub(b'""', data), dtype=np.uint8)
    step = np.zeros(256, dtype=np.int64)
    step[[ord("["), ord("{")]], step[[ord("]"), ord("}")]] = 1, -1
    deepest = depth = 0
    for start in range(0, len(codes), 1 << 22):  # in slices: a few MB of counts at a time, whatever the file
        running = depth + np.cumsum(step[codes[start:start + (1 << 22)]])
        deepest, depth = max(deepest, int(running.max())), int(running[-1])
    return deepest


def loads_json(data, max_bytes: int = JSON_MAX_BYTES, max_depth: int = JSON_MAX_DEPTH):
    """JSON text (bytes or str) parsed, or BadJson saying why not, in words: larger than `max_bytes`, nested
    deeper than `max_depth`, not UTF-8, or not JSON. Never a RecursionError."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    if len(data) > max_bytes:
        raise BadJson(f"it is larger than {max_bytes // 2**20} MB")
    if data.count(b"[") + data.count(b"{") > max_depth:  # only then can it nest too deep
        if json_depth(data) > max_depth:
            raise BadJson(f"it nests deeper than {max_depth} levels")
    try:
        return json.loads(data)
    except RecursionError:
        raise BadJson(f"it nests deeper than {max_depth} levels") from None
    except UnicodeDecodeError:
        raise BadJson("it is not UTF-8 text") from None
    except ValueError:  # JSONDecodeError
        raise BadJson("it is not JSON") from None


def read_json(path, default=None, max_bytes: int = JSON_MAX_BYTES):
    """The JSON in `path`, or `default` when it is missing or is not JSON this program reads (not UTF-8,
    larger than `max_bytes`, nested deeper than JSON_MAX_DEPTH)."""
    try:
        path = Path(path)
        if path.stat().st_size > max_bytes:
            return default
        return loads_json(path.read_bytes(), max_bytes)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, BadJson):
        return default


def write_all(files: dict) -> list:
    """Write a set of files ({path: bytes}) all or none: each to a temporary file beside it, then all renamed
    into place. A failure while writing (a full disk) removes the temporary files and changes nothing; a
    failure while renaming puts back what was replaced and removes what was new. Returns the paths."""
    written, placed = {}, []  # path -> its temporary file; (path, the backup of what it replaced or None)
    try:
        for path, data in files.items():
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            written[path] = tmp
            os.fchmod(fd, 0o666 & ~_UMASK)
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        for path, tmp in written.items():
            backup = None
            if os.path.lexists(path):
                backup = tmp + ".old"
                try:
                    os.link(path, backup)  # the old file stays in place until the rename replaces it
                except OSError:  # a file system without hard links
                    shutil.copyfile(path, backup)
            placed.append((path, backup))
            os.replace(tmp, path)
    except BaseException:
        for path, backup in reversed(placed):
            try:
                if backup is not None:
                    os.replace(backup, path)
                elif os.path.lexists(path) and not os.path.lexists(written[path]):
                    os.unlink(path)
            except OSError:
                pass
        for tmp in written.values():
            for leftover in (tmp, tmp + ".old"):
                if os.path.lexists(leftover):
                    os.unlink(leftover)
        raise
    for _, backup in placed:
        if backup is not None:
            os.unlink(backup)
    return list(written)


# ---------------------------------------------------------------- reading inside a folder

class OutsideRoot(OSError):
    """A file that, once opened, lies outside the folder it had to be in (a link swapped in after listing)."""


def open_inside(root, path):
    """`path` opened for reading (binary) when the file it opens lies inside `root`; OutsideRoot otherwise.

    The last component is opened with O_NOFOLLOW, so a link swapped in between listing and reading is not
    followed blindly: a link is followed only to a target inside `root`, itself opened without following;
    and the opened file's real path (from the descriptor, not the name) must lie inside `root`, which also
    catches a folder on the way swapped for a link."""
    root_real = os.path.realpath(root)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    target = os.fspath(path)
    for _ in range(2):  # the name itself, then (when it is a link) the place it leads to, once
        try:
            fd = os.open(target, flags)
            break
        except OSError as exc:
            if exc.errno != errno.ELOOP or target != os.fspath(path):
                raise
            target = os.path.realpath(path)  # a link: followed only when it leads inside the root
            if not _within(root_real, target):
                raise OutsideRoot(errno.EACCES, "leads outside the folder it must be in", os.fspath(path)) from None
    try:
        opened = _real_path_of(fd, target)
        if opened is None or not _within(root_real, opened):
            raise OutsideRoot(errno.EACCES, "leads outside the folder it must be in", os.fspath(path))
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _within(root_real: str, path_real: str) -> bool:
    return path_real == root_real or path_real.startswith(root_real.rstrip(os.sep) + os.sep)


def _real_path_of(fd: int, name: str) -> Optional[str]:
    """The real path of an open file: from /proc where there is one; else its name resolved, when that name
    still leads to the very file opened (same device and inode)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        pass
    real = os.path.realpath(name)
    try:
        opened, named = os.fstat(fd), os.stat(real)
    except OSError:
        return None
    return real if (opened.st_dev, opened.st_ino) == (named.st_dev, named.st_ino) else None


# ---------------------------------------------------------------- CSV cells

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A cell for a CSV a person may open in a spreadsheet: text starting with = + - @ tab or CR (which Excel,
    LibreOffice and Google Sheets run as a formula: `=HYPERLINK(...)`) gets a leading apostrophe, which
    they show as text. Numbers, and anything else, are left as they are."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_table(table):
    """A pandas DataFrame with every text cell and column name made safe by csv_cell (numbers untouched)."""
    from pandas.api.types import is_object_dtype, is_string_dtype

    safe = table.copy()
    for column in safe.columns:
        if is_object_dtype(safe[column]) or is_string_dtype(safe[column]):  # text (pandas 3: a string dtype)
            safe[column] = safe[column].map(csv_cell)
    safe.columns = [csv_cell(str(c)) if isinstance(c, str) else c for c in safe.columns]
    return safe


def file_sha256(path) -> str:
    """The SHA-256 of a file (a checkpoint, an index), read a megabyte at a time."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(2**20), b""):
            digest.update(chunk)
    return digest.hexdigest()
