from functools import partial

import pytest
import torch
import torch.nn.functional as F

from aape_lightning.backbones import FrozenCLIP
from aape_lightning.core import AAPECore
from aape_lightning.heads import AAPEHead, ZeroShotHead

CLASSES = ["red square", "green circle", "blue triangle", "yellow square"]


@pytest.fixture()
def backbone(tiny_clip, tmp_path):
    return FrozenCLIP.load(str(tiny_clip), tmp_path / "cache")


def images(n=6, seed=0):
    return torch.randn(n, 3, 32, 32, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("fusion", ["concat", "feature", "modulate"])
def test_fusion_equals_zero_shot_at_step_0(backbone, fusion):
    """concat with residual (the default), feature and modulate all start exactly at zero-shot CLIP."""
    zs, aape = ZeroShotHead(backbone), AAPEHead(backbone, fusion=fusion, residual=True)
    for head in (zs, aape):
        head.set_classes("all", CLASSES, "a photo of a {}.")
    f = backbone.encode_image(images())
    assert torch.allclose(aape(f, "all").logits, zs(f, "all").logits, atol=1e-5)
    # and zero-shot is what CLIP itself computes
    text = backbone.encode_text([f"a photo of a {c}." for c in CLASSES])
    assert torch.allclose(zs(f, "all").logits, backbone.logit_scale * f @ text.t(), atol=1e-5)


def one_step(backbone, head, labels):
    head.set_classes("all", CLASSES, "a photo of a {}.")
    bank = F.normalize(torch.randn(len(CLASSES), 5, backbone.embed_dim), dim=-1)
    mask = torch.ones(len(CLASSES), 5, dtype=torch.bool)
    mask[1, 3:] = False
    head.set_prompts("all", bank, mask)
    head.train()
    opt = torch.optim.SGD([p for p in head.parameters() if p.requires_grad], lr=0.5)
    before = {k: v.clone() for k, v in head.named_parameters()}
    clip_before = {k: v.clone() for k, v in backbone.model.state_dict().items()}
    f = backbone.encode_image(images())
    out = head(f, "all", labels)
    loss = F.cross_entropy(out.logits, labels) + sum(out.losses.values())
    loss.backward()
    grads = {k: None if v.grad is None else v.grad.clone() for k, v in head.named_parameters()}
    opt.step()
    return before, clip_before, grads


@pytest.mark.parametrize(("fusion", "residual"), [("concat", True), ("concat", False), ("proxy", True),
                                                  ("feature", True), ("modulate", True), ("token", True)])
def test_one_step_trains_head_not_clip(backbone, fusion, residual):
    torch.manual_seed(0)
    head = AAPEHead(backbone, fusion=fusion, residual=residual)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    before, clip_before, grads = one_step(backbone, head, labels)
    for k, v in backbone.model.state_dict().items():
        assert torch.equal(v, clip_before[k]), f"CLIP weight {k} changed"
    changed = {k for k, v in head.named_parameters() if not torch.equal(v, before[k])}
    assert any(k.startswith("core.aggregator.") for k in changed)
    assert any(k.startswith("core.generator.") for k in changed)
    fusion_params = {"concat": ["concat.out.weight"], "proxy": [], "feature": ["aape_proj.weight"],
                     "modulate": ["aape_proj.weight"], "token": ["to_tokens.weight"]}[fusion]
    if fusion == "concat" and not residual:  # no zero-initialised layer: g's first layer moves at once
        fusion_params += ["concat.class_in.weight", "concat.aape_in.weight"]
    assert set(fusion_params) <= changed


def test_residual_concat_reads_h_from_the_second_step(backbone):
    """g's last layer starts at zero, so its first layer (and h through it) only learn once it moved."""
    torch.manual_seed(0)
    head = AAPEHead(backbone, fusion="concat", residual=True)
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    one_step(backbone, head, labels)
    before, _, grads = one_step(backbone, head, labels)
    assert grads["concat.class_in.weight"].abs().sum() > 0 and grads["concat.aape_in.weight"].abs().sum() > 0


def test_proxy_fusion_scores_h_against_the_class_features(backbone):
    torch.manual_seed(0)
    head = AAPEHead(backbone, fusion="proxy")
    head.set_classes("all", CLASSES, "a photo of a {}.")
    f = backbone.encode_image(images())
    expected = backbone.logit_scale * head.core.generator(f) @ head.class_features("all").t()
    assert torch.allclose(head(f, "all").logits, expected, atol=1e-5)


def test_shuffle_diagnostic_uses_another_images_h(backbone):
    """The shuffle test scores each image with the h of the image half a batch away."""
    torch.manual_seed(0)
    head = AAPEHead(backbone, fusion="concat", residual=False)
    head.set_classes("all", CLASSES, "a photo of a {}.")
    f = backbone.encode_image(images())
    h = head.core.generator(f)
    shuffled = head.diagnostic_logits(f, "all")["shuffled"]
    assert torch.allclose(shuffled, head.logits(f, h.roll(3, dims=0), "all"), atol=1e-6)
    assert not torch.allclose(shuffled, head(f, "all").logits, atol=1e-3)  # this head reads h(x)
    linear = AAPEHead(backbone, fusion="feature")  # P2 = 0 at start: h(x) is ignored
    linear.set_classes("all", CLASSES, "a photo of a {}.")
    assert torch.allclose(linear.diagnostic_logits(f, "all")["shuffled"], linear(f, "all").logits, atol=1e-6)
    assert linear.diagnostic_logits(f[:1], "all") == {}


def test_distillation_target_gets_no_gradient_by_default(backbone):
    """With only L_distill, the aggregator receives no gradient (stop-grad); with the option it does."""
    labels = torch.tensor([0, 1, 2, 3, 0, 1])
    f = backbone.encode_image(images())
    bank = F.normalize(torch.randn(len(CLASSES), 5, backbone.embed_dim), dim=-1)
    mask = torch.ones(len(CLASSES), 5, dtype=torch.bool)
    for through, expect_grad in ((False, False), (True, True)):
        torch.manual_seed(0)
        head = AAPEHead(backbone, core=partial(AAPECore, distill_to_aggregator=through))
        head.set_classes("all", CLASSES, "a photo of a {}.")
        head.set_prompts("all", bank, mask)
        head.train()
        head(f, "all", labels).losses["distill"].backward()
        agg_grads = [p.grad for p in head.core.aggregator.parameters()]
        has = any(g is not None and g.abs().sum() > 0 for g in agg_grads)
        assert has == expect_grad
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.core.generator.parameters())


