"""The sentence encoder's embeddings are cached: each sentence is encoded once, also across processes."""

import torch

from aape_lightning.prompts import sentence_encoder


class FakeEncoder:
    """Stands in for a SentenceTransformer: a bag-of-letters embedding, counting what it encodes."""

    def __init__(self):
        self.seen = []

    def encode(self, texts, convert_to_tensor, normalize_embeddings, show_progress_bar):
        self.seen += texts
        emb = torch.stack([torch.bincount(torch.tensor([ord(c) % 32 for c in t]), minlength=32).float() for t in texts])
        return torch.nn.functional.normalize(emb, dim=1)


def test_near_duplicate_embeddings_are_cached_not_recomputed(tmp_path, monkeypatch):
    fake = FakeEncoder()
    monkeypatch.setattr(sentence_encoder, "_load_encoder", lambda model: fake)
    model = str(tmp_path / "some-encoder")
    groups = [["a red car", "a red car!", "a blue bus"], ["a blue bus", "the sea"]]
    first = sentence_encoder.drop_near_duplicates(groups, 0.95, model)
    assert first == [["a red car", "a blue bus"], ["a blue bus", "the sea"]]
    assert sorted(fake.seen) == sorted(["a red car", "a red car!", "a blue bus", "the sea"])
    fake.seen.clear()
    assert sentence_encoder.drop_near_duplicates(groups, 0.95, model) == first
    assert fake.seen == []  # the second call encodes nothing
    sentence_encoder._embedding_cache.cache_clear()  # as a new process: read from the disk cache
    assert sentence_encoder.drop_near_duplicates(groups, 0.95, model) == first
    assert fake.seen == []
    sentence_encoder._embedding_cache.cache_clear()
