"""Helpers shared by the benchmark scripts: a plain-text table, and how busy the machine was."""

from __future__ import annotations

import os
import time


def print_table(header, rows, figures_from: int = 1) -> None:
    """A markdown table; columns from `figures_from` on are right-aligned figures."""
    cells = [[str(c) for c in header]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]

    def line(row):
        return "| " + " | ".join(c.rjust(w) if i >= figures_from else c.ljust(w)
                                 for i, (c, w) in enumerate(zip(row, widths))) + " |"

    print(line(cells[0]))
    print("|" + "|".join("-" * (w + 1) + (":" if i >= figures_from else "-") for i, w in enumerate(widths)) + "|")
    for row in cells[1:]:
        print(line(row))


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _busy_cpu_seconds():
    """CPU seconds all processes have used since boot (Linux /proc/stat), or None elsewhere."""
    try:
        with open("/proc/stat") as fh:
            fields = [int(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    guest = sum(fields[8:10])  # already counted in user and nice
    return (sum(fields) - idle - guest) / os.sysconf("SC_CLK_TCK")


class OtherLoad:
    """How many cores other processes kept busy while this one ran: timings are only
    comparable when this stays near 0 (the machine may be shared with tests).

    Use it as a context manager, or call start() and stop()."""

    cores = None

    def start(self) -> "OtherLoad":
        self._start = (time.perf_counter(), _busy_cpu_seconds(), _own_cpu_seconds())
        return self

    def stop(self) -> None:
        wall, busy, own = time.perf_counter(), _busy_cpu_seconds(), _own_cpu_seconds()
        wall0, busy0, own0 = self._start
        if busy is not None and busy0 is not None:
            self.cores = max(0.0, ((busy - busy0) - (own - own0)) / max(wall - wall0, 1e-9))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False

    def __str__(self) -> str:
        return "unknown" if self.cores is None else f"{self.cores:.2f}"


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system
