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

METHODS = ("mapping", "exact", "normalised", "word-order", "qualifier", "template-fallback", "unmatched")
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
) -> dict[str, Any]:
    """The report for one match: per-method counts, the per-class ``rows``, and what went unused."""
    used_keys = {row["key"] for row in rows if row["key"] is not None}
    counts = {m: 0 for m in METHODS}
    for row in rows:
        counts[row["method"]] += 1
    return {
        "bank": str(source),
        "mapping": mapping_source,
        "num_classes": len(rows),
        "counts": counts,
        "fallback_template": fallback_template,
        "dedup": dedup,
        "suggestions_by": suggestions_by,
        "classes": rows,
        "unused_bank_keys": [k for k in bank_keys if k not in used_keys],
        "unused_mapping_entries": unused_mapping,
    }


def write_report(report: Mapping[str, Any], path: str | Path) -> None:
    """The full report as indented JSON at ``path`` (parent folders are created)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def log_report(report: Mapping[str, Any], max_lines: int = 20) -> None:
    """One summary line, then the non-exact matches (up to ``max_lines``) and any fallbacks."""
    counts = {m: n for m, n in report["counts"].items() if n}
    dedup = report.get("dedup")
    log.info(
        "%s: %d classes: %s%s",
        report["bank"],
        report["num_classes"],
        ", ".join(f"{m} {n}" for m, n in counts.items()),
        f"; dropped {dedup['dropped']} near-duplicate prompts (threshold {dedup['threshold']})" if dedup else "",
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
    if report.get("unused_bank_keys"):
        log.info("%s: %d bank keys match no class here", report["bank"], len(report["unused_bank_keys"]))
