"""Uploads: real zips built here, including hostile ones, must unpack only where they should or be refused."""

import io
import os
import stat
import struct
import time
import zipfile
from pathlib import Path

import pytest

from siamese_core import settings
from siamese_core.data import uploads
from siamese_core.errors import UserError
from siamese_core.settings import data_root
from siamese_core.data.uploads import (ExtractResult, describe_class_folders, extract_zip, find_class_root,
                                  find_images_root, inside)


def make_zip(path: Path, members: dict, compression=zipfile.ZIP_DEFLATED) -> Path:
    """members: name -> bytes, or a ready ZipInfo -> bytes."""
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


# What an image file starts with: images are counted by their first bytes, not their names (a zip named .png
# does not count), and nothing here is decoded, so the signature alone stands for an image.
IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(24)


def leftovers(folder: Path) -> list:
    """Hidden temporary folders extract_zip may have left behind."""
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_class_folder_zip_is_extracted_and_described(tmp_path):
    source = make_zip(tmp_path / "pets.zip", {
        "cats/1.jpg": IMAGE, "cats/2.jpg": IMAGE, "cats/3.png": IMAGE,
        "dogs/a.png": IMAGE, "dogs/sub/b.PNG": IMAGE, "dogs/notes.txt": b"not an image",
        "__MACOSX/cats/._1.jpg": b"junk", "cats/.DS_Store": b"junk", "dogs/._a.png": b"junk",
    })
    result = extract_zip(source, tmp_path / "out")
    assert isinstance(result, ExtractResult)
    assert result.path == tmp_path / "out" and result.files == 6 and result.skipped == []
    assert not (tmp_path / "out" / "__MACOSX").exists()
    assert not (tmp_path / "out" / "cats" / ".DS_Store").exists()
    assert leftovers(tmp_path) == []

    summary = describe_class_folders(find_class_root(result.path))
    assert summary.classes == ["cats", "dogs"]
    assert summary.counts == {"cats": 3, "dogs": 2} and summary.total == 5
    assert [p.name for p in summary.examples["cats"]] == ["1.jpg", "2.jpg", "3.png"]
    assert summary.loose_images == 0 and summary.problems == []


def test_bytes_and_file_objects_are_accepted_and_empty_dest_is_fine(tmp_path):
    data = make_zip(tmp_path / "a.zip", {"a/1.png": b"x"}).read_bytes()
    assert extract_zip(data, tmp_path / "from-bytes").files == 1
    (tmp_path / "empty").mkdir()
    assert extract_zip(io.BytesIO(data), tmp_path / "empty").files == 1
    assert (tmp_path / "empty" / "a" / "1.png").read_bytes() == b"x"


def test_non_empty_dest_is_refused(tmp_path):
    source = make_zip(tmp_path / "a.zip", {"a/1.png": b"x"})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(UserError, match="already exists"):
        extract_zip(source, tmp_path / "out")
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_wrapping_top_folder_is_found(tmp_path):
    source = make_zip(tmp_path / "wrapped.zip", {
        "mydata/inner/cats/1.jpg": b"x", "mydata/inner/dogs/1.jpg": b"x", "mydata/README.txt": b"hi",
        "__MACOSX/mydata/._README.txt": b"junk",
    })
    out = extract_zip(source, tmp_path / "out").path
    (out / ".hidden").mkdir()  # hidden entries do not count as a second folder
    assert find_class_root(out) == out / "mydata" / "inner"
    assert find_class_root(out / "mydata" / "inner") == out / "mydata" / "inner"


def test_a_folder_with_images_is_not_descended(tmp_path):
    (tmp_path / "only").mkdir()
    (tmp_path / "1.png").write_bytes(b"x")
    assert find_class_root(tmp_path) == tmp_path


def test_unsafe_names_are_never_written_outside(tmp_path):
    outside_abs = tmp_path / "abs.txt"
    evil = {
        "../evil.txt": b"evil",
        "good/../../evil2.txt": b"evil",
        str(outside_abs): b"evil",  # an absolute name
        "C:/windows/evil3.txt": b"evil",
        "..\\evil4.txt": b"evil",
        "good/1.png": b"fine",
    }
    source = make_zip(tmp_path / "evil.zip", evil)
    result = extract_zip(source, tmp_path / "sub" / "out")
    assert result.files == 1
    assert sorted(result.skipped) == sorted(n for n in evil if n != "good/1.png")
    for name in ("evil.txt", "evil2.txt", "evil4.txt"):
        for folder in (tmp_path, tmp_path / "sub", tmp_path.parent):
            assert not (folder / name).exists()
    assert not outside_abs.exists()
    written = sorted(str(p.relative_to(result.path)) for p in result.path.rglob("*"))
    assert written == ["good", "good/1.png"]


