"""Each baseline's formulation, pinned by an identity that breaks when it drifts."""

import pytest
import torch
import torch.nn.functional as F

from aape_lightning.backbones import FrozenCLIP
from aape_lightning.errors import TextTooLongError, UserError
from aape_lightning.heads import (
    AAPEHead,
    CoCoOpHead,
    ContextOptions,
    CoOpHead,
    CuPLHead,
    KgCoOpHead,
    LinearProbeHead,
    ZeroShotHead,
)

CLASSES = ["red square", "green circle", "blue triangle", "sea lion"]
TEMPLATE = "a photo of a {}."


@pytest.fixture()
def backbone(tiny_clip, tmp_path):
    return FrozenCLIP.load(str(tiny_clip), tmp_path / "cache")


@pytest.fixture()
def feats(backbone):
    return backbone.encode_image(torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(0)))


def ready(head, name="all"):
    head.set_classes(name, CLASSES, TEMPLATE)
    return head


def text_logits(backbone, feats, texts):
    return backbone.logit_scale * feats @ backbone.encode_text(texts).t()


@pytest.mark.parametrize(
    "position, fmt", [("end", "a photo of a {}."), ("front", "{} a photo of a."), ("middle", "a photo {} of a.")]
)
def test_coop_word_init_is_zero_shot(backbone, feats, position, fmt):
    coop = ready(CoOpHead(backbone, ContextOptions(ctx_init="a photo of a", class_token_position=position)))
    expected = text_logits(backbone, feats, [fmt.format(c) for c in CLASSES])
    assert torch.allclose(coop(feats, "all").logits, expected, atol=1e-4)


def test_coop_random_init_and_class_specific_shapes(backbone, feats):
    torch.manual_seed(0)
    coop = ready(CoOpHead(backbone, ContextOptions(n_ctx=8)))
    assert coop.context.ctx.shape == (8, backbone.token_width)
    assert 0.01 < coop.context.ctx.std() < 0.03
    random_csc = ready(CoOpHead(backbone, ContextOptions(n_ctx=8, class_specific=True)))
    ctx = random_csc.context.ctx["all"]  # (K, n, w): CoOp draws each class's context independently
    assert ctx.shape == (4, 8, backbone.token_width) and 0.01 < ctx.std() < 0.03
    assert all(not torch.allclose(ctx[0], ctx[k]) for k in range(1, 4))
    csc = ready(CoOpHead(backbone, ContextOptions(ctx_init="a photo of a", class_specific=True)))
    assert csc.context.ctx["all"].shape == (4, 4, backbone.token_width)
    expected = text_logits(backbone, feats, [TEMPLATE.format(c) for c in CLASSES])
    assert torch.allclose(csc(feats, "all").logits, expected, atol=1e-4)


def test_word_init_gives_one_vector_per_word_as_coop_counts(backbone):
    from aape_lightning.backbones.clip_loader import clip

    words = "a photo of a zyzzyvaqx"  # a rare last word: several BPE tokens, one word
    assert len(clip.clip._tokenizer.encode(words)) > 5
    coop = CoOpHead(backbone, ContextOptions(ctx_init=words))
    assert coop.context.n_ctx == 5 and coop.context.ctx.shape == (5, backbone.token_width)
    first = backbone.embed_tokens(backbone.tokenize([words]))[0, 1:6]  # (5, w): the first five token embeddings
    assert torch.equal(coop.context.ctx.detach().cpu(), first.cpu())


def coop_reference_prompt(backbone, words, name, ctx, position="end"):
    """CoOp's prompt (trainers/coop.py, PromptLearner), written out as facts, for one class.

    CoOp tokenizes ``f"{ctx_init} {name}."``, takes n_ctx = the number of space-separated words,
    keeps row 0 (SOS) as prefix and rows ``1 + n_ctx:`` as suffix, so the BPE pieces of the init
    words past the first n_ctx tokens stay in the suffix as fixed embeddings. "end": prefix, ctx,
    suffix; "front": prefix, suffix[:name_len], ctx, suffix[name_len:] with name_len the name's
    token count; EOT is found in the tokenized prompt. Returns ``(1, d)``.
    """
    from aape_lightning.backbones.clip_loader import clip

    n = ctx.shape[0]
    tokens = backbone.tokenize([f"{words} {name}."])  # (1, L)
    emb = backbone.embed_tokens(tokens)  # (1, L, w)
    prefix, suffix = emb[:, :1], emb[:, 1 + n :]
    ctx = ctx[None].to(emb.device)  # (1, n, w)
    if position == "end":
        full = torch.cat([prefix, ctx, suffix], dim=1)
    else:
        name_len = len(clip.clip._tokenizer.encode(name))
        full = torch.cat([prefix, suffix[:, :name_len], ctx, suffix[:, name_len:]], dim=1)
    return backbone.encode_embeddings(full, tokens)


