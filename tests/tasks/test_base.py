"""What every task shares (tasks/base.py): the loss sum and its logging, the schedule, checkpoint identity."""

from __future__ import annotations

import math
from functools import partial

import lightning as L
import pytest
import torch

from aape_lightning.core import AAPECore
from aape_lightning.data import ClassificationDataModule, CoOpSplitReader
from aape_lightning.errors import CheckpointMismatchError
from aape_lightning.heads import AAPEHead, ZeroShotHead
from aape_lightning.tasks import ClassificationTask
from aape_lightning.tasks.base import FrozenBackboneTask
from aape_lightning.tasks.optim import OptimSchedule


def datamodule(root, **kw) -> ClassificationDataModule:
    kw = {"shots": 4, "batch_size": 8, "eval_batch_size": 5, "num_workers": 0, "augment": False, **kw}
    return ClassificationDataModule(CoOpSplitReader(str(root)), **kw)


def first_step(tiny_clip, tiny_dataset, tmp_path, optim=OptimSchedule(), **core) -> tuple[dict, dict, ClassificationTask]:
    """Logged metrics of one training step of the AAPE head (same seed and data), the head's state before it, the model."""
    L.seed_everything(0)
    model = ClassificationTask(backbone=str(tiny_clip), head=AAPEHead, core=partial(AAPECore, **core), optim=optim)
    before = {k: v.clone() for k, v in model.head.state_dict().items()}
    trainer = L.Trainer(accelerator="cpu", max_steps=1, logger=False, enable_progress_bar=False,
                        enable_model_summary=False, enable_checkpointing=False, limit_val_batches=0,
                        default_root_dir=tmp_path)
    trainer.fit(model, datamodule(tiny_dataset))
    return {k: float(v) for k, v in trainer.logged_metrics.items()}, before, model


def test_training_loss_is_task_plus_weighted_distill_and_aggregator(tiny_clip, tiny_dataset, tmp_path, cache_dir):
    one, *_ = first_step(tiny_clip, tiny_dataset, tmp_path, distill_weight=1.0)
    two, *_ = first_step(tiny_clip, tiny_dataset, tmp_path, distill_weight=2.0)
    assert one["train/distill_loss"] > 0
    assert two["train/distill_loss"] == pytest.approx(2 * one["train/distill_loss"], rel=1e-5)
    assert two["train/task_loss"] == pytest.approx(one["train/task_loss"], rel=1e-6)
    for logged in (one, two):
        parts = logged["train/task_loss"] + logged["train/distill_loss"] + logged["train/aggregator_loss"]
        assert logged["train/loss"] == pytest.approx(parts, rel=1e-5)


def test_distill_kind_mse_is_twice_the_cosine_distance_on_unit_vectors(tiny_clip, tiny_dataset, tmp_path, cache_dir):
    mse, *_ = first_step(tiny_clip, tiny_dataset, tmp_path, distill_kind="mse")
    cos, *_ = first_step(tiny_clip, tiny_dataset, tmp_path, distill_kind="cosine")
    assert mse["train/distill_loss"] == pytest.approx(2 * cos["train/distill_loss"], rel=1e-4)


def test_aggregator_weight_zero_leaves_the_aggregator_untrained(tiny_clip, tiny_dataset, tmp_path, cache_dir):
    sgd = OptimSchedule("sgd", lr=0.5, weight_decay=0.0, momentum=0.0)  # no weight decay: a zero gradient changes nothing

    def aggregator_moved(weight: float) -> tuple[float, bool]:
        logged, before, model = first_step(tiny_clip, tiny_dataset, tmp_path, optim=sgd, aggregator_weight=weight)
        after = model.head.state_dict()
        moved = [k for k in after if k.startswith("core.aggregator.") and not torch.equal(before[k], after[k])]
        return logged["train/aggregator_loss"], bool(moved)

    loss, moved = aggregator_moved(0.0)
    assert loss == 0.0 and not moved
    loss, moved = aggregator_moved(1.0)
    assert loss != 0.0 and moved


def test_warmup_then_cosine_learning_rates(tiny_clip, tiny_dataset, tmp_path, cache_dir):
    """3 base classes x 4 shots, batch 8: 2 steps per epoch, 3 epochs, the first epoch at warmup_lr."""
    seen: list[float] = []

    class Record(L.Callback):
        def on_train_batch_start(self, trainer, *args):
            seen.append(trainer.optimizers[0].param_groups[0]["lr"])

    optim = OptimSchedule("sgd", lr=0.1, weight_decay=0.0, momentum=0.0, warmup_epochs=1, warmup_lr=1e-3)
    model = ClassificationTask(backbone=str(tiny_clip), optim=optim)
    L.Trainer(accelerator="cpu", max_epochs=3, logger=False, enable_progress_bar=False, enable_model_summary=False,
              enable_checkpointing=False, limit_val_batches=0, callbacks=[Record()],
              default_root_dir=tmp_path).fit(model, datamodule(tiny_dataset))
    total, warmup = 6, 2
    expected = [1e-3] * warmup + [0.1 * 0.5 * (1 + math.cos(math.pi * (s - warmup) / (total - warmup)))
                                  for s in range(warmup, total)]
    assert seen == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("chosen", ["base", "new", None])
