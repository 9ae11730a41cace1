"""Caption metrics: Python tokenisation, CIDEr-D checked by hand and against pycocoevalcap, CLIP-S."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from pycocoevalcap.cider.cider import Cider

from aape_lightning.metrics.caption_metrics import clip_scores, coco_caption_scores, tokenize


def test_tokenize_lowercases_and_drops_punctuation() -> None:
    assert tokenize("A Dog, running!  (fast).") == "a dog running fast"
    assert tokenize("the dog's ball") == "the dog's ball"


def test_cider_d_by_hand() -> None:
    """Two images, one reference each. "a" is in both (idf 0); "cat", "a cat" have weight log 2,
    so an exact caption has cosine 1 for 1- and 2-grams and none for 3-, 4-grams: (1 + 1 + 0 + 0) / 4
    * 10 = 5 per image, x100 as reported; a wrong noun shares only "a" (weight 0) and scores 0."""
    refs = {"1": ["a cat"], "2": ["a dog"]}
    assert coco_caption_scores({"1": "A cat!", "2": "a DOG."}, refs)["CIDEr-D"] == pytest.approx(500.0)
    assert coco_caption_scores({"1": "A cat!", "2": "a cat"}, refs)["CIDEr-D"] == pytest.approx(250.0)


def test_cider_d_matches_pycocoevalcap_on_pretokenised_text() -> None:
    refs = {"a": ["A man rides a horse.", "a person on a horse", "Man riding a brown horse!"],
            "b": ["Two dogs play in the snow.", "dogs playing in snow", "two dogs running"]}  # fmt: skip
    hyps = {"a": "a man riding a horse", "b": "two dogs in the snow"}
    ours = coco_caption_scores(hyps, refs)["CIDEr-D"]
    theirs, _ = Cider().compute_score({k: [tokenize(r) for r in v] for k, v in refs.items()},
                                      {k: [tokenize(v)] for k, v in hyps.items()})  # fmt: skip
    assert ours == pytest.approx(100 * theirs) and ours > 0


def test_clip_scores() -> None:
    image = F.normalize(torch.tensor([[1.0, 0.0], [1.0, 0.0]]), dim=-1)
    cand = F.normalize(torch.tensor([[1.0, 1.0], [-1.0, 0.0]]), dim=-1)
    refs = torch.stack([torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]])])
    mask = torch.tensor([[True, True], [True, False]])
    clip_s, refclip_s = clip_scores(image, cand, refs, mask)
    c = math.cos(math.pi / 4)
    assert clip_s.tolist() == pytest.approx([2.5 * c, 0.0])  # a negative cosine counts 0
    assert refclip_s[0].item() == pytest.approx(2 * 2.5 * c * c / (2.5 * c + c))  # H-mean(CLIP-S, max ref cos)
    assert refclip_s[1].item() == 0.0  # the masked reference (cos 0) is not the max; the real one is -1 -> 0


def test_bleu_4_by_hand() -> None:
    """One image, one reference of the hypothesis' length (no brevity penalty): 4/5 unigrams, 3/4 bigrams, 2/3
    trigrams and 1/2 4-grams match, so BLEU-4 = (4/5 * 3/4 * 2/3 * 1/2) ** (1/4) = 0.2 ** 0.25, x100."""
    got = coco_caption_scores({"1": "a b c d e"}, {"1": ["a b c d f"]})["BLEU-4"]
    assert got == pytest.approx(100 * 0.2**0.25, rel=1e-6)


def test_caption_scores_need_the_same_images() -> None:
    for hyps, refs in (({"1": "a"}, {"2": ["a"]}), ({}, {})):
        with pytest.raises(ValueError, match=r"^coco_caption_scores: hypotheses and references must cover the same, "
                                             r"non-empty set of images$"):
            coco_caption_scores(hyps, refs)


def test_refclip_s_with_small_scores_and_padding() -> None:
    """CLIP-S 2.5 * 0.1 = 0.25 and the best real reference 0.2 (the padded one would score 0.9): H = 0.1 / 0.45."""
    image, cand = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.1, 0.0]])
    refs = torch.tensor([[[2.0, 0.0], [9.0, 0.0]]])
    clip_s, refclip_s = clip_scores(image, cand, refs, torch.tensor([[True, False]]))
    assert clip_s.item() == pytest.approx(0.25)
    assert refclip_s.item() == pytest.approx(2 * 0.25 * 0.2 / 0.45)
