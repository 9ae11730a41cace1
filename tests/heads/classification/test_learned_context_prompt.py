"""The text CoOp's context is tokenized from: init words kept verbatim (braces too), X placeholders shown in errors."""

from __future__ import annotations

import pytest
import torch

from aape_lightning.backbones import FrozenCLIP
from aape_lightning.errors import TextTooLongError
from aape_lightning.heads import ContextOptions, LearnedContext

CLASSES = ["red square", "sea lion"]


@pytest.fixture()
def backbone(tiny_clip, tmp_path):
    return FrozenCLIP.load(str(tiny_clip), tmp_path / "cache")


def test_braces_in_the_init_words_reach_the_text_encoder_verbatim(backbone):
    """Init words are text, not a format string: "a {photo} of a" keeps its braces (6 tokens, the last 2 kept)."""
    context = LearnedContext(backbone, ContextOptions(ctx_init="a {photo} of a"))
    context.add_class_set("all", CLASSES)
    want = backbone.encode_text(["a {photo} of a red square.", "a {photo} of a sea lion."])  # (K, d)
    with torch.no_grad():
        torch.testing.assert_close(context("all"), want, atol=1e-5, rtol=1e-5)


def test_a_name_too_long_is_shown_in_coops_placeholder_prompt(backbone):
    """The error shows the prompt the name was measured in: 4 X placeholders, then the name (so n_ctx counts)."""
    context = LearnedContext(backbone, ContextOptions(n_ctx=4))
    name = " ".join(["red"] * 30)  # SOS + 4 X + 30 + "." + EOT = 37 tokens > the tiny CLIP's 32
    with pytest.raises(TextTooLongError, match=r"takes 37 tokens as 'X X X X red red .*or lower n_ctx \(4\)$"):
        context.add_class_set("all", [name])
