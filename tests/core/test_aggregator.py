import pytest
import torch
import torch.nn.functional as F

from aape_lightning.core import AttentionAggregator, MeanAggregator, MLPAggregator, RandomAggregator

DIM = 32
VARIANTS = [AttentionAggregator, MeanAggregator, MLPAggregator, RandomAggregator]


def inputs(batch=4, m=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = F.normalize(torch.randn(batch, DIM, generator=g), dim=-1)
    prompts = F.normalize(torch.randn(batch, m, DIM, generator=g), dim=-1)
    mask = torch.ones(batch, m, dtype=torch.bool)
    mask[0, 4:] = False  # a batch element with only 4 real prompts
    return image, prompts, mask


@pytest.mark.parametrize("cls", VARIANTS)
def test_output_shape_and_unit_norm(cls):
    agg = cls(DIM).eval()
    image, prompts, mask = inputs()
    out = agg(image, prompts, mask)
    assert out.shape == (4, DIM)
    assert torch.allclose(out.norm(dim=-1), torch.ones(4), atol=1e-5)


@pytest.mark.parametrize("cls", [AttentionAggregator, MeanAggregator, MLPAggregator])
def test_permutation_invariant(cls):
    torch.manual_seed(0)
    agg = cls(DIM).eval()
    image, prompts, mask = inputs()
    perm = torch.tensor([3, 0, 5, 1, 4, 2])
    # keep element 0's padding at the same prompts by permuting only the full rows
    out = agg(image[1:], prompts[1:], mask[1:])
    out_perm = agg(image[1:], prompts[1:, perm], mask[1:, perm])
    assert torch.allclose(out, out_perm, atol=1e-5)


@pytest.mark.parametrize("cls", VARIANTS)
def test_padding_is_irrelevant(cls):
    torch.manual_seed(0)
    agg = cls(DIM).eval()
    image, prompts, mask = inputs()
    garbage = prompts.clone()
    garbage[~mask] = torch.randn(int((~mask).sum()), DIM) * 100
    assert torch.allclose(agg(image, prompts, mask), agg(image, garbage, mask), atol=1e-5)
    # and equals running on the unpadded prompts alone
    alone = agg(image[:1], prompts[:1, :4], mask[:1, :4])
    assert torch.allclose(agg(image, prompts, mask)[:1], alone, atol=1e-5)


def test_attention_is_image_conditioned_mlp_is_not():
    torch.manual_seed(0)
    image, prompts, mask = inputs()
    other = inputs(seed=1)[0]
    att, mlp = AttentionAggregator(DIM).eval(), MLPAggregator(DIM).eval()
    assert not torch.allclose(att(image, prompts, mask), att(other, prompts, mask), atol=1e-4)
    assert torch.allclose(mlp(image, prompts, mask), mlp(other, prompts, mask))


def test_random_picks_a_real_prompt_in_training():
    agg = RandomAggregator(DIM).train()
    image, prompts, mask = inputs()
    out = agg(image, prompts, mask)
    sims = torch.einsum("bd,bmd->bm", out, prompts).masked_fill(~mask, -2)
    assert torch.allclose(sims.max(dim=1).values, torch.ones(4), atol=1e-5)


def test_attention_heads_must_divide_dim():
    with pytest.raises(ValueError, match="num_heads=5 does not divide dim=32"):
        AttentionAggregator(DIM, num_heads=5)
