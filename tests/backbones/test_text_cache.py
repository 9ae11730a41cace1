import torch

from aape_lightning.backbones import TextFeatureCache


class CountingEncoder:
    def __init__(self):
        self.seen = []

    def __call__(self, texts):
        self.seen += texts
        return torch.stack([torch.full((4,), float(len(t))) for t in texts])


def test_each_unique_text_is_encoded_once_and_persisted(tmp_path):
    enc = CountingEncoder()
    cache = TextFeatureCache(enc, key="abc", cache_dir=tmp_path)
    out = cache(["aa", "b", "aa"])
    assert out[:, 0].tolist() == [2, 1, 2]
    cache(["b", "ccc"])
    assert enc.seen == ["aa", "b", "ccc"]
    # a new process (new cache object) reads from disk and encodes nothing
    enc2 = CountingEncoder()
    assert TextFeatureCache(enc2, key="abc", cache_dir=tmp_path)(["ccc", "aa"])[:, 0].tolist() == [3, 2]
    assert enc2.seen == []


def test_other_backbone_key_does_not_reuse(tmp_path):
    TextFeatureCache(CountingEncoder(), key="one", cache_dir=tmp_path)(["x"])
    enc = CountingEncoder()
    TextFeatureCache(enc, key="two", cache_dir=tmp_path)(["x"])
    assert enc.seen == ["x"]


def test_corrupt_cache_is_rebuilt(tmp_path):
    (tmp_path / "text_features").mkdir()
    (tmp_path / "text_features" / "k.pt").write_bytes(b"garbage")
    enc = CountingEncoder()
    assert TextFeatureCache(enc, key="k", cache_dir=tmp_path)(["x"]).shape == (1, 4)
    assert enc.seen == ["x"]
