"""What the embedding map can colour and search by: metadata columns and a safe regular-expression search.

A `Column` holds one value per image ("unknown" where there is none): the class, the image's folder, a
part of its file name, or an attribute read from a CSV the person uploads (`read_attributes`: first
column the image's name, the others attributes, rows matched to images by name). A column of many
different numbers is a scale (colour from low to high); any other column is categories (a colour each).

`search(pattern, fields)` says which images have a field matching a regular expression. Python's `re`
has no timeout and holds the interpreter lock while it matches, so one pattern like `(a+)+$` could stall
the whole server (every person's session) for hours. So: the pattern is at most PATTERN_MAX characters
and each text at most TEXT_MAX; a pattern with no repeat (`* + ? {`) and no alternative (`|`) cannot
backtrack badly and is matched here; any other runs in a separate Python process that is stopped after
SEARCH_TIMEOUT_S seconds (and may use at most 1 GB of memory). No widgets here: the Explore page shows them.
"""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Optional, Sequence

import numpy as np

from ..errors import UserError
from ..words import short_name

UNKNOWN = "unknown"
MISSING = {"", "na", "n/a", "nan", "none", "null", "-", "?"}  # cells that mean "no value"
NUMERIC_MIN_DISTINCT = 10  # a column of numbers with more different values than this gets a colour scale
NAME_PARTS = 4  # at most this many parts of file names are offered as columns
MAX_CSV_BYTES = 20 * 1024 * 1024
MAX_CSV_ROWS = 200_000
MAX_CSV_COLUMNS = 50
MAX_CELL = 200  # characters kept of each CSV cell
MAX_NAME = 4096  # characters of an image name in a CSV (a path's limit on Linux): a longer one names no image
PATTERN_MAX = 200  # characters of a search pattern
TEXT_MAX = 300  # characters of each searched text (file name, class, value)
SEARCH_TIMEOUT_S = 3.0  # a pattern slower than this over every image is stopped (Python's start included)
SEARCH_MEMORY = 1 << 30  # bytes the search process may use


@dataclass
class Column:
    """One value per image, as text (UNKNOWN where there is none); `numbers` when it is a scale."""

    name: str
    values: np.ndarray  # object array of str
    numbers: Optional[np.ndarray] = None  # float per image, NaN where unknown; only for a scale

    @property
    def continuous(self) -> bool:
        return self.numbers is not None

    def categories(self) -> list:
        """The column's values in natural order ('2' before '10'), UNKNOWN last."""
        found = set(self.values.tolist())
        return sorted(found - {UNKNOWN}, key=natural) + ([UNKNOWN] if UNKNOWN in found else [])

    def take(self, positions) -> "Column":
        positions = np.asarray(positions, dtype=np.int64)
        return Column(self.name, self.values[positions], None if self.numbers is None else self.numbers[positions])


def natural(text):
    """'2' before '10': values that are numbers sort as numbers, before words."""
    text = str(text)
    try:
        return (0, float(text), "")
    except ValueError:
        return (1, 0.0, text.casefold())


def _number(text: str) -> Optional[float]:
    try:
        value = float(text)
    except ValueError:
        try:  # "3,5": a decimal comma, as spreadsheets write it in much of Europe
            value = float(text.replace(",", ".")) if text.count(",") == 1 and "." not in text else None
        except ValueError:
            value = None
    return value if value is not None and np.isfinite(value) else None


def make_column(name: str, cells: Sequence[Optional[str]]) -> Column:
    """A column of these cells: a scale when every known cell is a number and there are more than
    NUMERIC_MIN_DISTINCT different ones (a few numbers, like 0/1 or ratings 1-5, are categories)."""
    values = np.array([UNKNOWN if c is None or str(c).strip().casefold() in MISSING else str(c).strip()
                       for c in cells], dtype=object)
    known = values != UNKNOWN
    numbers = [_number(v) for v in values[known]]
    if numbers and all(n is not None for n in numbers) and len(set(numbers)) > NUMERIC_MIN_DISTINCT:
        scale = np.full(len(values), np.nan)
        scale[known] = numbers
        return Column(name, values, scale)
    return Column(name, values)


