import math

import pytest
import torch
import torch.nn.functional as F

from aape_lightning.core import AAPECore, distillation_loss
from aape_lightning.core.losses import clip_score_loss, contrastive_loss


def test_contrastive_prefers_matching_pairs():
    x = F.normalize(torch.randn(8, 16), dim=-1)
    scale = torch.tensor(100.0)
    assert contrastive_loss(x, x, scale) < contrastive_loss(x, x.roll(1, 0), scale)


def test_clip_score_is_the_negated_clipped_cosine():
    g = torch.Generator().manual_seed(0)
    x, a = torch.randn(6, 16, generator=g), torch.randn(6, 16, generator=g)
    naive = -(2.5 * (F.normalize(x, dim=-1) * F.normalize(a, dim=-1)).sum(-1).clamp(min=0)).mean()
    assert torch.isclose(clip_score_loss(x, a), naive, atol=1e-6)
    assert torch.isclose(clip_score_loss(x, a, scale=5.0), 2 * clip_score_loss(x, a), atol=1e-6)


def test_clip_score_higher_cosine_lower_loss():
    x = F.normalize(torch.randn(4, 16), dim=-1)
    noise = F.normalize(torch.randn(4, 16), dim=-1)
    near, far = x + 0.1 * noise, x + 2.0 * noise
    assert clip_score_loss(x, x) < clip_score_loss(x, near) < clip_score_loss(x, far)
    assert torch.isclose(clip_score_loss(x, x), torch.tensor(-2.5))


def test_clip_score_ignores_negative_cosines():
    x = F.normalize(torch.randn(2, 16), dim=-1)
    a = torch.stack([x[0] + 0.3 * torch.randn(16), -x[1]]).requires_grad_(True)  # cos > 0, cos = -1
    loss = clip_score_loss(x, a)
    only_first = -(2.5 * F.cosine_similarity(x[:1], a[:1].detach(), dim=-1)).sum() / 2
    assert torch.isclose(loss, only_first)
    loss.backward()
    assert a.grad[0].abs().sum() > 0 and torch.all(a.grad[1] == 0)


def test_distillation_kinds():
    a = F.normalize(torch.randn(4, 16), dim=-1)
    assert distillation_loss(a, a) == 0
    assert torch.isclose(distillation_loss(a, -a), torch.tensor(4.0))
    assert torch.isclose(distillation_loss(a, -a, "cosine"), torch.tensor(2.0))


def test_core_returns_same_structure_with_and_without_prompts():
    core = AAPECore(16)
    image = F.normalize(torch.randn(3, 16), dim=-1)
    plain = core(image, torch.tensor(10.0))
    assert plain.aape.shape == (3, 16) and plain.aggregated is None and plain.losses == {}
    prompts = F.normalize(torch.randn(3, 5, 16), dim=-1)
    full = core(image, torch.tensor(10.0), prompts, torch.ones(3, 5, dtype=torch.bool))
    assert set(full.losses) == {"distill", "aggregator"}
    assert torch.equal(full.aape, plain.aape)


def test_distillation_weight_scales_and_zero_disables():
    image = F.normalize(torch.randn(3, 16), dim=-1)
    prompts = F.normalize(torch.randn(3, 5, 16), dim=-1)
    mask = torch.ones(3, 5, dtype=torch.bool)
    torch.manual_seed(0)
    one = AAPECore(16, distill_weight=1.0)(image, torch.tensor(10.0), prompts, mask).losses["distill"]
    torch.manual_seed(0)
    zero = AAPECore(16, distill_weight=0.0)(image, torch.tensor(10.0), prompts, mask).losses["distill"]
    assert one > 0 and zero == 0


# -- fixed-value oracles: literal inputs, expected values worked by hand ---------------------------------------

R = math.sqrt(0.5)


def test_clip_score_fixed_value():
    image = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 0.0]])
    aggregated = torch.tensor([[1.0, 1.0], [0.0, -3.0], [5.0, 0.0]])  # cos = 1/sqrt(2), -1 (clipped to 0), 1
    expected = -2.5 * (R + 0.0 + 1.0) / 3
    assert clip_score_loss(image, aggregated).item() == pytest.approx(expected, abs=1e-6)
    # the cosine is over the last axis (d) and the mean over every other one
    assert clip_score_loss(image[None], aggregated[None]).item() == pytest.approx(expected, abs=1e-6)


