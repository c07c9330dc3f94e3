"""Uploaded files on the server: where they are staged, and unpacking a zip there once."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

UPLOADS_KEPT_S = 86400  # unpacked uploads nobody used for a day are removed


def staged_upload(*files, kind: str = "") -> Path:
    """Where uploaded files unpack: runs/.uploads/[<kind>/]<hash of their content>.

    The same files always land in the same folder, so they unpack once. Hashing a large zip takes
    seconds: it is done once per uploaded file, not on every click on the page.
    """
    import hashlib

    from siamese_core import uploads
    from siamese_core.runs import runs_root

    staging = runs_root() / ".uploads" / kind if kind else runs_root() / ".uploads"
    uploads.remove_older_than(staging, UPLOADS_KEPT_S)
    digests = st.session_state.setdefault("upload-digests", {})
    key = tuple(f.file_id for f in files)
    if key not in digests:
        digest = hashlib.sha256()
        for f in files:
            digest.update(f.getvalue())
        digests[key] = digest.hexdigest()[:16]
    return staging / digests[key]


def unpack_zip(upload, target: Path) -> Path:
    """Unpack an uploaded zip into `target` unless done before; UserError (from uploads) when it cannot be."""
    from siamese_core import uploads

    if not target.is_dir():
        with st.spinner("Unpacking..."):
            result = uploads.extract_zip(upload, target)
        if result.skipped:
            st.warning(f"{len(result.skipped)} entries were skipped (links, or paths leading outside the zip).")
    return target