# ------------------------------------------------------------------ columns the images carry

def _parts(name: str) -> PurePosixPath:
    return PurePosixPath(str(name).replace("\\", "/"))


def folder_column(names: Sequence[str], labels: Optional[Sequence[str]] = None) -> Optional[Column]:
    """Each image's folder (the path above its file), or None when the images have no folders, or when the
    folders only repeat the class (class folders one level deep: colouring by them shows nothing new)."""
    folders = [str(_parts(n).parent) for n in names]
    if all(f == "." for f in folders):
        return None
    column = make_column("folder", [None if f == "." else f for f in folders])
    if labels is not None and _same_grouping(column.values, labels):
        return None
    return Column(column.name, column.values)  # a folder is a place, never a scale


def _same_grouping(a: Sequence[str], b: Sequence[str]) -> bool:
    """True when two columns split the images into exactly the same groups."""
    return len(set(zip(a, b))) == len(set(a)) == len(set(b))


def name_part_columns(names: Sequence[str], limit: int = NAME_PARTS) -> list:
    """Parts of the file names, split at _ - . and spaces ('alice_smiling_01.jpg': alice, smiling, 01), as
    columns 'file name part 1', ...; only parts that group the images (more than one value, and either numbers
    or fewer values than images); none when most names are one part (that part is just the name)."""
    split = [[p for p in re.split(r"[_\-.\s]+", _parts(n).stem) if p] for n in names]
    n = len(split)
    columns = []
    if sum(len(parts) >= 2 for parts in split) < n / 2:
        return columns
    for j in range(limit):
        cells = [parts[j] if len(parts) > j else None for parts in split]
        if sum(c is not None for c in cells) < n / 2:
            break
        column = make_column(f"file name part {j + 1}", cells)
        distinct = len(set(column.values.tolist()))
        if distinct >= 2 and (column.continuous or distinct <= n / 2):
            columns.append(column)
    return columns


# ------------------------------------------------------------------ a CSV of attributes

@dataclass
class Attributes:
    """The columns read from a CSV, one value per image, and what the person should know about the match."""

    columns: list
    matched: int  # images that got a row
    notes: list = field(default_factory=list)  # sentences: rows that matched no image, duplicates, ...


def _decode(data: bytes, file_name: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 with its byte-order mark (Excel's "Unicode text")
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            pass
    elif b"\x00" not in data[:65536]:
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise UserError(f"{file_name} is not UTF-8 text (byte {exc.start + 1:,} is not): save it as "
                            "'CSV UTF-8' (Excel) or with the 'Unicode (UTF-8)' character set (LibreOffice), "
                            "then upload it again.") from None
    raise UserError(f"{file_name} is not a text file: upload a CSV saved as 'CSV UTF-8', one row per image.")


def _delimiter(first_line: str) -> str:
    """Comma, semicolon (spreadsheets in much of Europe) or tab: whichever the header line has most of."""
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _unique_headers(header: list) -> list:
    """Names for the columns (at most MAX_CSV_COLUMNS + 1 of them: 100,000 copies of one name would each try
    every suffix before theirs), made unique: 'size', 'size (2)'."""
    names, seen = [], set()
    for j, cell in enumerate(header[:MAX_CSV_COLUMNS + 1]):
        name = (cell or "").strip()[:MAX_CELL] or f"column {j + 1}"
        base, k = name, 2
        while name.casefold() in seen:
            name, k = f"{base} ({k})", k + 1
        seen.add(name.casefold())
        names.append(name)
    return names


def _rows(text: str, file_name: str) -> tuple[list, list]:
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    if not first:
        raise UserError(f"{file_name} is empty: it needs a header line, then one row per image.")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first))
    rows = []
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            rows.append(row)
            if len(rows) > MAX_CSV_ROWS + 1:
                raise UserError(f"{file_name} has more than {MAX_CSV_ROWS:,} rows: this page reads at most "
                                f"{MAX_CSV_ROWS:,}, one per image.")
    except csv.Error as exc:
        if "field larger than field limit" in str(exc):
            raise UserError(f"Line {reader.line_num:,} of {file_name} has a cell longer than "
                            f"{csv.field_size_limit():,} characters: no image name or attribute is that long, so "
                            "it is not a table of images.") from None
        raise UserError(f"Line {reader.line_num:,} of {file_name} cannot be read as CSV ({exc}).") from None
    header, body = rows[0], rows[1:]
    if len(header) < 2:
        raise UserError(f"{file_name} has only one column: put the image names in the first column and at least "
                        "one attribute in the next ones, separated by commas.")
    if not body:
        raise UserError(f"{file_name} has a header line but no rows: add one row per image.")
    return header, body


