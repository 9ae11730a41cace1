"""Contrastive pretraining of a small CLIP on the procedural world, so the demo runs offline.

The recipe is CLIP's: symmetric InfoNCE over a batch of image-caption pairs with a
learnable temperature, the real CLIP BPE tokenizer, a ViT image tower. Concept names are
never in image captions (``concept_rate`` 0); the text tower learns them from the world's
glossary instead (``link_weight`` times an InfoNCE between each concept's name and a partial
description of it, one concept per family in every step), so names are known by description
only, and by the kind of thing they name more than by which one. Images are
rendered once into a pool (each with several captions) and batches are drawn from it
with a seeded ``torch.Generator``; with the seed and thread count fixed the weights are
reproducible bit for bit on one machine.

Token embeddings start at zero for every token the world and the demo prompt banks
never use, and stay zero (no gradient, no decay), so ``save_clip(compact=True)``
stores only the few hundred rows that matter.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from aape_lightning.backbones.clip_loader import CLIP, CLIP_MEAN, CLIP_STD, clip, save_clip
from aape_lightning.core.losses import contrastive_loss
from aape_lightning.demo.datasets import DEMO_IMAGE_SIZE, demo_texts
from aape_lightning.demo.world import (
    CONCEPT_RATE,
    CONCEPTS,
    WORLD_VERSION,
    captions,
    family,
    gloss,
    render,
    sample_scene,
)

log = logging.getLogger(__name__)

DEMO_CLIP_CONFIG: dict[str, int] = dict(
    embed_dim=64,
    image_resolution=DEMO_IMAGE_SIZE,
    vision_layers=3,
    vision_width=64,  # heads = width / 64, as clip.model.CLIP derives them
    vision_patch_size=8,
    context_length=32,
    vocab_size=49408,  # the real CLIP tokenizer's vocabulary
    transformer_width=64,
    transformer_heads=1,
    transformer_layers=3,
)


TEMPERATURE_LR_SCALE = 10.0


@contextmanager
def _threads(n: int) -> Iterator[None]:
    """Fix the intra-op thread count (results depend on it) and restore it afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def make_pool(
    seed: int, size: int, image_size: int, captions_per_image: int, context_length: int, concept_rate: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Render ``size`` random scenes: uint8 images ``(N, 3, R, R)`` and token ids ``(N, K, L)``."""
    rng = random.Random(f"pretrain/{seed}")
    images, texts = [], []
    for _ in range(size):
        scene = sample_scene(rng)
        images.append(np.asarray(render(scene, image_size)))
        texts += captions(scene, rng, captions_per_image, concept_rate)
    pixels = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()  # (N, 3, R, R)
    tokens = clip.tokenize(texts, context_length=context_length, truncate=True)  # (N * K, L)
    return pixels, tokens.view(size, captions_per_image, context_length)


def make_glossary(seed: int, per_concept: int, context_length: int, keep: float, define: float) -> torch.Tensor:
    """Token ids ``(C, per_concept, 2, L)``: for each concept, (name or definition, description) text pairs."""
    rng = random.Random(f"glossary/{seed}")
    pairs = [gloss(name, rng, keep, define) for name in CONCEPTS for _ in range(per_concept)]
    tokens = clip.tokenize([t for pair in pairs for t in pair], context_length=context_length, truncate=True)
    return tokens.view(len(CONCEPTS), per_concept, 2, context_length)


def link_loss(model: CLIP, names: torch.Tensor, descriptions: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE between concept names ``(C, L)`` and descriptions ``(C, L)``, text only."""
    a = F.normalize(model.encode_text(names), dim=-1)  # (C, d)
    b = F.normalize(model.encode_text(descriptions), dim=-1)  # (C, d)
    return contrastive_loss(a, b, model.logit_scale.exp())


def normalise_images(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, 3, R, R)`` -> float, normalised with CLIP's mean and std."""
    mean = torch.tensor(CLIP_MEAN, device=pixels.device).view(1, 3, 1, 1)
    std = torch.tensor(CLIP_STD, device=pixels.device).view(1, 3, 1, 1)
    return (pixels.float() / 255.0 - mean) / std


def _keep_used_tokens(model: CLIP, used: torch.Tensor) -> None:
    """Zero every token embedding row outside ``used`` (ids): they never get a gradient after."""
    mask = torch.ones(model.token_embedding.num_embeddings, dtype=torch.bool)
    mask[used] = False
    with torch.no_grad():
        model.token_embedding.weight[mask] = 0.0


def _optimizers(model: CLIP, lr: float, weight_decay: float) -> list[torch.optim.Optimizer]:
    """AdamW without decay on gains, biases, embeddings and temperature (CLIP's practice).

    The token table gets sparse gradients and a lazy Adam: only the rows in the batch move,
    so 49408 rows cost nothing per step and unused rows stay exactly zero.
    """
    model.token_embedding.sparse = True
    decay, rest = [], []
    for name, p in model.named_parameters():
        if p is not model.token_embedding.weight and p is not model.logit_scale:
            (rest if p.ndim < 2 or "embedding" in name else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": rest, "weight_decay": 0.0},
        # a short run would leave the temperature near its initial 14: let it move faster
        {"params": [model.logit_scale], "weight_decay": 0.0, "lr": lr * TEMPERATURE_LR_SCALE},
    ]
    dense = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.98), eps=1e-6)
    sparse = torch.optim.SparseAdam([model.token_embedding.weight], lr=lr, betas=(0.9, 0.98), eps=1e-6)
    return [dense, sparse]


