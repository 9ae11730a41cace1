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
    assert Generator(64, hidden=1).net[0].out_features == 1  # one hidden unit is allowed


def _set(gen: Generator, w1, b1, w2, b2) -> None:
    with torch.no_grad():
        for layer, w, b in ((gen.net[0], w1, b1), (gen.net[-1], w2, b2)):
            layer.weight.copy_(torch.tensor(w)), layer.bias.copy_(torch.tensor(b))


def _unit_rows(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor([[v / sum(u * u for u in row) ** 0.5 for v in row] for row in rows])


@pytest.mark.parametrize("residual", [None, False, True])
def test_generator_is_normalise_of_linear_relu_linear_by_hand(residual):
    """d = 2, hidden = 2; the first hidden unit is negative for both images, so ReLU zeroes it. None: the
    default, the paper's plain form."""
    gen = Generator(2, hidden=2, **({} if residual is None else {"residual": residual})).eval()
    _set(gen, [[1.0, 0.0], [0.0, 1.0]], [-5.0, 0.0], [[1.0, 1.0], [2.0, 1.0]], [0.5, 0.0])
    image = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # norms sqrt(5) and 5: rows normalised one by one
    # hidden = relu(x + (-5, 0)) = (0, 2) and (0, 4); h = (1*0 + 1*h2 + 0.5, 2*0 + 1*h2) = (2.5, 2) and (4.5, 4)
    h = [[2.5, 2.0], [4.5, 4.0]]
    if residual:  # plus each image's own unit vector
        h = [[2.5 + 1 / 5 ** 0.5, 2.0 + 2 / 5 ** 0.5], [4.5 + 3 / 5, 4.0 + 4 / 5]]
    assert torch.allclose(gen(image), _unit_rows(h), atol=1e-6)


@pytest.mark.parametrize("residual", [False, True])
def test_dropout_acts_on_the_hidden_layer_while_training(residual):
    """Dropout 1 zeroes every hidden unit, so h(x) is the last layer's bias alone."""
    gen = Generator(2, hidden=2, dropout=1.0, residual=residual).train()
    _set(gen, [[1.0, 0.0], [0.0, 1.0]], [1.0, 1.0], [[1.0, 1.0], [2.0, 1.0]], [3.0, 4.0])
    image = torch.tensor([[0.0, 2.0], [6.0, 0.0]])
    expected = [[3.0, 5.0], [4.0, 4.0]] if residual else [[3.0, 4.0], [3.0, 4.0]]  # b2 (+ the unit image)
    assert torch.allclose(gen(image), _unit_rows(expected), atol=1e-6)


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
