"""Prompt banks: natural-language prompts per class, in CuPL's JSON ``{"class name": ["sentence", ...]}``.

A JSON file that repeats a key is an error rather than a silent overwrite. Matching the keys to a
dataset's class list (by class index, never by name alone) is ``matching``'s job.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from aape_lightning.errors import PromptBankError, UserError
from aape_lightning.prompts.keys import nfc

if TYPE_CHECKING:  # torch is imported where tensors are made: `aape prompts` starts without it
    import torch


def no_duplicate_keys(path: Path, fix: str = "appears twice; merge its prompt lists into one entry"):
    """A ``json.loads`` pairs hook: keys in NFC; a repeated key (in any spelling) is an error, not a silent overwrite."""

    def hook(pairs: list[tuple[str, object]]) -> dict:
        seen: dict[str, object] = {}
        for key, value in pairs:
            key = nfc(key)
            if key in seen:
                raise PromptBankError(f"{path}: class {key!r} {fix}")
            seen[key] = value
        return seen

    return hook


def read_utf8(path: Path, error: type[UserError] = PromptBankError) -> str:
    """A text file's contents; bytes that are not UTF-8 are ``error`` naming the byte offset and the fix."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        bad = err.object[err.start : err.start + 4]
        raise error(
            f"{path}: not UTF-8 text at byte offset {err.start} (byte {bad[:1].hex()}, in {bad!r}); "
            "re-save the file as UTF-8, e.g. iconv -f latin1 -t utf-8 OLD > NEW"
        ) from None


def read_prompt_file(path: str | Path) -> dict[str, list[str]]:
    """Read a CuPL-format JSON file and check its shape."""
    path = Path(path)
    if not path.is_file():
        raise PromptBankError(f"prompt file {path} does not exist; pass the path of a CuPL-format JSON file")
    try:
        data = json.loads(read_utf8(path), object_pairs_hook=no_duplicate_keys(path))
    except json.JSONDecodeError as err:
        raise PromptBankError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and all(isinstance(s, str) for s in v) for v in data.values()
    ):
        raise PromptBankError(f'{path}: expected {{"class name": ["sentence", ...], ...}} (CuPL format)')
    return data


def pad_prompt_embeddings(per_class: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack ``K`` tensors ``(M_k, d)`` into ``(K, M_max, d)`` with a mask ``(K, M_max)`` (True = real)."""
    import torch

    m_max = max(e.shape[0] for e in per_class)
    dim = per_class[0].shape[1]
    bank = per_class[0].new_zeros(len(per_class), m_max, dim)  # (K, M_max, d)
    mask = torch.zeros(len(per_class), m_max, dtype=torch.bool, device=bank.device)  # (K, M_max)
    for k, emb in enumerate(per_class):
        bank[k, : emb.shape[0]] = emb
        mask[k, : emb.shape[0]] = True
    return bank, mask
