"""``aape explain``: the aggregator's attention on each image's reference prompts, drawn and saved."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from aape_lightning.cli import main
from aape_lightning.tasks.checkpoint import load_task

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def fit(tmp_path, tiny_clip, tiny_dataset, method: str) -> Path:
    args = ["fit", "--config", str(CONFIGS / "fewshot.yaml"), "--config", str(CONFIGS / f"classification/{method}.yaml"),
            "--model.backbone", str(tiny_clip), "--data.reader.root", str(tiny_dataset), "--data.shots", "2",
            "--data.num_workers", "0", "--trainer.max_epochs", "1", "--trainer.accelerator", "cpu",
            "--trainer.precision", "32-true", "--trainer.enable_progress_bar", "false",
            "--trainer.default_root_dir", str(tmp_path / method)]  # fmt: skip
    assert main(args) == 0
    return next((tmp_path / method).rglob("*.ckpt"))


def test_explain_draws_each_images_class_prompts_with_the_aggregators_weights(tmp_path, tiny_clip, tiny_dataset,
                                                                               cache_dir):  # fmt: skip
    ckpt = fit(tmp_path, tiny_clip, tiny_dataset, "aape")
    images = tmp_path / "images"
    (images / "blue_triangle").mkdir(parents=True)
    (images / "blue_triangle" / "a.png").write_bytes((tiny_dataset / "images/blue_triangle/0.png").read_bytes())
    (images / "unsorted.png").write_bytes((tiny_dataset / "images/red_square/1.png").read_bytes())
    assert main(["explain", "--ckpt_path", str(ckpt), "--images", str(images), "--out", str(tmp_path / "out"),
                 "--top", "1"]) == 0  # fmt: skip
    records = {Path(r["image"]).name: r for r in json.loads((tmp_path / "out" / "attention.json").read_text())}
    folder = records["a.png"]
    bank = json.loads((tiny_dataset / "prompts.json").read_text())
    assert folder["class"] == "blue triangle" and folder["class_from"] == "its folder"
    assert folder["prompts"] == bank["blue triangle"]
    assert records["unsorted.png"]["class_from"] == "predicted" and records["unsorted.png"]["class"] in bank
    # the weights are the trained aggregator's: recompute them from the checkpoint
    task = load_task(ckpt)
    from PIL import Image

    from aape_lightning.data.transforms import clip_transform

    bb = task.backbone
    pixels = clip_transform(bb.image_resolution, bb.image_mean, bb.image_std)(Image.open(folder["image"]))
    feature = bb.encode_image(pixels.unsqueeze(0))
    prompts = bb.text_features(folder["prompts"]).unsqueeze(0)
    expected = task.head.core.aggregator.attention(feature, prompts, torch.ones(prompts.shape[:2], dtype=torch.bool))
    assert folder["weights"] == pytest.approx(expected[0].tolist(), abs=1e-5)
    assert 0 < sum(folder["weights"]) <= 1
    assert (tmp_path / "out" / "blue_triangle" / "a.png").stat().st_size > 0
    assert (tmp_path / "out" / "unsorted.png").stat().st_size > 0


def test_explain_refuses_a_head_without_an_attention_aggregator(tmp_path, tiny_clip, tiny_dataset, cache_dir, capsys):
    ckpt = fit(tmp_path, tiny_clip, tiny_dataset, "coop")
    assert main(["explain", "--ckpt_path", str(ckpt), "--images", str(tiny_dataset / "images")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("aape: error:") and "no attention aggregator" in err[-1] and "aape.yaml" in err[-1]
