"""Retrieval: AAPE as the query, trained on captions; h = identity is plain CLIP retrieval exactly."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from PIL import Image
from torch import nn

from aape_lightning.data import CaptionDataModule
from aape_lightning.data.transforms import clip_transform
from aape_lightning.demo import DemoCaptionReader
from aape_lightning.metrics import recall_at_k
from aape_lightning.tasks import RetrievalTask


@pytest.fixture(scope="module")
def captions_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    DemoCaptionReader(str(root), n_train=12, n_test=7).prepare()
    return root


def datamodule(root, eval_batch_size: int = 3) -> CaptionDataModule:
    reader = DemoCaptionReader(str(root), n_train=12, n_test=7)
    return CaptionDataModule(reader, val_split=None, batch_size=4, eval_batch_size=eval_batch_size, num_workers=0)


def trainer(tmp_path, **kw) -> L.Trainer:
    return L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                     enable_checkpointing=False, default_root_dir=tmp_path, **kw)


class Identity(nn.Module):
    """h(x) = x exactly: the image features are unit vectors already, and normalising them again moves the last
    bit, which flips the near-ties of the tiny CLIP's random scores on some CPUs."""

    def forward(self, x):
        return x.float()


def test_identity_generator_reproduces_plain_clip_retrieval(tiny_clip, captions_root, tmp_path, cache_dir):
    task = RetrievalTask(backbone=str(tiny_clip))
    task.core.generator = Identity()
    trainer(tmp_path).test(task, datamodule(captions_root, eval_batch_size=7), verbose=False)
    got = task.test_results
    plain = RetrievalTask(backbone=str(tiny_clip), query="image")
    trainer(tmp_path).test(plain, datamodule(captions_root, eval_batch_size=7), verbose=False)
    # by hand: the frozen encoders on the test images (one batch, as above) and captions, no task code
    dm = datamodule(captions_root)
    dm.setup("test")
    backbone = task.backbone
    transform = clip_transform(backbone.image_resolution, backbone.image_mean, backbone.image_std)
    records = dm.images("test")
    images = backbone.encode_image(torch.stack([transform(Image.open(r.path)) for r in records]))
    texts = backbone.encode_text([c for r in records for c in r.captions])
    owner = torch.tensor([i for i, r in enumerate(records) for _ in r.captions])
    expected = recall_at_k(images, texts, owner)
    assert {k: got[k] for k in expected} == pytest.approx(expected, abs=1e-9)
    assert {k: got[f"clip_{k}"] for k in expected} == pytest.approx(expected, abs=1e-9)
    assert plain.test_results == pytest.approx(expected, abs=1e-9)
    assert 0 < expected["i2t_R@10"] <= 100


def test_training_uses_captions_contrastive_and_distill_and_init_from(tiny_clip, captions_root, tmp_path, cache_dir):
    L.seed_everything(0)
    task = RetrievalTask(backbone=str(tiny_clip))
    before = {k: v.clone() for k, v in task.core.state_dict().items()}
    run = trainer(tmp_path, max_steps=2)
    run.fit(task, datamodule(captions_root))
    logged = {k: float(v) for k, v in run.logged_metrics.items()}
    assert logged["train/task_loss"] > 0 and logged["train/distill_loss"] > 0 and "train/aggregator_loss" in logged
    assert logged["train/loss"] == pytest.approx(
        logged["train/task_loss"] + logged["train/distill_loss"] + logged["train/aggregator_loss"], rel=1e-5)
    assert any(not torch.equal(before[k], v) for k, v in task.core.state_dict().items())
    run.save_checkpoint(tmp_path / "h.ckpt")
    again = RetrievalTask(backbone=str(tiny_clip), init_from=str(tmp_path / "h.ckpt"))
    again.setup("fit")
    assert all(torch.equal(v, task.core.state_dict()[k]) for k, v in again.core.state_dict().items())
    assert getattr(again, "_loader_states", None) is None  # its data order is its own seed's, not h.ckpt's (mid-epoch)


def test_plain_clip_query_has_nothing_to_train(tiny_clip, cache_dir):
    task = RetrievalTask(backbone=str(tiny_clip), query="image")
    assert not task.trains
