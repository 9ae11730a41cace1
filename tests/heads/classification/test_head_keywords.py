"""Every head passes its extra keywords on to ClassificationHead: the task's ``core`` is taken, a misspelt option refused."""

from __future__ import annotations

import pytest

from aape_lightning.backbones import FrozenCLIP
from aape_lightning.heads import CoCoOpHead, CoOpHead, CuPLHead, KgCoOpHead, LinearProbeHead, ZeroShotHead

# each head with a plausible slip of one of its own options (the real name in the comment)
MISSPELT = [
    (CoOpHead, "contxt"),  # context
    (CoCoOpHead, "meta_hidden"),  # meta_hidden_ratio
    (CuPLHead, "with_templates"),  # with_template
    (KgCoOpHead, "weights"),  # weight
    (LinearProbeHead, "trian_set"),  # train_set
    (ZeroShotHead, "template"),  # templates
]


@pytest.fixture()
def backbone(tiny_clip, tmp_path):
    return FrozenCLIP.load(str(tiny_clip), tmp_path / "cache")


@pytest.mark.parametrize("head, slip", MISSPELT, ids=[h.__name__ for h, _ in MISSPELT])
def test_a_misspelt_option_is_refused_by_name(backbone, head, slip):
    """A head that dropped its **kwargs on the way to the base class would run with the default instead."""
    assert isinstance(head(backbone, core=None), head)  # the task's keyword reaches the base class
    with pytest.raises(TypeError, match=rf"unexpected keyword argument '{slip}'"):
        head(backbone, **{slip: 1})