@pytest.mark.parametrize("position", ["end", "front"])
def test_word_init_with_a_split_word_keeps_coops_leftover_tokens(backbone, feats, position):
    """ "a photo of a sattelitephoto" is 5 words and more tokens: CoOp learns 5, keeps the rest as tokens."""
    from aape_lightning.backbones.clip_loader import clip

    words = "a photo of a sattelitephoto"
    assert len(clip.clip._tokenizer.encode(words)) > len(words.split())
    coop = ready(CoOpHead(backbone, ContextOptions(ctx_init=words, class_token_position=position)))
    assert coop.context.n_ctx == 5
    if position == "end":  # at init CoOp's prompt is the plain text "<words> <class>."
        expected = text_logits(backbone, feats, [f"{words} {c}." for c in CLASSES])
        assert torch.allclose(coop(feats, "all").logits, expected, atol=1e-4)
    with torch.no_grad():
        coop.context.ctx += torch.randn_like(coop.context.ctx) * 0.3  # a trained context, not the words
    reference = torch.cat([coop_reference_prompt(backbone, words, c, coop.context.ctx.detach(), position)
                           for c in CLASSES])  # (K, d)
    expected = backbone.logit_scale * feats @ reference.t()
    assert torch.allclose(coop(feats, "all").logits, expected, atol=1e-5)
    dropped = ready(CoOpHead(backbone, ContextOptions(ctx_init=words, class_token_position=position,
                                                      init_leftover="drop")))
    dropped.context.ctx.data.copy_(coop.context.ctx.data)
    assert not torch.allclose(dropped(feats, "all").logits, expected, atol=1e-3)  # the option really differs
    same = ready(CoOpHead(backbone, ContextOptions(ctx_init="a photo of a", init_leftover="drop")))
    assert torch.allclose(same(feats, "all").logits, ready(CoOpHead(backbone, ContextOptions(
        ctx_init="a photo of a")))(feats, "all").logits)  # no split word: keep and drop agree


def test_random_context_same_seed_same_values_as_coop(backbone):
    """CoOp draws ``nn.init.normal_(torch.empty(n_cls, n_ctx, dim), std=0.02)`` for CSC (``(n_ctx, dim)``
    unified), once, with nothing drawn before it; the same seed gives the same context here."""
    for class_specific, shape in ((True, (len(CLASSES), 8, backbone.token_width)), (False, (8, backbone.token_width))):
        torch.manual_seed(3)
        reference = torch.nn.init.normal_(torch.empty(*shape), std=0.02)
        torch.manual_seed(3)
        head = ready(CoOpHead(backbone, ContextOptions(n_ctx=8, class_specific=class_specific)))
        assert torch.equal(head.context.context("all").detach().cpu(), reference), class_specific


def test_cocoop_with_zero_meta_net_equals_coop(backbone, feats):
    torch.manual_seed(0)
    cocoop = ready(CoCoOpHead(backbone, ContextOptions(n_ctx=4, ctx_init=None)))
    for p in cocoop.meta_net.parameters():
        torch.nn.init.zeros_(p)
    coop = ready(CoOpHead(backbone, ContextOptions(n_ctx=4)))
    coop.context.ctx.data.copy_(cocoop.context.ctx.data)
    assert torch.allclose(cocoop(feats, "all").logits, coop(feats, "all").logits, atol=1e-4)


def test_cocoop_is_image_conditioned_and_trains_meta_net(backbone, feats):
    torch.manual_seed(0)
    head = ready(CoCoOpHead(backbone)).train()
    out = head(feats, "all")
    F.cross_entropy(out.logits, torch.tensor([0, 1, 2, 3, 0])).backward()
    assert head.meta_net[0].weight.grad.abs().sum() > 0 and head.context.ctx.grad.abs().sum() > 0


