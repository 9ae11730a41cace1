"""Mapping files: an explicit ``{"dataset class": "bank key"}`` that settles what loose matching cannot.

A class is named by its name or, where names repeat (ImageNet's two "missile"s), by its index in
the dataset's class list as ``"#744"``. The package ships mappings from published banks' keys to
CoOp's class names, one file per bank family and dataset (``mappings/<family>_<Dataset>.json``:
``cupl_`` for CuPL's banks, ``descriptors_`` for classify_by_description's descriptor files),
applied when the dataset is known (by the catalog's name: the data layer resolves a folder name or an alias
such as "dtd" first): the one whose entries fit the bank best.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

from aape_lightning.errors import PromptBankError
from aape_lightning.prompts.bank import no_duplicate_keys, read_utf8
from aape_lightning.prompts.keys import dataset_key, nfc, normalise_name

_INDEX_ENTRY = re.compile(r"#\s*(\d+)")


def read_mapping_file(path: str | Path) -> dict[str, str]:
    """A JSON ``{"dataset class name" or "#index": "bank key"}``; repeated names are an error."""
    path = Path(path)
    if not path.is_file():
        raise PromptBankError(
            f'mapping file {path} does not exist; pass a JSON file {{"dataset class name": "bank key", ...}}'
        )

    try:
        data = json.loads(read_utf8(path), object_pairs_hook=no_duplicate_keys(path, "is mapped twice; keep one entry"))
    except json.JSONDecodeError as err:
        raise PromptBankError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise PromptBankError(f'{path}: expected {{"dataset class name": "bank key", ...}} with string values')
    return {name: nfc(key) for name, key in data.items()}  # names are NFC already (no_duplicate_keys)


# Datasets with ImageNet's 1000 classes in ImageNet's order use ImageNet's mappings ("#index" entries
# included); ImageNet-A and -R are 200-class subsets with other indexes and have their own.
_SAME_CLASSES = {dataset_key("ImageNetV2"): "ImageNet", dataset_key("ImageNetSketch"): "ImageNet"}


def shipped_mapping_paths(dataset: str | None) -> list[Path]:
    """Every shipped mapping for ``dataset``'s CoOp class names (one per bank family), sorted by name.

    ``dataset`` is a catalog name ("Caltech101"; case, ``-`` and ``_`` ignored); any other name has none.
    """
    if not dataset:
        return []
    wanted = dataset_key(_SAME_CLASSES.get(dataset_key(dataset), dataset))
    folder = Path(str(resources.files("aape_lightning.prompts") / "mappings"))
    return sorted(p for p in folder.glob("*_*.json") if dataset_key(p.stem.split("_", 1)[1]) == wanted)


def fitting_entries(mapping: Mapping[str, str], bank: Mapping[str, Any]) -> dict[str, str]:
    """The entries of a shipped mapping that apply to ``bank``: the key is the bank's, the class name is not."""
    return {c: k for c, k in mapping.items() if k in bank and c not in bank}


def shipped_mapping_path(dataset: str | None, bank: Mapping[str, Any] | None = None) -> Path | None:
    """The shipped mapping for ``dataset`` whose entries fit ``bank`` best (ties: the first by name,
    ``cupl_`` before ``descriptors_``); without a bank, the first. None when the dataset has none."""
    paths = shipped_mapping_paths(dataset)
    if not paths or bank is None:
        return paths[0] if paths else None
    fits = [len(fitting_entries(read_mapping_file(p), bank)) for p in paths]
    return paths[fits.index(max(fits))]


def resolve_mapping(
    mapping: Mapping[str, str],
    classnames: Sequence[str],
    bank: Mapping[str, Any],
    mapping_source: str,
    source: str,
    skip: Sequence[int] = (),
) -> tuple[dict[int, str], list[str]]:
    """Class index -> bank key from the mapping, and the mapping entries that named no class.

    ``"#i"`` names class ``i``; a name names every class spelled so or, for an entry that spells
    no class exactly, every class equal after ``normalise_name``. Index entries win over names.
    Every value must be a bank key spelled exactly as the bank spells it. Classes in ``skip``
    (already mapped) are left alone.
    """
    for cls, key in mapping.items():
        if key not in bank:
            close = difflib.get_close_matches(key, list(bank), n=3, cutoff=0.0)
            raise PromptBankError(
                f"{mapping_source}: maps {cls!r} to {key!r}, which is not a key of the prompt bank {source}; "
                f"closest keys: {close}. Use a key exactly as the bank spells it"
            )
    by_index: dict[int, str] = {}
    names: dict[str, str] = {}
    for entry, key in mapping.items():
        found = _INDEX_ENTRY.fullmatch(entry.strip())
        if found:
            by_index[int(found.group(1))] = entry
        else:
            names[entry] = key
    spelled = set(classnames)
    by_norm: dict[str, list[str]] = {}
    for entry in names:
        if entry not in spelled:
            by_norm.setdefault(normalise_name(entry), []).append(entry)
    chosen: dict[int, str] = {}
    used: set[str] = set()
    for i, name in enumerate(classnames):
        if i in skip:
            continue
        if i in by_index:
            chosen[i] = mapping[by_index[i]]
            used.add(by_index[i])
        elif name in names:
            chosen[i] = names[name]
            used.add(name)
        elif entries := by_norm.get(normalise_name(name), []):
            if len({names[e] for e in entries}) > 1:
                raise PromptBankError(
                    f"{mapping_source}: entries {entries} all name class {name!r} but map to different keys; keep one"
                )
            chosen[i] = names[entries[0]]
            used.update(entries)
    return chosen, [c for c in mapping if c not in used]
