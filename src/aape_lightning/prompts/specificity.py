"""How much a bank's prompts say about their own class: shared prompt lists, prompts that name their class.

Descriptor files list attribute phrases ("long, thin legs") that many classes share, some
classes with identical lists; a prompt-mean head (CuPL) then gives those classes identical
weights unless the prompt format adds the class name. Both checks feed the match report.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from itertools import combinations
from typing import Any

from aape_lightning.prompts.cleaning import mentions

MOSTLY_SHARED = 0.5
"""Two classes "mostly share" their prompts when more than this fraction of the shorter list is in both."""


def shared_prompt_lists(
    rows: Sequence[Mapping[str, Any]], per_key: Mapping[str, Sequence[str]], threshold: float = MOSTLY_SHARED
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Groups of classes with identical prompt lists, and pairs sharing most of them, as the bank gives them.

    Compared per bank key (classes that share a key are reported as shared keys, not here), as
    sets of the key's prompts before any prompt format. Each entry lists class indexes and names.
    """
    classes: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        if row.get("key") in per_key:
            classes[row["key"]].append(row)
    sets = {key: frozenset(per_key[key]) for key in classes}

    def described(keys: Sequence[str]) -> dict[str, list]:
        users = [r for key in keys for r in classes[key]]
        return {"classes": [r["index"] for r in users], "names": [r["name"] for r in users]}

    by_list: dict[frozenset, list[str]] = defaultdict(list)
    for key, prompts in sets.items():
        by_list[prompts].append(key)
    identical = [described(keys) for keys in by_list.values() if len(keys) > 1]
    together: Counter = Counter()  # (key a, key b) -> prompts in both
    holders: dict[str, list[str]] = defaultdict(list)
    for key, prompts in sets.items():
        for prompt in prompts:
            holders[prompt].append(key)
    for keys in holders.values():
        together.update(combinations(keys, 2))
    mostly = []
    for (a, b), n in together.items():
        smaller = min(len(sets[a]), len(sets[b]))
        if sets[a] != sets[b] and n / smaller > threshold:
            mostly.append({**described([a, b]), "shared": n, "shorter_list": smaller})
    return identical, mostly


def prompts_naming_class(rows: Sequence[Mapping[str, Any]], prompts: Sequence[Sequence[str]]) -> tuple[int, int]:
    """``(prompts that name their class, prompts)`` over every class: its dataset name or its bank key."""
    named = total = 0
    for row, own in zip(rows, prompts):
        names = [row["name"]] + ([row["key"]] if row.get("key") else [])
        named += sum(any(mentions(p, n) for n in names) for p in own)
        total += len(own)
    return named, total
