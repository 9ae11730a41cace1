"""Recall@K for multi-caption retrieval, on a hand-worked example."""

from __future__ import annotations

import pytest
import torch

from aape_lightning.metrics import RetrievalRecall, recall_at_k

# 3 images, 5 captions: captions 0, 1 describe image 0; 2, 3 image 1; 4 image 2.
OWNER = torch.tensor([0, 0, 1, 1, 2])
SCORES = torch.tensor([
    [0.9, 0.1, 0.8, 0.2, 0.3],  # image 0: its best caption (0.9) is first -> rank 0
    [0.7, 0.2, 0.3, 0.6, 0.5],  # image 1: its best (0.6) is beaten by 0.7 -> rank 1
    [0.1, 0.9, 0.8, 0.7, 0.2],  # image 2: its caption (0.2) is beaten by 0.9, 0.8, 0.7 -> rank 3
])
# Text-to-image, per column: caption 0 own 0.9 -> rank 0; caption 1 own 0.1 (0.2, 0.9 higher) -> 2;
# caption 2 own 0.3 (0.8, 0.8 higher) -> 2; caption 3 own 0.6 (0.7 higher) -> 1; caption 4 own 0.2 -> 2.


def embeddings():
    """Images as the identity and texts as score columns, so ``images @ texts.T == SCORES``."""
    return torch.eye(3), SCORES.t().contiguous()


def test_recall_hand_worked_multi_caption_and_text_to_image():
    images, texts = embeddings()
    got = recall_at_k(images, texts, OWNER, ks=(1, 2, 4))
    assert got["i2t_R@1"] == pytest.approx(100 / 3)  # image 0 only: one of its two captions is enough
    assert got["i2t_R@2"] == pytest.approx(200 / 3)  # images 0 and 1
    assert got["i2t_R@4"] == pytest.approx(100)
    assert got["t2i_R@1"] == pytest.approx(20)  # caption 0
    assert got["t2i_R@2"] == pytest.approx(40)  # captions 0 and 3
    assert got["t2i_R@4"] == pytest.approx(100)


def test_chunking_changes_nothing():
    images, texts = embeddings()
    assert recall_at_k(images, texts, OWNER, chunk=1) == recall_at_k(images, texts, OWNER)


def test_metric_counts_an_image_seen_twice_once():
    """A padded DDP sampler repeats images (and their captions); the metric must count them once."""
    images, texts = embeddings()
    index = torch.tensor([10, 11, 12])  # dataset indices, not rows
    owner, slot = index[OWNER], torch.tensor([0, 1, 0, 1, 0])
    metric = RetrievalRecall(ks=(1, 2))
    metric.update(images[:2], index[:2], texts[:4], owner[:4], slot[:4])
    metric.update(images[2:], index[2:], texts[4:], owner[4:], slot[4:])
    metric.update(images[:1], index[:1], texts[:2], owner[:2], slot[:2])  # image 10 again, as padding
    assert RetrievalRecall.compute(metric) == recall_at_k(images, texts, OWNER, ks=(1, 2))  # unwrapped: no second sync


def test_more_images_than_dimensions():
    """4 images in 2 dimensions, one caption each; scores = images @ texts.T:
    [[1, 0, 0.1, 0], [0, 1, 0, -1], [1, 1, 0.1, -1], [-1, 0, -0.1, 0]]."""
    images = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.0]])
    texts = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.1, 0.0], [0.0, -1.0]])
    for chunk in (1024, 1):  # one image a time: the chunks run over the 4 images, not the 2 dimensions
        got = recall_at_k(images, texts, torch.arange(4), ks=(1,), chunk=chunk)
        assert got["i2t_R@1"] == pytest.approx(75)  # image 2's caption (0.1) is beaten by two; image 3's (0) ties first
        assert got["t2i_R@1"] == pytest.approx(100)  # no column has a score above its own image's


def test_no_images_or_no_captions_give_zero_recall():
    empty = {"i2t_R@1": 0.0, "t2i_R@1": 0.0, "i2t_R@5": 0.0, "t2i_R@5": 0.0}
    assert recall_at_k(torch.zeros(0, 2), torch.zeros(0, 2), torch.zeros(0), ks=(1, 5)) == empty
    assert recall_at_k(torch.eye(2), torch.zeros(0, 2), torch.zeros(0), ks=(1, 5)) == empty


def test_metric_states_are_gathered_by_concatenation_across_ranks():
    """What a DDP sync hands ``compute``: every state concatenated into one tensor (here one rank, by hand)."""
    images, texts = embeddings()
    metric = RetrievalRecall(ks=(1, 2))
    metric.update(images, torch.tensor([10, 11, 12]), texts, torch.tensor([10, 10, 11, 11, 12]), torch.tensor([0, 1, 0, 1, 0]))
    metric.sync(dist_sync_fn=lambda tensor, group=None: [tensor], distributed_available=lambda: True)
    assert all(isinstance(getattr(metric, name), torch.Tensor) for name in ("image", "text", "text_owner"))
    assert RetrievalRecall.compute(metric) == recall_at_k(images, texts, OWNER, ks=(1, 2))  # unwrapped: no second sync


@pytest.mark.parametrize("dim", [64, 512])
@pytest.mark.parametrize("chunk", [1024, 7])
def test_a_caption_next_to_its_own_image_is_found_first_both_ways(dim, chunk):
    """Each caption is its image plus 1 % noise, the others random: every R@1 is 100 by construction.

    With the own score summed apart from the product the ranks compare it with (``(images[owner] * texts).sum(-1)``),
    about 4 captions in 10 found their own image scored a last bit above itself, and text-to-image R@1 read ~60.
    """
    gen = torch.Generator().manual_seed(0)
    images = torch.nn.functional.normalize(torch.randn(300, dim, generator=gen), dim=-1)  # (N, d)
    texts = torch.nn.functional.normalize(images + 0.01 * torch.randn(300, dim, generator=gen), dim=-1)  # (T, d)
    out = recall_at_k(images, texts, torch.arange(300), ks=(1,), chunk=chunk)
    assert out == {"i2t_R@1": 100.0, "t2i_R@1": 100.0}


def test_a_caption_owned_by_no_image_row_is_refused():
    images, texts = torch.eye(3), torch.eye(3)
    with pytest.raises(ValueError, match=r"text_owner holds rows 0\.\.3; images has rows 0\.\.2"):
        recall_at_k(images, texts, torch.tensor([0, 1, 3]))
