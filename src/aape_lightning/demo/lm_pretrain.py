"""Pretraining of the small demo LM on the demo world's text, so captioning and VQA run offline.

The text is what the world says about random scenes: captions (as in ``captions.json``) and
runs of 1-5 "Q: question A: answer" pairs (the VQA prompt format, several pairs as in K-shot
prompts); no images. The tokenizer is word-level (``tokenizers``), its vocabulary every word of
that text, so nothing is downloaded. Seeded, on a fixed thread count, the file is the same
bytes on every rebuild on one machine.
"""

from __future__ import annotations

import logging
import math
import random
import time
from pathlib import Path

import torch

from aape_lightning.demo.pretrain import _threads
from aape_lightning.demo.world import WORLD_VERSION, captions, questions, sample_scene
from aape_lightning.language.frozen_lm import save_lm

log = logging.getLogger(__name__)

SPECIALS = ["[PAD]", "[UNK]", "[EOS]"]
DEMO_LM_CONFIG: dict[str, int] = dict(n_layer=2, n_embd=64, n_head=4, n_positions=128)


def world_documents(seed: int, scenes: int) -> list[str]:
    """Captions and Q/A runs about ``scenes`` random scenes (the rng never meets the demo data's seeds)."""
    rng = random.Random(f"lm/{seed}")
    docs, qa = [], []
    for _ in range(scenes):
        scene = sample_scene(rng, clutter=(1, 2))
        docs += captions(scene, rng, 2)
        qa += [f"Q: {q} A: {rng.choice(a)}" for q, a in questions(scene, rng, 3)]
    rng.shuffle(qa)
    while qa:
        n = rng.randint(1, 5)
        docs.append(" ".join(qa[:n]))
        qa = qa[n:]
    rng.shuffle(docs)
    return docs


def word_tokenizer(texts: list[str]):
    """A lower-cased word-level fast tokenizer whose vocabulary is every word of ``texts`` (sorted)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    pre = pre_tokenizers.Whitespace()
    words = sorted({w for t in texts for w, _ in pre.pre_tokenize_str(t.lower())})
    vocab = {w: i for i, w in enumerate(SPECIALS + words)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.normalizer, tok.pre_tokenizer = normalizers.Lowercase(), pre
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="[EOS]", pad_token="[PAD]", unk_token="[UNK]")


def build_demo_lm(
    out_path: str | Path,
    seed: int = 0,
    scenes: int = 3000,
    steps: int = 600,
    batch_size: int = 32,
    lr: float = 3e-3,
    warmup: int = 100,
    num_threads: int = 1,
    **config_overrides: int,
) -> Path:
    """Train a GPT-2 of ``DEMO_LM_CONFIG`` (``steps=0``: random weights, for tests) and write it with ``save_lm``."""
    from transformers import GPT2Config, GPT2LMHeadModel

    with _threads(num_threads):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        docs = world_documents(seed, scenes)
        tokenizer = word_tokenizer(docs)
        config = GPT2Config(vocab_size=len(tokenizer), bos_token_id=tokenizer.eos_token_id,
                            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                            loss_type="ForCausalLM", **{**DEMO_LM_CONFIG, **config_overrides})  # fmt: skip
        model = GPT2LMHeadModel(config).train()
        ids = [x + [tokenizer.eos_token_id] for x in tokenizer(docs, add_special_tokens=False)["input_ids"]]
        ids = [x[: config.n_positions] for x in ids]
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(steps, 1))))
        )
        start = time.perf_counter()
        for step in range(steps):
            pick = torch.randint(len(ids), (batch_size,), generator=gen).tolist()
            length = max(len(ids[i]) for i in pick)
            batch = torch.full((batch_size, length), tokenizer.pad_token_id)  # (B, L)
            labels = torch.full((batch_size, length), -100)  # (B, L)
            for row, i in enumerate(pick):
                batch[row, : len(ids[i])] = labels[row, : len(ids[i])] = torch.tensor(ids[i])
            loss = model(input_ids=batch, attention_mask=(labels != -100).long(), labels=labels).loss
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
            if step % 100 == 0 or step == steps - 1:
                log.info("step %d/%d loss %.3f (%.0fs)", step, steps, loss.item(), time.perf_counter() - start)
    extra = {"world_version": WORLD_VERSION, "seed": seed, "scenes": scenes, "steps": steps, "batch_size": batch_size,
             "lr": lr, "warmup": warmup, "num_threads": num_threads}  # fmt: skip
    return save_lm(model.eval(), tokenizer, out_path, extra)
