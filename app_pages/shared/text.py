"""User-provided strings (class and file names, run names, messages that quote them) inside markdown.

Streamlit renders markdown in captions, alerts and labels, so a class folder named
`[Session expired - sign in again](https://evil.example)` would show as a live link. `plain`
escapes what makes links, images and HTML: square and angle brackets, and the backslash that could
undo an escape. Emphasis marks are left alone (at worst a name shows in italics) so that ordinary
messages, file names like image_a included, read exactly the same.
"""

from __future__ import annotations

import re

import streamlit as st

_MARKDOWN = re.compile(r"([\\\[\]<>])")


def plain(text) -> str:
    """`text` with nothing in it that markdown would turn into a link, an image or HTML."""
    return _MARKDOWN.sub(r"\\\1", str(text))


def error(exc_or_text) -> None:
    """An error message as a sentence on the page; names it quotes show as written."""
    st.error(plain(exc_or_text))