def test_inference_needs_no_prompts(backbone):
    head = AAPEHead(backbone)
    head.set_classes("new", CLASSES, "a photo of a {}.")
    head.eval()
    out = head(backbone.encode_image(images()), "new")
    assert out.logits.shape == (6, 4) and out.losses == {}
    assert "prompt_bank" not in head.state_dict()


def test_unknown_fusion_and_template(backbone):
    with pytest.raises(ValueError, match="fusion 'sum'"):
        AAPEHead(backbone, fusion="sum")
    with pytest.raises(ValueError, match="has no"):
        ZeroShotHead(backbone).set_classes("all", CLASSES, "a photo")


def test_modulate_fusion_matches_its_explicit_formula(backbone):
    """The O(BKd) evaluation equals building w_k(x) = normalise(P1 c_k + (P2 p) * c_k) explicitly."""
    torch.manual_seed(0)
    head = AAPEHead(backbone, fusion="modulate")
    head.set_classes("all", CLASSES, "a photo of a {}.")
    torch.nn.init.normal_(head.aape_proj.weight, std=0.3)
    torch.nn.init.normal_(head.class_proj.weight, std=0.3)
    f = backbone.encode_image(images())
    p = head.core.generator(f)
    c = head.class_features("all")
    w = F.normalize(head.class_proj(c)[None] + head.aape_proj(p)[:, None] * c[None], dim=-1)  # (B, K, d)
    expected = backbone.logit_scale * torch.einsum("bd,bkd->bk", f, w)
    assert torch.allclose(head(f, "all").logits, expected, atol=1e-4)


