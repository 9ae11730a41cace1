"""From files to prompts: the DataModule's one call to read a bank, match it, report and fail loudly."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from aape_lightning.prompts.bank import read_prompt_file
from aape_lightning.prompts.formats import AS_WRITTEN
from aape_lightning.prompts.mapping import read_mapping_file, shipped_mapping_path
from aape_lightning.prompts.matching import PromptMatch, match_prompts
from aape_lightning.prompts.report import log_report, write_report


def match_prompt_file(
    bank_path: str | Path,
    classnames: Sequence[str],
    mapping_path: str | Path | None = None,
    fallback_template: str | None = None,
    dedup_threshold: float | None = None,
    report_path: str | Path | None = None,
    encoder: str | Path | None = None,
    dataset: str | None = None,
    keep_repeats: bool = False,
    prompt_format: str = AS_WRITTEN,
) -> PromptMatch:
    """Match a CuPL JSON file to a dataset's whole class list; logs and writes the report, raises nothing yet.

    Matching all classes at once (not one base/new half at a time) is what lets two classes of
    different halves never share a key, and unused keys count over every class. ``dataset``
    (a catalog name such as "Caltech101") adds the shipped mapping that fits the bank (CuPL's or
    classify_by_description's keys -> CoOp's names). ``prompt_format`` says how entries become
    prompts (see ``formats``).
    The report goes to ``report_path`` (JSON) before any error, so its suggestions can be read.
    ``encoder`` is a local sentence-transformers model (default: the bundled MiniLM), loaded only
    for suggestions or de-duplication.
    """
    bank = read_prompt_file(bank_path)
    mapping = read_mapping_file(mapping_path) if mapping_path is not None else None
    shipped_path = shipped_mapping_path(dataset, bank)
    result = match_prompts(
        bank,
        classnames,
        source=str(bank_path),
        mapping=mapping,
        mapping_source=str(mapping_path),
        fallback_template=fallback_template,
        dedup_threshold=dedup_threshold,
        encoder=encoder,
        shipped_mapping=read_mapping_file(shipped_path) if shipped_path else None,
        shipped_source=str(shipped_path),
        keep_repeats=keep_repeats,
        prompt_format=prompt_format,
    )
    if report_path is not None:
        write_report(result.report, report_path)
    log_report(result.report)
    return result


def resolve_prompts(
    bank_path: str | Path,
    classnames: list[str],
    mapping_path: str | Path | None = None,
    fallback_template: str | None = None,
    dedup_threshold: float | None = None,
    report_path: str | Path | None = None,
    encoder: str | Path | None = None,
    dataset: str | None = None,
    keep_repeats: bool = False,
    prompt_format: str = AS_WRITTEN,
) -> list[list[str]]:
    """Prompts for ``classnames`` (aligned by index) from a CuPL JSON file; an error for any problem.

    See ``match_prompt_file`` for the arguments.
    """
    return match_prompt_file(
        bank_path, classnames, mapping_path, fallback_template, dedup_threshold, report_path, encoder, dataset,
        keep_repeats, prompt_format,
    ).select()
