"""The Train page's data step: pick a source, see what was found, learn whether it can train."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import streamlit as st

from app_pages.shared import text
from app_pages.shared.paths import SAMPLES, mnist_root
from app_pages.shared.uploads import staged_upload, unpack_zip
from app_pages.train import builder
from app_pages.train.choice import DataChoice
from siamese_core.data import paths, uploads
from siamese_core.data.images import open_image
from siamese_core.errors import UserError
from siamese_core.files import write_bytes
from siamese_core.settings import data_root

DIGITS = "Built-in handwritten digits (no download)"
MNIST = "MNIST (70,000 digits)"
ZIP = "Upload a zip of class folders"
TRIPLETS = "Upload a triplet CSV and a zip of its images"
MAKE = "Make one here (webcam or uploads)"
SERVER = "A folder on this server"
MNIST_HOST = "ossci-datasets.s3.amazonaws.com"  # where torchvision downloads MNIST from
THUMBNAIL_CLASSES = 10  # classes shown with thumbnails; the rest are counted


def pick_data() -> DataChoice:
    sources = [DIGITS, MNIST, ZIP, TRIPLETS, MAKE] + ([SERVER] if data_root() else [])
    made_here = sources.index(MAKE) if builder.named_in_address() else 0  # a reload returns to its images
    source = st.radio("Images to learn from", sources, index=made_here, key="data-source",
                      help="A zip of class folders holds one folder per person, product or signature, "
                           "each with that class's images. 'Make one here' builds such folders in the app, "
                           "from webcam snapshots or image files.")
    if source != MAKE:
        builder.leave_address()
    try:
        if source == DIGITS:
            return _digits()
        if source == MNIST:
            return _mnist()
        if source == ZIP:
            return _class_zip()
        if source == TRIPLETS:
            return _triplets()
        if source == MAKE:
            return builder.make_dataset(MAKE)
        return _server_folder()
    except UserError as exc:
        text.error(exc)
        return DataChoice(source, problems=[str(exc)])


def _digits() -> DataChoice:
    st.caption("1,797 real handwritten digits (scikit-learn's, 8x8 pixels scaled up): 10 classes of about "
               "180 images each. Training learns whether two digits are the same digit.")
    _thumbnails({d.name: sorted(d.glob("*.png")) for d in sorted(SAMPLES.iterdir()) if d.is_dir()})
    return DataChoice(DIGITS, {"dataset": "digits"}, name="digits")


def _mnist() -> DataChoice:
    from siamese_core.data.sources import mnist_parts_available  # imports torch: only when MNIST is picked

    root = mnist_root()
    parts = mnist_parts_available(root)
    if parts == ["test"]:
        st.caption(f"Only the 10,000 MNIST test images are in `{root}`: they are split for training and "
                   "validation. 10 classes (the digits).")
    elif parts:
        st.caption(f"MNIST found in `{root}`: 60,000 training and 10,000 test images of the 10 digits.")
    if parts:
        return DataChoice(MNIST, {"dataset": "mnist", "data_root": str(root)}, name="mnist")
    settings = {"dataset": "mnist", "data_root": str(root)}
    if _mnist_downloadable():
        st.caption(f"MNIST is not in `{root}` yet: training downloads it there first (about 11 MB).")
        return DataChoice(MNIST, settings, name="mnist")
    problem = (f"The MNIST files are not in `{root}` and this machine cannot download them (it is offline). "
               "Put the IDX files (`t10k-images-idx3-ubyte.gz` and the others) there, or set SIAMESE_MNIST_DIR "
               "to the folder that holds them.")
    st.warning(problem)
    return DataChoice(MNIST, settings, problems=[problem], name="mnist")


def _mnist_downloadable() -> bool:
    from siamese_core.models.networks import reachable  # its answer is kept a minute, then asked again

    with st.spinner("Checking whether MNIST can be downloaded..."):
        return reachable(MNIST_HOST)


def _class_zip() -> DataChoice:
    upload = st.file_uploader("Zip of class folders", type=["zip"], key="class-zip",
                              help="For example people.zip holding alice/1.jpg, alice/2.jpg, bob/1.jpg ...")
    if upload is None:
        return DataChoice(ZIP, problems=["Upload a zip of class folders first."])
    staged = unpack_zip(upload, staged_upload(upload))  # starting a run moves it into the run
    root = uploads.find_class_root(staged)
    choice = _describe(uploads.describe_class_folders(root), ZIP)
    choice.settings = {"dataset": "folder", "train_path": str(root), "data_name": upload.name}
    choice.upload_dir = staged
    choice.name = Path(upload.name).stem
    return choice


def _server_folder() -> DataChoice:
    base = data_root()
    folders = sorted(str(p.relative_to(base)) for p in base.glob("*/") if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise UserError(f"The data root {base} holds no folders: put one folder of class folders there.")
    picked = st.selectbox(f"Folder inside {base}", folders, key="server-folder")
    folder = base / picked
    if not paths.inside(base, folder):
        raise UserError(f"'{picked}' leads outside {base} (it is a link): only folders inside it can be used.")
    root = uploads.find_class_root(folder)
    choice = _describe(uploads.describe_class_folders(root), SERVER)
    choice.settings = {"dataset": "folder", "train_path": str(root), "data_name": folder.name}
    choice.name = folder.name
    return choice


def _triplets() -> DataChoice:
    left, right = st.columns(2)
    csv = left.file_uploader("Triplet CSV (columns Anchor, Positive, Negative)", type=["csv"], key="triplet-csv")
    images = right.file_uploader("Zip of the images it names", type=["zip"], key="triplet-zip")
    if csv is None or images is None:
        return DataChoice(TRIPLETS, problems=["Upload both the CSV and the zip of images first."])
    staged = unpack_zip(images, staged_upload(csv, images))
    csv_path = staged / "triplets.csv"
    if not csv_path.is_file():
        write_bytes(csv_path, csv.getvalue())
    summary = _described_triplets(str(csv_path), str(staged), csv.name)
    if summary.rows:
        who = f" of {len(summary.identities):,} identities (read from the file names)" if summary.identities else ""
        st.caption(f"{summary.rows:,} triplets naming {summary.names:,} images{who}.")
    if summary.first:
        _thumbnails(dict(zip(("anchor", "positive", "negative"), ([path] for path in summary.first))))
    for note in summary.notes:
        st.warning(text.plain(note))
    for problem in summary.problems:
        text.error(problem)
    chosen = {"dataset": "triplets", "triplets": str(csv_path), "images": str(summary.images_root or staged),
              "data_name": f"{csv.name} and {images.name}"}
    return DataChoice(TRIPLETS, chosen, staged, summary.problems, name=Path(csv.name).stem)


@st.cache_data(max_entries=4, show_spinner="Reading the triplet file...")
def _described_triplets(csv_path: str, staged: str, csv_name: str) -> uploads.TripletSummary:
    """Once per upload (its folder is named by the hash of both files), not on every click: a file of
    60,000 rows over 20,000 images takes about two seconds to check."""
    return uploads.describe_triplets(csv_path, staged, csv_name=f"'{csv_name}'", images_name="the zip")


SAMPLED_CLASSES = 20  # classes whose first files are opened before Start, to catch files that are no images


def _describe(summary: uploads.FolderSummary, source: str) -> DataChoice:
    if summary.total:
        counts = sorted(summary.counts.values())
        spread = f"{counts[0]:,}" if counts[0] == counts[-1] else f"{counts[0]:,} to {counts[-1]:,}"
        st.caption(f"Found {summary.total:,} images in {len(summary.classes):,} classes ({spread} images per class).")
        _thumbnails(summary.examples, summary.counts)
        if len(summary.classes) > THUMBNAIL_CLASSES:
            with st.expander(f"Images per class (all {len(summary.classes):,})"):
                st.dataframe({"class": summary.classes, "images": [summary.counts[c] for c in summary.classes]},
                             hide_index=True)
    problems = list(summary.problems)
    too_few = uploads.class_split_problem(len(summary.classes))  # what the run would refuse, said before Start
    if too_few and not problems:
        problems.append(f"{too_few} Add class folders: the run holds some classes out to check the network on "
                        "people or things it has never seen.")
    sampled = [path for files in list(summary.examples.values())[:SAMPLED_CLASSES] for path in files]
    if sampled and not problems and not any(_small_image(path) is not None for path in sampled):
        problems.append(f"None of the {len(sampled)} files looked at could be read as an image (checked: the first "
                        "few of each class). Check that the zip holds pictures, not files renamed to .png or .jpg.")
    for problem in problems:
        text.error(problem)
    return DataChoice(source, problems=problems)


def _thumbnails(examples: dict, counts: Optional[dict] = None, max_classes: int = THUMBNAIL_CLASSES) -> None:
    """A few images of the first classes, so a person sees that the right data was found."""
    shown = list(examples.items())[:max_classes]
    if not shown:
        return
    for column, (name, files) in zip(st.columns(len(shown)), shown):
        small = [image for image in map(_small_image, files[:2]) if image is not None]
        if small:
            column.image(small, width=56)
        column.caption(f"{text.plain(name)} ({counts[name]:,})" if counts else text.plain(name))
    if len(examples) > max_classes:
        more = len(examples) - max_classes
        st.caption(f"... and {more:,} more {'class' if more == 1 else 'classes'}.")


def _small_image(path: Path):
    """A thumbnail decoded with the library's guards (pixel cap, EXIF); None for a file that is no image."""
    try:
        image = open_image(path)
    except UserError:
        return None  # the trainer reports unreadable files; a preview just leaves them out
    image.thumbnail((112, 112))
    return image
