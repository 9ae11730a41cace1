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
