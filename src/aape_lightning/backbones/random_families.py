"""Randomly initialised OpenCLIP and Hugging Face models written as the users' layouts, offline.

For tests (tiny sizes) and the cost table (ViT-B/16's architecture in each library): the weights
are random, the architecture, tokenizer layout, pooling and preprocessing are the library's own.
The Hugging Face tokenizers know only the given words (no download): for CLIP a word-level fast
tokenizer with CLIP's special tokens (SOS .. EOT, padded with EOT); for SigLIP the library's own
``SiglipTokenizer`` on a tiny SentencePiece model trained here (its text cleaning, EOS, padding).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import torch

# ViT-B/16 as each library configures it (the HF defaults are the base sizes; patch 16 for CLIP)
HF_VIT_B16: dict[str, dict[str, Any]] = {
    "clip": {"vision_config": {"patch_size": 16, "image_size": 224}, "projection_dim": 512,
             "text_config": {"vocab_size": 49408}},
    "siglip": {"text_config": {"vocab_size": 32000}},  # SiglipConfig's defaults are siglip-base-patch16-224's
}


def build_random_open_clip(folder: str | Path, model_cfg: dict[str, Any] | str, seed: int = 0,
                           preprocess_cfg: dict[str, Any] | None = None) -> Path:  # fmt: skip
    """An OpenCLIP folder (``open_clip_config.json`` + ``open_clip_pytorch_model.bin``); load as ``open_clip:<folder>``.

    ``model_cfg``: a model config dict (``embed_dim``, ``vision_cfg``, ``text_cfg``, ...) or a built-in name.
    """
    import open_clip

    cfg = open_clip.get_model_config(model_cfg) if isinstance(model_cfg, str) else dict(model_cfg)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    model = (open_clip.CustomTextCLIP if cfg.get("custom_text") else open_clip.CLIP)(
        **{k: v for k, v in cfg.items() if k != "custom_text"}
    )
    config = {"model_cfg": cfg, "preprocess_cfg": preprocess_cfg or {}}
    (folder / "open_clip_config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")
    return folder


def word_tokenizer(words: list[str], kind: Literal["clip", "siglip"], folder: Path):
    """A tokenizer that knows ``words`` (lower-cased) and the placeholder "x", with the family's special tokens."""
    if kind == "siglip":
        return sentencepiece_tokenizer(words, folder / "spiece.model")
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordLevel
    from transformers import PreTrainedTokenizerFast

    specials = ["<pad>", "<unk>", "<sot>", "<eot>"]
    vocab = {t: i for i, t in enumerate(dict.fromkeys([*specials, "x", ".", ",", *(w.lower() for w in words)]))}
    tok = Tokenizer(WordLevel(vocab, unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()  # punctuation split off
    tok.post_processor = processors.TemplateProcessing(  # [SOS] text [EOT], padded with EOT as OpenAI's HF tokenizer
        single="<sot> $A <eot>", special_tokens=[("<sot>", vocab["<sot>"]), ("<eot>", vocab["<eot>"])]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<sot>", eos_token="<eot>",
                                   pad_token="<eot>", unk_token="<unk>")  # fmt: skip


def sentencepiece_tokenizer(words: list[str], path: Path):
    """``SiglipTokenizer`` on a word-level SentencePiece model of ``words`` (pad 0, EOS 1, unknown 2, no BOS)."""
    import io

    import sentencepiece as spm
    from transformers import SiglipTokenizer

    vocab = list(dict.fromkeys(["x", "a", "photo", "of", *(w.lower() for w in words)]))
    sentences = [" ".join(vocab[i:] + vocab[:i]) for i in range(len(vocab))]  # every word, equally often
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(sentences), model_writer=model, model_type="word",
                                   vocab_size=len(vocab) + 3, hard_vocab_limit=False, pad_id=0, eos_id=1, unk_id=2,
                                   bos_id=-1, minloglevel=2)  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.getvalue())
    return SiglipTokenizer(vocab_file=str(path))


def build_random_hf(folder: str | Path, kind: Literal["clip", "siglip"], words: list[str], seed: int = 0,
                    **config: Any) -> Path:  # fmt: skip
    """A ``save_pretrained`` folder of a random ``CLIPModel`` / ``SiglipModel``; load as ``hf:<folder>``.

    ``config`` goes to ``CLIPConfig`` / ``SiglipConfig`` (``text_config`` and ``vision_config`` as dicts);
    the tokenizer knows ``words`` (others read as unknown).
    """
    import transformers

    folder = Path(folder)
    tokenizer = word_tokenizer(words, kind, folder)
    text = {"vocab_size": max(len(tokenizer), 2), **config.pop("text_config", {})}
    if kind == "clip":
        text.update(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                    pad_token_id=tokenizer.pad_token_id)  # fmt: skip
        cfg = transformers.CLIPConfig(text_config=text, **config)
        model_cls, processor = transformers.CLIPModel, transformers.CLIPImageProcessor
        side = cfg.vision_config.image_size
        proc = processor(size={"shortest_edge": side}, crop_size={"height": side, "width": side})
    else:
        text.update(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
        cfg = transformers.SiglipConfig(text_config=text, **config)
        model_cls, processor = transformers.SiglipModel, transformers.SiglipImageProcessor
        side = cfg.vision_config.image_size
        proc = processor(size={"height": side, "width": side})
    torch.manual_seed(seed)
    model = model_cls(cfg)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    proc.save_pretrained(folder)
    return folder
