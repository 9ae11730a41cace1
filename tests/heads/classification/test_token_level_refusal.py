"""A soft-prompt head on a backbone without a reachable token embedding is refused in one line naming the head."""

from __future__ import annotations

import pytest

from aape_lightning.backbones import BackboneError, FrozenCLIP
from aape_lightning.heads import AAPEHead, CoCoOpHead, CoOpHead, KgCoOpHead, LearnedContext


@pytest.fixture()
def feature_level(tiny_clip, tmp_path, monkeypatch):
    """The tiny CLIP as a family that cannot reach its text tower's token embedding would be."""
    monkeypatch.setattr(FrozenCLIP, "token_embedding", property(lambda self: None))
    return FrozenCLIP.load(str(tiny_clip), tmp_path / "cache")


@pytest.mark.parametrize("soft_prompt", [CoOpHead, CoCoOpHead, KgCoOpHead, LearnedContext], ids=lambda c: c.__name__)
def test_the_refusal_names_the_class_the_user_built(feature_level, soft_prompt):
    name = soft_prompt.__name__
    with pytest.raises(BackboneError, match=rf"^head {name} needs the text tower at token level .* \(clip-anytorch\)"):
        soft_prompt(feature_level)


def test_aape_token_fusion_is_refused_naming_the_head_and_its_fusion(feature_level):
    with pytest.raises(BackboneError, match=r"^head AAPEHead\(fusion='token'\) needs the text tower at token level "):
        AAPEHead(feature_level, fusion="token")
    AAPEHead(feature_level, fusion="concat")  # the feature-level fusions build on it
