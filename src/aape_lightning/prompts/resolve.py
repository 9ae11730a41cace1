"""From files to prompts: the DataModule's one call to read a bank, match it, report and fail loudly."""

from __future__ import annotations

from pathlib import Path

from aape_lightning.prompts.bank import read_prompt_file
from aape_lightning.prompts.mapping import read_mapping_file
from aape_lightning.prompts.matching import match_prompts
from aape_lightning.prompts.report import log_report, write_report


def resolve_prompts(
    bank_path: str | Path,
    classnames: list[str],
    mapping_path: str | Path | None = None,
    fallback_template: str | None = None,
    dedup_threshold: float | None = None,
    report_path: str | Path | None = None,
    encoder: str | Path | None = None,
) -> list[list[str]]:
    """Prompts for ``classnames`` (aligned by index) from a CuPL JSON file; the DataModule's entry point.

    Logs the match report and writes it to ``report_path`` (JSON) when given, also when the match
    fails, so the suggestions can be read there. ``encoder`` is a local sentence-transformers model
    (default: the bundled MiniLM), loaded only for suggestions or de-duplication.
    """
    bank = read_prompt_file(bank_path)
    mapping = read_mapping_file(mapping_path) if mapping_path is not None else None
    result = match_prompts(
        bank,
        classnames,
        source=str(bank_path),
        mapping=mapping,
        mapping_source=str(mapping_path),
        fallback_template=fallback_template,
        dedup_threshold=dedup_threshold,
        encoder=encoder,
    )
    if report_path is not None:
        write_report(result.report, report_path)
    log_report(result.report)
    result.raise_if_unmatched()
    return result.prompts
