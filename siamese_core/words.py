"""Words for people: what a class is called and its plural, guessed from a data set's name, ordinals,
names from files shortened to quote in a sentence, and names made inert where they are shown as Plotly
text (`plotly_text`) or Markdown (`markdown_text`).

Plain functions on strings, used by the trainer, the command line and every page, so they live at the top.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

MAX_WORD_LENGTH = 30

# Words in a data set's name that say what its classes are. Whole words only: "cat" is not "catalog".
_WORDS_FOR = {
    "digit": ("digit", "digits", "mnist", "number", "numbers", "svhn"),
    "person": ("face", "faces", "people", "person", "persons", "celeb", "celeba", "lfw", "att", "reid", "market",
               "duke", "dukemtmc", "pedestrian", "pedestrians", "identity", "identities", "student", "students"),
    "signature": ("signature", "signatures", "cedar", "gpds"),
    "product": ("product", "products", "shop", "sku", "skus", "item", "items"),
    "animal": ("animal", "animals", "pet", "pets", "dog", "dogs", "cat", "cats", "bird", "birds"),
    "character": ("letter", "letters", "character", "characters", "omniglot", "alphabet", "glyph", "glyphs"),
    "vehicle": ("car", "cars", "vehicle", "vehicles", "veri"),
}


def guess_class_word(*names: Optional[str]) -> Optional[str]:
    """The class word a data set's names suggest ('faces10.zip' -> 'person'), or None."""
    for name in names:
        tokens = re.findall(r"[a-z]+", Path(str(name or "")).stem.lower())
        for word, clues in _WORDS_FOR.items():
            if any(token in clues for token in tokens):
                return word
    return None


def clean_class_word(word: str) -> str:
    """A class word as typed by a person, made safe to show in a sentence: one short line of plain words."""
    cleaned = " ".join(re.sub(r"[^\w\s'-]", " ", str(word)).split())[:MAX_WORD_LENGTH].strip()
    return cleaned.lower() or "class"


def plural(word: str) -> str:
    """The class word for several: digit -> digits, class -> classes, identity -> identities, person -> people."""
    if word.endswith("person"):
        return word[:-len("person")] + "people"
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and word[-2:-1] not in ("a", "e", "i", "o", "u"):
        return word[:-1] + "ies"
    return word + "s"


def ordinal(n: int) -> str:
    """1st, 2nd, 3rd, 4th, ... 11th, 12th, 13th, ... 21st."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def short_name(written: str, limit: int = 60) -> str:
    """A name from a file or a person (a CSV cell, a pattern), on one line, without control characters and short
    enough to quote in a sentence (only its start is read: a cell may hold megabytes)."""
    written = str(written)
    start = " ".join("".join(c if c.isprintable() else " " for c in written[:4 * limit]).split())
    return start if len(start) <= limit and len(written) <= 4 * limit else start[:limit - 1] + "…"


def plotly_text(name) -> str:
    """A name (class, file, column, run) as Plotly shows it, and nothing more: Plotly renders a little HTML
    in trace and legend names, hover text, titles and annotations (`<a href>` makes a live link, `<span
    style>` restyles), so & < > become the entities it shows as those characters. Quotes need nothing: they
    only matter inside a tag, and no tag survives."""
    return str(name).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]<>|])")


def markdown_text(name) -> str:
    """A name as plain words in a Markdown file (a model card): on one line (no heading or list of its own),
    with every character Markdown could turn into a link, an image, HTML, code, emphasis or a table cell
    escaped by a backslash, and & as an entity. `<img src=x onerror=...>` shows as written."""
    one_line = " ".join("".join(c if c.isprintable() else " " for c in str(name)).split())
    return _MARKDOWN_SPECIAL.sub(r"\\\1", one_line).replace("&", "&amp;")
