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


def test_unwritable_cache_warns_once_and_goes_on_in_memory(tmp_path, caplog):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the cache folder should be")
    enc = CountingEncoder()
    cache = TextFeatureCache(enc, key="k", cache_dir=blocker)
    with caplog.at_level("WARNING", logger="aape_lightning.backbones.text_cache"):
        assert cache(["ab"])[:, 0].tolist() == [2]
        assert cache(["ab", "c"])[:, 0].tolist() == [2, 1]
    assert enc.seen == ["ab", "c"]  # kept in memory: nothing encoded twice
    assert caplog.text.count("cannot write the text-feature cache") == 1


def test_concurrent_writers_keep_every_entry(tmp_path):
    import threading

    n = 6
    barrier = threading.Barrier(n)
    caches = [TextFeatureCache(CountingEncoder(), key="shared", cache_dir=tmp_path) for _ in range(n)]
    for cache in caches:
        cache([])  # each loads the (empty) file before anyone writes, as separate processes would

    def encode_then_wait(enc):
        def run(texts):
            out = enc(texts)
            barrier.wait()  # everyone has encoded; now all write at once
            return out

        return run

    for cache in caches:
        cache.encode = encode_then_wait(cache.encode)
    threads = [threading.Thread(target=c, args=([f"text {i}", "common"],)) for i, c in enumerate(caches)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    fresh = CountingEncoder()
    TextFeatureCache(fresh, key="shared", cache_dir=tmp_path)([f"text {i}" for i in range(n)] + ["common"])
    assert fresh.seen == []  # every writer's entries survived
    assert sorted(p.name for p in (tmp_path / "text_features").iterdir()) == ["shared.pt", "shared.pt.lock"]