def test_kgcoop_extra_loss_is_zero_at_template_init_and_grows(backbone, feats):
    head = ready(KgCoOpHead(backbone, ContextOptions(ctx_init="a photo of a"))).train()
    assert head(feats, "all").losses["knowledge"].abs() < 1e-5
    head.context.ctx.data += torch.randn_like(head.context.ctx) * 0.5
    assert head(feats, "all").losses["knowledge"] > 1e-3
    assert head.eval()(feats, "all").losses == {}


# KgCoOp's hand-written prompt per dataset, as CUSTOM_TEMPLATES in its trainers/kgcoop.py has it.
KGCOOP_PUBLISHED = {
    "OxfordPets": "a photo of a {}, a type of pet.", "OxfordFlowers": "a photo of a {}, a type of flower.",
    "FGVCAircraft": "a photo of a {}, a type of aircraft.", "DescribableTextures": "a photo of a {}, a type of texture.",
    "EuroSAT": "a centered satellite photo of {}.", "StanfordCars": "a photo of a {}.",
    "Food101": "a photo of {}, a type of food.", "SUN397": "a photo of a {}.", "Caltech101": "a photo of a {}.",
    "UCF101": "a photo of a person doing {}.", "ImageNet": "a photo of a {}.", "ImageNetSketch": "a photo of a {}.",
    "ImageNetV2": "a photo of a {}.", "ImageNetA": "a photo of a {}.", "ImageNetR": "a photo of a {}.",
}


def test_kgcoop_guides_with_kgcoops_own_template_of_each_dataset(backbone):
    """The data hands over CoOp's template (DTD: "{} texture."); KgCoOp's knowledge target uses its own."""
    from aape_lightning.data.classification.catalog import CATALOG

    assert sorted(KGCOOP_PUBLISHED) == sorted(CATALOG)
    head = KgCoOpHead(backbone)
    for name, spec in CATALOG.items():
        head.set_classes(name, CLASSES, spec.template)
        expected = F.normalize(backbone.text_features([KGCOOP_PUBLISHED[name].format(c) for c in CLASSES]), dim=-1)
        assert torch.allclose(head.class_features(name), expected, atol=1e-6), name
    custom = KgCoOpHead(backbone, template="a drawing of a {}.")
    custom.set_classes("all", CLASSES, "{} texture.")
    assert custom.class_sets["all"][1] == "a drawing of a {}."
    unknown = KgCoOpHead(backbone)  # a dataset KgCoOp never ran keeps the data's template
    unknown.set_classes("all", CLASSES, "a drawing of a {}.")  # in no catalog entry ("a photo of a {}." is ImageNet's)
    assert unknown.class_sets["all"][1] == "a drawing of a {}."


def test_kgcoop_context_is_kgcoops_or_refused(backbone):
    """KgCoOp starts from "a photo of a" (or random) with the class token at the end; nothing else passes silently."""
    assert KgCoOpHead(backbone).context.n_ctx == 4
    assert KgCoOpHead(backbone, ContextOptions(n_ctx=8)).context.n_ctx == 8  # KgCoOp's CTX_INIT False: random
    for options in (ContextOptions(ctx_init="a picture of"), ContextOptions(ctx_init="a photo of a",
                                                                            class_token_position="front")):
        with pytest.raises(UserError, match=r"KgCoOpHead: KgCoOp starts its context from 'a photo of a'.*CoOpHead"):
            KgCoOpHead(backbone, options)


def test_cupl_with_one_prompt_equals_zero_shot_with_that_prompt(backbone, feats):
    prompts = [f"a blurry picture of a {c}." for c in CLASSES]
    cupl = ready(CuPLHead(backbone))
    bank = backbone.encode_text(prompts)[:, None]  # (K, 1, d)
    cupl.set_prompts("all", bank, torch.ones(4, 1, dtype=torch.bool))
    assert torch.allclose(cupl(feats, "all").logits, text_logits(backbone, feats, prompts), atol=1e-5)