def _warmup_cosine(warmup: int, steps: int):
    """Learning-rate factor: linear warm-up, then cosine decay to zero."""
    return lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps)))


def clip_loss(model: CLIP, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE between a batch of images and their captions."""
    img = F.normalize(model.encode_image(images), dim=-1)  # (B, d)
    txt = F.normalize(model.encode_text(tokens), dim=-1)  # (B, d)
    return contrastive_loss(img, txt, model.logit_scale.exp())


def build_demo_clip(
    out_path: str | Path,
    seed: int = 0,
    steps: int = 2000,
    batch_size: int = 128,
    image_size: int = DEMO_IMAGE_SIZE,
    pool_size: int = 16000,
    captions_per_image: int = 4,
    lr: float = 2e-3,
    weight_decay: float = 0.1,
    warmup: int = 150,
    concept_rate: float = CONCEPT_RATE,
    link_weight: float = 0.5,
    gloss_keep: float = 0.2,
    gloss_define: float = 0.5,
    glossary_size: int = 200,
    num_threads: int = 1,
    **config_overrides: int,
) -> Path:
    """Pretrain the demo CLIP and write it with ``save_clip`` (compact); return the path.

    ``link_weight`` weighs the text-only name-description loss (0: concept names are never
    learned); ``gloss_keep`` is the chance a glossary description states each attribute; ``gloss_define``
    the share of glossary pairs whose first text is a definition (name and look) instead of the name;
    ``glossary_size`` is the number of (name, description) pairs per concept.
    ``config_overrides`` change the architecture (keys of ``DEMO_CLIP_CONFIG``).
    """
    config = {**DEMO_CLIP_CONFIG, "image_resolution": image_size, **config_overrides}
    with _threads(num_threads):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        start = time.perf_counter()
        length = config["context_length"]
        pixels, tokens = make_pool(seed, pool_size, image_size, captions_per_image, length, concept_rate)
        log.info("rendered %d scenes in %.1fs", pool_size, time.perf_counter() - start)
        glossary = make_glossary(seed, glossary_size, length, gloss_keep, gloss_define)  # (C, G, 2, L)
        model = CLIP(**config).float().train()
        extra_tokens = clip.tokenize(demo_texts(), context_length=length, truncate=True)
        used = torch.cat([tokens.flatten(), glossary.flatten(), extra_tokens.flatten()]).unique()
        _keep_used_tokens(model, used)
        families = sorted({family(n) for n in CONCEPTS})
        members = [torch.tensor([i for i, n in enumerate(CONCEPTS) if family(n) == f]) for f in families]
        optimizers = _optimizers(model, lr, weight_decay)
        schedules = [torch.optim.lr_scheduler.LambdaLR(opt, _warmup_cosine(warmup, steps)) for opt in optimizers]
        start = time.perf_counter()
        for step in range(steps):
            idx = torch.randint(pool_size, (batch_size,), generator=gen)  # (B,)
            which = torch.randint(captions_per_image, (batch_size,), generator=gen)  # (B,)
            loss = clip_loss(model, normalise_images(pixels[idx]), tokens[idx, which])
            if link_weight > 0:  # one concept per family: siblings never compete, so names learn the kind
                concepts = torch.stack([m[torch.randint(len(m), (1,), generator=gen)][0] for m in members])  # (F,)
                pick = torch.randint(glossary_size, (len(concepts),), generator=gen)  # (F,)
                pairs = glossary[concepts, pick]  # (F, 2, L)
                loss = loss + link_weight * link_loss(model, pairs[:, 0], pairs[:, 1])
            for opt in optimizers:
                opt.zero_grad(set_to_none=True)
            loss.backward()
            for opt, schedule in zip(optimizers, schedules):
                opt.step()
                schedule.step()
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))
            if step % 100 == 0 or step == steps - 1:
                log.info("step %d/%d loss %.3f tau %.1f (%.0fs)", step, steps, loss.item(),
                         model.logit_scale.exp().item(), time.perf_counter() - start)  # fmt: skip
        seconds = time.perf_counter() - start
    extra: dict[str, Any] = {
        "world_version": WORLD_VERSION,
        "seed": seed,
        "steps": steps,
        "batch_size": batch_size,
        "pool_size": pool_size,
        "captions_per_image": captions_per_image,
        "lr": lr,
        "weight_decay": weight_decay,
        "warmup": warmup,
        "concept_rate": concept_rate,
        "link_weight": link_weight,
        "gloss_keep": gloss_keep,
        "gloss_define": gloss_define,
        "glossary_size": glossary_size,
        "num_threads": num_threads,
    }
    log.info("pretrained the demo CLIP in %.0fs", seconds)
    model.token_embedding.sparse = False
    return save_clip(model.eval(), out_path, config, extra=extra, compact=True)
