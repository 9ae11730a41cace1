import pytest
import torch
import torch.nn.functional as F

from aape_lightning.heads.classification.concat_fusion import ConcatFusion

DIM, B, K = 64, 5, 7


def inputs(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = F.normalize(torch.randn(B, DIM, generator=g), dim=-1) * 1.7  # cosine must not assume |x| = 1
    w = F.normalize(torch.randn(K, DIM, generator=g), dim=-1)
    h = F.normalize(torch.randn(B, DIM, generator=g), dim=-1)
    return x, w, h


def randomise_last_layer(fusion, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        fusion.out.weight.copy_(torch.randn(fusion.out.weight.shape, generator=g) * 0.2)
        fusion.out.bias.copy_(torch.randn(fusion.out.bias.shape, generator=g) * 0.2)


def naive_two_layer(fusion, x, w, h):
    """Build every w_bk = [w_k +] W2 relu(W1 [w_k ; h_b] + b1) + b2 explicitly, (B, K, d)."""
    z = torch.cat([w[None].expand(B, -1, -1), h[:, None].expand(-1, K, -1)], dim=-1)  # (B, K, 2d)
    w1 = torch.cat([fusion.class_in.weight, fusion.aape_in.weight], dim=1)  # (r, 2d)
    weights = fusion.out(torch.relu(z @ w1.t() + fusion.class_in.bias))  # (B, K, d)
    if fusion.residual:
        weights = weights + w[None]
    return F.cosine_similarity(x[:, None], weights, dim=-1)  # (B, K)


@pytest.mark.parametrize("residual", [True, False])
def test_fast_path_equals_naive(residual):
    torch.manual_seed(0)
    fusion = ConcatFusion(DIM, hidden=32, residual=residual)
    randomise_last_layer(fusion)
    x, w, h = inputs()
    fast = fusion.cosine(x, w, h)
    naive = naive_two_layer(fusion, x, w, h)
    assert fast.shape == (B, K)
    assert naive.std() > 0.05  # the fused weights really differ per class and image
    assert torch.allclose(fast, naive, atol=1e-5)


def test_residual_starts_at_zero_shot():
    torch.manual_seed(0)
    fusion = ConcatFusion(DIM)
    x, w, h = inputs()
    zero_shot = F.normalize(x, dim=-1) @ w.t()  # (B, K)
    assert torch.allclose(fusion(x, w, h), zero_shot, atol=1e-6)
    # and a different AAPE changes nothing yet
    assert torch.allclose(fusion(x, w, inputs(seed=3)[2]), zero_shot, atol=1e-6)


@pytest.mark.parametrize("residual", [True, False])
def test_literal_one_layer_form(residual):
    torch.manual_seed(0)
    fusion = ConcatFusion(DIM, hidden=None, residual=residual)
    x, w, h = inputs()
    z = torch.cat([w[None].expand(B, -1, -1), h[:, None].expand(-1, K, -1)], dim=-1)  # (B, K, 2d)
    weights = torch.relu(z @ fusion.literal.weight.t() + fusion.literal.bias)  # (B, K, d)
    if residual:
        weights = weights + w[None]
    naive = F.cosine_similarity(x[:, None], weights, dim=-1)
    assert torch.allclose(fusion(x, w, h), naive, atol=1e-5)
    assert sum(p.numel() for p in fusion.parameters()) == 2 * DIM * DIM + DIM


def test_gradients_reach_every_parameter_and_the_aape():
    torch.manual_seed(0)
    fusion = ConcatFusion(DIM)
    randomise_last_layer(fusion)
    x, w, h = inputs()
    h.requires_grad_(True)
    F.cross_entropy(50 * fusion(x, w, h), torch.arange(B) % K).backward()
    for name, p in [("A", fusion.class_in.weight), ("b1", fusion.class_in.bias), ("B", fusion.aape_in.weight),
                    ("W2", fusion.out.weight), ("b2", fusion.out.bias), ("h", h)]:  # fmt: skip
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_zero_init_is_not_stuck():
    """At step 0 only W2, b2 get a gradient; after one step A, B and h get one too."""
    torch.manual_seed(0)
    fusion = ConcatFusion(DIM)
    x, w, h = inputs()
    h.requires_grad_(True)
    labels = torch.arange(B) % K
    opt = torch.optim.SGD(fusion.parameters(), lr=1.0)
    F.cross_entropy(50 * fusion(x, w, h), labels).backward()
    assert fusion.out.weight.grad.abs().sum() > 0
    assert fusion.class_in.weight.grad.abs().sum() == 0 and h.grad.abs().sum() == 0
    opt.step()
    opt.zero_grad()
    h.grad = None
    F.cross_entropy(50 * fusion(x, w, h), labels).backward()
    assert fusion.class_in.weight.grad.abs().sum() > 0 and fusion.aape_in.weight.grad.abs().sum() > 0
    assert h.grad.abs().sum() > 0


@pytest.mark.parametrize("hidden", [32, None])
def test_half_inputs_and_autocast_compute_in_fp32(hidden):
    torch.manual_seed(0)
    fusion = ConcatFusion(DIM, hidden=hidden)
    if hidden is not None:
        randomise_last_layer(fusion)
    x, w, h = (t.bfloat16() for t in inputs())
    reference = fusion(x.float(), w.float(), h.float())
    assert fusion(x, w, h).dtype == torch.float32
    assert torch.allclose(fusion(x, w, h), reference, atol=1e-6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.allclose(fusion(x, w, h), reference, atol=1e-6)


def test_parameter_count_matches_the_paper():
    fusion = ConcatFusion(512)  # the default hidden width is the paper's r = 32
    assert sum(p.numel() for p in fusion.parameters()) == 2 * 512 * 32 + 32 + 32 * 512 + 512  # 49,696


def test_hidden_must_be_positive():
    with pytest.raises(ValueError, match="hidden=0"):
        ConcatFusion(DIM, hidden=0)
    assert ConcatFusion(DIM, hidden=1).class_in.out_features == 1  # one hidden unit is allowed


def test_the_cosine_ignores_the_image_norm_even_below_one():
    """A cosine: a short image vector (|x| = 0.01) scores as the naive formula on the unit one."""
    torch.manual_seed(0)
    fusion = ConcatFusion(DIM)
    randomise_last_layer(fusion)
    x, w, h = inputs()
    x = F.normalize(x, dim=-1)
    assert torch.allclose(fusion.cosine(0.01 * x, w, h), naive_two_layer(fusion, x, w, h), atol=1e-5)


def test_the_fusion_reads_h_when_h_carries_the_class():
    """When only h(x) knows the class (images are noise, class features uninformative about x),
    the nonlinear fusion learns to classify through h; with h shuffled it falls to chance.
    This separates the code from the data: a head that ignores h(x) elsewhere does so because h
    carries nothing the class features lack, not because the fusion cannot read it."""
    torch.manual_seed(0)
    dim, classes, n = 32, 4, 256
    w = F.normalize(torch.randn(classes, dim), dim=-1)  # (K, d) class features
    codes = F.normalize(torch.randn(classes, dim), dim=-1)  # (K, d): what h says about each class
    labels = torch.randint(0, classes, (n,))
    x = F.normalize(torch.randn(n, dim), dim=-1)  # (n, d): images independent of their labels
    h = F.normalize(codes[labels] + 0.1 * torch.randn(n, dim), dim=-1)  # (n, d)
    fusion = ConcatFusion(dim, hidden=32, residual=True)
    opt = torch.optim.Adam(fusion.parameters(), lr=1e-2)
    for _ in range(300):
        opt.zero_grad()
        F.cross_entropy(20 * fusion.cosine(x, w, h), labels).backward()
        opt.step()
    with torch.no_grad():
        accuracy = (fusion.cosine(x, w, h).argmax(-1) == labels).float().mean()
        shuffled = (fusion.cosine(x, w, h.roll(n // 2, dims=0)).argmax(-1) == labels).float().mean()
    assert accuracy > 0.9 and shuffled < 0.5


@pytest.mark.parametrize("residual", [True, False])
def test_the_concat_fusions_prompt_input_has_no_bias(residual):
    """B is the paper's bias-free map of h (its pragma line hides a dropped ``bias=False``; this holds it)."""
    fusion = ConcatFusion(8, 4, residual)
    assert fusion.aape_in.bias is None and fusion.class_in.bias is not None
