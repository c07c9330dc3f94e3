"""Path confinement: the one place that decides whether a path a user named may be read.

A path is inside a root when, after following every symlink on the way (resolve), it is the root
or lies below it; so a link anywhere in a folder (`root/good/s2/stolen.pgm -> /elsewhere/1.pgm`,
`root/nested/x -> /elsewhere`) counts where it leads, not where it sits. Used by the server
folders under SIAMESE_DATA_ROOT, the CSV rows of `verify --pairs` and of uploaded batches, and
(through uploads) unpacked zips.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

from .. import settings
from ..errors import UserError
from .images import holds_image, is_image_file

log = logging.getLogger("siamese_core")


def inside(root, path) -> bool:
    """True when `path` is `root` or lies inside it, after following symlinks on both."""
    try:
        root = Path(root).resolve()
        path = Path(path).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, a name too long, a NUL byte in it
        return False
    return path == root or path.is_relative_to(root)


def confined(root, name: str, what: str = "file") -> Path:
    """`root / name` when it leads inside `root`, else a UserError that names only what the user wrote."""
    path = Path(root) / name
    if not inside(root, path):
        raise UserError(f"The {what} '{name}' leads outside the folder it must be in: it was not read.")
    return path


def data_root_of(folder) -> Optional[Path]:
    """The data root (SIAMESE_DATA_ROOT) when `folder` lies in it: what may be read from there stays inside it."""
    root = settings.data_root()
    if root is None:
        return None
    try:
        inside_root = Path(folder).absolute().is_relative_to(root.absolute()) or inside(root, folder)
    except OSError:
        return None
    return root if inside_root else None


def class_folder_files(root, by_content: bool = False) -> tuple[list, int]:
    """[(class name, sorted image files)] under `root`'s class folders, and how many were left out.

    Images anywhere below a class folder belong to it; hidden folders are not classes. When `root`
    lies in the data root, a file or folder whose link leads outside the data root is left out.
    Files are images by their names; `by_content`, by their first bytes too (a zip named .png is not one):
    for counting, where nothing is decoded (a loader decodes each file and reports those it cannot read).
    """
    is_image = holds_image if by_content else (lambda p: p.is_file() and is_image_file(p))
    root = Path(root)
    limit = data_root_of(root)
    left_out = 0
    classes = []
    for class_dir in sorted((d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".")),
                            key=lambda d: d.name):
        if limit is not None and not inside(limit, class_dir):
            left_out += 1
            continue
        found = []
        for path in sorted(class_dir.rglob("*")):
            if not is_image(path):
                continue
            if limit is not None and not inside(limit, path):
                left_out += 1
                continue
            found.append(path)
        if found:
            classes.append((class_dir.name, found))
    if left_out:
        log.warning("%d links under '%s' lead outside the data root: left out.", left_out, root.name)
    return classes, left_out
