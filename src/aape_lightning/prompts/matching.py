"""Match a CuPL prompt bank's keys to a dataset's class names, loudly and by class index.

Prompt banks and datasets spell class names differently ("Yorkshire_terrier", "2000 AM General
Hummer SUV", "apartment_building/outdoor"). Matching tries, per class and in this order:

1. ``mapping``: an explicit ``{"dataset class name" or "#index": "bank key"}`` file; it wins over
   everything; then the shipped mapping for a known dataset (a published bank's keys -> CoOp's
   names), for the classes the bank does not spell exactly;
2. ``exact``: the class name is a bank key;
3. ``normalised``: equal after lower-casing, ``_``/``-`` to spaces, ``/`` inside a word dropped;
4. ``word-order``: equal as sorted word multisets ("AM General Hummer SUV 2000");
5. ``qualifier``: equal as word multisets once brackets, slashes and commas are dropped
   ("apartment building (outdoor)" = "outdoor apartment_building" = "apartment_building/outdoor").

The first step that finds anything decides; finding two different bank keys is ambiguous. Two
classes with different names never share a bank key (ImageNet's dog "Cardigan" must not get the
sweater "cardigan"'s prompts); classes with identical names (ImageNet's two "missile"s) may, and the
report says so. Exact repeated sentences of a key are dropped (counted), optionally near-duplicates
too; then the prompt format (see ``formats``) turns each entry into the sentence CLIP reads. A class still unmatched, or matched to an empty prompt list, gets the fallback template when
one is given (with a warning); otherwise it is an error listing every such class, unmatched ones
with the closest bank keys (keys no class uses first), scored on each key's name and on its
first prompts, so a synonym's description can find it ("newt" -> "eft", "a small, brightly colored
salamander"). Suggestions are never applied. The report also lists classes whose prompt lists are
identical or mostly shared, and how many prompts name their class (see ``specificity``).

Problems are collected, not raised, so the report can be written first; ``PromptMatch.select``
raises for the classes a caller needs. The sentence encoder (see ``sentence_encoder``) loads only
for suggestions or de-duplication.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aape_lightning.errors import PromptBankError
from aape_lightning.prompts.formats import AS_WRITTEN, prompt_formatter
from aape_lightning.prompts.keys import LEVELS
from aape_lightning.prompts.mapping import fitting_entries, resolve_mapping
from aape_lightning.prompts.report import build_report
from aape_lightning.prompts.sentence_encoder import drop_near_duplicates, suggest_keys
from aape_lightning.prompts.specificity import prompts_naming_class, shared_prompt_lists

_FIXES = (
    'map names with a JSON file {"dataset class name" or "#index": "bank key"} (data.prompt_mapping), '
    "or set prompt_fallback: true (data.prompt_fallback) to use the class template for them."
)


@dataclass
class PromptMatch:
    """Prompts aligned with the class list by index, the report, and the problems found (not yet raised)."""

    prompts: list[list[str]]
    report: dict[str, Any]
    unmatched: list[int] = field(default_factory=list)
    empty: list[int] = field(default_factory=list)
    ambiguous: dict[int, str] = field(default_factory=dict)
    conflicts: list[tuple[int, int, str]] = field(default_factory=list)  # (class i, class j, message)

    def select(self, indexes: Sequence[int] | None = None) -> list[list[str]]:
        """The prompts of classes ``indexes`` (default: all); an error for any problem among them."""
        self.raise_for(indexes)
        return [self.prompts[i] for i in (range(len(self.prompts)) if indexes is None else indexes)]

    def raise_if_unmatched(self, max_listed: int = 25) -> None:
        """Every problem of every class as one error (see ``raise_for``)."""
        self.raise_for(None, max_listed)

    def raise_for(self, indexes: Sequence[int] | None = None, max_listed: int = 25) -> None:
        """One error listing every problem of the classes ``indexes``: ambiguous or shared keys, empty lists, misses."""
        rows = self.report["classes"]
        wanted = set(range(len(rows)) if indexes is None else indexes)
        source = self.report["bank"]
        sections: list[str] = []
        ambiguous = [msg for i, msg in self.ambiguous.items() if i in wanted]
        if ambiguous:
            sections.append(f"{source}: ambiguous keys:\n  " + "\n  ".join(ambiguous))
        conflicts = [msg for i, j, msg in self.conflicts if i in wanted or j in wanted]
        if conflicts:
            sections.append(f"{source}: different classes would share one bank key:\n  " + "\n  ".join(conflicts))
        empty = [i for i in self.empty if i in wanted]
        if empty:
            listed = "; ".join(f"{rows[i]['name']!r} has an empty prompt list (bank key {rows[i]['key']!r})" for i in empty)
            sections.append(
                f"{source}: {len(empty)} classes have no sentences: {listed}. Add sentences or remove the entries, "
                + _FIXES
            )
        missing = [i for i in self.unmatched if i in wanted]
        if missing:
            sections.append(self._unmatched_message(missing, len(wanted), max_listed))
        if sections:
            raise PromptBankError("\n".join(sections))

    def _unmatched_message(self, missing: list[int], total: int, max_listed: int) -> str:
        rows = self.report["classes"]
        names = [rows[i]["name"] for i in missing]
        lines = [f"{self.report['bank']}: no prompts for {len(names)} of {total} classes: {names}. Add them to the file, " + _FIXES]
        for n, i in enumerate(missing):
            if n == max_listed:
                lines.append(f"  ... suggestions for {len(missing) - n} more classes are in the match report")
                break
            found = rows[i].get("suggestions") or []
            if found:
                best = ", ".join(f"{s['key']!r} ({s['score']:.2f}{', used' if s.get('used') else ''})" for s in found)
                lines.append(f"  {rows[i]['name']!r}: closest bank keys: {best}")
        if len(lines) > 1:
            scored_by = self.report.get("suggestions_by", "none")
            lines.insert(1, f"Suggestions ({scored_by}; keys no class uses first; never applied automatically):")
        return "\n".join(lines)


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
    shipped_mapping: Mapping[str, str] | None = None,
    shipped_source: str = "<shipped mapping>",
    keep_repeats: bool = False,
    prompt_format: str = AS_WRITTEN,
) -> PromptMatch:
    """Match ``bank`` to ``classnames`` (see the module docstring); raises only for a bad mapping or format.

    Problems (ambiguous or shared keys, empty lists, unmatched classes) are in the returned
    ``PromptMatch`` and its report; ``select`` or ``raise_if_unmatched`` turns them into the error.
    """
    formatter = prompt_formatter(prompt_format)
    chosen, unused_mapping = resolve_mapping(mapping or {}, classnames, bank, mapping_source, source)
    via = {i: "user" for i in chosen}
    if shipped_mapping:
        fits = fitting_entries(shipped_mapping, bank)
        shipped, _ = resolve_mapping(fits, classnames, bank, shipped_source, source, skip=list(chosen))
        chosen.update(shipped)
        via.update({i: f"shipped ({Path(shipped_source).name})" for i in shipped})
    rows, ambiguous = _match_classes(bank, classnames, chosen, via)
    shared, conflicts = _shared_keys(rows)
    per_key, empty_keys = _prompts_per_key(bank, rows, keep_repeats)
    dropped = 0
    if dedup_threshold is not None and per_key:
        per_key, dropped = _drop_near_duplicates(per_key, rows, dedup_threshold, encoder)
    unmatched = [row["index"] for row in rows if row["method"] == "unmatched"]
    empty = [row["index"] for row in rows if row["key"] in empty_keys]
    suggestions_by = (
        _add_suggestions(bank, rows, unmatched, num_suggestions, encoder, empty_keys) if unmatched else "none"
    )
    identical, mostly = shared_prompt_lists(rows, per_key)
    prompts = _assemble(rows, per_key, fallback_template, formatter)
    named, total = prompts_naming_class(rows, prompts)
    report = build_report(
        rows,
        bank,
        source=source,
        mapping_source=str(mapping_source) if mapping else None,
        shipped_mapping=str(shipped_source) if shipped_mapping else None,
        fallback_template=fallback_template,
        dedup=None
        if dedup_threshold is None
        else {"threshold": dedup_threshold, "dropped": dropped, "encoder": str(encoder or "default")},
        suggestions_by=suggestions_by,
        unused_mapping=unused_mapping,
        shared_keys=shared,
        empty_keys=[k for k in bank if _clean(bank[k]) == []],
        keep_repeats=keep_repeats,
        prompt_format=prompt_format,
        identical_lists=identical,
        mostly_shared_lists=mostly,
        naming=(named, total),
    )
    covered = fallback_template is not None
    return PromptMatch(
        prompts=prompts,
        report=report,
        unmatched=[] if covered else unmatched,
        empty=[] if covered else empty,
        ambiguous=ambiguous,
        conflicts=conflicts,
    )


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
            return "ambiguous", None, (
                f"class {name!r} matches bank keys {' and '.join(map(repr, found))} ({method}); "
                f"merge or rename them, or pin one with a mapping entry {json.dumps({name: found[0]})}"
            )
        if found:
            return method, found[0], None
    return "unmatched", None, None


def _match_classes(
    bank: Mapping[str, Any], classnames: Sequence[str], chosen: Mapping[int, str], via: Mapping[int, str]
) -> tuple[list[dict[str, Any]], dict[int, str]]:
    """One report row per class (index, name, method, key) and the ambiguous classes' messages."""
    indexes = _key_indexes(bank)
    rows: list[dict[str, Any]] = []
    ambiguous: dict[int, str] = {}
    for i, name in enumerate(classnames):
        if i in chosen:
            rows.append({"index": i, "name": name, "method": "mapping", "key": chosen[i], "mapping": via[i]})
            continue
        method, key, clash = _match_class(name, bank, indexes)
        if clash:
            ambiguous[i] = clash
        rows.append({"index": i, "name": name, "method": method, "key": key})
    return rows, ambiguous


