"""The learned context's options: init words as CoOp writes them, the context-length limit, the value checks."""

from __future__ import annotations

import pytest
import torch

from aape_lightning.backbones import FrozenCLIP
from aape_lightning.heads import ContextOptions, LearnedContext


@pytest.fixture()
def backbone(tiny_clip, tmp_path):
    return FrozenCLIP.load(str(tiny_clip), tmp_path / "cache")


def test_underscores_in_the_init_words_are_spaces(backbone):
    spaced = LearnedContext(backbone, ContextOptions(ctx_init="a photo of a"))
    underscored = LearnedContext(backbone, ContextOptions(ctx_init="a_photo_of_a"))
    assert underscored.n_ctx == 4 and torch.equal(underscored.ctx, spaced.ctx)


def test_n_ctx_leaves_room_for_sos_a_name_and_eot(backbone):
    limit = backbone.context_length
    assert LearnedContext(backbone, ContextOptions(n_ctx=limit - 3)).n_ctx == limit - 3
    with pytest.raises(ValueError, match=rf"context length of {limit} tokens; use n_ctx <= {limit - 3}$"):
        LearnedContext(backbone, ContextOptions(n_ctx=limit - 2))


def test_an_unknown_class_position_is_named(backbone):
    with pytest.raises(ValueError, match=r"^class_token_position 'left' is not one of 'end', 'middle', 'front'$"):
        LearnedContext(backbone, ContextOptions(class_token_position="left"))  # type: ignore[arg-type]


def test_a_random_context_is_tokenized_as_coops_x_placeholders(backbone):
    """CoOp's prompt for a random context of n = 4: "X X X X <class>." (the X tokens are replaced by the context)."""
    context = LearnedContext(backbone, ContextOptions(n_ctx=4))
    context.add_class_set("all", ["red square", "sea lion"])
    tokens, _ = context._layouts["all"]
    assert torch.equal(tokens, backbone.tokenize(["X X X X red square.", "X X X X sea lion."]).cpu())


def test_an_unknown_init_leftover_is_named(backbone):
    with pytest.raises(ValueError, match=r"^init_leftover 'kep' is not one of 'keep', 'drop'$"):
        LearnedContext(backbone, ContextOptions(ctx_init="a photo of a", init_leftover="kep"))  # type: ignore[arg-type]
