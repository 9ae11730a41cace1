"""The cost table: parameters, library-counted FLOPs, side-by-side images/s and epoch time per method."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from aape_lightning.experiments.table import TableSpec, run_table

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def test_cost_table_counts_what_each_method_trains_and_costs(tmp_path, tiny_clip, tiny_dataset, cache_dir):
    spec = TableSpec(
        methods={"zero_shot": str(CONFIGS / "classification/zero_shot.yaml"),
                 "coop": [str(CONFIGS / "classification/coop.yaml"), "--model.head.context.n_ctx", "4"],
                 "aape": str(CONFIGS / "classification/aape.yaml")},
        base=[str(CONFIGS / "fewshot.yaml")], datasets={"Tiny": ["--data.reader.root", str(tiny_dataset)]},
        seeds=[1], output=str(tmp_path / "cost"), results=str(tmp_path / "results"), name="cost", layout="cost",
        backbone=str(tiny_clip), cost={"batch": 4, "repeats": 2},
        extra_args=["--trainer.accelerator", "cpu", "--trainer.precision", "32-true", "--data.num_workers", "0",
                    "--data.shots", "2", "--trainer.enable_progress_bar", "false"],
        published={"AAPE": {"parameters used at inference": 82000, "train min total (V100)": 41.92}},
    )  # fmt: skip
    table, _ = run_table(spec)
    rows = {r["method"]: r for r in csv.DictReader((tmp_path / "results" / "cost.csv").open())}
    assert rows["zero_shot"]["trained_parameters"] == "0" and rows["zero_shot"]["train_s_per_epoch"] == ""
    # CoOp trains its 4 context vectors of the text tower's token width (64 in the tiny CLIP)
    assert rows["coop"]["trained_parameters"] == rows["coop"]["inference_parameters"] == str(4 * 64)
    assert rows["zero_shot"]["inference_parameters"] == "0"
    # AAPE's aggregator trains but its test-time class features, cached by the fit's test, must not break the count
    assert 0 < int(rows["aape"]["inference_parameters"]) < int(rows["aape"]["trained_parameters"])
    assert float(rows["coop"]["train_s_per_epoch"]) > 0
    # FLOPs come from PyTorch's counter: zero-shot's class features are cached, CoOp runs the text tower
    # with its learned context at every forward, on top of the same image encoder
    zs, coop = float(rows["zero_shot"]["gflops_per_image"]), float(rows["coop"]["gflops_per_image"])
    assert 0 < zs < coop
    assert all(len(r["batch_seconds"].split()) == 2 for r in rows.values())  # both timed in each turn
    # the split the hours estimate prices other datasets with: zero-shot's cached class features leave the
    # logits only, 2 * d FLOPs per image and class (d: the tiny CLIP's embedding width, read from the backbone)
    from aape_lightning.backbones.load import load_backbone

    d = load_backbone(str(tiny_clip)).embed_dim
    terms = {m: {k: float(r[k]) for k in ("classes", "image_gflops", "class_gflops_per_image",
                                         "class_gflops_per_forward")} for m, r in rows.items()}  # fmt: skip
    assert terms["zero_shot"]["class_gflops_per_image"] * 1e9 == pytest.approx(2 * d, rel=1e-4)
    assert terms["zero_shot"]["class_gflops_per_forward"] == pytest.approx(0, abs=1e-9)
    assert terms["zero_shot"]["image_gflops"] == pytest.approx(terms["coop"]["image_gflops"])  # one image tower
    assert terms["coop"]["class_gflops_per_forward"] > 1e3 * terms["coop"]["class_gflops_per_image"]  # text tower
    for r, t in zip(rows.values(), terms.values()):  # the terms add back up to the measured batch of 4
        k = t["classes"]
        assert t["image_gflops"] + k * (t["class_gflops_per_image"] + t["class_gflops_per_forward"] / 4) == \
            pytest.approx(float(r["gflops_per_image"]), rel=1e-5)  # fmt: skip
    assert "| zero_shot | **0** |" in table
    assert "| method | trained parameters | parameters used at inference | GFLOPs / image |" in table
    assert "| AAPE (published, ViT-B/16) | — | 82,000 | — | — | — | 41.92 |" in table
    assert (tmp_path / "results" / "cost.md").read_text().strip() == table.strip()


def test_aape_uses_h_and_g_at_inference_not_the_aggregator(tiny_clip, cache_dir):
    """The paper's 82k counts what AAPE keeps at inference (h and g); the aggregator trains but is not used."""
    import torch

    from aape_lightning.experiments.cost import inference_parameters, trained_parameters
    from aape_lightning.heads import AAPEHead, ZeroShotHead
    from aape_lightning.tasks.classification import ClassificationTask

    def count(module):
        return sum(p.numel() for p in module.parameters())

    task = ClassificationTask(backbone=str(tiny_clip), head=AAPEHead, cache_dir=str(cache_dir))
    task.head.set_classes("all", ["red square", "green circle", "sea lion"], "a photo of a {}.")
    res = task.backbone.image_resolution
    images = torch.randn(2, 3, res, res, generator=torch.Generator().manual_seed(0))
    head = task.head
    assert count(head.core.aggregator) > 0
    assert trained_parameters(task) == count(head.core.aggregator) + count(head.core.generator) + count(head.concat)
    assert inference_parameters(task.train(), images, "all") == count(head.core.generator) + count(head.concat)
    assert task.training  # the mode it was called in is restored
    zero_shot = ClassificationTask(backbone=str(tiny_clip), head=ZeroShotHead, cache_dir=str(cache_dir))
    zero_shot.head.set_classes("all", ["red square"], "a photo of a {}.")
    assert inference_parameters(zero_shot, images, "all") == 0


def test_cost_table_puts_architectures_of_several_libraries_side_by_side(tmp_path, tiny_dataset, cache_dir, monkeypatch):
    """The ViT-B/16 entries, shrunk to tiny sizes: one row per method and architecture, each on its own backbone."""
    from aape_lightning.backbones import TINY_CONFIG, random_families
    from aape_lightning.experiments import cost

    monkeypatch.setitem(cost.RANDOM_ARCHITECTURES, "ViT-B/16", TINY_CONFIG)
    tiny = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2}
    monkeypatch.setitem(random_families.HF_VIT_B16, "siglip", {"text_config": {**tiny, "max_position_embeddings": 24},
                                                              "vision_config": {**tiny, "image_size": 32, "patch_size": 8}})  # fmt: skip
    spec = TableSpec(
        methods={"zero_shot": str(CONFIGS / "classification/zero_shot.yaml")}, base=[str(CONFIGS / "fewshot.yaml")],
        datasets={"Tiny": ["--data.reader.root", str(tiny_dataset)]}, seeds=[1], output=str(tmp_path / "cost"),
        results=str(tmp_path / "results"), name="cost", layout="cost",
        cost={"batch": 2, "repeats": 1, "architecture": "ViT-B/16, hf:siglip-base-patch16-224"},
        extra_args=["--trainer.accelerator", "cpu", "--data.num_workers", "0", "--data.shots", "1",
                    "--data.eval_batch_size", "2", "--trainer.enable_progress_bar", "false"],
    )  # fmt: skip
    run_table(spec)
    rows = {r["method"]: r for r in csv.DictReader((tmp_path / "results" / "cost.csv").open())}
    assert set(rows) == {"zero_shot (ViT-B/16)", "zero_shot (hf:siglip-base-patch16-224)"}
    assert all(float(r["gflops_per_image"]) > 0 for r in rows.values())
    assert (tmp_path / "cost" / "random_hf_siglip-base-patch16-224" / "config.json").is_file()
