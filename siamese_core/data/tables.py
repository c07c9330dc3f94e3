"""CSV files read as tables of strings, and identities read from file names: torch-free, so that pages
can describe a file before anything heavy is imported (sources re-exports them for the loaders)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from ..errors import UserError
from ..words import short_name

FOUND_SHOWN = 10  # columns of a CSV without the required ones named in the message


def read_csv_table(csv_path, header="infer", name: Optional[str] = None) -> pd.DataFrame:
    """A CSV file as a table of strings; a file that is not UTF-8 text or not a CSV is a UserError
    that calls it `name` (default: its file name in quotes)."""
    csv_path = Path(csv_path)
    label = name or f"'{csv_path.name}'"
    try:
        return pd.read_csv(csv_path, dtype=str, keep_default_na=False, header=header, encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UserError(f"{label} is not UTF-8 text: save it again as 'CSV UTF-8' (spreadsheet programs "
                        "offer it under Save As).") from None
    except Exception as exc:  # noqa: BLE001 - pandas has many ways to fail on a file that is not a CSV
        raise UserError(f"{label} could not be read as a CSV file ({short_name(exc, 200)}).") from None


def read_csv_columns(csv_path, required, what: str = "file", name: Optional[str] = None):
    """Read a CSV of strings whose `required` columns may come in any order and letter case.

    Returns (table, {lower-case name: column name as written}).
    """
    csv_path = Path(csv_path)
    label = name or f"'{csv_path}'"
    if not csv_path.is_file():
        raise UserError(f"The {what} {label} does not exist: check the path.")
    table = read_csv_table(csv_path, name=name)
    columns = {str(c).strip().lower(): c for c in table.columns}
    missing = [c for c in required if c.lower() not in columns]
    if missing:
        found = ", ".join(short_name(c, 40) for c in table.columns[:FOUND_SHOWN])  # a header may be hostile
        more = f" and {len(table.columns) - FOUND_SHOWN:,} more" if len(table.columns) > FOUND_SHOWN else ""
        raise UserError(f"{label} needs columns {', '.join(required)}; missing: {', '.join(missing)} "
                        f"(found: {found}{more}).")
    return table, columns


def identities(names: Sequence[str], pattern: Optional[str]):
    """Labels from a regex on each file's base name; all -1 unless every name matches."""
    unknown = np.full(len(names), -1, dtype=np.int64), []
    if not pattern:
        return unknown
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise UserError(f"--identity-pattern '{pattern}' is not a valid regular expression ({exc}).") from None
    found = [regex.search(os.path.basename(n)) for n in names]
    if not all(found):
        return unknown
    ids = [m.group(1) if m.groups() else m.group(0) for m in found]
    classes = sorted(set(ids))
    index = {c: i for i, c in enumerate(classes)}
    return np.array([index[i] for i in ids], dtype=np.int64), classes
