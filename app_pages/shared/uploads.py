"""Uploaded files on the server: their content hash, where they are staged, and unpacking a zip there once.

staged_upload is the app's one stager (folder, content hash, one-day expiry): the library's staging API
replaces its body when it has one.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

UPLOADS_KEPT_S = 86400  # unpacked uploads nobody used for a day are removed


def upload_digest(*files) -> str:
    """A hash of the uploaded files' content, computed once per upload in a session.

    Hashing a large zip takes seconds: it is done once per uploaded file, not on every click on the page.
    """
    from siamese_core.verification import content_hash

    digests = st.session_state.setdefault("upload-digests", {})
    key = tuple(f.file_id for f in files)
    if key not in digests:
        digests[key] = content_hash(*(f.getvalue() for f in files))
    return digests[key]


def staged_upload(*files, kind: str = "") -> Path:
    """Where uploaded files unpack: runs/.uploads/[<kind>/]<hash of their content>.

    The same files always land in the same folder, so they unpack once; staged uploads nobody used
    for a day are removed.
    """
    from siamese_core import uploads
    from siamese_core.runs import runs_root

    staging = runs_root() / ".uploads" / kind if kind else runs_root() / ".uploads"
    uploads.remove_older_than(staging, UPLOADS_KEPT_S)
    return staging / upload_digest(*files)


def unpack_zip(upload, target: Path) -> Path:
    """Unpack an uploaded zip into `target` unless done before; UserError (from uploads) when it cannot be."""
    from siamese_core import uploads

    if not target.is_dir():
        with st.spinner("Unpacking..."):
            result = uploads.extract_zip(upload, target)
        if result.skipped:
            st.warning(f"{len(result.skipped)} entries were skipped (links, or paths leading outside the zip).")
    return target
