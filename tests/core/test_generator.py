import pytest
import torch
import torch.nn.functional as F

from aape_lightning.core.generator import Generator


def test_paper_parameter_count():
    assert sum(p.numel() for p in Generator(512).parameters()) == 2 * 512 * 32 + 32 + 512  # 33,312
    assert sum(p.numel() for p in Generator(64, hidden=8).parameters()) == 2 * 64 * 8 + 8 + 64


def test_output_is_fp32_unit_norm_and_depends_on_the_image():
    torch.manual_seed(0)
    gen = Generator(64)
    image = F.normalize(torch.randn(5, 64), dim=-1)
    out = gen(image)
    assert out.shape == (5, 64) and out.dtype == torch.float32
    assert torch.allclose(out.norm(dim=-1), torch.ones(5), atol=1e-5)
    assert not torch.allclose(out[0], out[1], atol=1e-3)
    half = gen(image.bfloat16())
    assert half.dtype == torch.float32 and torch.allclose(half, gen(image.bfloat16().float()), atol=1e-6)


def test_hidden_must_be_positive():
    with pytest.raises(ValueError, match="hidden=0"):
        Generator(64, hidden=0)


def test_residual_generator_starts_at_the_image_feature_and_learns_a_step():
    torch.manual_seed(0)
    gen = Generator(64, residual=True)
    assert sum(p.numel() for p in gen.parameters()) == sum(p.numel() for p in Generator(64).parameters())
    image = torch.randn(5, 64) * 3  # not unit: the residual adds the normalised feature
    assert torch.allclose(gen(image), F.normalize(image, dim=-1), atol=1e-6)
    target = F.normalize(torch.randn(5, 64), dim=-1)
    opt = torch.optim.Adam(gen.parameters(), lr=1e-2)
    before = (gen(image) - target).pow(2).sum().item()
    for _ in range(50):
        opt.zero_grad()
        (gen(image) - target).pow(2).sum().backward()
        opt.step()
    assert (gen(image) - target).pow(2).sum().item() < 0.5 * before
