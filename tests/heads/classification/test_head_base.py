"""What every classification head shares (heads/classification/base.py), on a stand-in backbone with hand-set text features."""

import pytest
import torch

from aape_lightning.errors import DataError, TextTooLongError
from aape_lightning.heads.classification.base import ClassificationHead, _shown, check_class_names, zero_shot_logits

R2 = 2**-0.5


class WordBackbone:
    """Stands in for FrozenCLIP: one token per word plus SOS and EOT, a context of 6, and a fixed feature per text."""

    context_length = 6

    def __init__(self, features: dict[str, list[float]]) -> None:
        self.features = features
        self.device = torch.device("cpu")
        self.encoded: list[list[str]] = []  # every text_features call, to count the encodings

    def token_count(self, text: str) -> int:
        return len(text.split()) + 2

    def text_features(self, texts: list[str]) -> torch.Tensor:
        self.encoded.append(list(texts))
        return torch.tensor([self.features[t] for t in texts])  # (len(texts), d)


FEATURES = {  # d = 3, K = 2 classes, 2 templates
    "a cat": [1.0, 0.0, 0.0],
    "the cat": [0.0, 1.0, 0.0],
    "a dog": [0.0, 0.6, 0.8],
    "the dog": [0.0, 0.6, 0.8],
    "a fox": [0.0, 0.0, 2.0],
}


def test_class_features_are_the_normalised_mean_over_the_templates():
    backbone = WordBackbone(FEATURES)
    head = ClassificationHead(backbone)
    head.templates = ["a {}", "the {}"]
    head.set_classes("all", ["cat", "dog"], "a {}")
    # cat: mean((1, 0, 0), (0, 1, 0)) = (0.5, 0.5, 0) -> (1/sqrt 2, 1/sqrt 2, 0); dog: both (0, 0.6, 0.8), already unit
    expected = torch.tensor([[R2, R2, 0.0], [0.0, 0.6, 0.8]])
    assert torch.allclose(head.class_features("all"), expected, atol=1e-6)
    assert backbone.encoded == [["a cat", "a dog", "the cat", "the dog"]]  # template-major, as the (T, K, d) view reads it


def test_one_template_gives_its_normalised_features():
    head = ClassificationHead(WordBackbone(FEATURES))
    assert head.templates is None  # only heads that ensemble templates set them
    head.set_classes("all", ["fox", "cat"], "a {}")
    assert torch.allclose(head.class_features("all"), torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]))


def test_class_features_are_encoded_once_until_the_set_or_the_device_changes():
    backbone = WordBackbone(FEATURES)
    head = ClassificationHead(backbone)
    head.set_classes("all", ["cat"], "a {}")
    head.set_classes("other", ["dog"], "a {}")
    head.class_features("all")
    head.class_features("other")
    first = head.class_features("all")
    assert backbone.encoded == [["a cat"], ["a dog"]]  # the second call for "all" is served from the cache
    assert torch.equal(first, torch.tensor([[1.0, 0.0, 0.0]]))
    head.set_classes("all", ["fox"], "a {}")  # re-registering a set drops its cached features, and only its own
    assert torch.equal(head.class_features("all"), torch.tensor([[0.0, 0.0, 1.0]]))
    head.class_features("other")
    assert backbone.encoded == [["a cat"], ["a dog"], ["a fox"]]
    backbone.device = torch.device("meta")  # the backbone moved: features cached on the CPU are encoded again
    head.class_features("all")
    assert backbone.encoded[-1] == ["a fox"] and len(backbone.encoded) == 4


def test_an_unregistered_class_set_names_the_known_ones():
    head = ClassificationHead(WordBackbone(FEATURES))
    head.set_classes("base", ["cat"], "a {}")
    head.set_classes("all", ["cat", "dog"], "a {}")
    with pytest.raises(KeyError, match=r"class set 'new' was never registered; known: \['all', 'base'\]"):
        head.class_features("new")


def test_a_template_without_a_slot_for_the_name_is_refused():
    head = ClassificationHead(WordBackbone(FEATURES))
    with pytest.raises(DataError, match=r"class template 'a photo' has no '\{\}' where the class name goes; add one"):
        head.set_classes("all", ["cat"], "a photo")
    assert head.class_sets == {}


def test_set_classes_checks_each_name_with_the_longest_template_against_the_context():
    head = ClassificationHead(WordBackbone(FEATURES))
    head.templates = ["a {}", "a photo of {}"]
    with pytest.raises(TextTooLongError, match=r"^class name 'sea lion' of class set 'base' takes 7 tokens as 'a photo of sea lion'"):
        head.set_classes("base", ["cat", "sea lion"], "{}")  # the set's own "{}" is not used: the ensemble is
    assert head.class_sets == {}


def test_a_head_scores_any_class_set_unless_it_says_otherwise():
    assert ClassificationHead(WordBackbone(FEATURES)).supports("new") is True


def test_a_head_without_prompts_refuses_them_by_its_own_name():
    class PlainHead(ClassificationHead):
        pass

    with pytest.raises(TypeError, match=r"^PlainHead does not use prompts$"):
        PlainHead(WordBackbone(FEATURES)).set_prompts("all", torch.zeros(1, 1, 3), torch.ones(1, 1, dtype=torch.bool))


def test_longest_template_counts_the_tokens_without_the_name():
    """Without the name, "a {}." is "a ." (2 words) and "{} c" is " c" (1): the first wins. Filled with any name
    both would be 2 words (the name glues to the full stop), and max would keep the first listed, "{} c"."""
    head = ClassificationHead(WordBackbone(FEATURES))
    head.templates = ["{} c", "a {}.", "{}"]
    assert head.longest_template("unused {}") == "a {}."
    head.templates = None
    assert head.longest_template("b {}") == "b {}"  # no ensemble: the set's own template


def test_a_class_name_too_long_for_the_context_is_named_with_its_text_and_the_fix():
    backbone = WordBackbone(FEATURES)
    check_class_names(backbone, "all", ["cat", "red fox"], "a photo {}")  # "a photo red fox": 4 words + 2 = 6 fits
    with pytest.raises(TextTooLongError) as err:
        check_class_names(backbone, "all", ["cat", "sea lion"], "a photo of {}")  # 5 words + 2 = 7 > 6
    assert str(err.value) == (
        "class name 'sea lion' of class set 'all' takes 7 tokens as 'a photo of sea lion', more than the backbone's "
        "text context of 6 (SOS and EOT included); shorten that class name in the dataset (its split file or class "
        "folder), or use a shorter template"
    )


def test_shown_cuts_a_text_longer_than_120_characters_to_117_and_an_ellipsis():
    text = "".join(str(i % 10) for i in range(121))  # 0123456789012...0
    assert _shown(text[:120]) == text[:120]  # 120 characters: shown whole
    assert _shown(text) == text[:117] + "..."  # 121: cut, 120 in all
    assert _shown("abcdef", limit=5) == "ab..."


def test_zero_shot_logits_scale_the_cosines_in_the_image_dtype():
    image = torch.tensor([[0.6, 0.8], [1.0, 0.0]], dtype=torch.float64)  # (B=2, d=2)
    classes = torch.tensor([[1.0, 0.0], [0.0, 1.0], [R2, R2]])  # (K=3, d) fp32: cast to the image's dtype
    got = zero_shot_logits(image, classes, torch.tensor(10.0))
    expected = torch.tensor([[6.0, 8.0, 14.0 * R2], [10.0, 0.0, 10.0 * R2]], dtype=torch.float64)
    assert got.dtype == torch.float64 and torch.allclose(got, expected)
