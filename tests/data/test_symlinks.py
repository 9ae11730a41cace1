"""Nothing outside the data root is read unless asked; symlink loops and escapes are one line (issue 23, item 3)."""

from __future__ import annotations

import os
import re

import pytest
from PIL import Image

from aape_lightning.data.classification.readers import ImageFolderReader
from aape_lightning.data.image_datamodule import ImageDataModule
from aape_lightning.data.image_files import find_images
from aape_lightning.errors import DataError


def images(folder, n=4):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.new("RGB", (4, 4)).save(folder / f"{i}.png")
    return folder


@pytest.fixture()
def root(tmp_path):
    images(tmp_path / "data" / "cat")
    images(tmp_path / "data" / "dog")
    images(tmp_path / "elsewhere" / "private")
    return tmp_path / "data"


def test_a_class_folder_linking_out_of_the_root_is_named_with_its_target_and_the_fix(root):
    os.symlink(root.parent / "elsewhere", root / "everything")  # as a link to / would, but small
    with pytest.raises(DataError) as err:
        ImageFolderReader(str(root)).read()
    message = str(err.value)
    assert "\n" not in message
    assert re.search(rf"symlink {re.escape(str(root / 'everything'))} -> {re.escape(str(root.parent / 'elsewhere'))} "
                     r"leads out of the data root .*allow_outside_root: true", message)


def test_allow_outside_root_reads_the_linked_folder(root):
    os.symlink(root.parent / "elsewhere" / "private", root / "bird")
    splits = ImageFolderReader(str(root), allow_outside_root=True, val_fraction=0.25, test_fraction=0.25).read()
    assert splits.classnames == ["bird", "cat", "dog"]
    assert sum(it.classname == "bird" for it in splits.train + splits.val + splits.test) == 4


def test_a_link_to_a_folder_above_itself_is_a_loop_even_when_outside_is_allowed(root):
    os.symlink(root, root / "again")  # a class that would hold every other class's images
    for allow in (False, True):
        with pytest.raises(DataError, match=r"symlink .*again -> .* is a loop .*remove the link"):
            ImageFolderReader(str(root), allow_outside_root=allow).read()


def test_links_that_point_at_each_other_are_a_loop(root):
    os.symlink(root / "dog", root / "cat" / "to_dog")
    os.symlink(root / "cat", root / "dog" / "to_cat")
    with pytest.raises(DataError, match="is a loop"):
        find_images(root / "cat", root)


def test_links_inside_the_root_are_followed(root):
    os.symlink(root / "dog" / "0.png", root / "cat" / "dog0.png")
    os.symlink(root / "dog", root / "cat" / "dogs")
    found = find_images(root / "cat", root)
    assert root / "cat" / "dog0.png" in found and root / "cat" / "dogs" / "3.png" in found
    assert len(found) == 4 + 1 + 4


def test_an_image_file_linking_out_of_the_root_is_refused(root):
    os.symlink(root.parent / "elsewhere" / "private" / "0.png", root / "cat" / "secret.png")
    with pytest.raises(DataError, match=r"secret\.png -> .*private/0\.png leads out of the data root"):
        ImageFolderReader(str(root)).read()


def test_predict_dir_links_out_of_it_are_refused_with_the_fix(root):
    os.symlink(root.parent / "elsewhere", root / "cat" / "more")
    with pytest.raises(DataError, match=r"leads out of the data root .*pass the link's target as predict_dir"):
        ImageDataModule(predict_dir=str(root)).predict_dataloader()


def test_a_split_row_leaving_the_image_folder_is_refused_unless_allowed(root):
    import json

    from aape_lightning.data.classification.readers import CoOpSplitReader

    images(root / "images", n=1)
    rows = [["0.png", 0, "cat"], ["../../elsewhere/private/0.png", 1, "secret"]]
    (root / "split_zhou_X.json").write_text(json.dumps({"train": rows, "val": rows, "test": rows}), encoding="utf-8")
    with pytest.raises(DataError, match=r'row 1 of "train" names .*elsewhere.*, outside .*allow_outside_root: true'):
        CoOpSplitReader(str(root)).read()
    assert CoOpSplitReader(str(root), allow_outside_root=True).read().classnames == ["cat", "secret"]


def test_a_split_folder_linking_out_of_the_root_is_refused(root):
    """``root/{train,test}/<class>``: a ``test`` folder that is a link out of the root is caught as well."""
    for split in ("train", "elsewhere_test"):
        images((root / split / "cat") if split == "train" else (root.parent / split / "cat"))
        images((root / split / "dog") if split == "train" else (root.parent / split / "dog"))
    os.symlink(root.parent / "elsewhere_test", root / "test")
    with pytest.raises(DataError, match=r"symlink .*test -> .*elsewhere_test leads out of the data root"):
        ImageFolderReader(str(root)).read()
