import math

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


# -- fixed values worked by hand, and the device contract --------------------------------------------------------


def test_mlp_fixed_value_with_hand_set_weights():
    """p^a = normalise(alpha * W2 relu(W1 p_bar + b1) + b2) + (1 - alpha) p_bar), on d = 2, hidden = 1."""
    agg = MLPAggregator(2, hidden=1, alpha_init=0.5)
    with torch.no_grad():
        agg.f[0].weight.copy_(torch.tensor([[1.0, -1.0]]))
        agg.f[0].bias.copy_(torch.tensor([0.0]))
        agg.f[-1].weight.copy_(torch.tensor([[2.0], [0.0]]))
        agg.f[-1].bias.copy_(torch.tensor([0.0, 1.0]))
    prompts = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [9.0, 9.0]], [[0.0, 2.0], [0.0, 2.0], [9.0, 9.0]]])  # (2, 3, 2)
    mask = torch.tensor([[True, True, False], [True, True, False]])
    # row 0: p_bar = (0.5, 0.5), W1 p_bar = 0 -> relu 0 -> f = (0, 1); mix = 0.5 (0, 1) + 0.5 (0.5, 0.5) = (0.25, 0.75)
    # row 1: p_bar = (0, 2), W1 p_bar = -2 -> relu 0 (without it -4, 1) -> f = (0, 1); mix = (0, 1.5)
    expected = torch.tensor([[0.25, 0.75], [0.0, 1.5]])
    expected = expected / expected.norm(dim=1, keepdim=True)
    assert torch.allclose(agg(torch.zeros(2, 2), prompts, mask), expected, atol=1e-6)


def test_mean_fixed_value():
    prompts = torch.tensor([[[3.0, 0.0], [0.0, 1.0], [5.0, 5.0]], [[0.0, 0.5], [5.0, 5.0], [5.0, 5.0]]])  # (2, 3, 2)
    mask = torch.tensor([[True, True, False], [True, False, False]])  # 2 real prompts, then 1
    expected = torch.tensor([[1.5 / math.sqrt(1.5**2 + 0.5**2), 0.5 / math.sqrt(1.5**2 + 0.5**2)], [0.0, 1.0]])
    for agg in (MeanAggregator(2), RandomAggregator(2).eval()):  # the random one averages in eval
        assert torch.allclose(agg(torch.zeros(2, 2), prompts, mask), expected, atol=1e-6)


def test_masked_mean_divides_by_the_real_prompts_only():
    from aape_lightning.core.aggregator import _masked_mean

    prompts = torch.tensor([[[4.0, 2.0], [1.0, 1.0]], [[6.0, 0.0], [9.0, 9.0]], [[9.0, 9.0], [9.0, 9.0]]])
    mask = torch.tensor([[True, True], [True, False], [False, False]])  # 2 real, 1 real, none
    expected = torch.tensor([[2.5, 1.5], [6.0, 0.0], [0.0, 0.0]])
    assert torch.equal(_masked_mean(prompts, mask), expected)


def test_attention_forward_asks_for_no_weights(monkeypatch):
    """Computing the attention weights costs time (and PyTorch's fast path): forward does not ask for them."""
    agg = built(AttentionAggregator)
    seen = []
    real = agg.attn.forward
    monkeypatch.setattr(agg.attn, "forward", lambda *a, **kw: seen.append(kw["need_weights"]) or real(*a, **kw))
    agg(*inputs())
    agg.attention(*inputs())
    assert seen == [False, True]
    assert agg._attend(*inputs(), need_weights=False)[1] is None


def test_random_in_training_returns_the_drawn_prompt_normalised():
    prompts = torch.tensor([[[3.0, 4.0], [7.0, 7.0]], [[7.0, 7.0], [0.0, 2.0]]])  # one real prompt per row
    mask = torch.tensor([[True, False], [False, True]])
    out = RandomAggregator(2).train()(torch.zeros(2, 2), prompts, mask)
    assert torch.allclose(out, torch.tensor([[0.6, 0.8], [0.0, 1.0]]), atol=1e-6)


def test_mlp_default_hidden_is_a_quarter_of_dim_and_at_least_one():
    assert MLPAggregator(4).f[0].out_features == 1 and MLPAggregator(3).f[0].out_features == 1


@pytest.mark.parametrize("cls", VARIANTS)
def test_aggregators_know_their_width_and_stay_on_the_inputs_device(cls):
    """Nothing is created on a fixed device: on "meta" any tensor made elsewhere breaks the call."""
    agg = cls(8)
    assert agg.dim == 8
    agg = agg.to("meta").train()
    image, prompts = torch.empty(3, 8, device="meta"), torch.empty(3, 5, 8, device="meta")
    mask = torch.ones(3, 5, dtype=torch.bool, device="meta")
    assert agg(image, prompts, mask).device.type == "meta"


def test_attention_options_reach_their_layers():
    plain = AttentionAggregator(8, num_heads=1)  # one head is allowed
    assert plain.attn.num_heads == 1 and plain.attn.dropout == 0.0 and plain.ffn[2].p == 0.0
    assert isinstance(plain.ffn[1], nn.GELU) and plain.ffn[0].out_features == 32  # 4 * d
    tuned = AttentionAggregator(8, num_heads=2, dropout=0.25, activation="relu", ffn_hidden=5)
    assert tuned.attn.dropout == 0.25 and tuned.ffn[2].p == 0.25 and tuned.ffn[4].p == 0.25
    assert isinstance(tuned.ffn[1], nn.ReLU) and tuned.ffn[0].out_features == 5
    with pytest.raises(ValueError, match="num_heads=0 does not divide dim=8"):
        AttentionAggregator(8, num_heads=0)