def test_cupl_averages_real_prompts_only(backbone, feats):
    cupl = ready(CuPLHead(backbone))
    a = backbone.encode_text([f"a {c}." for c in CLASSES])
    b = backbone.encode_text([f"the {c}." for c in CLASSES])
    bank = torch.stack([a, b, torch.randn_like(a) * 50], dim=1)  # (K, 3, d), third is padding
    mask = torch.tensor([[True, True, False]] * 4)
    cupl.set_prompts("all", bank, mask)
    expected = backbone.logit_scale * feats @ F.normalize(a + b, dim=-1).t()
    assert torch.allclose(cupl(feats, "all").logits, expected, atol=1e-5)


def test_template_ensemble_averages_normalised_features(backbone, feats):
    templates = ["a photo of a {}.", "a drawing of a {}."]
    head = ready(ZeroShotHead(backbone, templates=templates))
    t = [backbone.encode_text([tpl.format(c) for c in CLASSES]) for tpl in templates]
    expected = backbone.logit_scale * feats @ F.normalize(t[0] + t[1], dim=-1).t()
    assert torch.allclose(head(feats, "all").logits, expected, atol=1e-5)


def test_linear_probe_scores_its_training_classes_only(backbone, feats):
    probe = LinearProbeHead(backbone, init="zero_shot")
    probe.set_classes("base", CLASSES, TEMPLATE)
    probe.set_classes("new", ["cat", "dog"], TEMPLATE)
    assert probe.supports("base") and not probe.supports("new")
    assert torch.allclose(probe(feats, "base").logits, text_logits(backbone, feats, [TEMPLATE.format(c) for c in CLASSES]), atol=1e-4)
    with pytest.raises(ValueError, match="only its training classes"):
        probe(feats, "new")


def test_context_too_long_and_class_name_too_long_name_the_problem(backbone):
    with pytest.raises(ValueError, match="n_ctx=40 leaves no room"):
        CoOpHead(backbone, ContextOptions(n_ctx=40))
    head = CoOpHead(backbone, ContextOptions(n_ctx=16))
    long_name = "extraordinarily long class name " * 3
    with pytest.raises(TextTooLongError, match=r"class name 'extraordinarily long class name .*' of class set 'all' "
                                               r"takes \d+ tokens .* text context of 32 .* or lower n_ctx \(16\)"):
        head.set_classes("all", ["cat", long_name], TEMPLATE)


def test_every_class_set_is_checked_against_the_context_when_classes_arrive(backbone):
    """A new-class name too long for the context fails when the classes are set (before training), not at test."""
    long_name = "big " * 28 + "moth"
    for head in (ZeroShotHead(backbone), ZeroShotHead(backbone, templates=["{}", "a blurry photo of a {}."]),
                 KgCoOpHead(backbone), AAPEHead(backbone), CuPLHead(backbone, with_template=True)):
        head.set_classes("base", CLASSES, TEMPLATE)
        with pytest.raises(TextTooLongError) as err:
            head.set_classes("new", ["cat", long_name], TEMPLATE)
        message = str(err.value)
        assert f"class name {long_name!r} of class set 'new' takes " in message, message
        assert "more than the backbone's text context of 32" in message and "shorten that class name" in message
        assert "\n" not in message and "new" not in head.class_sets
    # AAPE's token fusion puts its soft tokens before the template: a name that fits alone may not fit there
    fits_alone = "sea " * (32 - backbone.token_count(TEMPLATE.format("")))
    assert backbone.token_count(TEMPLATE.format(fits_alone)) == 32
    AAPEHead(backbone).set_classes("new", [fits_alone], TEMPLATE)
    with pytest.raises(TextTooLongError, match=r"takes 33 tokens as 'X a photo of a sea"):
        AAPEHead(backbone, fusion="token", n_tokens=1).set_classes("new", [fits_alone], TEMPLATE)


def test_heads_say_whether_they_train(backbone):
    assert not ZeroShotHead(backbone).trains and not CuPLHead(backbone).trains
    assert CoOpHead(backbone).trains and LinearProbeHead(backbone).trains  # the probe before its classes exist


def test_cupl_full_counts_the_template_as_one_more_prompt(backbone, feats):
    """CuPL's "full" variant: w_k = normalise(mean(prompt features of k, template feature of k))."""
    prompts = backbone.encode_text([f"a blurry picture of a {c}." for c in CLASSES])  # (K, d)
    template = backbone.encode_text([TEMPLATE.format(c) for c in CLASSES])  # (K, d)
    cupl = ready(CuPLHead(backbone, with_template=True))
    cupl.set_prompts("all", prompts[:, None], torch.ones(4, 1, dtype=torch.bool))
    expected = backbone.logit_scale * feats @ F.normalize((prompts + template) / 2, dim=-1).t()
    assert torch.allclose(cupl(feats, "all").logits, expected, atol=1e-5)


