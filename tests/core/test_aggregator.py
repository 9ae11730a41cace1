import pytest
import torch
import torch.nn.functional as F
from torch import nn

from aape_lightning.core import AttentionAggregator, MeanAggregator, MLPAggregator, RandomAggregator
from aape_lightning.core.losses import clip_score_loss

DIM = 32
VARIANTS = [AttentionAggregator, MeanAggregator, MLPAggregator, RandomAggregator]


def inputs(batch=4, m=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = F.normalize(torch.randn(batch, DIM, generator=g), dim=-1)
    prompts = F.normalize(torch.randn(batch, m, DIM, generator=g), dim=-1)
    mask = torch.ones(batch, m, dtype=torch.bool)
    mask[0, 4:] = False  # a batch element with only 4 real prompts
    mask[2, 1:3] = False  # and one with padding in the middle
    return image, prompts, mask


def steered(agg, seed=2):
    """Give the attention aggregator's query a non-zero offset and W_x, as after training."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        agg.offset.copy_(torch.randn(DIM, generator=g) * 0.1)
        agg.image_to_query.weight.copy_(torch.randn(DIM, DIM, generator=g) * 0.3)
    return agg


def built(cls):
    torch.manual_seed(0)
    agg = cls(DIM).eval()
    return steered(agg) if cls is AttentionAggregator else agg


@pytest.mark.parametrize("cls", VARIANTS)
def test_output_shape_and_unit_norm(cls):
    agg = built(cls)
    image, prompts, mask = inputs()
    out = agg(image, prompts, mask)
    assert out.shape == (4, DIM) and out.dtype == torch.float32
    assert torch.allclose(out.norm(dim=-1), torch.ones(4), atol=1e-5)


@pytest.mark.parametrize("cls", VARIANTS)
def test_permutation_invariant(cls):
    agg = built(cls)
    image, prompts, mask = inputs()
    g = torch.Generator().manual_seed(5)
    perm = torch.stack([torch.randperm(6, generator=g) for _ in range(4)])  # (B, M), a different order per row
    shuffled = prompts.gather(1, perm[..., None].expand(-1, -1, DIM))
    assert not torch.equal(shuffled, prompts)
    assert torch.allclose(agg(image, prompts, mask), agg(image, shuffled, mask.gather(1, perm)), atol=1e-5)


@pytest.mark.parametrize("cls", VARIANTS)
def test_padding_is_irrelevant(cls):
    agg = built(cls)
    image, prompts, mask = inputs()
    out = agg(image, prompts, mask)
    garbage = prompts.clone()
    garbage[~mask] = torch.randn(int((~mask).sum()), DIM) * 100
    assert torch.allclose(out, agg(image, garbage, mask), atol=1e-5)
    # extra padded columns change nothing
    extra = torch.cat([prompts, torch.randn(4, 3, DIM) * 100], dim=1)
    extra_mask = torch.cat([mask, torch.zeros(4, 3, dtype=torch.bool)], dim=1)
    assert torch.allclose(out, agg(image, extra, extra_mask), atol=1e-5)
    # and equals running on the unpadded prompts alone
    assert torch.allclose(out[:1], agg(image[:1], prompts[:1, :4], mask[:1, :4]), atol=1e-5)


@pytest.mark.parametrize("cls", VARIANTS)
def test_half_inputs_give_fp32_unit_vectors(cls):
    agg = built(cls)
    image, prompts, mask = inputs()
    half = agg(image.bfloat16(), prompts.bfloat16(), mask)
    assert half.dtype == torch.float32
    assert torch.allclose(half, agg(image.bfloat16().float(), prompts.bfloat16().float(), mask), atol=1e-5)
    assert all(p.dtype == torch.float32 for p in agg.parameters())


def naive_layer(agg, image, prompts, mask):
    """The paper's layer run on the whole sequence [q ; P] by PyTorch's own encoder layer, row 0."""
    weights = mask.float()[..., None]
    q = (prompts * weights).sum(1) / weights.sum(1) + agg.offset + image @ agg.image_to_query.weight.t()  # (B, d)
    width, heads = agg.ffn[0].out_features, agg.attn.num_heads
    layer = nn.TransformerEncoderLayer(
        DIM, heads, width, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
    )
    layer.eval()
    layer.self_attn.load_state_dict(agg.attn.state_dict())
    layer.norm1.load_state_dict(agg.norm1.state_dict())
    layer.norm2.load_state_dict(agg.norm2.state_dict())
    layer.linear1.load_state_dict(agg.ffn[0].state_dict())
    layer.linear2.load_state_dict(agg.ffn[3].state_dict())
    seq = torch.cat([q[:, None], prompts], dim=1)  # (B, 1 + M, d)
    keep = torch.cat([torch.ones(len(mask), 1, dtype=torch.bool), mask], dim=1)  # (B, 1 + M)
    with torch.no_grad():
        return F.normalize(layer(seq, src_key_padding_mask=~keep)[:, 0], dim=-1)


def test_attention_equals_a_full_layer_read_at_the_query():
    agg = built(AttentionAggregator)
    image, prompts, mask = inputs()
    with torch.no_grad():
        out = agg(image, prompts, mask)
    assert torch.allclose(out, naive_layer(agg, image, prompts, mask), atol=1e-5)


def test_query_starts_at_the_mean_prompt_and_ignores_the_image_until_w_x_moves():
    torch.manual_seed(0)
    agg = AttentionAggregator(DIM).eval()
    image, prompts, mask = inputs()
    other = inputs(seed=1)[0]
    mean = (prompts * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    assert torch.allclose(agg.query(image, prompts, mask), mean, atol=1e-6)
    assert torch.allclose(agg(image, prompts, mask), agg(other, prompts, mask))
    with torch.no_grad():
        agg.image_to_query.weight.normal_(std=0.3)
    assert not torch.allclose(agg(image, prompts, mask), agg(other, prompts, mask), atol=1e-3)


def test_literal_form_has_no_image_map():
    torch.manual_seed(0)
    agg = AttentionAggregator(DIM, condition_on_image=False).eval()
    assert agg.image_to_query is None
    assert not any("image_to_query" in name for name, _ in agg.named_parameters())
    image, prompts, mask = inputs()
    assert torch.allclose(agg(image, prompts, mask), agg(inputs(seed=1)[0], prompts, mask))


def test_attention_weights_over_prompts():
    agg = built(AttentionAggregator)
    image, prompts, mask = inputs()
    with torch.no_grad():
        got = agg.attention(image, prompts, mask)
        # naive: per-head softmax of LN1(q) W_q . LN1(k) W_k / sqrt(d_h) over [q ; P], averaged over heads
        q = agg.query(image, prompts, mask)
        seq = agg.norm1(torch.cat([q[:, None], prompts], dim=1))  # (B, 1 + M, d)
        w_q, w_k, _ = agg.attn.in_proj_weight.chunk(3)
        b_q, b_k, _ = agg.attn.in_proj_bias.chunk(3)
        heads, dh = agg.attn.num_heads, DIM // agg.attn.num_heads
        qq = (seq[:, 0] @ w_q.t() + b_q).view(4, heads, dh)  # (B, H, dh)
        kk = (seq @ w_k.t() + b_k).view(4, 7, heads, dh)  # (B, 1 + M, H, dh)
        scores = torch.einsum("bhe,bmhe->bhm", qq, kk) / dh**0.5  # (B, H, 1 + M)
        keep = torch.cat([torch.ones(4, 1, dtype=torch.bool), mask], dim=1)
        naive = scores.masked_fill(~keep[:, None], float("-inf")).softmax(-1).mean(1)[:, 1:]  # (B, M)
    assert got.shape == (4, 6)
    assert torch.allclose(got, naive, atol=1e-6)
    assert torch.all(got[~mask] == 0) and torch.all(got.sum(1) < 1)


def test_mlp_is_the_papers_mix_and_ignores_the_image():
    torch.manual_seed(0)
    agg = MLPAggregator(DIM).eval()
    assert agg.f[0].out_features == DIM // 4
    image, prompts, mask = inputs()
    p_bar = (prompts * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    with torch.no_grad():
        naive = F.normalize(0.5 * agg.f(p_bar) + 0.5 * p_bar, dim=-1)
        assert torch.allclose(agg(image, prompts, mask), naive, atol=1e-6)
        assert torch.allclose(agg(image, prompts, mask), agg(inputs(seed=1)[0], prompts, mask))
    at_mean = MLPAggregator(DIM, alpha_init=0.0).eval()
    assert torch.allclose(at_mean(image, prompts, mask), MeanAggregator(DIM)(image, prompts, mask), atol=1e-6)


def test_mlp_alpha_is_learned():
    torch.manual_seed(0)
    agg = MLPAggregator(DIM).train()
    assert isinstance(agg.alpha, nn.Parameter)
    image, prompts, mask = inputs()
    opt = torch.optim.SGD(agg.parameters(), lr=0.5)
    clip_score_loss(image, agg(image, prompts, mask)).backward()
    assert agg.alpha.grad is not None and agg.alpha.grad.abs() > 0
    opt.step()
    assert agg.alpha.item() != 0.5


def test_random_picks_a_real_prompt_in_training():
    agg = RandomAggregator(DIM).train()
    image, prompts, mask = inputs()
    out = agg(image, prompts, mask)
    sims = torch.einsum("bd,bmd->bm", out, prompts).masked_fill(~mask, -2)
    assert torch.allclose(sims.max(dim=1).values, torch.ones(4), atol=1e-5)


def test_attention_heads_must_divide_dim():
    with pytest.raises(ValueError, match="num_heads=5 does not divide dim=32"):
        AttentionAggregator(DIM, num_heads=5)
