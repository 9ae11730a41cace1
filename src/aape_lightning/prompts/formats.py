"""Prompt formats: how a bank's entries become the sentences CLIP reads, per the file's convention.

CuPL's files hold sentences ("A tench is a freshwater fish ..."): read as written. Descriptor
files (classify_by_description's ``descriptors_*.json``: "long, thin legs") hold attribute phrases
that rarely name their class; their authors prepend the class name before encoding. A format is:

- ``"as-written"`` (default): each entry unchanged (CuPL's convention);
- ``"classify_by_description"``: that paper's default loading (Menon & Vondrick, ICLR 2023):
  ``"<class>, <clause>"`` where the clause is ``"which is <d>"`` when the descriptor starts with
  the letter "a" or with "used", ``"which <d>"`` when it starts with "has", "often", "typically",
  "may" or "can", else ``"which has <d>"`` (string prefixes, as their code tests them, so
  "antlers" reads "which is antlers"); no final period;
- a template with ``{descriptor}`` and optionally ``{class}``, e.g. ``"{class}, which has {descriptor}."``.

``<class>`` is the dataset's class name (underscores as spaces), the name every head uses, not the
bank key (the two differ where a mapping pairs them, e.g. ImageNet's "newt" and the file's "eft").
"""

from __future__ import annotations

import string
from collections.abc import Callable, Sequence

from aape_lightning.errors import PromptBankError

AS_WRITTEN = "as-written"
NAMED_FORMATS = (AS_WRITTEN, "classify_by_description")
_FIELDS = {"class", "descriptor"}


def _which_clause(descriptor: str) -> str:
    """classify_by_description's clause for a descriptor, by its leading characters."""
    if descriptor.startswith("a"):
        return f"which is {descriptor}"
    if descriptor.startswith(("has", "often", "typically", "may", "can")):
        return f"which {descriptor}"
    if descriptor.startswith("used"):
        return f"which is {descriptor}"
    return f"which has {descriptor}"


def check_prompt_format(fmt: str) -> str:
    """``fmt`` if it is a named format or a template with ``{descriptor}``; else one clear error."""
    if fmt in NAMED_FORMATS:
        return fmt
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(fmt) if name is not None}
    except ValueError as err:
        raise PromptBankError(f"data.prompt_format={fmt!r} is not a valid template ({err})") from None
    if "descriptor" not in fields or not fields <= _FIELDS:
        raise PromptBankError(
            f"data.prompt_format={fmt!r}: give one of {', '.join(map(repr, NAMED_FORMATS))} or a template with "
            "{descriptor} and optionally {class}, e.g. '{class}, which has {descriptor}.'"
            + (f" (unknown fields: {sorted(fields - _FIELDS)})" if fields - _FIELDS else "")
        )
    return fmt


def prompt_formatter(fmt: str) -> Callable[[Sequence[str], str], list[str]]:
    """A function ``(entries, class name) -> prompts`` for the format ``fmt`` (checked)."""
    fmt = check_prompt_format(fmt)
    if fmt == AS_WRITTEN:
        return lambda entries, name: list(entries)
    if fmt == "classify_by_description":
        return lambda entries, name: [f"{name.replace('_', ' ')}, {_which_clause(d)}" for d in entries]
    return lambda entries, name: [fmt.format(**{"class": name.replace("_", " "), "descriptor": d}) for d in entries]
