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


def leftovers(folder: Path) -> list:
    """Hidden temporary folders extract_zip may have left behind."""
    return [p.name for p in folder.iterdir() if p.name.startswith(".")]


def test_class_folder_zip_is_extracted_and_described(tmp_path):
    source = make_zip(tmp_path / "pets.zip", {
        "cats/1.jpg": b"x", "cats/2.jpg": b"x", "cats/3.png": b"x",
        "dogs/a.png": b"x", "dogs/sub/b.PNG": b"x", "dogs/notes.txt": b"not an image",
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
    source = make_zip(tmp_path / "bomb.zip", {"a.png": bytes(3 * 2**20), "b.png": bytes(3 * 2**20)})
    with pytest.raises(UserError, match="more than the limit of 4 MB"):
        extract_zip(source, tmp_path / "out", max_bytes=4 * 2**20)
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
        (one / "cats" / f"{i}.jpg").write_bytes(b"x")
    (one / "empty").mkdir()
    problems = describe_class_folders(one).problems
    assert len(problems) == 1 and "Only one class ('cats')" in problems[0] and "at least two" in problems[0]

    single = tmp_path / "single"
    for name, n in (("alice", 3), ("bob", 1), ("carol", 1)):
        (single / name).mkdir(parents=True)
        for i in range(n):
            (single / name / f"{i}.png").write_bytes(b"x")
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
        (loose / f"{i}.png").write_bytes(b"x")
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
