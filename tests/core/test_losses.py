import torch
import torch.nn.functional as F

from aape_lightning.core import AAPECore, clip_reward_loss, distillation_loss


def test_clip_reward_prefers_matching_pairs():
    x = F.normalize(torch.randn(8, 16), dim=-1)
    scale = torch.tensor(100.0)
    assert clip_reward_loss(x, x, scale) < clip_reward_loss(x, x.roll(1, 0), scale)


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
