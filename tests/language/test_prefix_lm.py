"""The prefix LM: prefix layout, loss targets, decoding that stops at EOS or the configured length."""

from __future__ import annotations

import pytest
import torch

from aape_lightning.errors import BackboneError
from aape_lightning.language import FrozenLM, PrefixLM


@pytest.fixture(scope="module")
def prefix_lm(tiny_lm) -> PrefixLM:
    torch.manual_seed(0)
    return PrefixLM(FrozenLM.load(str(tiny_lm)), image_dim=16, num_image_tokens=3, use_aape=True, num_aape_tokens=2)


def test_prefix_layout_and_what_trains(prefix_lm: PrefixLM) -> None:
    image, aape = torch.randn(4, 16), torch.randn(4, 16)
    out = prefix_lm.prefix(image, aape)
    assert out.shape == (4, 2 + 3, prefix_lm.lm.width)
    assert torch.equal(out[:, 2:], prefix_lm.image_map(image).view(4, 3, -1))  # then LiMBeR's image tokens
    assert not torch.equal(prefix_lm.prefix(image, aape.flip(0))[:, :2], out[:, :2])  # the AAPE tokens come first
    baseline = PrefixLM(prefix_lm.lm, 16, num_image_tokens=3, use_aape=False)
    assert baseline.prefix(image).shape == (4, 3, prefix_lm.lm.width)
    # the frozen LM is neither trained nor saved: only the maps are
    assert {k.split(".")[0] for k in prefix_lm.state_dict()} == {"image_map", "aape_map"}
    assert all(not p.requires_grad for p in prefix_lm.lm.parameters())


def test_loss_targets_only_the_text(prefix_lm: PrefixLM) -> None:
    prefix = torch.randn(2, 5, prefix_lm.lm.width, requires_grad=True)
    samples = [[(prefix[0], False), ([5, 6], False), ([7, 8, 9], True)], [(prefix[1], False), ([10], True)]]
    embeds, mask, labels = prefix_lm.assemble(samples, left_pad=False)
    assert embeds.shape == (2, 10, prefix_lm.lm.width) and mask.sum(1).tolist() == [10, 6]
    assert labels[0].tolist() == [-100] * 7 + [7, 8, 9] and labels[1].tolist() == [-100] * 5 + [10] + [-100] * 4
    left, left_mask, _ = prefix_lm.assemble(samples, left_pad=True)
    assert left_mask[1].tolist() == [0] * 4 + [1] * 6 and torch.equal(left[1, 4:9], prefix[1])
    loss = prefix_lm.loss(samples)
    hf = prefix_lm.lm.model(inputs_embeds=embeds, attention_mask=mask, labels=labels).loss  # HF's own shifted loss
    assert loss.item() == pytest.approx(hf.item(), rel=1e-5)
    loss.backward()
    assert loss.item() > 0 and prefix.grad.abs().sum() > 0  # the gradient reaches the prefix through the frozen LM


def _naive_greedy(prefix_lm: PrefixLM, prefix: torch.Tensor, prompt: list[int], limit: int) -> list[int]:
    """Argmax one token at a time over the whole sequence, no cache, no batching."""
    out: list[int] = []
    for _ in range(limit):
        seq = torch.cat([prefix, prefix_lm.lm.embed(torch.tensor(prompt + out))])[None]  # (1, L, E)
        token = int(prefix_lm.lm.model(inputs_embeds=seq).logits[0, -1].argmax())
        if token == prefix_lm.lm.eos_id:
            break
        out.append(token)
    return out


def test_greedy_decoding_stops_at_each_samples_length(prefix_lm: PrefixLM) -> None:
    torch.manual_seed(1)
    prefixes = torch.randn(3, 5, prefix_lm.lm.width)
    prompts = [[4, 5, 6], [7], [8, 9]]
    limits = [1, 4, 7]
    samples = [[(p, False), (q, False)] for p, q in zip(prefixes, prompts)]
    out = prefix_lm.generate(samples, limits)
    for ids, p, q, limit in zip(out, prefixes, prompts, limits):
        assert len(ids) <= limit
        assert ids == _naive_greedy(prefix_lm, p, q, limit)  # left padding and cutting change nothing
    assert len(out[2]) == 7 or prefix_lm.lm.eos_id not in out[2]
    beams = prefix_lm.generate(samples, 2, num_beams=3)
    assert all(len(ids) <= 2 for ids in beams)
    with pytest.raises(ValueError):
        prefix_lm.generate(samples, 0)


def test_unknown_lm_is_a_user_error(tmp_path) -> None:
    bad = tmp_path / "not_an_lm.pt"
    torch.save({"format": "other"}, bad)
    with pytest.raises(BackboneError, match="not in the 'aape-lm' format"):
        FrozenLM.load(str(bad))
