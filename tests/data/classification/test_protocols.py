import logging
import random
from collections import defaultdict

import pytest

from aape_lightning.data.classification.protocols import base_new_labels, sample_few_shot, subsample_classes
from aape_lightning.data.classification.records import LabelledImage


def items(n_classes=5, per_class=10):
    return [LabelledImage(f"/x/{c}/{i}.png", c, f"class{c}") for c in range(n_classes) for i in range(per_class)]


def interleaved(split: str, sizes=(12, 3, 20, 7, 16, 1), seed=0) -> list[LabelledImage]:
    """A split whose labels interleave and first appear out of order (1, 2, 3, 4, 0, ... for seed 0)."""
    rows = [LabelledImage(f"/{split}/{c}/{i}.png", c, f"class{c}") for c, n in enumerate(sizes) for i in range(n)]
    random.Random(seed).shuffle(rows)
    return rows


def dassl_reference(train, val, shots, seed):
    """Dassl's sampler as CoOp's datasets call it, written out from its public code (no Dassl here).

    ``set_random_seed(seed)`` seeds random (and numpy, torch: the sampler uses only random); then
    ``generate_fewshot_dataset(train, num_shots=shots)`` and ``(val, num_shots=min(shots, 4))``:
    ``split_dataset_by_label`` is a defaultdict filled in data order; per label
    ``random.sample(items, num_shots)`` if it has enough, else (repeat=False) all its items.
    """
    state = random.getstate()
    try:
        random.seed(seed)

        def generate_fewshot_dataset(data_source, num_shots):
            if num_shots < 1:
                return data_source
            tracker = defaultdict(list)
            for item in data_source:
                tracker[item.label].append(item)
            dataset = []
            for _label, group in tracker.items():
                dataset.extend(random.sample(group, num_shots) if len(group) >= num_shots else group)
            return dataset

        return generate_fewshot_dataset(train, shots), generate_fewshot_dataset(val, min(shots, 4))
    finally:
        random.setstate(state)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("shots", [1, 2, 4, 8, 16])
def test_few_shot_picks_dassls_images_in_dassls_order(seed, shots):
    train, val = interleaved("train"), interleaved("val", sizes=(5, 2, 9, 4, 6, 3), seed=1)
    assert [it.label for it in train[:3]] != [0, 1, 2]  # labels are not listed in ascending order
    ours = sample_few_shot(train, val, shots, seed)
    assert ours == dassl_reference(train, val, shots, seed)


def test_few_shot_is_deterministic_per_seed_and_balanced():
    a, b, c = (sample_few_shot(items(), items(), 4, s) for s in (1, 1, 2))
    assert a == b and a != c
    assert all(sum(it.label == k for it in a[0]) == 4 for k in range(5))
    assert all(sum(it.label == k for it in a[1]) == 4 for k in range(5))  # val: min(shots, 4)


def test_few_shot_keeps_small_classes_whole_says_which_and_zero_means_all(caplog):
    data = items(n_classes=3, per_class=3) + items(n_classes=1, per_class=20)
    with caplog.at_level(logging.WARNING):
        train, _ = sample_few_shot(data, data, 16, 1, source="Tiny")
    assert sum(it.label == 1 for it in train) == 3 and sum(it.label == 0 for it in train) == 16
    (warning,) = [r.getMessage() for r in caplog.records if "train" in r.getMessage()]
    assert "Tiny train" in warning and "'class1' 3" in warning and "'class2' 3" in warning
    assert "class0" not in warning  # class 0 has 23 images: enough
    assert sample_few_shot(data, data, 0, 1) == (data, data)


def test_few_shot_drawn_before_class_split():
    """The base classes' sample is the same whether or not new classes exist (CoOp order)."""
    full, _ = sample_few_shot(items(5), items(5), 4, 1)
    base, _ = base_new_labels(5)
    assert [it.path for it in subsample_classes(full, base)] == [it.path for it in full if it.label in base]


def test_base_new_split_ceil_half_and_relabel():
    assert base_new_labels(5) == ([0, 1, 2], [3, 4])
    assert base_new_labels(4) == ([0, 1], [2, 3])
    new = subsample_classes(items(5, 2), [3, 4])
    assert sorted({it.label for it in new}) == [0, 1]
    assert {it.classname for it in new if it.label == 0} == {"class3"}


def test_val_shots_given_and_the_warning_names_each_split(caplog):
    data = items(n_classes=2, per_class=6)
    _, val = sample_few_shot(data, data, 5, 1, val_shots=2)
    assert sorted(sum(it.label == k for it in val) for k in range(2)) == [2, 2]
    with caplog.at_level(logging.WARNING):
        sample_few_shot(data, data, 8, 1)  # 6 < 8 in train; val keeps min(8, 4) = 4 <= 6: no warning
        sample_few_shot(data, data, 8, 1, val_shots=7, source="Tiny")
    messages = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("few-shot train: ") for m in messages) == 1  # the default source
    assert sum(m.startswith("Tiny train: ") for m in messages) == 1 and sum(m.startswith("Tiny val: ") for m in messages) == 1


def test_short_classes_are_those_below_shots_and_at_most_ten_are_named(caplog):
    from aape_lightning.data.classification.protocols import by_label, warn_short_classes

    exact = by_label(items(n_classes=2, per_class=4))
    assert warn_short_classes(exact, 4, "x") == {}  # exactly `shots` images is enough
    many = by_label(items(n_classes=12, per_class=1))
    with caplog.at_level(logging.WARNING):
        short = warn_short_classes(many, 2, "x")
    assert short == {f"class{c}": 1 for c in range(12)}
    (message,) = [r.getMessage() for r in caplog.records]
    listed = ", ".join(f"'class{c}' 1" for c in range(10))
    assert message.endswith(f"(Dassl without repeat): {listed} and 2 more")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        warn_short_classes(by_label(items(n_classes=10, per_class=1)), 2, "x")
    assert caplog.records[0].getMessage().endswith(f"{listed}")  # ten: all named, no "more"
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        warn_short_classes(by_label(items(n_classes=11, per_class=1)), 2, "x")
    (message,) = [r.getMessage() for r in caplog.records]  # eleven: the first ten named, then "and 1 more"
    assert message == f"x: 11 classes have fewer than 2 images and keep all they have (Dassl without repeat): {listed} and 1 more"


def test_split_fingerprint_is_16_hex_of_the_paths_and_labels():
    import hashlib

    from aape_lightning.data.classification.protocols import split_fingerprint

    rows = [LabelledImage("/a.png", 0, "x"), LabelledImage("/b.png", 1, "y")]
    assert split_fingerprint(rows) == hashlib.sha256(b"/a.png\t0\n/b.png\t1\n").hexdigest()[:16]
    assert split_fingerprint([rows[0], LabelledImage("/b.png", 2, "y")]) != split_fingerprint(rows)
    undecodable = b"/caf\xe9.png".decode("utf-8", "surrogateescape")  # a Latin-1 file name as os.listdir gives it
    assert split_fingerprint([LabelledImage(undecodable, 3, "z")]) == hashlib.sha256(b"/caf\xe9.png\t3\n").hexdigest()[:16]