def test_feature_fusion_matches_its_explicit_formula(backbone):
    torch.manual_seed(0)
    head = AAPEHead(backbone, fusion="feature")
    head.set_classes("all", CLASSES, "a photo of a {}.")
    torch.nn.init.normal_(head.aape_proj.weight, std=0.3)
    f = backbone.encode_image(images())
    p = head.core.generator(f)
    w = F.normalize(head.class_proj(head.class_features("all"))[None] + head.aape_proj(p)[:, None], dim=-1)
    expected = backbone.logit_scale * torch.einsum("bd,bkd->bk", f, w)
    assert torch.allclose(head(f, "all").logits, expected, atol=1e-4)


def test_shuffle_diagnostic_from_two_images_and_none_for_one(backbone):
    head = AAPEHead(backbone, residual=False)
    head.set_classes("all", CLASSES, "a photo of a {}.")
    f = backbone.encode_image(images(2))
    h = head.core.generator(f)
    assert torch.allclose(head.diagnostic_logits(f, "all")["shuffled"], head.logits(f, h.flip(0), "all"), atol=1e-6)
    assert head.diagnostic_logits(f[:1], "all") == {}


def test_token_fusion_tokenises_each_class_set_once_with_one_placeholder_per_token(backbone):
    head = AAPEHead(backbone, fusion="token", n_tokens=2)
    head.set_classes("all", CLASSES, "a photo of a {}.")
    tokens = head._class_tokens("all")
    assert head._class_tokens("all") is tokens  # cached
    assert torch.equal(tokens, backbone.tokenize([f"X X a photo of a {c}." for c in CLASSES]).to(tokens.device))


@pytest.mark.parametrize("fusion", ["feature", "modulate"])
def test_linear_fusions_with_short_class_weights_match_their_formula(backbone, fusion):
    """P1 = 0.1 I: |w_k(x)| before normalising is well below 1, so the cosine's denominator is not clamped."""
    torch.manual_seed(0)
    head = AAPEHead(backbone, fusion=fusion)
    head.set_classes("all", CLASSES, "a photo of a {}.")
    with torch.no_grad():
        head.class_proj.weight.mul_(0.1)
        torch.nn.init.normal_(head.aape_proj.weight, std=0.01)
    f = backbone.encode_image(images())
    p, c = head.core.generator(f), head.class_features("all")
    side = head.aape_proj(p)[:, None] * (c[None] if fusion == "modulate" else 1)  # (B, K | 1, d)
    w = F.normalize(head.class_proj(c)[None] + side, dim=-1)  # (B, K, d)
    expected = backbone.logit_scale * torch.einsum("bd,bkd->bk", f, w)
    assert torch.allclose(head(f, "all").logits, expected, atol=1e-4)


def test_prompts_are_used_only_in_training_with_labels_of_the_prompted_set(backbone):
    from aape_lightning.core.losses import contrastive_loss

    head = AAPEHead(backbone, core=partial(AAPECore, aggregator_loss="contrastive", aggregator_weight=1.0))
    head.set_classes("all", CLASSES, "a photo of a {}.")
    head.set_classes("other", CLASSES, "a photo of a {}.")
    bank = F.normalize(torch.randn(len(CLASSES), 3, backbone.embed_dim), dim=-1)
    head.set_prompts("all", bank, torch.ones(len(CLASSES), 3, dtype=torch.bool))
    f, labels = backbone.encode_image(images(4)), torch.tensor([0, 1, 2, 3])
    assert head.eval()(f, "all", labels).losses == {}  # evaluation
    head.train()
    assert head(f, "all").losses == {} and head(f, "other", labels).losses == {}  # no labels; another class set
    out = head(f, "all", labels)
    aggregated = head.core.aggregator(f, bank[labels], torch.ones(4, 3, dtype=torch.bool)).detach()
    expected = contrastive_loss(f, aggregated, backbone.logit_scale)  # at CLIP's logit scale
    assert torch.isclose(out.losses["aggregator"], expected, atol=1e-5)


