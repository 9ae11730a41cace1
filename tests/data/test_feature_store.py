"""The persistent image-feature store: same results as encoding pixels, reuse across methods, misses, damage, races."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from torchvision import transforms as T

from aape_lightning.backbones import FrozenCLIP, build_tiny_clip
from aape_lightning.cli import main
from aape_lightning.data import ClassificationDataModule, CoOpSplitReader
from aape_lightning.data.feature_store import FeatureStore, namespace, read_shard, store_root, totals
from aape_lightning.data.transforms import clip_transform
from aape_lightning.heads import AAPEHead, CoOpHead, ZeroShotHead
from aape_lightning.tasks import ClassificationTask


def run(clip, root, out, head, fit=True, precision="32-true", **data):
    """Fit (1 epoch) then test; the test results, the head's weights, the DataModule's store counts, the trainer."""
    L.seed_everything(0)
    model = ClassificationTask(backbone=str(clip), head=head)
    dm = ClassificationDataModule(CoOpSplitReader(str(root)), shots=4, batch_size=4, eval_batch_size=5, num_workers=0,
                                  **data)  # fmt: skip
    trainer = L.Trainer(accelerator="cpu", max_epochs=1, logger=False, enable_progress_bar=False, precision=precision,
                        enable_model_summary=False, enable_checkpointing=False, default_root_dir=out)  # fmt: skip
    if fit:
        trainer.fit(model, dm)
    trainer.test(model, dm, verbose=False)
    state = {k: v.clone() for k, v in model.head.state_dict().items()}
    return model.test_results, state, dict(dm.store_counts), trainer


@pytest.mark.parametrize("head", [ZeroShotHead, CoOpHead, AAPEHead], ids=["zero_shot", "coop", "aape"])
def test_results_with_the_store_equal_results_without_it_bit_for_bit(head, tiny_clip, tiny_dataset, tmp_path, cache_dir):
    fit = head is not ZeroShotHead
    plain, plain_state, plain_counts, _ = run(tiny_clip, tiny_dataset, tmp_path / "a", head, fit, feature_store=False)
    stored, stored_state, counts, _ = run(tiny_clip, tiny_dataset, tmp_path / "b", head, fit)
    assert plain_counts == {"encoded": 0, "read": 0} and counts["encoded"] > 0
    assert stored == plain
    assert stored_state.keys() == plain_state.keys()
    assert all(torch.equal(stored_state[k], plain_state[k]) for k in plain_state)
    again, again_state, again_counts, _ = run(tiny_clip, tiny_dataset, tmp_path / "c", head, fit)  # read, not encoded
    assert again_counts == {"encoded": 0, "read": counts["encoded"]}
    assert again == plain and all(torch.equal(again_state[k], plain_state[k]) for k in plain_state)


def test_a_second_method_on_the_same_data_encodes_no_image(tiny_clip, tiny_dataset, tmp_path, cache_dir, monkeypatch):
    calls = []
    encode = FrozenCLIP.encode_image
    monkeypatch.setattr(FrozenCLIP, "encode_image", lambda self, images: calls.append(len(images)) or encode(self, images))
    _, _, first, _ = run(tiny_clip, tiny_dataset, tmp_path / "coop", CoOpHead, feature_views=2)
    assert sum(calls) == first["encoded"] > 0
    calls.clear()
    _, _, second, _ = run(tiny_clip, tiny_dataset, tmp_path / "aape", AAPEHead, feature_views=2)
    assert calls == [] and second == {"encoded": 0, "read": first["encoded"]}
    # each run recorded its counts in its folder; `aape table` sums them
    assert totals([tmp_path / "coop", tmp_path / "aape"]) == (
        f"feature store over 2 runs: {first['encoded']} images encoded, {first['encoded']} read from the store")


def test_a_changed_file_another_backbone_or_precision_miss(tiny_clip, tiny_dataset, tmp_path, cache_dir):
    _, _, first, trainer = run(tiny_clip, tiny_dataset, tmp_path / "a", ZeroShotHead, fit=False)
    image = Path(trainer.datamodule.datasets["test"]["new"][0].path)
    st = image.stat()
    try:
        os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # rewritten, as far as anyone can tell
        _, _, changed, _ = run(tiny_clip, tiny_dataset, tmp_path / "b", ZeroShotHead, fit=False)
    finally:
        os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert changed == {"encoded": 1, "read": first["encoded"] - 1}
    other = build_tiny_clip(tmp_path / "other.pt", seed=1)
    _, _, other_counts, _ = run(other, tiny_dataset, tmp_path / "c", ZeroShotHead, fit=False)
    assert other_counts == {"encoded": first["encoded"], "read": 0}
    _, _, bf16, _ = run(tiny_clip, tiny_dataset, tmp_path / "d", ZeroShotHead, fit=False, precision="bf16-mixed")
    assert bf16 == {"encoded": first["encoded"], "read": 0}


def test_another_transform_is_another_namespace():
    base = clip_transform(32, (0.5,) * 3, (0.25,) * 3)
    name = namespace("sha", base, "32-true", "cpu")[0]
    assert name == namespace("sha", clip_transform(32, (0.5,) * 3, (0.25,) * 3), "32-true", "cpu")[0]
    bilinear = T.Compose([T.Resize(32, interpolation=T.InterpolationMode.BILINEAR), T.CenterCrop(32), T.ToTensor(),
                          T.Normalize((0.5,) * 3, (0.25,) * 3)])  # fmt: skip
    others = [clip_transform(48, (0.5,) * 3, (0.25,) * 3), clip_transform(32, (0.4,) * 3, (0.25,) * 3),
              clip_transform(32, (0.5,) * 3, (0.2,) * 3), clip_transform(32, (0.5,) * 3, (0.25,) * 3, augment=True),
              bilinear]  # fmt: skip
    names = {namespace("sha", t, "32-true", "cpu")[0] for t in others}
    assert len(names) == len(others) and name not in names


def test_a_damaged_shard_is_warned_about_once_and_recomputed(tiny_clip, tiny_dataset, tmp_path, cache_dir, caplog):
    first, _, counts, _ = run(tiny_clip, tiny_dataset, tmp_path / "a", ZeroShotHead, fit=False)
    shards = sorted(store_root().rglob("*.safetensors"))
    assert len(shards) >= 2
    flipped, cut = shards[0], shards[1]
    blob = bytearray(flipped.read_bytes())
    blob[-3] ^= 0xFF
    flipped.write_bytes(bytes(blob))
    cut.write_bytes(cut.read_bytes()[:-10])
    lost = sum(int(json.loads(p.read_bytes()[8 : 8 + int.from_bytes(p.read_bytes()[:8], "little")])["features"]["shape"][0])
               for p in (flipped, cut))  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="aape_lightning.data.feature_store"):
        again, _, again_counts, _ = run(tiny_clip, tiny_dataset, tmp_path / "b", ZeroShotHead, fit=False)
    damaged = [r for r in caplog.records if "is damaged" in r.getMessage()]
    assert len(damaged) == 2 and {str(flipped), str(cut)} == {str(r.args[0]) for r in damaged}
    assert again_counts == {"encoded": lost, "read": counts["encoded"] - lost}
    assert again == first
    for shard in store_root().rglob("*.safetensors"):
        read_shard(shard)  # every shard left is whole


def test_the_size_bound_deletes_the_least_recently_used_shards(tmp_path):
    store = FeatureStore(tmp_path, "ns", max_bytes=10**9)
    for i in range(3):
        store.add([f"k{i}"], np.full((1, 256), i, dtype="float32"))
    shards = sorted(tmp_path.rglob("*.safetensors"), key=lambda p: p.stat().st_mtime_ns)
    for age, shard in enumerate(shards):
        os.utime(shard, (1000 + age, 1000 + age))
    store.lookup(["k0"])  # used now: kept
    size = shards[0].stat().st_size
    FeatureStore(tmp_path, "ns", max_bytes=3 * size).add(["k3"], np.zeros((1, 256), dtype="float32"))
    assert set(FeatureStore(tmp_path, "ns").lookup(["k0", "k1", "k2", "k3"])) == {"k0", "k2", "k3"}


FILL = """
import sys, numpy as np
from aape_lightning.data.feature_store import FeatureStore
root, who = sys.argv[1], sys.argv[2]
store = FeatureStore(root, "ns", max_bytes=10**9)
for i in range(40):
    keys = [f"{who}-{i}-{j}" for j in range(8)] + [f"shared-{i}"]
    store.add(keys, np.arange(len(keys) * 64, dtype="float32").reshape(len(keys), 64) + i)
