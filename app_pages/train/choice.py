"""What the Train page's data step hands on: the chosen source, its TrainConfig fields, and why it cannot train yet."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional


@dataclass
class DataChoice:
    source: str
    settings: dict = field(default_factory=dict)  # TrainConfig fields
    upload_dir: Optional[Path] = None  # unpacked uploads, moved into the run when it starts
    problems: list = field(default_factory=list)  # why it cannot train; empty when it can
    name: str = "data"  # a short name for the run: digits, mnist, the zip's name...

    @property
    def ready(self) -> bool:
        return not self.problems