def test_symlink_member_is_skipped(tmp_path):
    link = zipfile.ZipInfo("cats/link.png")
    link.create_system = 3  # unix, where the high 16 bits are st_mode
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(tmp_path / "link.zip", "w") as zf:
        zf.writestr(link, "/etc/passwd")
        zf.writestr("cats/1.png", b"x")
    result = extract_zip(tmp_path / "link.zip", tmp_path / "out")
    assert result.skipped == ["cats/link.png"]
    target = result.path / "cats" / "link.png"
    assert not target.exists() and not target.is_symlink()


def test_zip_bomb_is_refused_before_writing(tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMESE_UPLOAD_MAX_MB", "10")
    source = make_zip(tmp_path / "bomb.zip", {"zeros.png": bytes(50 * 2**20)})
    assert source.stat().st_size < 2**20  # tiny on the wire
    with pytest.raises(UserError) as err:
        extract_zip(source, tmp_path / "out")
    assert "50 MB" in str(err.value) and "limit of 10 MB" in str(err.value)
    assert "SIAMESE_UPLOAD_MAX_MB" in str(err.value)
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def _lie_about_size(data: bytes, size: int) -> bytes:
    """Rewrite the uncompressed size in the local header (offset 22) and central directory (offset 24)."""
    data = bytearray(data)
    local = data.find(b"PK\x03\x04")
    central = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, local + 22, size)
    struct.pack_into("<I", data, central + 24, size)
    return bytes(data)


def test_lying_header_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMESE_UPLOAD_MAX_MB", "10")
    monkeypatch.setenv("SIAMESE_UPLOAD_MAX_RATIO", "1e9")  # the lie itself, not the ratio of its zeros
    real = make_zip(tmp_path / "real.zip", {"zeros.png": bytes(20 * 2**20)}).read_bytes()
    lying = _lie_about_size(real, 1000)
    with zipfile.ZipFile(io.BytesIO(lying)) as zf:
        assert zf.infolist()[0].file_size == 1000  # the headers now claim 1,000 bytes
    with pytest.raises(UserError, match="damaged"):
        extract_zip(lying, tmp_path / "out")
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_streaming_cap_stops_a_bomb_the_headers_hide(tmp_path, monkeypatch):
    # Disable the declared-size check, as if every header lied: the byte count while writing must still stop it.
    monkeypatch.setattr(uploads, "_check_declared", lambda *args: None)
    monkeypatch.setenv("SIAMESE_UPLOAD_MAX_RATIO", "1e9")  # the byte count, not the ratio of these zeros
    source = make_zip(tmp_path / "bomb.zip", {"a.png": bytes(3 * 2**20), "b.png": bytes(3 * 2**20)})
    with pytest.raises(UserError, match="more than the limit of 4 MB"):
        extract_zip(source, tmp_path / "out", max_bytes=4 * 2**20)
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_a_small_zip_that_unpacks_huge_is_refused_by_its_ratio(tmp_path, monkeypatch):
    """Issue 24, item 11: a 1 MB zip unpacking to 1 GB was accepted (under the size cap) and kept a day."""
    one = make_zip(tmp_path / "one.zip", {"a/zeros.png": bytes(64 * 2**20), "b/1.png": b"x"})
    assert one.stat().st_size < 2**20  # 64 MB of zeros packed in under 1 MB: a ratio over 100
    with pytest.raises(UserError, match=r"would unpack 'a/zeros.png' to more than 100 times its size in the zip"):
        extract_zip(one, tmp_path / "out")
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []
    many = make_zip(tmp_path / "many.zip", {f"c{i % 2}/{i}.png": bytes(2**19) for i in range(40)})  # 20 MB
    with pytest.raises(UserError, match="would unpack its files to more than 100 times"):  # each under 1 MB
        extract_zip(many, tmp_path / "out")
    monkeypatch.setattr(uploads, "_check_declared", lambda *args: None)  # headers that lie: counted while writing
    for source, words in ((one, "'a/zeros.png'"), (many, "its files")):
        with pytest.raises(UserError, match=f"would unpack {words} to more than 100 times") as caught:
            extract_zip(source, tmp_path / "out")
        assert "SIAMESE_UPLOAD_MAX_RATIO" in str(caught.value)
        assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []
    monkeypatch.setenv("SIAMESE_UPLOAD_MAX_RATIO", "100000")  # a server that wants such files says so
    assert extract_zip(one, tmp_path / "out").files == 2