def test_cupl_without_prompts_for_a_class_set_says_so(backbone, feats):
    with pytest.raises(KeyError, match=r"CuPLHead: no prompts were loaded for class set 'new' \(set data.prompts\)"):
        ready(CuPLHead(backbone), "new")(feats, "new")


def test_kgcoop_scores_coops_prompt_and_takes_underscored_init_words(backbone, feats):
    """At init KgCoOp's logits are zero-shot CLIP's with "a photo of a <class>."; "a_photo_of_a" is the same init."""
    expected = text_logits(backbone, feats, [TEMPLATE.format(c) for c in CLASSES])
    for words in ("a photo of a", "a_photo_of_a"):
        head = ready(KgCoOpHead(backbone, ContextOptions(ctx_init=words)))
        assert torch.allclose(head(feats, "all").logits, expected, atol=1e-4), words


def test_kgcoop_template_without_a_slot_is_named(backbone):
    with pytest.raises(UserError, match=r"^KgCoOpHead: template 'a drawing' has no '\{\}' where the class name goes$"):
        KgCoOpHead(backbone, template="a drawing")


def test_zero_shot_templates_without_a_slot_are_named(backbone):
    with pytest.raises(ValueError, match=r"^ZeroShotHead: templates without '\{\}' for the class name: \['a drawing'\]$"):
        ZeroShotHead(backbone, templates=["a photo of a {}.", "a drawing"])


def test_linear_probe_starts_at_zero_by_default_and_refuses_an_unknown_init(backbone, feats):
    probe = ready(LinearProbeHead(backbone))
    assert torch.equal(probe(feats, "all").logits, torch.zeros(5, len(CLASSES)))
    with pytest.raises(ValueError, match=r"^LinearProbeHead: init 'random' is not one of 'zeros', 'zero_shot'$"):
        LinearProbeHead(backbone, init="random")  # type: ignore[arg-type]


def test_linear_probe_is_built_once_for_its_named_training_set(backbone, feats):
    """With train_set="base" the layer waits for "base" (whatever arrives first); a second call keeps it."""
    probe = LinearProbeHead(backbone, init="zero_shot", train_set="base")
    probe.set_classes("new", ["cat", "dog"], TEMPLATE)
    assert probe.linear is None
    probe.set_classes("base", CLASSES, TEMPLATE)
    assert probe.linear.out_features == len(CLASSES)
    layer = probe.linear
    probe.set_classes("base", CLASSES, TEMPLATE)  # e.g. the task's setup run again: training is kept
    assert probe.linear is layer
    half = feats.bfloat16()  # half features are cast to the layer's dtype
    assert torch.allclose(probe(half, "base").logits, probe(half.float(), "base").logits, atol=1e-6)


def test_cocoop_meta_net_is_linear_relu_linear_with_width_d_over_16(backbone):
    """CoCoOp's meta-net: Linear(d, d // 16), ReLU, Linear(d // 16, w); at least one hidden unit."""
    torch.manual_seed(0)
    head = CoCoOpHead(backbone)
    first, last = head.meta_net[0], head.meta_net[-1]
    assert first.out_features == backbone.embed_dim // 16 and last.out_features == backbone.token_width
    x = torch.randn(3, backbone.embed_dim)
    expected = F.linear(torch.relu(F.linear(x, first.weight, first.bias)), last.weight, last.bias)  # (3, w)
    assert torch.allclose(head.meta_net(x), expected, atol=1e-6)
    assert CoCoOpHead(backbone, meta_hidden_ratio=2 * backbone.embed_dim).meta_net[0].out_features == 1


def test_cocoop_checks_class_names_of_the_named_set(backbone):
    head = ready(CoCoOpHead(backbone))
    with pytest.raises(TextTooLongError, match=r"of class set 'new' takes"):
        head.set_classes("new", ["big " * 30 + "moth"], TEMPLATE)
    assert sorted(head.class_sets) == ["all"]