"""


def test_two_processes_filling_at_once_lose_and_corrupt_nothing(tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[2] / "src"), os.environ.get("PYTHONPATH", "")])}
    procs = [subprocess.Popen([sys.executable, "-c", FILL, str(tmp_path), who], env=env, stderr=subprocess.PIPE, text=True)
             for who in ("a", "b")]  # fmt: skip
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read()
    shards = list(tmp_path.rglob("*.safetensors"))
    assert len(shards) == 80 and not list(tmp_path.rglob("*.tmp"))
    for shard in shards:
        read_shard(shard)
    keys = [f"{w}-{i}-{j}" for w in "ab" for i in range(40) for j in range(8)] + [f"shared-{i}" for i in range(40)]
    found = FeatureStore(tmp_path, "ns").lookup(keys)
    assert set(found) == set(keys)
    assert np.array_equal(found["b-7-3"], np.arange(3 * 64, 4 * 64, dtype="float32") + 7)


def test_feature_views_are_the_same_for_every_fill_and_differ_from_each_other(tiny_clip, tiny_dataset, tmp_path,
                                                                              cache_dir, monkeypatch):
    def views(out):
        _, _, counts, trainer = run(tiny_clip, tiny_dataset, out, CoOpHead, feature_views=3)
        dm = trainer.datamodule  # the training loader again: its features are read from the store the fit filled
        return dm._loader(dm.datasets["train"][dm.train_set], train=True).dataset.features, counts

    (rows, stored), counts = views(tmp_path / "a")
    assert rows.shape == (12, 3, 64) and bool(stored.all()) and counts["encoded"] > 0
    assert not torch.equal(rows[:, 0], rows[:, 1]) and not torch.equal(rows[:, 1], rows[:, 2])
    monkeypatch.setenv("AAPE_CACHE_DIR", str(tmp_path / "another_cache"))  # encoded again, not read
    (again, _), again_counts = views(tmp_path / "b")
    assert again_counts["encoded"] == counts["encoded"] and torch.equal(again, rows)


def test_cache_info_and_clear(tiny_clip, tiny_dataset, tmp_path, cache_dir, capsys):
    _, _, counts, _ = run(tiny_clip, tiny_dataset, tmp_path / "a", ZeroShotHead, fit=False)
    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert f"1 namespaces, {counts['encoded']} features" in out and "32-true cpu" in out
    assert main(["cache", "clear"]) == 0
    assert "MiB freed" in capsys.readouterr().out and not list(store_root().rglob("*.safetensors"))
    main(["cache", "info"])
    assert "0 namespaces, 0 features" in capsys.readouterr().out


def test_a_task_that_needs_pixels_gets_pixels(tiny_clip, tiny_dataset, tmp_path, cache_dir):
    model = ClassificationTask(backbone=str(tiny_clip), head=partial(ZeroShotHead), cache_image_features=False)
    dm = ClassificationDataModule(CoOpSplitReader(str(tiny_dataset)), shots=4, eval_batch_size=5, num_workers=0)
    L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, default_root_dir=tmp_path).test(model, dm, verbose=False)
    assert dm.store_counts == {"encoded": 0, "read": 0} and not store_root().exists()
