"""Safe handling of what people upload: zips of images, and folders on the server.

A zip is untrusted: its names may point outside the target folder, its members
may be links, its headers may lie about sizes, a file may share its name with a
folder, and a small zip may unpack to gigabytes. extract_zip writes only inside a
fresh temporary sibling of the destination, checks the declared sizes, ratios and
names before writing anything, counts the real bytes (and their ratio to the
packed ones) while writing, and renames the folder into place only when
everything went well.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import stat
import tempfile
import time
import zipfile
import zlib
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .. import settings
from ..config import DEFAULT_IDENTITY_PATTERN
from ..errors import UserError
from ..words import short_name
from .images import IMAGE_SUFFIXES, holds_image
from .paths import class_folder_files, inside
from .tables import identities, read_csv_columns

CHUNK = 1 << 20
# Below these many unpacked bytes a ratio is not checked: a tiny file of one colour shrinks 1000-fold and harms
# nobody; a zip bomb needs size to do harm.
RATIO_FLOOR_ENTRY = 1 << 20
RATIO_FLOOR_ZIP = 16 << 20
_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass
class ExtractResult:
    path: Path  # the destination folder
    files: int  # files written
    skipped: list = field(default_factory=list)  # member names not written: unsafe paths and links


# ---------------------------------------------------------------- zips

def _size_words(n: int) -> str:
    if n >= 2**30:
        return f"{n / 2**30:.1f} GB"
    if n >= 2**20:
        return f"{n / 2**20:.0f} MB"
    return f"{n:,} bytes"


def _describe(source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return f"'{Path(source).name}'"
    name = getattr(source, "name", None)  # e.g. Streamlit's UploadedFile
    return f"'{name}'" if isinstance(name, str) and name else "The uploaded file"


def _open_zip(source, name: str) -> zipfile.ZipFile:
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise UserError(f"{name} does not exist or is not a file: check the path.")
    elif isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(bytes(source))
    elif not (hasattr(source, "seekable") and source.seekable()):
        source = io.BytesIO(source.read())  # zipfile needs to seek to the central directory
    try:
        return zipfile.ZipFile(source)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError):
        raise UserError(f"{name} is not a zip file, or it is damaged or cut short. Upload a .zip made with "
                        "'Compress' (macOS), 'Send to > Compressed folder' (Windows) or `zip -r`.") from None


def _safe_parts(member: str) -> Optional[list]:
    """The path components of a member name, or None when it could point outside the folder."""
    member = member.replace("\\", "/")  # some Windows tools write backslashes
    if member.startswith("/") or _DRIVE.match(member):
        return None
    parts = [p for p in member.split("/") if p not in ("", ".")]
    if ".." in parts:
        return None
    return parts


def _is_junk(parts: list) -> bool:
    """macOS metadata that is never a user's image."""
    return "__MACOSX" in parts or parts[-1] == ".DS_Store" or parts[-1].startswith("._")