def _name_key(name: str) -> str:
    return re.sub(r"^(\./)+", "", str(name).strip().replace("\\", "/"))


class _NameMatcher:
    """Finds the image a CSV names: by its name as the map shows it (digits/3/0042.png), by a longer path
    ending in it (a zip's top folder or an absolute path in front), by its file name, or by the file name
    without extension; a file name only counts when one image has it. Case is tried as written, then ignored.

    Time is linear in the name's length: only the endings with as many parts as the map's deepest name are
    looked up (each one dictionary lookup), and a name longer than MAX_NAME names no image. (Trying every
    ending of a 130 KB name of 65,000 parts took 21.5 s.)"""

    def __init__(self, names: Sequence[str]):
        self.by_path: dict = {}
        self.by_path_folded: dict = {}
        self.by_file: dict = {}
        self.by_stem: dict = {}
        self.depth = 1  # parts of the map's deepest name: a longer ending of a written name cannot match
        for i, name in enumerate(names):
            key = _name_key(name)
            self.depth = max(self.depth, key.count("/") + 1)
            self.by_path.setdefault(key, i)
            self.by_path_folded.setdefault(key.casefold(), i)
            path = PurePosixPath(key)
            for table, word in ((self.by_file, path.name.casefold()), (self.by_stem, path.stem.casefold())):
                table[word] = i if word not in table else -1  # -1: more than one image has it

    def find(self, written: str) -> Optional[int]:
        if len(written) > MAX_NAME:
            return None
        key = _name_key(written)
        if not key:
            return None
        parts = key.split("/")
        for start in range(max(0, len(parts) - self.depth), len(parts)):  # the longest ending that can match first
            tail = "/".join(parts[start:])
            for table, word in ((self.by_path, tail), (self.by_path_folded, tail.casefold())):
                if word in table:
                    return table[word]
        path = PurePosixPath(key)
        for table, word in ((self.by_file, path.name.casefold()), (self.by_stem, path.stem.casefold())):
            if table.get(word, -1) >= 0:
                return table[word]
        return None