def test_contrastive_fixed_value():
    image = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    aggregated = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    # logits = 2 * image @ aggregated.T = [[2, 1.2], [0, 1.6]]; targets on the diagonal
    rows = math.log(1 + math.exp(1.2 - 2)) + math.log(1 + math.exp(0 - 1.6))  # image -> prompt, per row
    cols = math.log(1 + math.exp(0 - 2)) + math.log(1 + math.exp(1.2 - 1.6))  # prompt -> image, per column
    expected = 0.5 * (rows / 2 + cols / 2)
    assert contrastive_loss(image, aggregated, torch.tensor(2.0)).item() == pytest.approx(expected, abs=1e-6)


def test_contrastive_stays_on_the_inputs_device():
    """The targets are made on the logits' device (checked on "meta", which any other device breaks)."""
    x = torch.empty(3, 4, device="meta")
    assert contrastive_loss(x, x, torch.tensor(1.0, device="meta")).device.type == "meta"


def test_distillation_fixed_values():
    aape = torch.tensor([[1.0, 2.0, 2.0], [0.0, 0.0, 1.0]])
    target = torch.zeros(2, 3)
    # squared distance summed over d: 9 and 1, averaged over the batch
    assert distillation_loss(aape, target).item() == pytest.approx(5.0)
    assert distillation_loss(aape[None], target[None]).item() == pytest.approx(5.0)  # summed over the last axis
    a, b = torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([[0.0, 2.0], [3.0, 1.0]])  # cos = 0, 3/sqrt(10)
    expected = ((1 - 0.0) + (1 - 3 / math.sqrt(10))) / 2
    assert distillation_loss(a, b, "cosine").item() == pytest.approx(expected, abs=1e-6)
    assert distillation_loss(a[None], b[None], "cosine").item() == pytest.approx(expected, abs=1e-6)


def test_distillation_refuses_an_unknown_kind_by_name():
    with pytest.raises(ValueError, match="'l2' is not one of 'mse', 'cosine'"):
        distillation_loss(torch.zeros(1, 2), torch.zeros(1, 2), "l2")  # type: ignore[arg-type]


def test_core_refuses_prompts_without_their_mask():
    with pytest.raises(ValueError, match=r"^AAPECore: prompts given without their padding mask$"):
        AAPECore(8)(torch.randn(2, 8), torch.tensor(1.0), torch.randn(2, 3, 8))


def test_core_aggregator_loss_is_the_chosen_reward_at_its_scale_and_weight():
    g = torch.Generator().manual_seed(0)
    image = F.normalize(torch.randn(3, 8, generator=g), dim=-1)
    prompts, mask = F.normalize(torch.randn(3, 4, 8, generator=g), dim=-1), torch.ones(3, 4, dtype=torch.bool)
    scale = torch.tensor(7.0)
    for kind in ("clip_score", "contrastive"):
        core = AAPECore(8, aggregator_loss=kind, aggregator_weight=0.5, reward_scale=4.0)
        out = core(image, scale, prompts, mask)
        a = out.aggregated.detach()
        expected = clip_score_loss(image, a, 4.0) if kind == "clip_score" else contrastive_loss(image, a, scale)
        assert torch.isclose(out.losses["aggregator"], 0.5 * expected, atol=1e-6), kind


def test_core_defaults_are_the_papers():
    """lambda = 5, the reward's weight 1 and CLIPScore's w = 2.5; only the two known reward losses are taken."""
    core = AAPECore(8)
    assert (core.distill_weight, core.aggregator_weight, core.reward_scale) == (5.0, 1.0, 2.5)
    assert (core.distill_kind, core.aggregator_loss, core.distill_to_aggregator) == ("mse", "clip_score", False)
    with pytest.raises(ValueError, match="aggregator_loss 'infonce' is not one of 'clip_score', 'contrastive'"):
        AAPECore(8, aggregator_loss="infonce")  # type: ignore[arg-type]
