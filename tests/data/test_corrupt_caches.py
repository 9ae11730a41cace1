"""Every cache the package reads survives arbitrary bytes: detected, warned once, rebuilt (issue 23, item 7).

The caches: few-shot split files, the CLIP text-feature cache, the sentence encoder's embedding cache
(the same class, another key) and a demo dataset's manifest.
"""

from __future__ import annotations

import json
import random

import pytest
import torch

from aape_lightning.backbones import TextFeatureCache
from aape_lightning.data.classification.datamodule import ClassificationDataModule
from aape_lightning.data.classification.readers import CoOpSplitReader

DAMAGE = {
    "random bytes": random.Random(0).randbytes(300),
    "not UTF-8": b'{"meta": "\xff\xfe"}',
    "truncated": b"{\"meta\": {\"shots\": 2",
    "another shape": b'["a", "list"]',
    "wrong rows": b'{"meta": null, "train": [[1]], "val": []}',
}


def _warnings(caplog, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and text in r.getMessage()]


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_a_damaged_few_shot_split_is_drawn_again_and_rewritten(tiny_dataset, tmp_path, cache_dir, caplog, damage):
    def setup() -> ClassificationDataModule:
        dm = ClassificationDataModule(CoOpSplitReader(str(tiny_dataset)), shots=2, seed=1, num_workers=0,
                                      split_cache_dir=str(tmp_path / "splits"))
        dm.setup("fit")
        return dm

    first = setup()
    path, sample = first.few_shot_record, first.datasets["train"]["base"]
    if damage == "wrong rows":  # valid JSON whose meta matches, rows broken
        payload = json.loads(path.read_text(encoding="utf-8"))
        payload["train"] = [[1]]
        path.write_text(json.dumps(payload), encoding="utf-8")
    else:
        path.write_bytes(DAMAGE[damage])
    caplog.clear()
    again = setup()
    assert again.datasets["train"]["base"] == sample  # the same seed draws the same split
    assert len(_warnings(caplog, "few-shot split cache")) == 1
    assert json.loads(path.read_text(encoding="utf-8"))["meta"]["seed"] == 1  # rewritten, valid


class CountingEncoder:
    def __init__(self):
        self.seen: list[str] = []

    def __call__(self, texts):
        self.seen += texts
        return torch.stack([torch.full((4,), float(len(t))) for t in texts])  # (N, 4)


TEXT_DAMAGE = {
    "random bytes": lambda path: path.write_bytes(random.Random(1).randbytes(500)),
    "truncated": lambda path: path.write_bytes(path.read_bytes()[:40]),
    "lengths differ": lambda path: torch.save({"texts": ["a", "b", "c"], "features": torch.zeros(1, 4)}, path),
    "not texts": lambda path: torch.save({"texts": "abc", "features": torch.zeros(3, 4)}, path),
}


@pytest.mark.parametrize("damage", list(TEXT_DAMAGE))
def test_a_damaged_text_feature_cache_warns_once_and_is_rebuilt(tmp_path, caplog, damage):
    TextFeatureCache(CountingEncoder(), key="k", cache_dir=tmp_path)(["a", "bb"])
    path = tmp_path / "text_features" / "k.pt"
    TEXT_DAMAGE[damage](path)
    enc = CountingEncoder()
    cache = TextFeatureCache(enc, key="k", cache_dir=tmp_path)
    assert cache(["a", "bb"])[:, 0].tolist() == [1, 2]
    assert cache(["ccc"])[:, 0].tolist() == [3]  # a second write merges what is on disk: no second warning
    assert enc.seen == ["a", "bb", "ccc"]
    assert len(_warnings(caplog, "text-feature cache")) == 1
    fresh = CountingEncoder()
    assert TextFeatureCache(fresh, key="k", cache_dir=tmp_path)(["bb", "ccc", "a"])[:, 0].tolist() == [2, 3, 1]
    assert fresh.seen == []  # rebuilt on disk


def test_a_damaged_sentence_encoder_cache_is_rebuilt(tmp_path, cache_dir, caplog, monkeypatch):
    """The sentence encoder's embeddings (suggestions, de-duplication) are cached on disk the same way."""
    from aape_lightning.prompts import sentence_encoder as se

    class FakeEncoder:
        def encode(self, texts, **kw):
            return torch.nn.functional.normalize(torch.tensor([[len(t), 1.0] for t in texts]), dim=-1)  # (N, 2)

    model = str(tmp_path / "model")
    monkeypatch.setattr(se, "_load_encoder", lambda name: FakeEncoder())
    se._embedding_cache.cache_clear()
    se._embed(["a", "bb"], model)
    path = cache_dir / "text_features" / f"{se._model_key(model)}.pt"
    assert path.is_file()
    path.write_bytes(random.Random(2).randbytes(200))
    se._embedding_cache.cache_clear()  # a new process
    try:
        assert se._embed(["a", "bb"], model).shape == (2, 2)
    finally:
        se._embedding_cache.cache_clear()
    assert len(_warnings(caplog, "text-feature cache")) == 1
    assert torch.load(path, weights_only=True)["texts"] == ["a", "bb"]


def test_a_damaged_demo_manifest_rebuilds_the_demo_dataset(tmp_path, monkeypatch):
    from aape_lightning.demo import datasets as demo

    manifest = {"name": "x", "seed": 1}
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / demo.MANIFEST).write_bytes(random.Random(3).randbytes(100))
    assert demo._is_current(folder, manifest) is False  # rebuilt by its caller, not trusted, no traceback
    (folder / demo.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    assert demo._is_current(folder, manifest) is True


def test_a_damaged_demo_split_file_rebuilds_the_demo_dataset(tmp_path, caplog):
    """The demo data lives in the cache dir: its split and prompt files are a cache too (the caller regenerates)."""
    from aape_lightning.demo import datasets as demo

    manifest = {"name": "x", "seed": 1}
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / demo.MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    (folder / "split_zhou_X.json").write_bytes(random.Random(4).randbytes(300))
    assert demo._is_current(folder, manifest) is False
    assert len(_warnings(caplog, "split_zhou_X.json is damaged")) == 1
