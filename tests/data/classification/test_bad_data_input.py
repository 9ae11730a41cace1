"""Bad data input is a DataError whose one line names the file or value and the fix; the data is left as it was."""

from __future__ import annotations

import json
import shutil

import pytest

from aape_lightning.data.classification.catalog_reader import CatalogReader
from aape_lightning.data.classification.datamodule import ClassificationDataModule
from aape_lightning.data.classification.readers import CoOpSplitReader, ImageFolderReader
from aape_lightning.errors import DataError
from folder_snapshot import snapshot
from tiny_world import TINY_CLASSES, make_coop_dataset


@pytest.fixture()
def dataset(tmp_path, tiny_dataset):
    return shutil.copytree(tiny_dataset, tmp_path / "Tiny")


@pytest.mark.parametrize(
    ("row", "says"),
    [
        (["red_square/0.png", 0], r"row 3 of \"val\" is \['red_square/0.png', 0\], expected \[image path, label, class"),
        ("red_square/0.png", r"row 3 of \"val\" is 'red_square/0.png', expected \[image path, label, class name\]"),
        (["red_square/0.png", "cat", "red square"], r"row 3 of \"val\" has label 'cat', expected a whole number"),
        (["red_square/0.png", 1.5, "red square"], r"row 3 of \"val\" has label 1.5, expected a whole number"),
        (["red_square/0.png", -1, "red square"], r"row 3 of \"val\" has label -1, expected a whole number"),
        (["red_square/0.png", 0, None], r"row 3 of \"val\" is .*class name must be non-empty strings; fix that row"),
        ([None, 0, "red square"], r"row 3 of \"val\" is .*must be non-empty strings"),
    ],
)
def test_split_rows_of_the_wrong_shape_or_label(dataset, row, says):
    split = json.loads((dataset / "split_zhou_Tiny.json").read_text())
    split["val"][3] = row
    (dataset / "split_zhou_Tiny.json").write_text(json.dumps(split))
    before = snapshot(dataset)
    with pytest.raises(DataError, match=r"split_zhou_Tiny.json: " + says) as err:
        CoOpSplitReader(str(dataset)).read()
    assert "\n" not in str(err.value) and "fix" in str(err.value)
    assert snapshot(dataset) == before


@pytest.mark.parametrize("raw", [[["a.png", 0, "a"]], {"train": {"a.png": 0}, "val": [], "test": []}])
def test_split_file_of_the_wrong_shape(tmp_path, raw):
    (tmp_path / "split_zhou_X.json").write_text(json.dumps(raw))
    with pytest.raises(DataError, match=r"split_zhou_X.json: .*(expected an object|expected a list of rows)"):
        CoOpSplitReader(str(tmp_path)).read()


def test_numeric_string_labels_still_read(dataset):
    """CoOp's files hold ints; "0" was read as 0 before and still is."""
    split = json.loads((dataset / "split_zhou_Tiny.json").read_text())
    split["train"][0][1] = str(split["train"][0][1])
    (dataset / "split_zhou_Tiny.json").write_text(json.dumps(split))
    assert CoOpSplitReader(str(dataset)).read().train[0].label == 0


def test_a_file_given_as_data_root(tmp_path):
    file = tmp_path / "split_zhou_Tiny.json"
    file.write_text("{}")
    for reader in (CoOpSplitReader(str(file)), ImageFolderReader(str(file))):
        with pytest.raises(DataError, match=r"data root .*split_zhou_Tiny.json is a file, not a folder; point") as err:
            reader.read()
        assert "does not exist" not in str(err.value)
    with pytest.raises(DataError, match=r"DescribableTextures: the data root .*split_zhou_Tiny.json is a file, not a "
                                        r"folder; set the reader's root to the folder that holds dtd/"):
        CatalogReader("DescribableTextures", root=str(file)).read()
    (tmp_path / "dtd").write_text("not a folder")
    with pytest.raises(DataError, match=r"DescribableTextures's dataset folder .*dtd is a file, not a folder"):
        CatalogReader("DescribableTextures", root=str(tmp_path)).read()
    assert file.read_text() == "{}" and (tmp_path / "dtd").read_text() == "not a folder"


@pytest.mark.parametrize("n_classes", [2, 3])
def test_base_to_new_with_too_few_classes(tmp_path, n_classes):
    data = make_coop_dataset(tmp_path / "Few", classes=TINY_CLASSES[:n_classes])
    before = snapshot(data)
    dm = ClassificationDataModule(CoOpSplitReader(str(data)), shots=2, num_workers=0)
    with pytest.raises(DataError, match=rf"Few: base-to-new splits the dataset's {n_classes} classes into base "
                                        r"\[.*\] and new \['.*'\]; each side needs at least 2 classes, .*"
                                        r"set data.protocol=all"):
        dm.setup("fit")
    assert snapshot(data) == before  # nothing sampled or written
    one = make_coop_dataset(tmp_path / "One", classes=TINY_CLASSES[:1])
    with pytest.raises(DataError, match=r"only 1 class \(\['red square'\]\); classification needs at least 2"):
        ClassificationDataModule(CoOpSplitReader(str(one)), shots=2, protocol="all").setup("fit")
    all_protocol = ClassificationDataModule(CoOpSplitReader(str(data)), shots=2, protocol="all",
                                            split_cache_dir=str(tmp_path / "splits"))
    all_protocol.setup("fit")  # two or three classes are fine without the base/new split
    assert len(all_protocol.class_sets["all"]) == n_classes


@pytest.mark.parametrize(
    ("name", "list_file", "bad_line", "says"),
    [
        ("OxfordPets", "annotations/trainval.txt", "Abyssinian_1 one 1 1",
         r"trainval.txt: line 'Abyssinian_1 one 1 1' is not like 'Abyssinian_100 1 1 1' \(2 fields, field 2 a class "
         r"number\); fix or remove that line"),
        ("OxfordPets", "annotations/test.txt", "Abyssinian_1",
         r"test.txt: line 'Abyssinian_1' is not like 'Abyssinian_100 1 1 1'"),
        ("UCF101", "ucfTrainTestlist/classInd.txt", "one ApplyEyeMakeup",
         r"classInd.txt: line 'one ApplyEyeMakeup' is not like '1 ApplyEyeMakeup'"),
        ("UCF101", "ucfTrainTestlist/trainlist01.txt", "Juggling/v_Juggling_g01_c01.avi 4",
         r"trainlist01.txt: line 'Juggling/v_Juggling_g01_c01.avi 4' is not '<action in classInd.txt>/<video>.avi'"),
    ],
)
def test_official_list_lines_of_the_wrong_shape(tmp_path, name, list_file, bad_line, says):
    """A split made from a dataset's own lists: a bad line is named, and no split file is written."""
    from fake_catalog import build

    build(name, tmp_path, split=False)
    folder = CatalogReader(name, root=str(tmp_path)).root
    path = folder / list_file
    path.write_text(path.read_text() + bad_line + "\n")
    before = snapshot(tmp_path)
    with pytest.raises(DataError, match=says):
        CatalogReader(name, root=str(tmp_path)).read()
    assert snapshot(tmp_path) == before
