"""The one place that turns a backbone name or path into a CLIP model.

A backbone is named by a registry entry (OpenAI's released models, downloaded to a
cache dir with their SHA256 checked by clip-anytorch, or a file shipped with this
package) or by a local file: an OpenAI checkpoint (TorchScript or state dict) or
a file in this project's own format (``save_clip``), which records the
architecture so that any width and head count loads, in fp32.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from aape_lightning.cache_dir import default_cache_dir  # noqa: F401 (re-exported)
from aape_lightning.errors import BackboneError

with warnings.catch_warnings():  # clip-anytorch imports the deprecated pkg_resources
    warnings.simplefilter("ignore")
    import clip
    from clip.model import CLIP, build_model

log = logging.getLogger(__name__)

FORMAT = "aape-clip"
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
TOKEN_TABLE = "token_embedding.weight"

# Names a user may pass as ``backbone``: data, not code branches.
#   source "openai": clip-anytorch downloads it (the URL carries its SHA256);
#   source "package": a file shipped inside aape_lightning (path relative to the package).
REGISTRY: dict[str, dict[str, str]] = {
    **{name: {"source": "openai"} for name in clip.available_models()},
    "demo": {"source": "package", "file": "assets/demo_clip.pt"},
}


@dataclass(frozen=True)
class BackboneSpec:
    """What identifies a backbone: stored in checkpoints and used to key caches."""

    name: str  # what the user wrote: a registry name or a path
    path: str  # resolved local file ("" for a name not yet downloaded)
    sha256: str


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def save_clip(
    model: CLIP, path: str | Path, config: dict[str, Any], extra: dict[str, Any] | None = None, compact: bool = False
) -> Path:
    """Write ``model`` in this project's format: architecture + fp32 weights (+ free-form extras).

    ``compact=True`` stores only the non-zero rows of the token embedding (lossless): a
    small CLIP that uses a few hundred of the tokenizer's 49408 tokens then ships in MBs.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().cpu() if v.is_floating_point() else v.cpu() for k, v in model.state_dict().items()}
    if compact:
        table = state.pop(TOKEN_TABLE)  # (vocab, width)
        rows = table.abs().sum(dim=1).nonzero().flatten()  # (n_used,)
        state[TOKEN_TABLE + ".rows"], state[TOKEN_TABLE + ".values"] = rows, table[rows]
    payload = {"format": FORMAT, "version": 1, "config": dict(config), "state_dict": state, "extra": extra or {}}
    return write_payload(payload, path)


def write_payload(payload: dict[str, Any], path: str | Path) -> Path:
    """Atomic and byte-reproducible: the same payload gives the same bytes under any file name.

    ``torch.save`` to a path names the archive's root folder after the file; saving to memory
    first gives every file the same inner names, so a rebuilt checkpoint hashes like the original.
    """
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, path)  # never leave a half-written checkpoint behind
    return path


def _load_file(path: Path) -> CLIP:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # a TorchScript archive (OpenAI's release files) is not a pickle
        payload = None
    if isinstance(payload, dict) and payload.get("format") == FORMAT:
        model = CLIP(**payload["config"])
        state = dict(payload["state_dict"])
        if TOKEN_TABLE + ".rows" in state:  # written with compact=True: unlisted rows are zero
            table = torch.zeros_like(model.token_embedding.weight)  # (vocab, width)
            table[state.pop(TOKEN_TABLE + ".rows")] = state.pop(TOKEN_TABLE + ".values")
            state[TOKEN_TABLE] = table
        model.load_state_dict(state)
        return model.float().eval()
    try:  # OpenAI layout: a bare state dict, or a TorchScript archive as OpenAI releases them
        state = payload if isinstance(payload, dict) else torch.jit.load(str(path), map_location="cpu").state_dict()
        return _from_openai_state(state)
    except Exception as err:
        raise BackboneError(
            f"{path}: not a CLIP checkpoint that can be read ({type(err).__name__}: {err}). "
            f"Pass an OpenAI CLIP file (TorchScript or state dict) or one written by "
            f"aape_lightning.backbones.save_clip."
        ) from err


def _from_openai_state(state: dict[str, torch.Tensor]) -> CLIP:
    """An OpenAI-layout state dict as an fp32 CLIP holding exactly the file's values.

    clip-anytorch's ``build_model`` infers the architecture (heads = width // 64) but casts the
    model to fp16 before loading, which rounds fp32 weights to fp16; the values are therefore
    loaded a second time, into the model made fp32.
    """
    state = {k: v for k, v in state.items() if k not in ("input_resolution", "context_length", "vocab_size")}
    model = build_model(dict(state)).float()
    model.load_state_dict(state)
    return model.eval()


def resolve_backbone(name_or_path: str, cache_dir: str | Path | None = None) -> tuple[CLIP, BackboneSpec]:
    """Load ``name_or_path`` on the CPU in fp32 and say what it was."""
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    entry = REGISTRY.get(name_or_path)
    if entry is not None and entry["source"] == "package":
        path = Path(str(resources.files("aape_lightning").joinpath(entry["file"])))
        if not path.is_file():
            raise BackboneError(
                f"backbone {name_or_path!r}: packaged file {path} is missing; reinstall aape-lightning "
                f"(pip install -e .) or pass a local CLIP file path"
            )
        return _load_file(path), BackboneSpec(name_or_path, str(path), file_sha256(path))
    if entry is not None and entry["source"] == "openai":
        url = clip.clip._MODELS[name_or_path]
        root = cache_dir / "clip"
        log.info("loading CLIP %s (download to %s if absent, SHA256 checked)", name_or_path, root)
        try:
            # OpenAI's released weights are fp16, so clip-anytorch's fp16 cast loses nothing here
            model, _ = clip.load(name_or_path, device="cpu", jit=False, download_root=str(root))
        except Exception as err:
            raise BackboneError(
                f"backbone {name_or_path!r}: could not download or read it into {root} ({err}). "
                f"Offline? Copy the file from {url} to {root}/ or pass a local file path as backbone."
            ) from err
        return model.float().eval(), BackboneSpec(name_or_path, str(root / os.path.basename(url)), url.split("/")[-2])
    path = Path(name_or_path).expanduser()
    if path.is_file():
        return _load_file(path), BackboneSpec(name_or_path, str(path.resolve()), file_sha256(path))
    known = ", ".join(sorted(REGISTRY))
    raise BackboneError(
        f"unknown backbone {name_or_path!r}: not a known name and no such file. "
        f"Known names: {known}. A path to a local CLIP checkpoint file works too."
    )
