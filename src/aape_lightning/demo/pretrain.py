"""Contrastive pretraining of a small CLIP on the procedural world, so the demo runs offline.

The recipe is CLIP's: symmetric InfoNCE over a batch of image-caption pairs with a
learnable temperature, the real CLIP BPE tokenizer, a ViT image tower. Images are
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
from aape_lightning.demo.datasets import DEMO_IMAGE_SIZE, demo_texts
from aape_lightning.demo.world import CONCEPT_RATE, WORLD_VERSION, captions, render, sample_scene

log = logging.getLogger(__name__)

DEMO_CLIP_CONFIG: dict[str, int] = dict(
    embed_dim=128,
    image_resolution=DEMO_IMAGE_SIZE,
    vision_layers=3,
    vision_width=128,  # heads = width / 64, as clip.model.CLIP derives them
    vision_patch_size=8,
    context_length=32,
    vocab_size=49408,  # the real CLIP tokenizer's vocabulary
    transformer_width=128,
    transformer_heads=2,
    transformer_layers=3,
)


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


def _optimizer(model: CLIP, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW; no decay on gains, biases, embeddings and the temperature (CLIP's practice)."""
    decay, rest = [], []
    for name, p in model.named_parameters():
        (rest if p.ndim < 2 or "embedding" in name or "logit_scale" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.98), eps=1e-6)


def clip_loss(model: CLIP, images: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE between a batch of images and their captions."""
    img = F.normalize(model.encode_image(images), dim=-1)  # (B, d)
    txt = F.normalize(model.encode_text(tokens), dim=-1)  # (B, d)
    logits = model.logit_scale.exp() * img @ txt.t()  # (B, B)
    target = torch.arange(len(img), device=img.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target))


def build_demo_clip(
    out_path: str | Path,
    seed: int = 0,
    steps: int = 3000,
    batch_size: int = 128,
    image_size: int = DEMO_IMAGE_SIZE,
    pool_size: int = 16000,
    captions_per_image: int = 4,
    lr: float = 1e-3,
    weight_decay: float = 0.1,
    warmup: int = 150,
    concept_rate: float = CONCEPT_RATE,
    num_threads: int = 2,
    **config_overrides: int,
) -> Path:
    """Pretrain the demo CLIP and write it with ``save_clip`` (compact); return the path.

    ``config_overrides`` change the architecture (keys of ``DEMO_CLIP_CONFIG``).
    """
    config = {**DEMO_CLIP_CONFIG, "image_resolution": image_size, **config_overrides}
    with _threads(num_threads):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        start = time.perf_counter()
        pixels, tokens = make_pool(seed, pool_size, image_size, captions_per_image, config["context_length"], concept_rate)
        log.info("rendered %d scenes x %d captions in %.1fs", pool_size, captions_per_image, time.perf_counter() - start)
        model = CLIP(**config).float().train()
        extra_tokens = clip.tokenize(demo_texts(), context_length=config["context_length"], truncate=True)
        _keep_used_tokens(model, torch.cat([tokens.flatten(), extra_tokens.flatten()]).unique())
        opt = _optimizer(model, lr, weight_decay)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / steps)))
        )
        start = time.perf_counter()
        for step in range(steps):
            idx = torch.randint(pool_size, (batch_size,), generator=gen)  # (B,)
            which = torch.randint(captions_per_image, (batch_size,), generator=gen)  # (B,)
            loss = clip_loss(model, normalise_images(pixels[idx]), tokens[idx, which])
            opt.zero_grad(set_to_none=True)
            loss.backward()
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
        "concept_rate": concept_rate,
    }
    log.info("pretrained the demo CLIP in %.0fs", seconds)
    return save_clip(model.eval(), out_path, config, extra=extra, compact=True)
