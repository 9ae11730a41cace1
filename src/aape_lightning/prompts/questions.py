"""The questions asked of a language model per class, CuPL-style; data, replaceable by a file.

A question names the class with ``{}`` or ``{name}`` (the class name, with the dataset hint in
brackets when one is given) or ``{a_name}`` (the same with "a"/"an" in front).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from aape_lightning.errors import QuestionsError
from aape_lightning.prompts.bank import read_utf8

DEFAULT_QUESTIONS: tuple[str, ...] = (
    "Describe what {a_name} looks like.",
    "How can you recognise {a_name} in a photo?",
    "What are the visual features of {a_name}?",
    "Describe a typical photograph of {a_name}.",
    "What does {a_name} look like up close?",
)

DEFAULT_SYSTEM_PROMPT = (
    "You describe how things look in photographs. Answer with one short, factual sentence that names the thing."
)

_PLACEHOLDERS = ("{}", "{name}", "{a_name}")


def read_questions_file(path: str | Path) -> list[str]:
    """Questions from a JSON list of strings or a text file with one question per line (``#`` comments)."""
    path = Path(path)
    if not path.is_file():
        raise QuestionsError(f"questions file {path} does not exist")
    text = read_utf8(path, QuestionsError)
    if path.suffix == ".json":
        try:
            questions = json.loads(text)
        except json.JSONDecodeError as err:
            raise QuestionsError(f"{path}: not valid JSON ({err})") from err
        if not isinstance(questions, list) or not all(isinstance(q, str) for q in questions):
            raise QuestionsError(f'{path}: expected a JSON list of strings, e.g. ["Describe what {{a_name}} looks like."]')
    else:
        questions = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    check_questions(questions, str(path))
    return questions


def check_questions(questions: Sequence[str], source: str = "<questions>") -> None:
    """Every question must name the class, or the answers could not be about it."""
    if not questions:
        raise QuestionsError(f"{source}: no questions")
    blind = [q for q in questions if not any(p in q for p in _PLACEHOLDERS)]
    if blind:
        raise QuestionsError(f"{source}: questions without a class placeholder ({{}}, {{name}} or {{a_name}}): {blind}")


def render_question(question: str, name: str, hint: str | None = None) -> str:
    """``question`` about ``name``: "Describe what {a_name} looks like." -> "... an Abyssinian (a type of pet) ..."."""
    subject = f"{name} ({hint})" if hint else name
    article = "an" if name[:1].lower() in "aeiou" else "a"
    return question.format(subject, name=subject, a_name=f"{article} {subject}")