def _is_link(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _plan(archive: zipfile.ZipFile):
    """Split members into (info, parts) to write and the names to skip."""
    keep, skipped = [], []
    for info in archive.infolist():
        parts = _safe_parts(info.filename)
        if parts is None or _is_link(info):
            skipped.append(info.filename)
        elif parts and not _is_junk(parts):
            keep.append((info, parts))
    return keep, skipped


def _is_dir_member(info: zipfile.ZipInfo) -> bool:
    return info.is_dir() or info.filename.endswith("\\")


def _check_names(name: str, keep: list) -> None:
    """Refuse a zip where one name is both a file and a folder ('a' beside 'a/' or 'a/b'): it cannot be unpacked
    as it is, and the system's own refusal ('File exists') says nothing a person can act on."""
    files = {tuple(parts) for info, parts in keep if not _is_dir_member(info)}
    folders = {tuple(parts[:k]) for info, parts in keep for k in range(1, len(parts))}
    folders |= {tuple(parts) for info, parts in keep if _is_dir_member(info)}
    clash = min(files & folders, default=None)
    if clash is not None:
        raise UserError(f"{name} holds both a file and a folder called '{short_name('/'.join(clash))}': rename one "
                        "of them, zip the images again and upload it once more.")


def _ratio_words(name: str, what: str, ratio: float) -> str:
    return (f"{name} would unpack {what} to more than {ratio:g} times its size in the zip, which images never do "
            "(it looks like a zip bomb), so it was not unpacked. Zip the images as they are, or raise "
            "SIAMESE_UPLOAD_MAX_RATIO.")


def _check_declared(name: str, keep: list, max_bytes: int, max_files: int, max_ratio: float) -> None:
    """Refuse on the headers' word before writing anything."""
    if len(keep) > max_files:
        raise UserError(f"{name} holds {len(keep):,} files, more than the limit of {max_files:,} "
                        "(set SIAMESE_UPLOAD_MAX_FILES to change it).")
    declared = sum(info.file_size for info, _ in keep)
    if declared > max_bytes:
        raise UserError(f"{name} unpacks to {_size_words(declared)}, more than the limit of "
                        f"{_size_words(max_bytes)} (set SIAMESE_UPLOAD_MAX_MB to change it).")
    if any(info.flag_bits & 0x1 for info, _ in keep):
        raise UserError(f"{name} is password-protected: zip the images again without a password.")
    for info, _ in keep:
        if info.file_size > max(RATIO_FLOOR_ENTRY, max_ratio * info.compress_size):
            raise UserError(_ratio_words(name, f"'{short_name(info.filename)}'", max_ratio))
    if declared > max(RATIO_FLOOR_ZIP, max_ratio * sum(info.compress_size for info, _ in keep)):
        raise UserError(_ratio_words(name, "its files", max_ratio))
    _check_names(name, keep)


def extract_zip(source, dest, *, max_bytes: Optional[int] = None, max_files: Optional[int] = None) -> ExtractResult:
    """Unpack a zip (path, bytes or binary file object) into `dest`, which must not exist or be empty.

    Caps default to SIAMESE_UPLOAD_MAX_MB / SIAMESE_UPLOAD_MAX_FILES / SIAMESE_UPLOAD_MAX_RATIO
    (siamese_core.settings, read now): the ratio caps each file's unpacked size to its packed one, and the
    whole zip's. Unsafe names and links are skipped and listed in the result; macOS metadata (__MACOSX,
    .DS_Store, ._*) is dropped silently; a name that is both a file and a folder is refused.
    """
    if max_bytes is None:
        max_bytes = settings.upload_max_bytes()
    if max_files is None:
        max_files = settings.upload_max_files()
    max_ratio = settings.upload_max_ratio()
    dest = Path(dest)
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise UserError(f"'{dest}' already exists and is not an empty folder: choose another place to unpack to.")
    name = _describe(source)

    with _open_zip(source, name) as archive:
        keep, skipped = _plan(archive)
        _check_declared(name, keep, max_bytes, max_files, max_ratio)
        dest.parent.mkdir(parents=True, exist_ok=True)
        # A hidden sibling on the same file system, so the final rename is atomic.
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp"))
        try:
            files = _write_members(archive, keep, tmp, name, max_bytes, max_ratio)
            if dest.exists():
                dest.rmdir()  # empty, checked above
            os.rename(tmp, dest)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return ExtractResult(dest, files, skipped)


def _write_members(archive: zipfile.ZipFile, keep: list, tmp: Path, name: str, max_bytes: int,
                   max_ratio: float) -> int:
    written = files = packed = 0
    for info, parts in keep:
        target = tmp.joinpath(*parts)
        # Belt and braces: joinpath with an odd part (a Windows "C:x") could still leave tmp.
        if not Path(os.path.normpath(target)).is_relative_to(tmp):
            continue
        try:
            if _is_dir_member(info):
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a name the file system refuses (too long, say): named, in words
            raise UserError(f"{name} could not be unpacked at '{short_name(info.filename)}' "
                            f"({exc.strerror or type(exc).__name__}).") from None
        packed += info.compress_size
        entry = 0
        try:
            with archive.open(info) as src, open(target, "wb") as out:
                # Headers can lie: count the bytes really written, not the declared ones, and their ratio.
                while chunk := src.read(CHUNK):
                    written += len(chunk)
                    entry += len(chunk)
                    if written > max_bytes:
                        raise UserError(f"{name} unpacks to more than the limit of {_size_words(max_bytes)} "
                                        "(set SIAMESE_UPLOAD_MAX_MB to change it).")
                    if entry > max(RATIO_FLOOR_ENTRY, max_ratio * info.compress_size):
                        raise UserError(_ratio_words(name, f"'{short_name(info.filename)}'", max_ratio))
                    if written > max(RATIO_FLOOR_ZIP, max_ratio * packed):
                        raise UserError(_ratio_words(name, "its files", max_ratio))
                    out.write(chunk)
        except NotImplementedError:
            raise UserError(f"{name} uses a compression method this app cannot read ('{info.filename}'): "
                            "zip the images again with the standard (deflate) method.") from None
        except RuntimeError:  # zipfile's "encrypted, password required"
            raise UserError(f"{name} is password-protected: zip the images again without a password.") from None
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
            raise UserError(f"{name} is damaged: '{info.filename}' cannot be unpacked ({exc}). "
                            "Make the zip again and upload it once more.") from None
        except OSError as exc:  # includes a corrupt bzip2/lzma stream, a full disk, a name the OS refuses
            raise UserError(f"{name} could not be unpacked at '{short_name(info.filename)}' "
                            f"({exc.strerror or type(exc).__name__}).") from None
        files += 1
    return files


# ---------------------------------------------------------------- finding the data inside

def _visible_dirs(folder: Path) -> list:
    return sorted((d for d in folder.iterdir() if d.is_dir() and not d.name.startswith(".")
                   and d.name != "__MACOSX"), key=lambda d: d.name)


def find_class_root(folder) -> Path:
    """Skip wrapping folders (zip of 'mydata/' holding 'cats/', 'dogs/'): the folder whose sub-folders are classes."""
    folder = Path(folder)
    while True:
        subdirs = _visible_dirs(folder)
        has_images = any(holds_image(p) for p in folder.iterdir())
        # One sub-folder with no folders of its own is a lone class, not a wrapper: stay here.
        if len(subdirs) != 1 or has_images or not _visible_dirs(subdirs[0]):
            return folder
        folder = subdirs[0]


def _file_there(path: Path) -> bool:
    try:
        return path.is_file()
    except (OSError, ValueError):  # a name too long for the file system, or with a NUL byte in it
        return False


def find_images_root(folder, names: Sequence[str], max_depth: int = 4) -> Path:
    """The folder (this one or a descendant, nearest first) under which the first of `names` is a file."""
    folder = Path(folder)
    names = [str(n).strip().replace("\\", "/") for n in names if str(n).strip()]
    if not names:
        return folder
    queue = deque([(folder, 0)])
    while queue:
        candidate, depth = queue.popleft()
        path = candidate / names[0]
        if _file_there(path) and inside(folder, path):  # a CSV naming '/etc/passwd' finds nothing
            return candidate
        if depth < max_depth:
            queue.extend((d, depth + 1) for d in _visible_dirs(candidate))
    return folder


# ---------------------------------------------------------------- describing class folders

@dataclass
class FolderSummary:
    classes: list  # class names with at least one image, sorted
    counts: dict  # class name -> number of images
    examples: dict  # class name -> first few image paths, sorted
    loose_images: int = 0  # images directly in the root, in no class

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def problems(self) -> list:
        """Plain-words reasons these folders cannot be trained on; empty when they can."""
        if self.total == 0:
            if self.loose_images:
                return [f"The {self.loose_images:,} images are not in class folders: put them into one "
                        "sub-folder per class (one folder per person, product or signature)."]
            kinds = ", ".join(sorted(s.lstrip(".") for s in IMAGE_SUFFIXES))
            return [f"No images were found. Expected one sub-folder per class, each holding images ({kinds})."]
        found = []
        if len(self.classes) < 2:
            found.append(f"Only one class ('{self.classes[0]}') was found: a Siamese network learns same "
                         "versus different by comparing classes, so it needs at least two, one folder each.")
        single = [c for c in self.classes if self.counts[c] < 2]
        if single:
            listed = ", ".join(f"'{s}'" for s in single[:5]) + (f" and {len(single) - 5} more" if len(single) > 5 else "")
            has = "has" if len(single) == 1 else "have"
            found.append(f"Each class needs at least two images to show the network what 'same' looks like, "
                         f"but {listed} {has} only one. Add images or remove those folders.")
        return found


MIN_CLASSES_TO_SPLIT = 4  # 2 to train on, 2 never seen in training to check with


def class_split_problem(n_classes: int) -> Optional[str]:
    """Why `n_classes` cannot be split by class (the default for folders), in words; None when they can."""
    if n_classes >= MIN_CLASSES_TO_SPLIT:
        return None
    return (f"A split by class needs at least {MIN_CLASSES_TO_SPLIT} classes (2 to train on, 2 to check with); "
            f"found {n_classes}.")


def describe_class_folders(root, max_examples: int = 4) -> FolderSummary:
    """Count images per class folder without decoding them, as load_class_folders lists them; a file counts when
    its first bytes are an image's too (a zip renamed .png does not count, so a class of one image and one
    such file is said to have one)."""
    root = Path(root)
    if not root.is_dir():
        raise UserError(f"The folder '{root}' does not exist: check the path.")
    classes, counts, examples = [], {}, {}
    for name, found in class_folder_files(root, by_content=True)[0]:  # the loader's own listing, by content
        classes.append(name)
        counts[name] = len(found)
        examples[name] = found[:max_examples]
    loose = sum(1 for p in root.iterdir() if holds_image(p))
    return FolderSummary(classes, counts, examples, loose)


# ---------------------------------------------------------------- describing a triplet file

TRIPLET_COLUMNS = ("Anchor", "Positive", "Negative")


@dataclass
class TripletSummary:
    """What a triplet CSV and its images folder hold, as load_triplet_csv will see them (no image decoded)."""

    rows: int = 0  # triplet rows in the file
    names: int = 0  # distinct names in them
    images_root: Optional[Path] = None  # the folder the names are read under (the one given, or one inside it)
    identities: list = field(default_factory=list)  # read from the found files' names; [] unless all match
    missing: list = field(default_factory=list)  # names that are no file in the images folder
    outside: list = field(default_factory=list)  # names leading outside it (.., a full path, a link): never read
    complete: int = 0  # rows whose three files are all there
    first: Optional[tuple] = None  # the first complete row's files: (anchor, positive, negative)
    problems: list = field(default_factory=list)  # why it cannot be trained on, in sentences; [] when it can
    notes: list = field(default_factory=list)  # what training leaves out, in sentences


def _named(name: str) -> str:
    return f"'{short_name(name)}'" if name else "an empty cell"


def describe_triplets(csv_path, images_dir, identity_pattern: Optional[str] = DEFAULT_IDENTITY_PATTERN, *,
                      csv_name: Optional[str] = None, images_name: str = "the images folder") -> TripletSummary:
    """Count the rows of a triplet CSV (columns Anchor, Positive, Negative in any order and case), the files
    they name that are in `images_dir` (or in the folder inside it that holds the first name, as a zip's
    wrapping folder) and the identities `identity_pattern` reads from those files' names. Never raises for
    what is in the file: every problem is a sentence that calls the file `csv_name` (default: its name in
    quotes) and the folder `images_name`, and quotes names shortened. Nothing outside the folder is looked
    at beyond where its links lead, and nothing is decoded."""
    csv_path, images_dir = Path(csv_path), Path(images_dir)
    label = csv_name or f"'{csv_path.name}'"
    summary = TripletSummary()
    if not images_dir.is_dir():
        summary.problems.append(f"The images folder '{images_dir.name}' does not exist: check the path.")
        return summary
    try:
        if csv_path.is_file() and csv_path.stat().st_size == 0:
            raise UserError(f"{label} is empty: it needs a header row ({','.join(TRIPLET_COLUMNS)}) and one row "
                            "per triplet.")
        table, columns = read_csv_columns(csv_path, TRIPLET_COLUMNS, "triplet file", label)
    except UserError as exc:
        summary.problems.append(str(exc))
        return summary
    rows = [[str(cell).strip() for cell in row]
            for row in table[[columns[c.lower()] for c in TRIPLET_COLUMNS]].itertuples(index=False)]
    summary.rows = len(rows)
    if not rows:
        summary.problems.append(f"{label} has a header but no rows: add one row per triplet (the anchor, an image "
                                "of the same identity and one of another).")
        return summary
    unique = list(dict.fromkeys(name for row in rows for name in row))
    summary.names = len(unique)
    root = summary.images_root = find_images_root(images_dir, [name for name in unique if name][:1])
    found = {}
    for name in unique:
        path = root / name
        if not name or "\x00" in name:  # no file has such a name
            summary.missing.append(name)
        elif not inside(root, path):  # '../x', '/etc/x' or a link out: not looked at, as the loader
            summary.outside.append(name)
        elif _file_there(path):
            found[name] = path
        else:
            summary.missing.append(name)
    complete = [row for row in rows if all(name in found for name in row)]
    summary.complete = len(complete)
    if complete:
        summary.first = tuple(found[name] for name in complete[0])
    try:
        labels, summary.identities = identities(list(found), identity_pattern)
    except UserError as exc:
        summary.problems.append(str(exc))
        return summary
    _triplet_problems(summary, labels, label, images_name, unique)
    return summary


def _triplet_problems(summary: TripletSummary, labels, label: str, images_name: str, unique: list) -> None:
    """What load_triplet_csv and the trainer's check would refuse, said before Start; and what they leave out."""
    present = summary.names - len(summary.missing) - len(summary.outside)
    if summary.outside:
        n = len(summary.outside)
        summary.notes.append(f"{n:,} {'name' if n == 1 else 'names'} in {label} {'leads' if n == 1 else 'lead'} "
                             f"outside {images_name} (e.g. {_named(summary.outside[0])}): never read, and the "
                             "triplets naming them are left out.")
    if not present:
        summary.problems.append(f"None of the files {label} names are in {images_name}: check that its names "
                                f"match the paths there (the first is {_named(unique[0])}).")
        return
    if summary.missing:
        n = len(summary.missing)
        summary.notes.append(f"{n:,} {'file' if n == 1 else 'files'} {label} names {'is' if n == 1 else 'are'} "
                             f"not in {images_name} (e.g. {_named(summary.missing[0])}); the triplets naming "
                             f"{'it' if n == 1 else 'them'} are left out.")
    if summary.identities:
        counts = np.bincount(labels)
        if len(summary.identities) < 2 or counts.max() < 2:
            summary.problems.append(f"The images {label} names need at least two identities, one of them with two "
                                    "images or more (identities are read from each file's name).")
    elif not summary.complete:
        summary.problems.append(f"No row of {label} has all three of its files in {images_name}: at least one "
                                "complete triplet (anchor, positive, negative) is needed.")


def remove_older_than(folder, seconds: float) -> None:
    """Delete the sub-folders of `folder` last changed more than `seconds` ago (stale unpacked uploads)."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    limit = time.time() - seconds
    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink() and child.stat().st_mtime < limit:
            shutil.rmtree(child, ignore_errors=True)


# ---------------------------------------------------------------- folders on the server

# ---------------------------------------------------------------- staging: where uploads unpack, once

UPLOADS_KEPT_S = 86400  # unpacked uploads nobody used for a day are removed


def uploads_root() -> Path:
    """<runs>/.uploads: uploaded files, unpacked or kept until a run takes them."""
    return settings.runs_dir() / ".uploads"


def content_hash(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part)
    return digest.hexdigest()[:16]


def upload_digest(*files, cache: Optional[dict] = None) -> str:
    """The content hash of uploaded files (objects with getvalue(), such as Streamlit's uploads).

    Hashing a large zip takes seconds: with a `cache` (a dict the caller keeps, keyed by the files'
    `file_id`s) it is done once per uploaded file, not on every click on a page.
    """
    key = tuple(f.file_id for f in files) if cache is not None else None
    if key is not None and key in cache:
        return cache[key]
    digest = content_hash(*(f.getvalue() for f in files))
    if key is not None:
        cache[key] = digest
    return digest


def staging_dir(digest: str, kind: str = "") -> Path:
    """Where an upload with this content hash unpacks: <runs>/.uploads/[<kind>/]<digest>.

    The same files always land in the same folder, so they unpack once; folders of the same
    kind nobody used for a day (UPLOADS_KEPT_S) are removed on the way.
    """
    staging = uploads_root() / kind if kind else uploads_root()
    folder = staging / digest
    # Age counts from the last use, not the unpacking: a folder found again (and its kind's folder,
    # which a staging call of another kind judges) is marked as used before stale ones go.
    for used in (folder, staging):
        with contextlib.suppress(OSError):
            os.utime(used)
    remove_older_than(staging, UPLOADS_KEPT_S)
    return folder


def unpack_once(source, folder) -> Optional[ExtractResult]:
    """Unpack a zip into `folder` unless it is there already (then None); UserError when it cannot be.

    Two sessions unpacking the same zip at once is fine: the one that loses the race finds the folder.
    """
    folder = Path(folder)
    if folder.is_dir():
        return None
    try:
        return extract_zip(source, folder)
    except (UserError, OSError):
        if not folder.is_dir():
            raise
        return None
