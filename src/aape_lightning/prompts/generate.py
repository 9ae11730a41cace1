"""Generate a CuPL-format prompt bank for any class list, resumably.

For each class, every question is asked ``per_question`` times; the cleaned answers (see
``cleaning``) become that class's prompts. The bank is rewritten after every class (temp file +
rename), classes already in an existing output file are skipped, and nothing written earlier is
ever dropped, so an interrupted run is continued by running the same command again. Seeds are
derived from (seed, class name, question), so a class gets the same request whether it is asked
in the first run or a resumed one.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

from aape_lightning.errors import ClassListError
from aape_lightning.prompts.backends import Backend, GenerationError
from aape_lightning.prompts.bank import read_prompt_file, read_utf8
from aape_lightning.prompts.cleaning import clean_answers
from aape_lightning.prompts.keys import nfc
from aape_lightning.prompts.questions import DEFAULT_QUESTIONS, check_questions, render_question

log = logging.getLogger(__name__)


def read_class_list(path: str | Path) -> list[str]:
    """Class names from a text file (one per line, ``#`` comments), a JSON list, or a CoOp split JSON.

    A CoOp split (``{"train": [[relpath, label, classname], ...], ...}``) gives its names by label.
    Repeated names appear once: a bank is keyed by name.
    """
    path = Path(path)
    if not path.is_file():
        raise ClassListError(f"class list {path} does not exist")
    text = read_utf8(path, ClassListError)
    if path.suffix == ".json" or text.lstrip()[:1] in ("[", "{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ClassListError(f"{path}: not valid JSON ({err})") from err
        if isinstance(data, list) and all(isinstance(n, str) for n in data):
            names = data
        elif isinstance(data, dict):
            by_label: dict[int, str] = {}
            try:
                for split in data.values():
                    for _, label, name in split:
                        by_label.setdefault(int(label), str(name))
            except (TypeError, ValueError) as err:
                raise ClassListError(
                    f'{path}: expected a CoOp split {{"train": [[relpath, label, classname], ...], ...}} ({err})'
                ) from err
            names = [by_label[k] for k in sorted(by_label)]
        else:
            raise ClassListError(f"{path}: expected a JSON list of class names or a CoOp split JSON")
    else:
        names = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    names = list(dict.fromkeys(nfc(n.strip()) for n in names if n.strip()))
    if not names:
        raise ClassListError(f"{path}: no class names found")
    return names


def write_json_atomic(path: Path, data: object) -> None:
    """Write JSON to a temp file in the same folder, then rename it over ``path`` (never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def item_seed(seed: int, name: str, question: str) -> int:
    """A seed that depends only on the run seed, the class and the question (stable across resumes)."""
    return (seed * 1_000_003 + zlib.crc32(f"{name}\n{question}".encode())) % 2**31


def _ordered(bank: dict[str, list[str]], classnames: Sequence[str]) -> dict[str, list[str]]:
    """The class list's order first, then any other entries the file already had."""
    out = {n: bank[n] for n in classnames if n in bank}
    out.update((k, v) for k, v in bank.items() if k not in out)
    return out


def generate_bank(
    classnames: Sequence[str],
    out_path: str | Path,
    backend: Backend,
    questions: Sequence[str] = DEFAULT_QUESTIONS,
    per_question: int = 3,
    hint: str | None = None,
    seed: int = 0,
    require_name: bool = False,
    on_class: Callable[[str, list[str]], None] | None = None,
) -> dict[str, list[str]]:
    """Ask about every class not yet in ``out_path`` and return the whole bank.

    A class whose answers all fail cleaning is not written (a rerun asks again) and is reported at
    the end as a ``GenerationError``; a backend error stops the run with everything before it saved.
    """
    check_questions(questions)
    if per_question < 1:
        raise ValueError(f"per_question must be at least 1, got {per_question}")
    out_path = Path(out_path)
    bank: dict[str, list[str]] = read_prompt_file(out_path) if out_path.exists() else {}
    todo = [n for n in classnames if not bank.get(n)]
    if len(todo) < len(classnames):
        log.info("%s: %d of %d classes already done; asking about %d", out_path, len(classnames) - len(todo),
                 len(classnames), len(todo))
    empty: list[str] = []
    for k, name in enumerate(todo, 1):
        answers: list[str] = []
        for question in questions:
            asked = render_question(question, name, hint)
            answers += backend.ask(asked, per_question, item_seed(seed, name, question))
        prompts = clean_answers(answers, name, require_name)
        if not prompts:
            log.warning("%r: none of %d answers was usable; it will be asked again next run", name, len(answers))
            empty.append(name)
            continue
        bank[name] = prompts
        write_json_atomic(out_path, _ordered(bank, classnames))
        log.info("[%d/%d] %r: %d prompts", k, len(todo), name, len(prompts))
        if on_class is not None:
            on_class(name, prompts)
    if empty:
        raise GenerationError(
            f"no usable answers for {len(empty)} classes: {empty}; rerun to ask again (maybe with a higher "
            "--temperature or --max-tokens, or without --require-name)"
        )
    return _ordered(bank, classnames)
