"""One spelling of a class name (NFC), then looser and looser ones, so bank keys and dataset names can meet.

Each level maps a name to a key; two names match at a level when their keys are equal.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable

_ESCAPED = re.compile("[\udc80-\udcff]")  # bytes a file system name could not decode (os.fsdecode)
_SEPARATORS = re.compile(r"[_\-\s]+")
_INNER_SLASH = re.compile(r"(?<=\w)/(?=\w)")
_QUALIFIER_MARKS = re.compile(r"[()\[\]/,]")
_DATASET_SEPARATORS = re.compile(r"[-_ ]")


def nfc(name: str) -> str:
    """The name in Unicode NFC: "crème" typed with a combining accent (as macOS writes folder names) = "crème".

    Every class name the package reads (folders, split files, banks, mappings, class lists,
    checkpoints) passes through here before it is compared or used as a key. A folder name read
    under a non-UTF-8 locale (``LC_ALL=C``) holds its bytes as surrogate escapes: they are read
    back as the UTF-8 they are.
    """
    if _ESCAPED.search(name):
        name = os.fsencode(name).decode("utf-8", errors="replace")
    return unicodedata.normalize("NFC", name)


def normalise_name(name: str) -> str:
    """Lower case, ``_`` and ``-`` as spaces, single spaces: "Red_Square " -> "red square".

    A ``/`` inside a word is part of it and dropped: "Ram C/V" -> "ram cv" (the qualifier level
    below still reads "apartment_building/outdoor" as two words).
    """
    return " ".join(_SEPARATORS.sub(" ", _INNER_SLASH.sub("", nfc(name))).lower().split())


def word_order_key(name: str) -> str:
    """The sorted word multiset, so "AM General Hummer SUV 2000" = "2000 AM General Hummer SUV"."""
    return " ".join(sorted(normalise_name(name).split()))


def qualifier_key(name: str) -> str:
    """Words without brackets/slashes, sorted: "apartment building (outdoor)" = "apartment_building/outdoor"."""
    return word_order_key(_QUALIFIER_MARKS.sub(" ", name))


def dataset_key(name: str) -> str:
    """A dataset's name with case, ``-``, ``_`` and spaces ignored: "Caltech-101" = "caltech_101" = "Caltech101".

    The data catalog looks names, folder names and aliases up by it; prompts finds a dataset's shipped
    mappings and published banks by it, from the catalog's name (the catalog resolves an alias first).
    """
    return _DATASET_SEPARATORS.sub("", name).lower()


LEVELS: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("normalised", normalise_name),
    ("word-order", word_order_key),
    ("qualifier", qualifier_key),
)
"""The loose matching levels after an exact match, loosest last, as (method name, key function)."""