def read_attributes(data: bytes, names: Sequence[str], file_name: str = "The CSV") -> Attributes:
    """Columns of attributes for the images called `names`, from a CSV whose first column names the images.

    Images without a row get UNKNOWN; rows that name no image are counted in `notes`. Raises UserError,
    with one sentence saying what to change, for a file that is too big, not UTF-8, not a table, or names
    none of the images.
    """
    if len(data) > MAX_CSV_BYTES:
        raise UserError(f"{file_name} is {len(data) / 1e6:.0f} MB: this page reads CSV files of up to "
                        f"{MAX_CSV_BYTES // (1024 * 1024)} MB, one row per image.")
    header, body = _rows(_decode(data, file_name), file_name)
    headers = _unique_headers(header)
    notes = []
    if len(header) - 1 > MAX_CSV_COLUMNS:
        notes.append(f"Only the first {MAX_CSV_COLUMNS} of its {len(header) - 1} attribute columns are used.")
    matcher = _NameMatcher(names)
    cells = [[None] * len(names) for _ in headers[1:]]
    taken = np.zeros(len(names), dtype=bool)
    unmatched, repeated = [], 0
    for row in body:
        image = matcher.find(row[0])
        if image is None:
            unmatched.append(row[0])
            continue
        if taken[image]:
            repeated += 1
            continue
        taken[image] = True
        for j in range(len(headers) - 1):
            cells[j][image] = row[j + 1][:MAX_CELL] if j + 1 < len(row) else None
    matched = int(taken.sum())
    if matched == 0:
        example = _name_key(names[0]) if len(names) else ""
        raise UserError(f"None of the {len(body):,} names in the first column of {file_name} (the first: "
                        f"'{short_name(body[0][0])}') is an image on this map: use the names the map shows, "
                        f"like '{example}', or just the file names.")
    if unmatched:
        notes.append(f"{len(unmatched):,} of its {len(body):,} rows name no image here (the first: "
                     f"'{short_name(unmatched[0])}').")
    if repeated:
        notes.append(f"{repeated:,} rows name an image an earlier row already named: the first row counts.")
    if matched < len(names):
        notes.append(f"{len(names) - matched:,} of the {len(names):,} images have no row: they show as "
                     f"'{UNKNOWN}'.")
    return Attributes([make_column(h, c) for h, c in zip(headers[1:], cells)], matched, notes)


# ------------------------------------------------------------------ search

_CAN_BACKTRACK = re.compile(r"[*+?{|]")  # repeats and alternatives: the only sources of slow backtracking

_CHILD = r"""
import json, re, sys
try:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (%d, %d))
except Exception:
    pass
job = json.load(sys.stdin)
pattern = re.compile(job["pattern"], re.IGNORECASE)
sys.stdout.write("".join("1" if any(pattern.search(t) for t in row) else "0" for row in job["fields"]))
""" % (SEARCH_MEMORY, SEARCH_MEMORY)


def compile_pattern(pattern: str) -> "re.Pattern":
    """The pattern compiled (case ignored), or UserError saying in plain words what is wrong with it."""
    if len(pattern) > PATTERN_MAX:
        raise UserError(f"The search is {len(pattern):,} characters long: at most {PATTERN_MAX} are allowed, "
                        "shorten it.")
    try:
        return re.compile(pattern, re.IGNORECASE)
    except (re.error, RecursionError, OverflowError) as exc:
        where = f" at character {exc.pos + 1}" if getattr(exc, "pos", None) is not None else ""
        why = getattr(exc, "msg", None) or "too complex"
        raise UserError(f"'{short_name(pattern)}' is not a valid search pattern ({why}{where}): to search for "
                        "the characters . * + ? ( ) [ ] { } | ^ $ \\ as they are, put a \\ before each.") from None


def search(pattern: str, fields: Sequence[Sequence[str]], timeout_s: float = SEARCH_TIMEOUT_S) -> np.ndarray:
    """Which images match: True where any of the image's texts (`fields[i]`: its file name, class, a value)
    holds a match of `pattern`, a regular expression (plain text works too), upper and lower case alike."""
    compiled = compile_pattern(pattern)
    texts = [[str(t)[:TEXT_MAX] for t in row] for row in fields]
    if not _CAN_BACKTRACK.search(pattern):  # linear in the text: safe to match right here
        return np.array([any(compiled.search(t) for t in row) for row in texts], dtype=bool)
    job = json.dumps({"pattern": pattern, "fields": texts})
    try:
        done = subprocess.run([sys.executable, "-I", "-S", "-c", _CHILD], input=job, capture_output=True,
                              text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise UserError(f"'{short_name(pattern)}' takes too long to search (over {timeout_s:g} seconds): simplify "
                        "it; a repeat inside a repeat, like (a+)+, makes the search try every way to match.") from None
    if done.returncode != 0 or len(done.stdout) != len(texts):
        raise UserError(f"'{short_name(pattern)}' could not be searched (it needs too much memory): simplify it.")
    return np.frombuffer(done.stdout.encode("ascii"), dtype=np.uint8) == ord("1")