def test_the_default_head_is_the_papers_concat_fusion_with_r_32_starting_at_zero_shot(backbone):
    """Defaults: fusion "concat", hidden r = 32 (2dr + r + rd + d parameters in g), residual (step 0 = zero-shot)."""
    head, zs = AAPEHead(backbone), ZeroShotHead(backbone)
    d = backbone.embed_dim
    assert sum(p.numel() for p in head.concat.parameters()) == 2 * d * 32 + 32 + 32 * d + d
    for h in (head, zs):
        h.set_classes("all", CLASSES, "a photo of a {}.")
    f = backbone.encode_image(images())
    assert torch.allclose(head(f, "all").logits, zs(f, "all").logits, atol=1e-5)


def test_an_unknown_fusion_is_refused_with_the_known_ones_listed(backbone):
    with pytest.raises(ValueError, match=r"^AAPEHead: fusion 'sum' is not one of 'concat', 'proxy', 'feature', "
                                         r"'modulate', 'token'$"):
        AAPEHead(backbone, fusion="sum")


def test_token_fusion_defaults_to_one_soft_token(backbone):
    head = AAPEHead(backbone, fusion="token")
    head.set_classes("all", CLASSES, "a photo of a {}.")
    tokens = head._class_tokens("all")
    assert torch.equal(tokens, backbone.tokenize([f"X a photo of a {c}." for c in CLASSES]).to(tokens.device))


def test_token_fusion_with_a_word_as_its_soft_token_scores_that_written_prompt(backbone):
    """h(x) -> token map set to the embedding of "photo" for every image: the prompt is the plain text
    "photo a photo of a <class>.", and the logits are tau * cos(f, its CLIP text feature)."""
    head = AAPEHead(backbone, fusion="token")
    head.set_classes("all", CLASSES, "a photo of a {}.")
    word = backbone.embed_tokens(backbone.tokenize(["photo"]))[0, backbone.context_start]  # (w,)
    with torch.no_grad():
        head.to_tokens.weight.zero_()
        head.to_tokens.bias.copy_(word)
    f = backbone.encode_image(images())
    text = backbone.encode_text([f"photo a photo of a {c}." for c in CLASSES])  # (K, d)
    expected = backbone.logit_scale * f @ text.t()
    assert torch.allclose(head.logits(f, head.core.generator(f), "all"), expected, atol=1e-4)


def test_the_prompt_bank_follows_the_head_and_is_never_saved(backbone):
    """Bank and mask are buffers (moved and cast with the head) left out of the state dict, so a
    checkpoint loads into a head whose class set has another number of prompts."""
    head = AAPEHead(backbone)
    head.set_classes("all", CLASSES, "a photo of a {}.")
    bank, mask = torch.randn(len(CLASSES), 3, backbone.embed_dim), torch.ones(len(CLASSES), 3, dtype=torch.bool)
    head.set_prompts("all", bank, mask)
    buffers = dict(head.named_buffers())
    assert buffers["prompt_bank"] is bank and buffers["prompt_mask"] is mask
    head.double()
    assert head.prompt_bank.dtype == torch.float64 and head.prompt_mask.dtype == torch.bool
    assert not {"prompt_bank", "prompt_mask"} & set(head.state_dict())
    fresh = AAPEHead(backbone).double()
    fresh.set_prompts("all", bank[:, :1].double(), mask[:, :1])
    fresh.load_state_dict(head.state_dict())  # strict


@pytest.mark.parametrize("fusion", ["feature", "modulate"])
def test_linear_fusions_take_half_image_features(backbone, fusion):
    """Image features in bf16 (a mixed-precision run) are cast to the projections' dtype, not refused."""
    torch.manual_seed(0)
    head = AAPEHead(backbone, fusion=fusion)
    head.set_classes("all", CLASSES, "a photo of a {}.")
    torch.nn.init.normal_(head.aape_proj.weight, std=0.3)
    f = backbone.encode_image(images()).bfloat16()
    h = head.core.generator(f.float())
    assert torch.allclose(head.logits(f, h, "all"), head.logits(f.float(), h, "all"), atol=1e-5)


@pytest.mark.parametrize("fusion", ["feature", "modulate"])
def test_the_feature_fusions_projections_have_no_bias(backbone, fusion):
    """P1 and P2 are the paper's bias-free maps (their pragma lines hide a dropped ``bias=False``; this holds it)."""
    head = AAPEHead(backbone, fusion=fusion)
    assert head.class_proj.bias is None and head.aape_proj.bias is None
