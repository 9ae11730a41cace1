"""Mapping files: an explicit ``{"dataset class name": "bank key"}`` that settles what loose matching cannot."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from aape_lightning.errors import PromptBankError
from aape_lightning.prompts.bank import no_duplicate_keys
from aape_lightning.prompts.keys import normalise_name


def read_mapping_file(path: str | Path) -> dict[str, str]:
    """A JSON ``{"dataset class name": "bank key"}``; repeated names are an error."""
    path = Path(path)
    if not path.is_file():
        raise PromptBankError(
            f'mapping file {path} does not exist; pass a JSON file {{"dataset class name": "bank key", ...}}'
        )

    try:
        data = json.loads(path.read_text(encoding="utf-8"), object_pairs_hook=no_duplicate_keys(path, "is mapped twice; keep one entry"))
    except json.JSONDecodeError as err:
        raise PromptBankError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise PromptBankError(f'{path}: expected {{"dataset class name": "bank key", ...}} with string values')
    return data


def resolve_mapping(
    mapping: Mapping[str, str], classnames: Sequence[str], bank: Mapping[str, Any], mapping_source: str, source: str
) -> tuple[dict[int, str], list[str]]:
    """Class index -> bank key from the mapping, and the mapping entries that named no class.

    An entry names a class exactly or, failing that, after ``normalise_name``; every value must be
    a bank key spelled exactly as the bank spells it.
    """
    for cls, key in mapping.items():
        if key not in bank:
            close = difflib.get_close_matches(key, list(bank), n=3, cutoff=0.0)
            raise PromptBankError(
                f"{mapping_source}: maps {cls!r} to {key!r}, which is not a key of the prompt bank {source}; "
                f"closest keys: {close}. Use a key exactly as the bank spells it"
            )
    exact = dict(mapping)
    by_norm: dict[str, list[str]] = {}
    for cls in mapping:
        by_norm.setdefault(normalise_name(cls), []).append(cls)
    chosen: dict[int, str] = {}
    used: set[str] = set()
    for i, name in enumerate(classnames):
        if name in exact:
            chosen[i] = exact[name]
            used.add(name)
            continue
        entries = by_norm.get(normalise_name(name), [])
        if len({mapping[e] for e in entries}) > 1:
            raise PromptBankError(
                f"{mapping_source}: entries {entries} all name class {name!r} but map to different keys; keep one"
            )
        if entries:
            chosen[i] = mapping[entries[0]]
            used.update(entries)
    return chosen, [c for c in mapping if c not in used]
