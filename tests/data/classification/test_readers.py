import json

import pytest
from PIL import Image

from aape_lightning.data.classification.readers import CoOpSplitReader, ImageFolderReader
from aape_lightning.errors import DataError


def test_coop_reader(tiny_dataset):
    splits = CoOpSplitReader(str(tiny_dataset)).read()
    assert splits.classnames[0] == "red square" and len(splits.classnames) == 6
    assert len(splits.train) == 48 and len(splits.val) == 24 and len(splits.test) == 24
    assert splits.prompts == str(tiny_dataset / "prompts.json")
    assert all(it.path.endswith(".png") for it in splits.train)


def test_missing_root_and_split_file(tmp_path, tiny_dataset):
    with pytest.raises(DataError, match=r"data root .*nowhere does not exist"):
        CoOpSplitReader(str(tmp_path / "nowhere")).read()
    with pytest.raises(DataError, match=r"split file .*split_zhou_Other.json does not exist"):
        CoOpSplitReader(str(tiny_dataset), split_file="split_zhou_Other.json").read()
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="expected exactly one split_zhou_"):
        CoOpSplitReader(str(tmp_path / "empty")).read()


def test_conflicting_class_names_in_split(tmp_path):
    (tmp_path / "split_zhou_X.json").write_text(
        json.dumps({"train": [["a.png", 0, "cat"], ["b.png", 0, "dog"]], "val": [], "test": []})
    )
    with pytest.raises(DataError, match="label 0 is named both 'cat' and 'dog'"):
        CoOpSplitReader(str(tmp_path)).read()


def test_split_file_names_lose_underscores_as_in_coop(tmp_path):
    """CoOp's prompt learner builds "a photo of a american bulldog." from OxfordPets' 'american_bulldog'."""
    (tmp_path / "images").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "a.png")
    rows = [["a.png", 0, "american_bulldog"], ["a.png", 1, "great_pyrenees"]]
    (tmp_path / "split_zhou_Pets.json").write_text(json.dumps({"train": rows, "val": rows, "test": rows}))
    splits = CoOpSplitReader(str(tmp_path)).read()
    assert splits.classnames == ["american bulldog", "great pyrenees"]
    assert [it.classname for it in splits.train] == ["american bulldog", "great pyrenees"]


def make_folder(root, classes=("cat", "sea_lion"), n=10):
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (8, 8)).save(root / c / f"{i}.jpg")


def test_image_folder_auto_split(tmp_path):
    make_folder(tmp_path)
    a = ImageFolderReader(str(tmp_path), seed=1).read()
    b = ImageFolderReader(str(tmp_path), seed=1).read()
    assert a.classnames == ["cat", "sea lion"]
    assert (len(a.train), len(a.val), len(a.test)) == (10, 4, 6)
    assert a.train == b.train
    assert not {it.path for it in a.train} & {it.path for it in a.test}


def test_flat_folder_is_an_error(tmp_path):
    Image.new("RGB", (8, 8)).save(tmp_path / "x.jpg")
    with pytest.raises(DataError, match="no class folders"):
        ImageFolderReader(str(tmp_path)).read()
