"""The demo LM: rebuilt byte for byte by its build command; the shipped one is small and has learned."""

from __future__ import annotations

import hashlib
import inspect
from importlib import resources

import torch

from aape_lightning.demo.lm_pretrain import build_demo_lm
from aape_lightning.language import LM_REGISTRY, FrozenLM, resolve_lm


def test_build_is_byte_reproducible(tmp_path) -> None:
    kwargs = dict(scenes=60, steps=3, batch_size=4, n_layer=1, n_embd=16, n_head=2)
    a = build_demo_lm(tmp_path / "a.pt", **kwargs)
    b = build_demo_lm(tmp_path / "other_name.pt", **kwargs)
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    c = build_demo_lm(tmp_path / "c.pt", **{**kwargs, "steps": 4})
    assert c.read_bytes() != a.read_bytes()


def test_shipped_demo_lm_is_small_recorded_and_trained() -> None:
    model, tokenizer, spec = resolve_lm("demo")
    path = resources.files("aape_lightning").joinpath(LM_REGISTRY["demo"])
    payload = torch.load(str(path), weights_only=True)
    defaults = {k: v.default for k, v in inspect.signature(build_demo_lm).parameters.items() if k in payload["extra"]}
    assert {k: payload["extra"][k] for k in defaults} == defaults  # `aape demo build-lm` with defaults rebuilt it
    assert sum(p.numel() for p in model.parameters()) * 4 < 2_000_000 and spec.sha256
    lm = FrozenLM(model, tokenizer, spec)
    ids = lm.encode(["Q: What kind of image is this? A:"])[0]
    with torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([ids])).logits[0, -1]  # (V,)
    best = lm.decode([int(logits.argmax())])
    assert best in {"photo", "sketch", "satellite", "textured"}  # it learned the answer type of the question
