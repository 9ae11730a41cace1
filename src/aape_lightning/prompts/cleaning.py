"""Turn raw language-model answers into prompt sentences.

Policy (CuPL's): an answer is kept as the model wrote it, reduced to its first line and first
sentence, with list markers, "A:"/"Answer:" prefixes and wrapping quotes removed; empty or
letter-free answers and exact repeats are dropped. Answers are *not* required to name the class
(CuPL keeps "It has a long, bushy tail."); ``require_name=True`` drops those that do not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_PREFIX = re.compile(r"^\s*(?:(?:answer|a)\s*:|[-*\u2022]|\d+[.)])\s*", re.IGNORECASE)
_QUOTES = "\"'\u201c\u201d\u2018\u2019`"
_ABBREVIATIONS = {"e.g", "i.e", "etc", "vs", "st", "mr", "mrs", "ms", "dr", "no", "approx", "cf"}
_END = re.compile(r"[.!?][\"'\u201d\u2019)\]]*(?=\s|$)")  # a sentence end, with any closing quotes


def first_sentence(text: str) -> str:
    """Text up to the first sentence end that is not an abbreviation or a single initial."""
    for match in _END.finditer(text):
        before = text[: match.start()].split()
        word = before[-1].lower().strip(_QUOTES + "(") if before else ""
        if match.group()[0] == "." and (word in _ABBREVIATIONS or len(word) == 1):
            continue
        return text[: match.end()]
    return text


def clean_answer(text: str) -> str | None:
    """One sentence from a raw answer, or None when nothing usable is left."""
    text = text.strip()
    text = text.splitlines()[0] if text else ""
    text = _PREFIX.sub("", text).strip().strip(_QUOTES).strip()
    text = " ".join(first_sentence(text).split()).strip(_QUOTES).strip()
    return text if any(ch.isalpha() for ch in text) else None


def mentions(sentence: str, name: str) -> bool:
    """Whether ``sentence`` names the class (case, underscores and hyphens ignored)."""
    squash = lambda s: " ".join(re.sub(r"[_\-]", " ", s).lower().split())  # noqa: E731
    return squash(name) in squash(sentence)


def clean_answers(answers: Iterable[str], name: str, require_name: bool = False) -> list[str]:
    """Cleaned answers in order, without repeats (and without those not naming ``name`` if required)."""
    out: list[str] = []
    seen: set[str] = set()
    for raw in answers:
        sentence = clean_answer(raw)
        if sentence is None or sentence.casefold() in seen:
            continue
        if require_name and not mentions(sentence, name):
            continue
        seen.add(sentence.casefold())
        out.append(sentence)
    return out
