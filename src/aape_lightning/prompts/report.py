"""The match report: how each class got its prompts, so a user can check loose matches and fix misses.

It is logged in short and written in full as JSON (also when matching fails, so the suggestions
can be read there).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

METHODS = ("mapping", "exact", "normalised", "word-order", "qualifier", "template-fallback", "ambiguous", "unmatched")
"""How a class got its prompts, as written in the report (the first five are matches)."""


def build_report(
    rows: list[dict[str, Any]],
    bank_keys: Iterable[str],
    *,
    source: str,
    mapping_source: str | None,
    fallback_template: str | None,
    dedup: dict[str, Any] | None,
    suggestions_by: str,
    unused_mapping: list[str],
    shipped_mapping: str | None = None,
    shared_keys: list[dict[str, Any]] | None = None,
    empty_keys: list[str] | None = None,
    keep_repeats: bool = False,
    prompt_format: str = "as-written",
    identical_lists: list[dict[str, Any]] | None = None,
    mostly_shared_lists: list[dict[str, Any]] | None = None,
    naming: tuple[int, int] = (0, 0),
) -> dict[str, Any]:
    """The report for one match: per-method counts, the per-class ``rows``, and what went unused.

    ``shared_bank_keys`` lists keys that classes with identical names share (allowed);
    ``repeats_dropped`` counts exact repeated sentences dropped per used key, summed;
    ``identical_prompt_lists`` / ``mostly_shared_prompt_lists`` are classes whose lists (as the
    bank gives them) coincide; ``prompts_naming_class`` counts prompts (as formatted) that name
    their class.
    """
    used_keys = {row["key"] for row in rows if row["key"] is not None}
    counts = {m: 0 for m in METHODS}
    for row in rows:
        counts[row["method"]] += 1
    return {
        "bank": str(source),
        "mapping": mapping_source,
        "shipped_mapping": shipped_mapping,
        "num_classes": len(rows),
        "counts": counts,
        "fallback_template": fallback_template,
        "repeats_dropped": None if keep_repeats else _repeats(rows),
        "dedup": dedup,
        "suggestions_by": suggestions_by,
        "classes": rows,
        "unused_bank_keys": [k for k in bank_keys if k not in used_keys],
        "empty_bank_keys": list(empty_keys or []),
        "shared_bank_keys": list(shared_keys or []),
        "unused_mapping_entries": unused_mapping,
        "prompt_format": prompt_format,
        "prompts_naming_class": {"named": naming[0], "prompts": naming[1]},
        "identical_prompt_lists": list(identical_lists or []),
        "mostly_shared_prompt_lists": list(mostly_shared_lists or []),
    }


def _repeats(rows: list[dict[str, Any]]) -> int:
    """Exact repeats dropped, counted once per bank key (classes sharing a key share its drops)."""
    return sum({row["key"]: row.get("repeats_dropped", 0) for row in rows if row["key"] is not None}.values())


def write_report(report: Mapping[str, Any], path: str | Path) -> None:
    """The full report as indented JSON at ``path`` (parent folders are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def log_report(report: Mapping[str, Any], max_lines: int = 20) -> None:
    """One summary line, then the non-exact matches (up to ``max_lines``), shared keys, fallbacks, unused keys."""
    counts = {m: n for m, n in report["counts"].items() if n}
    dedup = report.get("dedup")
    repeats = report.get("repeats_dropped")
    log.info(
        "%s: %d classes: %s%s%s",
        report["bank"],
        report["num_classes"],
        ", ".join(f"{m} {n}" for m, n in counts.items()),
        f"; dropped {repeats} exact repeated prompts" if repeats else "",
        f"; dropped {dedup['dropped']} near-duplicate prompts (threshold {dedup['threshold']})" if dedup else "",
    )
    for shared in report.get("shared_bank_keys") or []:
        log.info(
            "  %d classes named %r (classes %s) share bank key %r",
            len(shared["classes"]), shared["name"], shared["classes"], shared["key"],
        )
    loose = [r for r in report["classes"] if r["method"] in ("normalised", "word-order", "qualifier", "mapping")]
    for row in loose[:max_lines]:
        log.info("  %r <- bank key %r (%s)", row["name"], row["key"], row["method"])
    if len(loose) > max_lines:
        log.info("  ... and %d more (see the match report)", len(loose) - max_lines)
    fallback = [r for r in report["classes"] if r["method"] == "template-fallback"]
    if fallback:
        hints = [
            f"{r['name']!r}" + (f" (closest: {r['suggestions'][0]['key']!r})" if r.get("suggestions") else "")
            for r in fallback
        ]
        log.warning(
            "%s: %d classes use the template instead of prompts: %s", report["bank"], len(fallback), ", ".join(hints)
        )
    _log_specificity(report, max_lines)
    unused = report.get("unused_bank_keys") or []
    if unused:
        shown = ", ".join(map(repr, unused[:max_lines])) + (f", ... ({len(unused) - max_lines} more)" if len(unused) > max_lines else "")
        log.info("%s: %d bank keys no class uses: %s", report["bank"], len(unused), shown)


NAMING_WARNING = 0.5
"""Warn when no more than this fraction of a bank's prompts names its class (descriptor-style files)."""


def _log_specificity(report: Mapping[str, Any], max_lines: int) -> None:
    """Warn about prompts that do not name their class and classes whose prompt lists coincide."""
    bank, fmt = report["bank"], report.get("prompt_format", "as-written")
    naming = report.get("prompts_naming_class") or {}
    named, total = naming.get("named", 0), naming.get("prompts", 0)
    if total and named / total <= NAMING_WARNING:
        log.warning(
            "%s: only %d of %d prompts (%.0f%%) name their class (prompt format %r): this looks like a descriptor "
            "file (short attribute phrases), which CLIP reads without the class; set data.prompt_format to "
            "'classify_by_description' or a template such as '{class}, which has {descriptor}.' "
            "(see docs/prompt-banks.md)", bank, named, total, 100 * named / total, fmt,
        )
    identical = report.get("identical_prompt_lists") or []
    if identical:
        groups = "; ".join(" = ".join(map(repr, g["names"])) for g in identical[:max_lines])
        more = f"; ... ({len(identical) - max_lines} more groups)" if len(identical) > max_lines else ""
        adds_name = fmt == "classify_by_description" or "{class}" in fmt
        (log.info if adds_name else log.warning)(
            "%s: %d classes in %d groups have identical prompt lists (%s%s); %s", bank,
            sum(len(g["classes"]) for g in identical), len(identical), groups, more,
            f"the prompt format {fmt!r} adds the class name, the only difference between them" if adds_name
            else "a prompt-mean head gives each group identical weights (a prompt format with {class} adds the name)",
        )
    mostly = report.get("mostly_shared_prompt_lists") or []
    if mostly:
        log.info("%s: %d pairs of classes share most of their prompts (listed in the match report)", bank, len(mostly))
