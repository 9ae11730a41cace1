"""The demo CLIP: a short pretraining run is loadable and reproducible; the shipped one has learned."""

from __future__ import annotations

from pathlib import Path

import torch

from aape_lightning.backbones import FrozenCLIP
from aape_lightning.demo.pretrain import build_demo_clip
from aape_lightning.demo.probe import demo_test_set, probe_world

TINY = dict(steps=4, batch_size=8, pool_size=16, image_size=32, embed_dim=64, vision_layers=1, transformer_layers=1)


def test_short_run_loads_and_is_deterministic(tmp_path: Path) -> None:
    a = build_demo_clip(tmp_path / "a.pt", seed=0, **TINY)
    b = build_demo_clip(tmp_path / "b.pt", seed=0, **TINY)
    c = build_demo_clip(tmp_path / "c.pt", seed=1, **TINY)
    states = [torch.load(p, weights_only=True) for p in (a, b, c)]
    assert states[0]["extra"]["seed"] == 0 and states[0]["extra"]["steps"] == 4
    assert "world_version" in states[0]["extra"]
    for key, value in states[0]["state_dict"].items():
        assert torch.equal(value, states[1]["state_dict"][key]), key
    assert not all(torch.equal(v, states[2]["state_dict"][k]) for k, v in states[0]["state_dict"].items())
    model = FrozenCLIP.load(str(a))
    assert model.image_resolution == 32
    feats = model.encode_text(["a photo of a stop sign.", "a red hexagon."])  # (2, d)
    assert feats.shape == (2, 64) and torch.allclose(feats.norm(dim=-1), torch.ones(2))
    assert model.encode_image(torch.zeros(2, 3, 32, 32)).shape == (2, 64)


def test_compact_storage_is_lossless(tmp_path: Path) -> None:
    path = build_demo_clip(tmp_path / "a.pt", **TINY)
    payload = torch.load(path, weights_only=True)
    assert "token_embedding.weight" not in payload["state_dict"]
    rows = payload["state_dict"]["token_embedding.weight.rows"]
    assert 50 < len(rows) < 2000
    table = FrozenCLIP.load(str(path)).model.token_embedding.weight  # (vocab, width)
    assert table.shape[0] == 49408
    assert torch.equal(table[rows], payload["state_dict"]["token_embedding.weight.values"])
    assert int((table.abs().sum(1) > 0).sum()) == len(rows)


def test_link_weight_teaches_the_text_tower_names(tmp_path: Path) -> None:
    runs = {w: build_demo_clip(tmp_path / f"{w}.pt", link_weight=w, **TINY) for w in (0.0, 1.0)}
    states = {w: torch.load(p, weights_only=True) for w, p in runs.items()}
    assert states[1.0]["extra"]["link_weight"] == 1.0
    differs = [k for k, v in states[0.0]["state_dict"].items() if not torch.equal(v, states[1.0]["state_dict"][k])]
    assert any(k.startswith("transformer.") for k in differs)  # the text-only loss reached the text tower


def test_shipped_demo_clip_knows_concepts_by_description(tmp_path: Path) -> None:
    """The premise of the demo world, on the shipped CLIP: prompts know what the concept names do not."""
    model = FrozenCLIP.load("demo")
    assert model.spec.name == "demo" and Path(model.spec.path).stat().st_size < 8e6
    for name in ("DemoShapes", "DemoSatellite"):
        for row in probe_world(model, demo_test_set(model, name, tmp_path)):
            assert row["concepts"] >= 2
            assert row["prompts"] > 3 * row["chance"]  # the looks were learned from images
            assert row["prompts_concepts"] > row["template_concepts"] + 10, row  # names are known by description only
            assert row["retrieval"] > 2 * row["chance"], row  # ...and the text tower links them
