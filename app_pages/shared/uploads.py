"""Uploaded files on the server, through the library's one stager (siamese_core.data.uploads): their content
hash once per upload in a session, where they are staged, and unpacking a zip there once."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app_pages.shared import state
from siamese_core.data import uploads


def upload_digest(*files) -> str:
    """The files' content hash, computed once per uploaded file in this session."""
    return uploads.upload_digest(*files, cache=state.upload_digests())


def staged_upload(*files, kind: str = "") -> Path:
    """Where uploaded files unpack: runs/.uploads/[<kind>/]<hash of their content>; a day unused, removed."""
    return uploads.staging_dir(upload_digest(*files), kind)


def unpack_zip(upload, target: Path) -> Path:
    """Unpack an uploaded zip into `target` unless done before; UserError (from uploads) when it cannot be."""
    if not target.is_dir():
        with st.spinner("Unpacking..."):
            result = uploads.unpack_once(upload, target)
        if result and result.skipped:
            st.warning(f"{len(result.skipped)} entries were skipped (links, or paths leading outside the zip).")
    return target
