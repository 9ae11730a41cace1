"""Match a CuPL prompt bank's keys to a dataset's class names, loudly and by class index.

Prompt banks and datasets spell class names differently ("Yorkshire_terrier", "2000 AM General
Hummer SUV", "apartment_building/outdoor"). Matching tries, per class and in this order:

1. ``mapping``: an explicit ``{"dataset class name": "bank key"}`` file; it wins over everything;
2. ``exact``: the class name is a bank key;
3. ``normalised``: equal after lower-casing, ``_``/``-`` to spaces and collapsing whitespace;
4. ``word-order``: equal as sorted word multisets ("AM General Hummer SUV 2000");
5. ``qualifier``: equal as word multisets once brackets, slashes and commas are dropped
   ("apartment building (outdoor)" = "outdoor apartment_building" = "apartment_building/outdoor").

The first step that finds anything decides; if it finds two different bank keys, that is an error
naming both (a mapping entry settles it). A class still unmatched is an error listing every such
class with the closest bank keys by sentence-embedding similarity, unless a fallback template is
given (then ``[template.format(name)]`` and a warning). Suggestions are only ever reported, never
applied. Classes are handled by index, so duplicate names (ImageNet's two "missile"s) both get
their key's prompts. Optionally, near-duplicate prompts within a class are dropped.

The sentence encoder (see ``sentence_encoder``) loads only for suggestions or de-duplication.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aape_lightning.errors import PromptBankError
from aape_lightning.prompts.keys import LEVELS
from aape_lightning.prompts.mapping import resolve_mapping
from aape_lightning.prompts.report import build_report
from aape_lightning.prompts.sentence_encoder import drop_near_duplicates, suggest_keys


@dataclass
class PromptMatch:
    """Prompts aligned with the class list by index, plus the report of how each was found."""

    prompts: list[list[str]]
    report: dict[str, Any]
    unmatched: list[int] = field(default_factory=list)

    def raise_if_unmatched(self, max_listed: int = 25) -> None:
        """The error listing classes without prompts, with suggestions and the fixes."""
        if not self.unmatched:
            return
        rows = self.report["classes"]
        names = [rows[i]["name"] for i in self.unmatched]
        source = self.report["bank"]
        lines = [
            f"{source}: no prompts for {len(names)} of {len(rows)} classes: {names}. Add them to the file, "
            'map names with a JSON file {"dataset class name": "bank key"} (data.prompt_mapping), '
            "or set prompt_fallback: true (data.prompt_fallback) to use the class template for them."
        ]
        scored_by = self.report.get("suggestions_by", "none")
        for n, i in enumerate(self.unmatched):
            found = rows[i].get("suggestions") or []
            if n == max_listed:
                lines.append(f"  ... suggestions for {len(self.unmatched) - n} more classes are in the match report")
                break
            if found:
                best = ", ".join(f"{s['key']!r} ({s['score']:.2f})" for s in found)
                lines.append(f"  {rows[i]['name']!r}: closest bank keys: {best}")
        if len(lines) > 1:
            lines.insert(1, f"Suggestions ({scored_by}; never applied automatically):")
        raise PromptBankError("\n".join(lines))


def match_prompts(
    bank: Mapping[str, Sequence[str]],
    classnames: Sequence[str],
    source: str = "<prompt bank>",
    mapping: Mapping[str, str] | None = None,
    mapping_source: str = "<mapping>",
    fallback_template: str | None = None,
    dedup_threshold: float | None = None,
    encoder: str | Path | None = None,
    num_suggestions: int = 3,
) -> PromptMatch:
    """Match ``bank`` to ``classnames`` (see the module docstring); never raises for unmatched classes.

    Raises for ambiguous keys, bad mapping entries and empty prompt lists. Unmatched classes get
    ``[]`` (or the template) and are listed in ``PromptMatch.unmatched``; call
    ``raise_if_unmatched`` to turn them into the error.
    """
    chosen, unused_mapping = resolve_mapping(mapping or {}, classnames, bank, mapping_source, source)
    rows = _match_classes(bank, classnames, chosen, source)
    per_key = _prompts_per_key(bank, rows, source)
    dropped = 0
    if dedup_threshold is not None and per_key:
        per_key, dropped = _drop_near_duplicates(per_key, rows, dedup_threshold, encoder)
    unmatched = [row["index"] for row in rows if row["key"] is None]
    suggestions_by = _add_suggestions(bank, rows, unmatched, num_suggestions, encoder) if unmatched else "none"
    prompts = _assemble(rows, per_key, fallback_template)
    report = build_report(
        rows,
        bank,
        source=source,
        mapping_source=str(mapping_source) if mapping else None,
        fallback_template=fallback_template,
        dedup=None
        if dedup_threshold is None
        else {"threshold": dedup_threshold, "dropped": dropped, "encoder": str(encoder or "default")},
        suggestions_by=suggestions_by,
        unused_mapping=unused_mapping,
    )
    return PromptMatch(prompts=prompts, report=report, unmatched=[] if fallback_template is not None else unmatched)


def _key_indexes(bank: Mapping[str, Any]) -> list[dict[str, list[str]]]:
    """Per loose level, level key -> the bank keys that have it (several means ambiguous)."""
    indexes: list[dict[str, list[str]]] = []
    for _, keyfn in LEVELS:
        index: dict[str, list[str]] = {}
        for key in bank:
            index.setdefault(keyfn(key), []).append(key)
        indexes.append(index)
    return indexes


def _match_class(
    name: str, bank: Mapping[str, Any], indexes: list[dict[str, list[str]]]
) -> tuple[str, str | None, str | None]:
    """``(method, bank key or None, ambiguity message or None)`` for a class without a mapping entry.

    The first level that finds any bank keys decides; finding several is ambiguous, not a miss.
    """
    if name in bank:
        return "exact", name, None
    for (method, keyfn), index in zip(LEVELS, indexes):
        found = index.get(keyfn(name))
        if found and len(found) > 1:
            return "unmatched", None, (
                f"class {name!r} matches bank keys {' and '.join(map(repr, found))} ({method}); "
                f"merge or rename them, or pin one with a mapping entry {json.dumps({name: found[0]})}"
            )
        if found:
            return method, found[0], None
    return "unmatched", None, None


def _match_classes(
    bank: Mapping[str, Any], classnames: Sequence[str], chosen: Mapping[int, str], source: str
) -> list[dict[str, Any]]:
    """One report row per class (index, name, method, key); every ambiguous class in one error."""
    indexes = _key_indexes(bank)
    rows: list[dict[str, Any]] = []
    ambiguous: list[str] = []
    for i, name in enumerate(classnames):
        if i in chosen:
            method, key, clash = "mapping", chosen[i], None
        else:
            method, key, clash = _match_class(name, bank, indexes)
        if clash:
            ambiguous.append(clash)
        rows.append({"index": i, "name": name, "method": method, "key": key})
    if ambiguous:
        raise PromptBankError(f"{source}: ambiguous keys:\n  " + "\n  ".join(ambiguous))
    return rows


def _prompts_per_key(bank: Mapping[str, Sequence[str]], rows: list[dict[str, Any]], source: str) -> dict[str, list[str]]:
    """The stripped prompts of each matched bank key (shared by duplicate class names); empty lists are errors."""
    per_key: dict[str, list[str]] = {}
    for row in rows:
        key = row["key"]
        if key is None or key in per_key:
            continue
        cleaned = [p.strip() for p in bank[key] if p.strip()]
        if not cleaned:
            raise PromptBankError(
                f"{source}: class {row['name']!r} has an empty prompt list (bank key {key!r}); "
                "add sentences or remove the entry"
            )
        per_key[key] = cleaned
    return per_key


def _drop_near_duplicates(
    per_key: dict[str, list[str]], rows: list[dict[str, Any]], threshold: float, encoder: str | Path | None
) -> tuple[dict[str, list[str]], int]:
    """``per_key`` without near-duplicate prompts and how many went; each matched row records its drops."""
    order = list(per_key)
    kept = drop_near_duplicates([per_key[k] for k in order], threshold, encoder)
    dropped = {k: len(per_key[k]) - len(v) for k, v in zip(order, kept)}
    for row in rows:
        if row["key"] is not None:
            row["dropped"] = dropped[row["key"]]
    return dict(zip(order, kept)), sum(dropped.values())


def _add_suggestions(
    bank: Mapping[str, Any], rows: list[dict[str, Any]], unmatched: list[int], k: int, encoder: str | Path | None
) -> str:
    """Put the closest bank keys into each unmatched row; returns how they were scored."""
    found, scored_by = suggest_keys([rows[i]["name"] for i in unmatched], list(bank), k, encoder)
    for i in unmatched:
        rows[i]["suggestions"] = [{"key": key, "score": score} for key, score in found[rows[i]["name"]]]
    return scored_by


def _assemble(
    rows: list[dict[str, Any]], per_key: Mapping[str, list[str]], fallback_template: str | None
) -> list[list[str]]:
    """Prompts per class by index: its key's prompts, else the template (method becomes fallback), else []."""
    prompts: list[list[str]] = []
    for row in rows:
        if row["key"] is not None:
            prompts.append(list(per_key[row["key"]]))
        elif fallback_template is not None:
            row["method"] = "template-fallback"
            prompts.append([fallback_template.format(row["name"])])
        else:
            prompts.append([])
        row["prompts"] = len(prompts[-1])
    return prompts
