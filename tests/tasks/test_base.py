"""What every task shares (tasks/base.py): the loss sum and its logging, the schedule, checkpoint identity."""

from __future__ import annotations

import math
from functools import partial

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from aape_lightning.core import AAPECore
from aape_lightning.data import ClassificationDataModule, CoOpSplitReader
from aape_lightning.errors import CheckpointMismatchError
from aape_lightning.heads import AAPEHead, ZeroShotHead
from aape_lightning.tasks import ClassificationTask
from aape_lightning.tasks.base import FrozenBackboneTask
from aape_lightning.tasks.optim import OptimSchedule, lr_factor


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
    one, _, model = first_step(tiny_clip, tiny_dataset, tmp_path, distill_weight=1.0)
    two, *_ = first_step(tiny_clip, tiny_dataset, tmp_path, distill_weight=2.0)
    assert "train/loss" in model.trainer.progress_bar_metrics  # the sum is what the progress bar shows
    assert "train/task_loss" not in model.trainer.progress_bar_metrics
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


def test_weights_strict_by_default_and_assign_passed_on(tiny_clip):
    model = _WithLayer(str(tiny_clip))
    fits = {"layer.weight": torch.ones(3, 2), "layer.bias": torch.ones(3)}
    with pytest.raises(CheckpointMismatchError, match='Unexpected key\\(s\\) in state_dict: "extra"'):
        model.load_state_dict({**fits, "extra": torch.zeros(1)})  # strict unless told otherwise
    model.load_state_dict(fits)
    assert model.layer.weight.data_ptr() != fits["layer.weight"].data_ptr()  # copied into the layer's own tensor
    model.load_state_dict(fits, assign=True)
    assert model.layer.weight.data_ptr() == fits["layer.weight"].data_ptr()  # assign=True takes the tensor itself


def test_a_one_line_load_error_is_the_detail(tiny_clip):
    """An error without torch's "Error(s) in loading" header line (here from a load hook) is quoted whole."""
    model = _WithLayer(str(tiny_clip))

    def refuse(*_):
        raise RuntimeError("head built for 4 classes")

    model.layer._register_load_state_dict_pre_hook(refuse)
    with pytest.raises(CheckpointMismatchError) as err:
        model.load_state_dict({"layer.weight": torch.zeros(3, 2), "layer.bias": torch.zeros(3)})
    assert str(err.value).startswith("the checkpoint's weights do not fit this model (head built for 4 classes); ")


# -- the backbone and cache a task is built with ------------------------------------------------------------------


def test_default_backbone_is_the_packaged_demo_and_cache_dir_is_used(tiny_clip, tmp_path, cache_dir):
    assert FrozenBackboneTask().backbone.spec.name == "demo"
    model = FrozenBackboneTask(backbone=str(tiny_clip), cache_dir=str(tmp_path / "mine"))
    assert model.backbone.text_cache.path.parent == tmp_path / "mine" / "text_features"  # not $AAPE_CACHE_DIR's


def test_nothing_to_train_is_refused_naming_the_task(tiny_clip):
    with pytest.raises(ValueError) as err:
        FrozenBackboneTask(backbone=str(tiny_clip)).configure_optimizers()
    assert str(err.value) == ("FrozenBackboneTask: nothing to train with this head; evaluate it with `aape test` "
                              "instead of `fit`")


# -- the schedule: lr_factor by hand, and the steps configure_optimizers derives from the Trainer ----------------


@pytest.mark.parametrize("step, total, warmup, schedule, factor", [
    (0, 4, 1, "cosine", 1e-3 / 0.1),  # warm-up: warmup_lr / base_lr
    (1, 4, 1, "cosine", 1.0),  # the cosine starts at the base rate
    (2, 4, 0, "cosine", 0.5),  # half way: 0.5 (1 + cos(pi / 2))
    (2, 2, 1, "cosine", 0.0),  # the step after the last (total - warmup = 1): decayed to 0
    (6, 4, 0, "cosine", 0.0),  # past the end it stays at 0, never rises again
    (0, 4, 1, "constant", 1e-3 / 0.1),  # warm-up comes first in the constant schedule too
    (3, 4, 1, "constant", 1.0),
])
def test_lr_factor_by_hand(step, total, warmup, schedule, factor):
    assert lr_factor(step, total, warmup, 0.1, 1e-3, schedule) == pytest.approx(factor, abs=1e-12)


class _Fit(FrozenBackboneTask):
    """One trained layer on ``batches`` rows per epoch (batch size 1), with plain SGD at lr 0.1; ``optim``: the rest."""

    def __init__(self, backbone: str, batches: int, **optim) -> None:
        super().__init__(backbone, optim=OptimSchedule("sgd", lr=0.1, weight_decay=0.0, momentum=0.0, **optim))
        self.layer, self.batches = torch.nn.Linear(2, 1), batches

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).sum()

    def train_dataloader(self):
        return DataLoader(TensorDataset(torch.ones(self.batches, 2)), batch_size=1)


def _learning_rates(model: FrozenBackboneTask, tmp_path, **trainer) -> list[float]:
    """The learning rate each training step ran at."""
    seen: list[float] = []

    class Record(L.Callback):
        def on_train_batch_start(self, trainer, *args):
            seen.append(trainer.optimizers[0].param_groups[0]["lr"])

    L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
              enable_checkpointing=False, callbacks=[Record()], default_root_dir=tmp_path, **trainer).fit(model)
    return seen


