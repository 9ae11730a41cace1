"""Split files are made as CoOp made them: seeded, in CoOp's JSON, never over an existing file."""

from __future__ import annotations

import json
import logging
import random

import pytest
from fake_catalog import BUILDERS, build, build_sun

from aape_lightning.data.classification import split_maker as sm
from aape_lightning.data.classification.catalog import CATALOG
from aape_lightning.data.classification.catalog_reader import CatalogReader
from aape_lightning.errors import DataError

MADE = [name for name, spec in CATALOG.items() if spec.make_split is not None]


def groups(n_classes=3, n=10):
    return [(f"class{k}", [f"class{k}/{i}.jpg" for i in range(n)]) for k in range(n_classes)]


def test_split_groups_is_50_20_30_and_deterministic_per_seed():
    a = sm.split_groups(groups(), random.Random(1))
    assert a == sm.split_groups(groups(), random.Random(1))
    assert a != sm.split_groups(groups(), random.Random(2))
    assert [len(a[s]) for s in ("train", "val", "test")] == [15, 6, 9]
    for k in range(3):
        parts = [{p for p, label, _ in a[s] if label == k} for s in ("train", "val", "test")]
        assert [len(p) for p in parts] == [5, 2, 3] and not (parts[0] & parts[1] or parts[0] & parts[2])


def test_split_trainval_holds_out_20_percent_per_class():
    trainval = [(f"{k}_{i}.jpg", k, f"c{k}") for k in range(2) for i in range(10)]
    test = [("t.jpg", 0, "c0")]
    split = sm.split_trainval(trainval, test, random.Random(3))
    assert [len(split[s]) for s in ("train", "val", "test")] == [16, 4, 1]
    assert split == sm.split_trainval(list(reversed(trainval)), test, random.Random(3))  # input order is irrelevant


def test_too_small_classes_name_the_class():
    with pytest.raises(DataError, match="class 'class0' has 2 images, too few"):
        sm.split_groups(groups(n=2), random.Random(1))
    with pytest.raises(DataError, match="class 'c0' has 2 training images, too few"):
        sm.split_trainval([("a", 0, "c0"), ("b", 0, "c0")], [], random.Random(1))


def test_split_file_is_coop_json_logged_and_never_overwritten(tmp_path, caplog):
    build("DescribableTextures", tmp_path, split=False)
    folder = tmp_path / "dtd"
    path = folder / "split_zhou_DescribableTextures.json"
    with caplog.at_level(logging.INFO, logger="aape_lightning.data.classification.split_maker"):
        sm.make_split_file(sm.describable_textures, folder, folder / "images", path, seed=5)
    assert f"no split file at {path}; made one with seed 5, wrote {path}" in caplog.text
    raw = json.loads(path.read_text())
    assert sorted(raw) == ["test", "train", "val"]
    relpath, label, classname = raw["train"][0]
    assert isinstance(relpath, str) and isinstance(label, int)
    assert classname == ["banded", "blotchy", "zigzagged"][label]
    assert (folder / "images" / relpath).is_file()
    before = path.read_text()
    with pytest.raises(DataError, match="never overwritten"):
        sm.make_split_file(sm.describable_textures, folder, folder / "images", path, seed=6)
    with pytest.raises(DataError, match="never overwritten"):
        sm.write_split({"train": [], "val": [], "test": []}, path)
    assert path.read_text() == before


@pytest.mark.parametrize("name", MADE)
def test_reader_makes_a_missing_split_once(name, tmp_path):
    tree = build(name, tmp_path, split=False)
    reader = CatalogReader(name, root=str(tmp_path), split_seed=3)
    assert not reader.split_path.exists()
    splits = reader.read()
    assert reader.split_path.is_file()
    assert splits.classnames == tree.classnames
    assert (len(splits.train), len(splits.val), len(splits.test)) == tree.sizes
    assert {it.path for it in splits.train}.isdisjoint(it.path for it in splits.test)
    written = reader.split_path.read_text()
    again = CatalogReader(name, root=str(tmp_path), split_seed=4).read()  # the file wins over the seed
    assert again.train == splits.train and reader.split_path.read_text() == written


def test_same_seed_same_file_other_seed_other_file(tmp_path):
    texts = []
    for i, seed in enumerate((1, 1, 2)):
        build("Caltech101", tmp_path / str(i), split=False)
        reader = CatalogReader("Caltech101", root=str(tmp_path / str(i)), split_seed=seed)
        reader.read()
        texts.append(reader.split_path.read_text())
    assert texts[0] == texts[1] != texts[2]
    assert "BACKGROUND_Google" not in texts[0] and "Faces_easy/" not in texts[0]


def test_sun397_without_partitions_splits_each_class(tmp_path, caplog):
    build_sun(tmp_path / "sun397", split=False, partitions=False)
    with caplog.at_level(logging.WARNING):
        splits = CatalogReader("SUN397", root=str(tmp_path)).read()
    assert "no Training_01.txt/Testing_01.txt" in caplog.text
    assert (len(splits.train), len(splits.val), len(splits.test)) == (15, 6, 9)


def test_missing_source_files_are_named(tmp_path):
    BUILDERS["OxfordPets"](tmp_path / "oxford_pets", False)
    (tmp_path / "oxford_pets" / "annotations" / "test.txt").unlink()
    with pytest.raises(DataError, match=r"annotations/test.txt is missing; `aape data prepare"):
        CatalogReader("OxfordPets", root=str(tmp_path)).read()
