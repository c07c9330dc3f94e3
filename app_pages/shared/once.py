"""Work done once for every session of the server (a class of thirty on one server: issue 24, item 12).

Streamlit runs each session's script in its own thread. Its caches already compute one value per key once
(`st.cache_resource` and `st.cache_data` hold a lock per key); but a page that keeps its result in a box from
`st.cache_resource` and fills it itself (so that a progress bar shows, rather than being replayed on every call)
must lock too, or thirty sessions arriving together each find the box empty and all do the work.
"""

from __future__ import annotations

import threading
from typing import Callable, Optional, TypeVar

import streamlit as st

T = TypeVar("T")
_LOCK = "_filling"  # the box's own lock, under this key


def filled(box: dict, field: str, make: Callable[[], Optional[T]], waiting: str) -> Optional[T]:
    """`box[field]`, made by `make()` by the first session that asks; the others wait for it under a spinner
    saying `waiting`, then share it. `make` returning None (it showed why) fills nothing: the next asks again."""
    if field in box:
        return box[field]
    lock = box.setdefault(_LOCK, threading.Lock())  # dict.setdefault is atomic: one lock per box
    if not lock.acquire(blocking=False):
        with st.spinner(waiting):
            lock.acquire()
    try:
        if field not in box:  # the session that held the lock may have made it meanwhile
            made = make()
            if made is None:
                return None
            box[field] = made
        return box[field]
    finally:
        lock.release()