def _cos(step: int, total: int) -> float:
    return 0.1 * 0.5 * (1 + math.cos(math.pi * step / total))


@pytest.mark.parametrize("batches, optim, trainer, expected", [
    # defaults: no warm-up, the cosine over the 4 steps
    (4, {}, {"max_epochs": 1}, [0.1, _cos(1, 4), _cos(2, 4), _cos(3, 4)]),
    # warm-up as long as the run: cut to total - 1 steps (at CoOp's default 1e-5), one step left for the schedule
    (4, {"warmup_epochs": 1}, {"max_epochs": 1}, [1e-5] * 3 + [0.1]),
    # a 1-step run: no warm-up at all
    (1, {"warmup_epochs": 1, "warmup_lr": 1e-3}, {"max_epochs": 1}, [0.1]),
    # constant after the warm-up epoch (2 steps of 4)
    (2, {"warmup_epochs": 1, "warmup_lr": 1e-3, "schedule": "constant"}, {"max_epochs": 2}, [1e-3] * 2 + [0.1] * 2),
    # only max_steps bounds the run (max_epochs -1): the run counts as one epoch, warm-up cut to total - 1
    (2, {"warmup_epochs": 1, "warmup_lr": 1e-3}, {"max_steps": 4}, [1e-3] * 3 + [0.1]),
    # max_steps cuts 3 epochs of 2 to 4 steps: warm-up 1 * 4 // 3 = 1 whole step, then the cosine over 3
    (2, {"warmup_epochs": 1, "warmup_lr": 1e-3}, {"max_epochs": 3, "max_steps": 4},
     [1e-3, 0.1, _cos(1, 3), _cos(2, 3)]),
])
def test_schedule_steps_from_the_trainer(tiny_clip, tmp_path, batches, optim, trainer, expected):
    seen = _learning_rates(_Fit(str(tiny_clip), batches, **optim), tmp_path, **trainer)
    assert seen == pytest.approx(expected, rel=1e-9)


# -- resuming mid-epoch, and skipped images ------------------------------------------------------------------------


class _Stateful(DataLoader):
    """A training loader that keeps the state Lightning's loader interface hands it."""

    given: object = "nothing"

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state) -> None:
        self.given = state


class _Loaders(_Fit):
    """Training loaders in one of the shapes Lightning accepts: one loader, a list or a dict."""

    def __init__(self, backbone: str, shape: str) -> None:
        super().__init__(backbone, batches=1)
        made = [_Stateful(TensorDataset(torch.ones(1, 2)), batch_size=1) for _ in range(2)]
        plain = DataLoader(TensorDataset(torch.ones(1, 2)), batch_size=1)  # no state: skipped, takes none
        self.loaders = {"one": made[0], "list": [made[0], plain, made[1]], "dict": {"a": made[0], "b": made[1]}}[shape]
        self.made = made[:1] if shape == "one" else made

    def training_step(self, batch, batch_idx):
        return self.layer(torch.ones(1, 2)).sum()  # the batch's shape differs by loader shape; not what is tested

    def train_dataloader(self):
        return self.loaders


@pytest.mark.parametrize("shape", ["one", "list", "dict"])
def test_resumed_loaders_get_their_saved_state_in_order(tiny_clip, tmp_path, shape):
    model = _Loaders(str(tiny_clip), shape)
    model._loader_states = [{"seen": 1}, {"seen": 2}]  # as on_load_checkpoint reads them from a checkpoint
    _learning_rates(model, tmp_path, max_epochs=1)
    assert [dl.given for dl in model.made] == [{"seen": 1}, {"seen": 2}][:len(model.made)]
    assert model._loader_states is None  # handed over once


class _Skips(_Fit):
    """Validation batches as the image data yields them: some images skipped, maybe none left."""

    def __init__(self, backbone: str) -> None:
        super().__init__(backbone, batches=1)
        self.left: list[bool] = []

    def validation_step(self, batch, batch_idx):
        self.left.append(self._count_skipped(batch, "val"))

    def val_dataloader(self):
        x = torch.ones(1, 2)
        batches = [{"skipped": 1, "image": x}, {"feature": x}, {"skipped": 2, "label": torch.zeros(0)}]
        return DataLoader(batches, batch_size=None)


def test_skipped_images_are_summed_over_the_stage(tiny_clip, tmp_path):
    model = _Skips(str(tiny_clip))
    logged = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                       default_root_dir=tmp_path).validate(model, verbose=False)
    assert logged == [{"val/skipped_images": 3.0}]  # 1 + 0 (no count: none skipped) + 2, not their mean
    assert model.left == [False, False, True]  # True: nothing left to run on


def test_pixels_without_stored_features_are_encoded_now(tiny_clip):
    model = _Fit(str(tiny_clip), batches=1)
    side = model.backbone.image_resolution
    pixels = torch.randn(3, 3, side, side, generator=torch.Generator().manual_seed(0))  # (B, 3, H, W)
    got = model.image_features({"image": pixels, "label": torch.zeros(3, dtype=torch.long)})  # no "feature": no store
    assert torch.equal(got, model.backbone.encode_image(pixels))