def test_predict_class_set_chooses_the_classes_predicted(tiny_clip, tiny_dataset, tmp_path, cache_dir, chosen, caplog):
    """... and ``predict`` says in one log line which class set it predicts among."""
    sets = {"base": ["red square", "green circle", "blue triangle"],
            "new": ["yellow square", "purple circle", "orange triangle"]}
    model = ClassificationTask(backbone=str(tiny_clip), head=ZeroShotHead, class_sets=sets, predict_class_set=chosen)
    dm = ClassificationDataModule(predict_dir=str(tiny_dataset / "images"), num_workers=0, eval_batch_size=16)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, default_root_dir=tmp_path)
    with caplog.at_level("INFO", logger="aape_lightning.tasks.classification"):
        rows = trainer.predict(model, dm)
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("predicting among")]
    assert said == [f"predicting among 3 classes of class set {chosen}" if chosen else
                    "predicting among 6 classes of class sets base, new (every class known, one softmax; "
                    "--model.predict_class_set picks one set)"]
    classes = [c for batch in rows for c in batch["class"]]
    allowed = set(sets[chosen]) if chosen else set(sets["base"]) | set(sets["new"])
    assert len(classes) == 6 * 16 and set(classes) <= allowed
    if chosen is None:  # one softmax over both sets: both are predicted on this data
        assert set(classes) & set(sets["base"]) and set(classes) & set(sets["new"])


# -- the frozen backbone's identity in checkpoints, and weights that do not fit -----------------------------------


class _WithLayer(FrozenBackboneTask):
    """A task with one trained layer, and a record of what ``on_load_checkpoint`` was given."""

    def __init__(self, backbone: str, name: str = "layer") -> None:
        super().__init__(backbone)
        self.layer_name = name
        setattr(self, name, torch.nn.Linear(2, 3))
        self.loaded: list[dict] = []

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        self.loaded.append(dict(checkpoint))
        super().on_load_checkpoint(checkpoint)


def test_checkpoint_carries_the_backbone_and_data_and_refuses_another_backbone(tiny_clip):
    model = FrozenBackboneTask(backbone=str(tiny_clip))
    spec = model.backbone.spec
    ckpt: dict = {}
    model.on_save_checkpoint(ckpt)
    assert ckpt == {"aape_backbone": {"name": spec.name, "sha256": spec.sha256}}
    model.data_config = {"shots": 4}
    model.on_save_checkpoint(ckpt)
    assert ckpt["aape_data"] == {"shots": 4}

    loops = {"fit_loop": {"state_dict": {"combined_loader": [{"seen": 3}]}}}
    model.on_load_checkpoint({"aape_backbone": ckpt["aape_backbone"], "loops": loops})
    assert model._loader_states == [{"seen": 3}]
    model.on_load_checkpoint({})  # an old checkpoint without the key: accepted, no loader state
    assert model._loader_states is None
    other = {"name": "ViT-X", "sha256": "f" * 64}
    with pytest.raises(CheckpointMismatchError) as err:
        model.on_load_checkpoint({"aape_backbone": other})
    assert str(err.value) == (
        f"checkpoint was trained on backbone 'ViT-X' (sha256 ffffffffffff) but the model now uses {spec.name!r} "
        f"(sha256 {spec.sha256[:12]}); set model.backbone to the checkpoint's backbone"
    )


def test_init_from_checks_the_frozen_models_and_takes_nothing_else(tiny_clip):
    model = _WithLayer(str(tiny_clip))
    mine = {"name": model.backbone.spec.name, "sha256": model.backbone.spec.sha256}
    loops = {"fit_loop": {"state_dict": {"combined_loader": [{"seen": 3}]}}}
    model.check_models_of({"aape_backbone": mine, "aape_lm": {"x": 1}, "loops": loops, "state_dict": {}})
    assert model.loaded == [{"aape_backbone": mine, "aape_lm": {"x": 1}}]
    assert model._loader_states is None  # the other run's data order is not taken
    with pytest.raises(CheckpointMismatchError, match="set model.backbone to the checkpoint's backbone"):
        model.check_models_of({"aape_backbone": {"name": "ViT-X", "sha256": "f" * 64}})


def test_weights_that_do_not_fit_are_refused_in_one_line(tiny_clip):
    model = _WithLayer(str(tiny_clip), name="w" * 400)  # a long name: the detail is cut at 300 characters
    fits = {f"{'w' * 400}.weight": torch.zeros(3, 2), f"{'w' * 400}.bias": torch.zeros(3)}
    model.load_state_dict(fits)
    model.load_state_dict({**fits, "extra": torch.zeros(1)}, strict=False)  # strict is passed on
    with pytest.raises(CheckpointMismatchError) as err:
        model.load_state_dict({**fits, f"{'w' * 400}.weight": torch.zeros(4, 2)})
    head = "the checkpoint's weights do not fit this model ("
    tail = "); a model option changed its shape: drop that --model option to use the checkpoint's settings"
    message = str(err.value)
    assert message.startswith(head + "size mismatch for " + "w" * 100) and message.endswith(tail)
    assert len(message) == len(head) + 300 + len(tail) and "\n" not in message
    assert err.value.__cause__ is None and err.value.__suppress_context__
