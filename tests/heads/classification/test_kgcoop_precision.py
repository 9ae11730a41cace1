"""KgCoOp's official code encodes its knowledge target in fp16; this package keeps fp32 and says by how much
that differs (benchmarks/kgcoop_precision.py writes results/kgcoop_precision.md, linked from docs/baselines.md)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[3]


def load_script():
    spec = importlib.util.spec_from_file_location("kgcoop_precision", ROOT / "benchmarks" / "kgcoop_precision.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fp16_target_differs_from_the_fp32_one_by_a_small_measured_amount(tiny_clip, tmp_path):
    script = load_script()
    from aape_lightning.backbones import FrozenCLIP

    backbone = FrozenCLIP.load(str(tiny_clip), tmp_path / "cache")
    texts = [script.TEMPLATE.format(c) for c in script.CLASSES]
    t16, t32 = script.fp16_features(backbone, texts), backbone.encode_text(texts)
    assert backbone.model.text_projection.dtype == torch.float32  # the package's copy stays fp32
    assert 0 < (t16 - t32).abs().max() < 1e-2  # fp16 rounding: real, and small
    out = tmp_path / "kgcoop_precision.md"
    text = script.main(["--backbone", str(tiny_clip), "--out", str(out)])
    assert out.read_text() == text and "| max abs(loss16 - loss32), context noise 0.2 |" in text


def test_baselines_doc_links_the_measured_file():
    doc = (ROOT / "docs" / "baselines.md").read_text()
    assert "results/kgcoop_precision.md" in doc and (ROOT / "results" / "kgcoop_precision.md").is_file()