@pytest.mark.parametrize("members", [{"a": b"x", "a/b.png": b"y"}, {"a/b.png": b"y", "a": b"x"},
                                     {"a": b"x", "a/": b""}])
def test_a_file_beside_a_folder_of_the_same_name_is_a_sentence(tmp_path, members):
    """Issue 24, item 11: it was "The system refused a file operation (File exists)"."""
    source = tmp_path / "clash.zip"
    with zipfile.ZipFile(source, "w") as zf:
        for member, data in members.items():
            zf.writestr(member, data)
    with pytest.raises(UserError, match="'clash.zip' holds both a file and a folder called 'a': rename one of them"):
        extract_zip(source, tmp_path / "out")
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_too_many_files_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("SIAMESE_UPLOAD_MAX_FILES", "5")
    members = {f"c{i % 2}/{i}.png": b"x" for i in range(6)}
    source = make_zip(tmp_path / "many.zip", members)
    with pytest.raises(UserError, match=r"6 files, more than the limit of 5 .*SIAMESE_UPLOAD_MAX_FILES"):
        extract_zip(source, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    # macOS junk does not count against the cap
    junk = {**{f"c{i % 2}/{i}.png": b"x" for i in range(5)}, **{f"__MACOSX/c0/._{i}.png": b"j" for i in range(5)}}
    assert extract_zip(make_zip(tmp_path / "junk.zip", junk), tmp_path / "ok").files == 5


def test_default_caps_and_bad_env_value(monkeypatch, tmp_path):
    monkeypatch.delenv("SIAMESE_UPLOAD_MAX_MB", raising=False)
    assert settings.upload_max_bytes() == 2 * 2**30
    assert uploads._size_words(settings.upload_max_bytes()) == "2.0 GB"
    monkeypatch.setenv("SIAMESE_UPLOAD_MAX_MB", "lots")
    with pytest.raises(UserError, match="SIAMESE_UPLOAD_MAX_MB must be a number"):
        extract_zip(b"", tmp_path / "out")


def test_not_a_zip_and_truncated_zip(tmp_path):
    text = tmp_path / "photos.zip"
    text.write_text("hello, not a zip")
    with pytest.raises(UserError, match="'photos.zip' is not a zip file"):
        extract_zip(text, tmp_path / "out")
    good = make_zip(tmp_path / "good.zip", {f"a/{i}.png": os.urandom(2000) for i in range(5)}).read_bytes()
    with pytest.raises(UserError, match="not a zip file"):
        extract_zip(good[: len(good) // 2], tmp_path / "out")
    with pytest.raises(UserError, match="does not exist"):
        extract_zip(tmp_path / "missing.zip", tmp_path / "out")
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_corrupt_member_data_is_a_user_error(tmp_path):
    data = bytearray(make_zip(tmp_path / "a.zip", {"a/1.png": b"pixels " * 5000}).read_bytes())
    data[60:70] = b"\xff" * 10  # inside the first member's compressed data
    with pytest.raises(UserError, match="damaged"):
        extract_zip(bytes(data), tmp_path / "out")
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_encrypted_member_is_refused(tmp_path):
    data = bytearray(make_zip(tmp_path / "a.zip", {"a/1.png": b"x"}).read_bytes())
    # Set the "encrypted" bit in the general purpose flags of the local (offset 6) and central (8) headers.
    data[data.find(b"PK\x03\x04") + 6] |= 0x1
    data[data.find(b"PK\x01\x02") + 8] |= 0x1
    with pytest.raises(UserError, match="password-protected"):
        extract_zip(bytes(data), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_find_images_root(tmp_path):
    source = make_zip(tmp_path / "t.zip", {
        "pack/triplets.csv": b"Anchor,Positive,Negative\n",
        "pack/data/images/p1/a.jpg": b"x",
        "pack/data/images/p2/b.jpg": b"x",
    })
    out = extract_zip(source, tmp_path / "out").path
    assert find_images_root(out, ["p1/a.jpg", "p2/b.jpg"]) == out / "pack" / "data" / "images"
    assert find_images_root(out, ["a.jpg"]) == out / "pack" / "data" / "images" / "p1"
    assert find_images_root(out, ["nowhere.jpg"]) == out
    (tmp_path / "secret.jpg").write_bytes(b"x")
    assert find_images_root(out, ["../secret.jpg"]) == out  # never resolves outside the folder
    assert find_images_root(out, [str(tmp_path / "secret.jpg")]) == out


def test_describe_problems(tmp_path):
    one = tmp_path / "one"
    (one / "cats").mkdir(parents=True)
    for i in range(3):
        (one / "cats" / f"{i}.jpg").write_bytes(IMAGE)
    (one / "empty").mkdir()
    problems = describe_class_folders(one).problems
    assert len(problems) == 1 and "Only one class ('cats')" in problems[0] and "at least two" in problems[0]

    single = tmp_path / "single"
    for name, n in (("alice", 3), ("bob", 1), ("carol", 1)):
        (single / name).mkdir(parents=True)
        for i in range(n):
            (single / name / f"{i}.png").write_bytes(IMAGE)
    summary = describe_class_folders(single)
    assert summary.counts == {"alice": 3, "bob": 1, "carol": 1}
    assert summary.problems == ["Each class needs at least two images to show the network what 'same' looks like, "
                                "but 'bob', 'carol' have only one. Add images or remove those folders."]

    none = tmp_path / "none"
    (none / "docs").mkdir(parents=True)
    (none / "docs" / "readme.txt").write_text("no images")
    summary = describe_class_folders(none)
    assert summary.total == 0 and summary.classes == []
    assert "No images were found" in summary.problems[0]

    loose = tmp_path / "loose"
    loose.mkdir()
    for i in range(4):
        (loose / f"{i}.png").write_bytes(IMAGE)
    summary = describe_class_folders(loose)
    assert summary.loose_images == 4 and "not in class folders" in summary.problems[0]

    with pytest.raises(UserError, match="does not exist"):
        describe_class_folders(tmp_path / "missing")


def test_inside_follows_symlinks(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "a").mkdir(parents=True)
    outside.mkdir()
    (root / "escape").symlink_to(outside, target_is_directory=True)
    assert inside(root, root) and inside(root, root / "a") and inside(root, root / "a" / "new.png")
    assert not inside(root, root / "escape")
    assert not inside(root, root / "escape" / "x.png")
    assert not inside(root, root / ".." / "outside")
    assert not inside(root, tmp_path / "root-sibling")  # a shared prefix is not inside


def test_data_root(monkeypatch, tmp_path):
    monkeypatch.delenv("SIAMESE_DATA_ROOT", raising=False)
    assert data_root() is None
    monkeypatch.setenv("SIAMESE_DATA_ROOT", "  ")
    assert data_root() is None
    monkeypatch.setenv("SIAMESE_DATA_ROOT", str(tmp_path))
    assert data_root() == tmp_path


def test_stale_unpacked_uploads_are_removed(tmp_path):
    import os
    import time

    from siamese_core.data.uploads import remove_older_than

    old, new = tmp_path / "old", tmp_path / "new"
    for folder in (old, new):
        (folder / "cats").mkdir(parents=True)
    day_ago = time.time() - 2 * 86400
    os.utime(old, (day_ago, day_ago))
    remove_older_than(tmp_path, 86400)
    assert not old.exists() and new.is_dir()
    remove_older_than(tmp_path / "missing", 86400)  # nothing to do, no error


def test_staging_an_upload_hashes_once_and_unpacks_once(runs_dir, tmp_path):
    import types

    data = make_zip(tmp_path / "a.zip", {"cats/1.png": b"x", "dogs/1.png": b"y"}).read_bytes()
    reads = []
    upload = types.SimpleNamespace(file_id="f1", getvalue=lambda: reads.append(1) or data)
    cache = {}
    digest = uploads.upload_digest(upload, cache=cache)
    assert digest == uploads.content_hash(data) == uploads.upload_digest(upload, cache=cache) and len(reads) == 1
    folder = uploads.staging_dir(digest, "pairs")
    assert folder == runs_dir / ".uploads" / "pairs" / digest
    assert uploads.unpack_once(data, folder).files == 2
    assert uploads.unpack_once(data, folder) is None  # there already
    assert sorted(p.name for p in folder.iterdir()) == ["cats", "dogs"]

    # Found again two days on, the folder counts as used now: staging of any kind keeps it.
    two_days_ago = time.time() - 2 * 86400
    for old in (folder, folder.parent):
        os.utime(old, (two_days_ago, two_days_ago))
    assert uploads.staging_dir(digest, "pairs") == folder
    uploads.staging_dir("another", "")  # judges the kinds' folders at the top
    assert sorted(p.name for p in folder.iterdir()) == ["cats", "dogs"]


# ---------------------------------------------------------------- describing a triplet file

def triplet_folder(folder: Path, identities: int = 3, per_identity: int = 2) -> list:
    """Files named like Market-1501 (identity first; describing reads no pixels), and rows over them."""
    folder.mkdir(parents=True)
    names = [[f"{i:04d}_c1_{n}.jpg" for n in range(per_identity)] for i in range(identities)]
    for name in sum(names, []):
        (folder / name).write_bytes(b"x")
    return [(names[i][0], names[i][1], names[(i + 1) % identities][0]) for i in range(identities)]


def write_csv(path: Path, header: str, rows, encoding: str = "utf-8") -> Path:
    path.write_bytes((header + "\n" + "".join(",".join(row) + "\n" for row in rows)).encode(encoding))
    return path


def test_a_triplet_file_is_described_without_torch_and_in_any_column_order(tmp_path):
    import subprocess
    import sys

    rows = triplet_folder(tmp_path / "zip" / "market" / "bounding_box")
    csv = write_csv(tmp_path / "zip" / "triplets.csv", "negative,ANCHOR,Positive", [(n, a, p) for a, p, n in rows])
    summary = uploads.describe_triplets(csv, tmp_path / "zip")
    assert (summary.rows, summary.names, summary.complete) == (3, 6, 3)
    assert summary.images_root == tmp_path / "zip" / "market" / "bounding_box"  # the wrapping folders skipped
    assert summary.identities == ["0000", "0001", "0002"]
    assert summary.first == tuple(summary.images_root / name for name in rows[0])  # anchor, positive, negative
    assert summary.missing == summary.outside == summary.problems == summary.notes == []

    code = (f"import sys; from siamese_core.data.uploads import describe_triplets as d; "
            f"s = d({str(csv)!r}, {str(tmp_path / 'zip')!r}); print(s.rows, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.split() == ["3", "False"]


def test_a_triplet_file_with_the_wrong_columns_says_which_and_quotes_a_huge_header_short(tmp_path):
    rows = triplet_folder(tmp_path / "images")
    csv = write_csv(tmp_path / "t.csv", "Anchor,Positive,Other", rows)
    summary = uploads.describe_triplets(csv, tmp_path / "images", csv_name="'mine.csv'")
    assert summary.rows == 0 and summary.notes == []
    assert len(summary.problems) == 1
    assert "'mine.csv' needs columns Anchor, Positive, Negative; missing: Negative" in summary.problems[0]
    assert str(tmp_path) not in summary.problems[0]

    huge = ",".join(["Anchor", "x" * 1_000_000] + [f"c{i}" for i in range(500)])
    csv = write_csv(tmp_path / "huge-header.csv", huge, [])
    problem = uploads.describe_triplets(csv, tmp_path / "images").problems[0]
    assert "missing: Positive, Negative" in problem and "492 more" in problem and len(problem) < 800


def test_a_huge_field_is_a_missing_file_quoted_short_and_the_other_rows_still_count(tmp_path):
    rows = triplet_folder(tmp_path / "images")
    hostile = "y" * 5_000_000  # far past any file name's limit: looking it up fails in the file system
    nul = "0001_c1_0\x00.jpg"  # no file name holds a NUL byte: the file system refuses to look it up
    csv = write_csv(tmp_path / "t.csv", "Anchor,Positive,Negative",
                    rows + [(rows[0][0], hostile, rows[0][2]), (nul, rows[1][1], rows[1][2])])
    summary = uploads.describe_triplets(csv, tmp_path / "images")
    assert (summary.rows, summary.complete) == (5, 3)
    assert summary.missing == [hostile, nul] and summary.outside == [] and summary.problems == []
    assert len(summary.notes) == 1 and "2 files 't.csv' names are not in the images folder" in summary.notes[0]
    assert len(summary.notes[0]) < 300 and "\x00" not in summary.notes[0]


def test_triplet_rows_naming_files_outside_the_folder_or_through_links_are_never_read(tmp_path):
    from PIL import Image

    from siamese_core.data.sources import load_triplet_csv

    images, secret = tmp_path / "images", tmp_path / "private"
    secret.mkdir()
    for name in ("0007_c1_0.png", "0007_c1_1.png"):
        Image.new("L", (8, 8), 200).save(secret / name)
    names = [f"{i:04d}_c1_{n}.png" for i in range(3) for n in range(2)]
    images.mkdir()
    for k, name in enumerate(names):
        Image.new("L", (8, 8), 20 * k).save(images / name)
    (images / "0008_c1_0.png").symlink_to(secret / "0007_c1_0.png")  # a link out, inside the folder
    (images / "sub").symlink_to(secret, target_is_directory=True)  # a folder leading out
    hostile = [("../private/0007_c1_0.png", names[0], names[2]), (str(secret / "0007_c1_1.png"), names[0], names[2]),
               ("0008_c1_0.png", names[0], names[2]), ("sub/0007_c1_1.png", names[0], names[2])]
    good = [(names[0], names[1], names[2]), (names[2], names[3], names[4]), (names[4], names[5], names[0])]
    csv = write_csv(tmp_path / "t.csv", "Anchor,Positive,Negative", hostile + good)

    summary = uploads.describe_triplets(csv, images, csv_name="'t.csv'", images_name="the zip")
    assert sorted(summary.outside) == sorted(row[0] for row in hostile)
    assert summary.complete == 3 and summary.problems == [] and summary.missing == []
    assert summary.first == tuple(images / n for n in good[0])
    assert summary.notes == ["4 names in 't.csv' lead outside the zip (e.g. '../private/0007_c1_0.png'): never read, "
                             "and the triplets naming them are left out."]

    loaded = load_triplet_csv(csv, images, 8, 1, identity_pattern=r"^(\d+)_")
    assert sorted(loaded.names) == sorted(names)  # the private images were not read
    assert len(loaded.triplets) == 3 and loaded.classes == ["0000", "0001", "0002"]


def test_a_triplet_file_that_is_not_utf8_empty_or_header_only_is_a_sentence(tmp_path):
    rows = triplet_folder(tmp_path / "images")
    latin = write_csv(tmp_path / "latin.csv", "Anchor,Positive,Negative",
                      [("é" + a, p, n) for a, p, n in rows], encoding="latin-1")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    header = write_csv(tmp_path / "header.csv", "Anchor,Positive,Negative", [])
    junk = tmp_path / "junk.csv"
    junk.write_bytes(bytes(range(256)) * 64)
    said = {path.name: uploads.describe_triplets(path, tmp_path / "images", csv_name=f"'{path.name}'").problems
            for path in (latin, empty, header, junk)}
    assert "'latin.csv' is not UTF-8 text" in said["latin.csv"][0]
    assert "'empty.csv' is empty: it needs a header row (Anchor,Positive,Negative)" in said["empty.csv"][0]
    assert "'header.csv' has a header but no rows" in said["header.csv"][0]
    assert "'junk.csv'" in said["junk.csv"][0]
    assert all(len(problems) == 1 and str(tmp_path) not in problems[0] for problems in said.values()), said


def test_a_triplet_file_naming_none_of_the_images_or_one_identity_cannot_train(tmp_path):
    triplet_folder(tmp_path / "images")
    csv = write_csv(tmp_path / "t.csv", "Anchor,Positive,Negative", [("a.png", "b.png", "c.png")])
    summary = uploads.describe_triplets(csv, tmp_path / "images", images_name="the zip")
    assert summary.missing == ["a.png", "b.png", "c.png"] and summary.complete == 0
    assert summary.problems == ["None of the files 't.csv' names are in the zip: check that its names match the "
                                "paths there (the first is 'a.png')."]

    one = triplet_folder(tmp_path / "one", identities=1, per_identity=3)
    csv = write_csv(tmp_path / "one.csv", "Anchor,Positive,Negative", [("0000_c1_0.jpg", "0000_c1_1.jpg", "0000_c1_2.jpg")])
    summary = uploads.describe_triplets(csv, tmp_path / "one")
    assert summary.identities == ["0000"] and one
    assert len(summary.problems) == 1 and "at least two identities" in summary.problems[0]

    unlabelled = tmp_path / "plain"
    unlabelled.mkdir()
    for name in ("a.jpg", "b.jpg"):
        (unlabelled / name).write_bytes(b"x")
    csv = write_csv(tmp_path / "plain.csv", "Anchor,Positive,Negative", [("a.jpg", "b.jpg", "gone.jpg")])
    summary = uploads.describe_triplets(csv, unlabelled)
    assert summary.identities == [] and summary.complete == 0
    assert any("No row of 'plain.csv' has all three of its files" in p for p in summary.problems)
