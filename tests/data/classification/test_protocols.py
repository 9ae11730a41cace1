from aape_lightning.data.classification.protocols import base_new_labels, sample_few_shot, subsample_classes
from aape_lightning.data.classification.records import LabelledImage


def items(n_classes=5, per_class=10):
    return [LabelledImage(f"/x/{c}/{i}.png", c, f"class{c}") for c in range(n_classes) for i in range(per_class)]


def test_few_shot_is_deterministic_per_seed_and_balanced():
    a, b, c = (sample_few_shot(items(), 4, s) for s in (1, 1, 2))
    assert a == b and a != c
    assert all(sum(it.label == k for it in a) == 4 for k in range(5))


def test_few_shot_keeps_small_classes_whole_and_zero_means_all():
    data = items(per_class=3)
    assert len(sample_few_shot(data, 16, 1)) == 15
    assert sample_few_shot(data, 0, 1) == data


def test_few_shot_drawn_before_class_split():
    """The base classes' sample is the same whether or not new classes exist (CoOp order)."""
    full = sample_few_shot(items(5), 4, 1)
    base, _ = base_new_labels(5)
    assert [it.path for it in subsample_classes(full, base)] == [it.path for it in full if it.label in base]


def test_base_new_split_ceil_half_and_relabel():
    assert base_new_labels(5) == ([0, 1, 2], [3, 4])
    assert base_new_labels(4) == ([0, 1], [2, 3])
    new = subsample_classes(items(5, 2), [3, 4])
    assert sorted({it.label for it in new}) == [0, 1]
    assert {it.classname for it in new if it.label == 0} == {"class3"}