def _shared_keys(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[tuple[int, int, str]]]:
    """Bank keys used by several classes: allowed (identical names) and conflicting pairs (different names)."""
    by_key: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        if row["key"] is not None:
            by_key.setdefault(row["key"], []).append(row)
    shared: list[dict[str, Any]] = []
    conflicts: list[tuple[int, int, str]] = []
    for key, users in by_key.items():
        if len(users) < 2:
            continue
        if len({r["name"] for r in users}) == 1:
            shared.append({"key": key, "name": users[0]["name"], "classes": [r["index"] for r in users]})
            continue
        for a, first in enumerate(users):
            for second in users[a + 1 :]:
                if first["name"] == second["name"]:
                    continue
                pick = second if first["method"] == "exact" else first
                conflicts.append((first["index"], second["index"], (
                    f"{first['name']!r} (class {first['index']}, {first['method']}) and {second['name']!r} "
                    f"(class {second['index']}, {second['method']}) both get bank key {key!r}; give one its own "
                    f"key with a mapping entry {json.dumps({'#' + str(pick['index']): '<its bank key>'})} "
                    "or add its prompts to the bank"
                )))
    return shared, conflicts


def _clean(prompts: Sequence[str]) -> list[str]:
    return [p.strip() for p in prompts if p.strip()]


