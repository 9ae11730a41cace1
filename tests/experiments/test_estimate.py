"""The table-hours estimate counts each run's images from its stacked configs and prices them in FLOPs per method."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from aape_lightning.errors import TableError
from aape_lightning.experiments import estimate
from aape_lightning.experiments.estimate import MethodCost
from aape_lightning.experiments.table import TableSpec

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
AAPE, AAPE_PAPER = str(CONFIGS / "classification/aape.yaml"), str(CONFIGS / "classification/aape_paper.yaml")
COOP, ZS = str(CONFIGS / "classification/coop.yaml"), str(CONFIGS / "classification/zero_shot.yaml")
FEWSHOT = str(CONFIGS / "fewshot.yaml")  # 16 shots, batch 32, 200 epochs, base2new
IMAGENET = ["--config", str(CONFIGS / "datasets/imagenet.yaml")]  # 50 epochs

# made-up prices (GFLOPs): image tower 2 per image; AAPE's logits 0.5 per image and class; CoOp's text tower
# 10 per forward and class; zero-shot's logits 0.25 per image and class
COST = {
    "aape": MethodCost(classes=12, image=2.0, per_image=0.5, per_forward=0.0, trains=True, train_s_per_epoch=1.0,
                       gflops=8.0, images_per_s=100.0),
    "coop": MethodCost(classes=12, image=2.0, per_image=0.0, per_forward=10.0, trains=True, train_s_per_epoch=3.0,
                       gflops=32.0, images_per_s=25.0),
    "zero_shot": MethodCost(classes=12, image=2.0, per_image=0.25, per_forward=0.0, trains=False,
                            train_s_per_epoch=None, gflops=5.0, images_per_s=400.0),
}  # fmt: skip
COST_SPEC = TableSpec(methods={"aape": AAPE, "coop": COOP, "zero_shot": ZS}, datasets={"DTD": []})


def test_runs_are_priced_by_their_own_classes_images_and_batches():
    # aape_paper has no cost row: it is priced as AAPE (same head class)
    spec = TableSpec(methods={"aape_paper": AAPE_PAPER, "coop": COOP, "zero_shot": ZS},
                     datasets={"DTD": [], "ImageNet": IMAGENET}, base=[FEWSHOT], seeds=[1, 2])  # fmt: skip
    got = estimate.estimate_table(spec, COST, COST_SPEC)
    # DTD: 47 classes, 1692 test images; trains on 24 base classes x 16 shots = 384 images, 12 steps of 32, 200
    # epochs. ImageNet: 1000 classes, 50000 test images; 500 x 16 = 8000 images, 250 steps, 50 epochs.
    aape_train = 200 * (384 * 2 + 3 * 24 * 384 * 0.5) + 50 * (8000 * 2 + 3 * 500 * 8000 * 0.5)
    coop_train = 200 * (384 * 2 + 3 * 24 * 12 * 10) + 50 * (8000 * 2 + 3 * 500 * 250 * 10)
    # base2new tests base and new apart, images in proportion: DTD 24/47 of 1692 = 864 over 24 classes and 828
    # over 23, in batches of 100 (9 + 9 forwards); ImageNet 25000 over 500 and 25000 over 500 (250 + 250)
    aape_rest = (864 * 24 + 828 * 23 + 25000 * 500 * 2) * 0.5
    zs_rest = (864 * 24 + 828 * 23 + 25000 * 500 * 2) * 0.25
    coop_rest = (9 * 24 + 9 * 23 + 500 * 250 * 2) * 10
    tower = (1692 + 50000) * 2  # each test set's image tower counted once for the whole table
    assert got["runs"] == 12
    assert got["train images"] == 2 * 2 * (384 * 200 + 8000 * 50)
    assert got["test images"] == 3 * 2 * (1692 + 50000)
    assert got["train gflops"] == pytest.approx(2 * (aape_train + coop_train))
    assert got["test gflops"] == pytest.approx(tower + 2 * (aape_rest + zs_rest + coop_rest))


def test_stored_views_run_the_image_tower_once_per_view_and_chains_test_every_target():
    spec = TableSpec(methods={"aape": [AAPE, "--data.feature_views", "8"]}, datasets={"DTD": []}, base=[FEWSHOT],
                     seeds=[1])  # fmt: skip
    got = estimate.estimate_table(spec, COST, COST_SPEC)
    assert got["train gflops"] == pytest.approx(8 * 384 * 2 + 200 * 3 * 24 * 384 * 0.5)
    chain = TableSpec(methods={"zero_shot": ZS}, base=[FEWSHOT], seeds=[1], layout="chain",
                      datasets={"ImageNet": ["--config", str(CONFIGS / "cross_dataset/imagenet_all_16shots.yaml")]},
                      tests={"ImageNet": [], "ImageNetA": []})  # fmt: skip
    got = estimate.estimate_table(chain, COST, COST_SPEC)
    # the source is tested over all 1000 classes at once, ImageNet-A over its 200
    assert got["test images"] == 50000 + 7500
    assert got["test gflops"] == pytest.approx((50000 + 7500) * 2 + (50000 * 1000 + 7500 * 200) * 0.25)


def test_a_training_run_without_epochs_or_a_price_is_refused():
    spec = TableSpec(methods={"aape": AAPE}, datasets={"DTD": []}, seeds=[1])
    with pytest.raises(TableError, match="trainer.max_epochs"):
        estimate.estimate_table(spec, COST, COST_SPEC)
    unpriced = TableSpec(methods={"cupl": str(CONFIGS / "classification/cupl.yaml")}, datasets={"DTD": []}, seeds=[1])
    with pytest.raises(TableError, match="cupl .*CuPLHead.* no row in the cost table"):
        estimate.estimate_table(unpriced, COST, COST_SPEC)


def test_the_file_prices_every_table_and_checks_the_model_against_the_timed_epoch(tmp_path):
    cost_csv = tmp_path / "cost.csv"
    cost = {**COST, "cupl": COST["zero_shot"], "cocoop": COST["coop"], "kgcoop": COST["coop"]}  # dg's methods
    columns = ["method", "gflops_per_image", "images_per_s", "train_s_per_epoch", *estimate.FLOP_TERMS]
    with cost_csv.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        for name, c in cost.items():
            writer.writerow([name, c.gflops, c.images_per_s, c.train_s_per_epoch or "", c.classes, c.image,
                             c.per_image, c.per_forward])  # fmt: skip
    cost_csv.with_suffix(".md").write_text("# Cost (384 images per epoch)\n\npixels to logits; a test CPU; batch 4\n")
    spec = tmp_path / "cost_spec.yaml"
    methods = "".join(f"  {m}: {CONFIGS / 'classification' / m}.yaml\n" for m in cost)
    spec.write_text(f"methods:\n{methods}datasets:\n  DTD: []\n")
    out = tmp_path / "hours.md"
    assert estimate.main(["--cost", str(cost_csv), "--cost_spec", str(spec), "--tables", "dg", "--gpu_tflops", "50",
                          "--gpu", "an assumed GPU", "--out", str(out)]) == 0  # fmt: skip
    text = out.read_text(encoding="utf-8")
    assert "a test CPU" in text and "an assumed GPU" in text and "| dg |" in text
    # the device's rate: the median over methods of GFLOPs x images/s: 800 (aape, coop, cocoop, kgcoop) or 2000;
    # AAPE's epoch of 384 images over the 12 measured classes, batch 32 (12 steps): 384 * 2 + 3 * 12 * 384 * 0.5
    model = (384 * 2 + 3 * 12 * 384 * 0.5) / 800
    assert f"| aape | 1.00 | {model:.2f} | {1.0 / model:.2f} |" in text
    with pytest.raises(SystemExit):
        estimate.main(["--cost", str(cost_csv), "--cost_spec", str(spec), "--gpu_tflops", "0", "--out", str(out)])
