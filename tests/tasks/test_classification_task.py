"""The task's metrics against a direct computation, and the frozen backbone under Lightning."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from aape_lightning.data import ClassificationDataModule, CoOpSplitReader
from aape_lightning.data.image_dataset import ImageDataset
from aape_lightning.heads import ZeroShotHead
from aape_lightning.tasks import ClassificationTask


def datamodule(root, **kw):
    return ClassificationDataModule(CoOpSplitReader(str(root)), shots=4, batch_size=8, eval_batch_size=5,
                                    num_workers=0, **kw)


def trainer(tmp_path, **kw):
    return L.Trainer(accelerator="cpu", default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                     enable_model_summary=False, **kw)


def test_zero_shot_test_metrics_match_direct_computation(tiny_clip, tiny_dataset, tmp_path, cache_dir):
    model = ClassificationTask(backbone=str(tiny_clip), head=ZeroShotHead)
    dm = datamodule(tiny_dataset)
    trainer(tmp_path).test(model, dm)
    got = model.test_results
    backbone = model.backbone
    expected = {}
    for name in ("base", "new"):
        items = dm.datasets["test"][name]
        ds = ImageDataset(items, dm._transform(augment=False))
        images = torch.stack([ds[i]["image"] for i in range(len(ds))])
        labels = torch.tensor([it.label for it in items])
        text = backbone.encode_text([f"a photo of a {c}." for c in dm.class_sets[name]])
        pred = (backbone.encode_image(images) @ text.t()).argmax(-1)
        expected[name] = (pred == labels).float().mean().item() * 100
    assert got["base"] == pytest.approx(expected["base"], abs=1e-4)
    assert got["new"] == pytest.approx(expected["new"], abs=1e-4)
    b, n = expected["base"], expected["new"]
    assert got["H"] == pytest.approx(2 * b * n / (b + n), abs=1e-4)  # H by its formula, not by harmonic_mean


def test_protocol_all_uses_one_class_set(tiny_clip, tiny_dataset, tmp_path, cache_dir):
    model = ClassificationTask(backbone=str(tiny_clip), head=ZeroShotHead)
    trainer(tmp_path).test(model, datamodule(tiny_dataset, protocol="all"))
    assert set(model.test_results) == {"all"}
    assert model.hparams.class_sets["all"][0] == "red square"


def test_fit_keeps_clip_frozen_and_in_eval_mode(tiny_clip, tiny_dataset, tmp_path, cache_dir):
    model = ClassificationTask(backbone=str(tiny_clip))
    before = {k: v.clone() for k, v in model.backbone.model.state_dict().items()}
    trainer(tmp_path, max_epochs=1, precision="bf16-mixed").fit(model, datamodule(tiny_dataset))
    assert not model.backbone.model.training
    for k, v in model.backbone.model.state_dict().items():
        assert torch.equal(v, before[k]), k
        assert v.dtype == before[k].dtype
    assert all(p.dtype == torch.float32 for p in model.trainable_parameters())


def test_zero_shot_head_refuses_fit(tiny_clip, tiny_dataset, tmp_path, cache_dir):
    model = ClassificationTask(backbone=str(tiny_clip), head=ZeroShotHead)
    with pytest.raises(ValueError, match="nothing to train"):
        trainer(tmp_path, max_epochs=1).fit(model, datamodule(tiny_dataset))


@pytest.mark.gpu
def test_fp16_mixed_fit_on_gpu_stays_finite(tiny_clip, tiny_dataset, tmp_path, cache_dir):
    model = ClassificationTask(backbone=str(tiny_clip))
    t = L.Trainer(accelerator="gpu", devices=1, precision="16-mixed", max_epochs=2, default_root_dir=tmp_path,
                  logger=False, enable_progress_bar=False)
    t.fit(model, datamodule(tiny_dataset))
    assert torch.isfinite(t.callback_metrics["train/loss"])
    assert all(torch.isfinite(p).all() and p.dtype == torch.float32 for p in model.trainable_parameters())


def test_cross_protocol_tests_a_trained_model_on_other_classes(tiny_clip, tiny_dataset, tmp_path, cache_dir):
    from tiny_world import make_coop_dataset

    model = ClassificationTask(backbone=str(tiny_clip))
    trainer(tmp_path, max_epochs=1).fit(model, datamodule(tiny_dataset, protocol="all"))
    other = make_coop_dataset(tmp_path / "Other", classes=["red circle", "green square", "blue square"])
    seen, set_classes = {}, model.head.set_classes

    def record(name, names, template):
        seen[name] = template
        set_classes(name, names, template)

    model.head.set_classes = record
    sketch = ClassificationDataModule(CoOpSplitReader(str(other), template="a sketch of a {}."), shots=4, batch_size=8,
                                      eval_batch_size=5, num_workers=0, protocol="cross")
    trainer(tmp_path).test(model, sketch)
    assert set(model.test_results) == {"cross:Other", "cross:Other_shuffled"}  # AAPE reports the shuffle test
    # the target's classes read the target's template; the trained ones keep the training template
    assert seen == {"all": "a photo of a {}.", "cross:Other": "a sketch of a {}."}
    assert model.hparams.template == "a photo of a {}."
    assert model.hparams.class_sets["all"][0] == "red square"  # the trained classes are kept
    with pytest.raises(Exception, match="protocol 'cross' only evaluates"):
        trainer(tmp_path, max_epochs=1).fit(ClassificationTask(backbone=str(tiny_clip)), datamodule(other, protocol="cross"))


@pytest.mark.parametrize("mode", ["fail", "skip"])
def test_unreadable_test_image_fails_or_is_skipped_and_counted(tiny_clip, tiny_dataset, tmp_path, cache_dir, mode):
    import shutil

    from aape_lightning.errors import DataError

    data = shutil.copytree(tiny_dataset, tmp_path / "Tiny")
    dm = datamodule(data, on_bad_image=mode)
    dm.reader.read()
    bad = data / "images" / "red_square" / "15.png"  # a test image of a base class
    bad.write_bytes(bad.read_bytes()[:40])  # truncated
    model = ClassificationTask(backbone=str(tiny_clip), head=ZeroShotHead)
    if mode == "fail":
        with pytest.raises(DataError, match=f"cannot read image {bad}.*on_bad_image=skip"):
            trainer(tmp_path).test(model, dm)
        return
    results = trainer(tmp_path).test(model, dm, verbose=False)
    assert sum(v for r in results for k, v in r.items() if "skipped_images" in k) == 1
    assert set(model.test_results) == {"base", "new", "H"}


def test_the_core_is_the_tasks_option_and_reaches_only_heads_that_read_it(tiny_clip, tiny_dataset, tmp_path, capsys,
                                                                           cache_dir):
    """``model.core`` (as in every task) builds AAPEHead's core; another head builds none; ``model.head.core`` is no key."""
    from functools import partial

    import yaml

    from aape_lightning.cli import main
    from aape_lightning.core import AAPECore
    from cli_helpers import write_config

    aape = ClassificationTask(backbone=str(tiny_clip), core=partial(AAPECore, distill_weight=2.0))
    assert aape.head.core.distill_weight == 2.0
    assert not any("core" in name for name, _ in ClassificationTask(backbone=str(tiny_clip), head=ZeroShotHead).named_modules())
    config = write_config(tmp_path / "c.yaml", tiny_clip, tiny_dataset, tmp_path / "runs")
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", str(config), "--model.core.distill_weight", "3", "--print_config"])
    assert done.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)["model"]["init_args"]
    assert printed["core"]["init_args"]["distill_weight"] == 3.0 and "core" not in (printed["head"].get("init_args") or {})
    assert main(["fit", "--config", str(config), "--model.head.core.distill_weight", "3"]) == 2
    assert capsys.readouterr().err == ("aape: error: command line: '--model.head.core.distill_weight' moved: use "
                                       "model.core.distill_weight instead (one key for every task)\n")