def _prompts_per_key(
    bank: Mapping[str, Sequence[str]], rows: list[dict[str, Any]], keep_repeats: bool
) -> tuple[dict[str, list[str]], set[str]]:
    """The stripped prompts of each used bank key without exact repeats (unless kept), and the empty keys.

    Each matched row records how many repeats its key lost (``repeats_dropped``).
    """
    per_key: dict[str, list[str]] = {}
    repeats: dict[str, int] = {}
    empty: set[str] = set()
    for row in rows:
        key = row["key"]
        if key is None or key in per_key or key in empty:
            continue
        cleaned = _clean(bank[key])
        if not cleaned:
            empty.add(key)
            continue
        unique = cleaned if keep_repeats else list(dict.fromkeys(cleaned))
        repeats[key] = len(cleaned) - len(unique)
        per_key[key] = unique
    for row in rows:
        if row["key"] in repeats:
            row["repeats_dropped"] = repeats[row["key"]]
    return per_key, empty


def _drop_near_duplicates(
    per_key: dict[str, list[str]], rows: list[dict[str, Any]], threshold: float, encoder: str | Path | None
) -> tuple[dict[str, list[str]], int]:
    """``per_key`` without near-duplicate prompts and how many went; each matched row records its drops."""
    order = list(per_key)
    kept = drop_near_duplicates([per_key[k] for k in order], threshold, encoder)
    dropped = {k: len(per_key[k]) - len(v) for k, v in zip(order, kept)}
    for row in rows:
        if row["key"] in dropped:
            row["dropped"] = dropped[row["key"]]
    return dict(zip(order, kept)), sum(dropped.values())


def _add_suggestions(
    bank: Mapping[str, Any],
    rows: list[dict[str, Any]],
    unmatched: list[int],
    k: int,
    encoder: str | Path | None,
    empty_keys: set[str],
) -> str:
    """Put the closest bank keys into each unmatched row, keys no class uses first; returns how they were scored."""
    taken = {row["key"] for row in rows if row["key"] is not None}
    keys = [key for key in bank if key not in empty_keys]
    described = {key: _clean(bank[key]) for key in keys}
    found, scored_by = suggest_keys([rows[i]["name"] for i in unmatched], keys, k, encoder, taken, described)
    for i in unmatched:
        rows[i]["suggestions"] = [
            {"key": key, "score": score, **({"used": True} if key in taken else {})} for key, score in found[rows[i]["name"]]
        ]
    return scored_by


def _assemble(
    rows: list[dict[str, Any]], per_key: Mapping[str, list[str]], fallback_template: str | None, formatter
) -> list[list[str]]:
    """Prompts per class by index: its key's prompts in the format, else the template (method becomes
    fallback), else []."""
    prompts: list[list[str]] = []
    for row in rows:
        if row["key"] in per_key:
            prompts.append(formatter(per_key[row["key"]], row["name"]))
        elif fallback_template is not None and row["method"] != "ambiguous":
            row["fallback_reason"] = "no bank key" if row["key"] is None else f"bank key {row['key']!r} is empty"
            row["method"] = "template-fallback"
            prompts.append([fallback_template.format(row["name"])])
        else:
            prompts.append([])
        row["prompts"] = len(prompts[-1])
    return prompts
