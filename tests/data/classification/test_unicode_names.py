"""A class name spelled in NFD (combining accents, as macOS writes folder names) is the same class as its NFC spelling.

Issue 23, item 2: folders, split files, prompt banks, mappings, class lists and checkpoints' class sets.
"""

from __future__ import annotations

import json
import unicodedata

import pytest
from PIL import Image

from aape_lightning.data.classification.readers import CoOpSplitReader, ImageFolderReader
from aape_lightning.errors import PromptBankError
from aape_lightning.prompts.generate import read_class_list
from aape_lightning.prompts.mapping import read_mapping_file
from aape_lightning.prompts.resolve import resolve_prompts

NFC = unicodedata.normalize("NFC", "crème brûlée")
NFD = unicodedata.normalize("NFD", NFC)


def test_the_two_spellings_differ_as_strings():
    assert NFC != NFD and len(NFD) > len(NFC)  # the tests below would prove nothing otherwise


def _bank(path, key, prompts=("a photo of a custard.",)):
    path.write_text(json.dumps({key: list(prompts), "cat": ["a photo of a cat."]}, ensure_ascii=False), encoding="utf-8")
    return path


def test_nfd_class_folder_meets_an_nfc_bank_key(tmp_path):
    root = tmp_path / "data"
    for name in (NFD, "cat"):
        (root / name).mkdir(parents=True)
        for i in range(4):
            Image.new("RGB", (4, 4)).save(root / name / f"{i}.png")
    splits = ImageFolderReader(str(root), val_fraction=0.25, test_fraction=0.25).read()
    assert splits.classnames == ["cat", NFC]
    assert {it.classname for it in splits.train} == {"cat", NFC}
    assert all(NFD in it.path for it in splits.train if it.classname == NFC)  # the file is still found by its path
    prompts = resolve_prompts(_bank(tmp_path / "bank.json", NFC), splits.classnames)
    assert prompts == [["a photo of a cat."], ["a photo of a custard."]]


def test_nfc_split_file_names_meet_an_nfd_bank_key(tmp_path):
    (tmp_path / "images").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "images" / "a.png")
    rows = [["a.png", 0, "cat"], ["a.png", 1, NFD]]
    (tmp_path / "split_zhou_X.json").write_text(json.dumps({"train": rows, "val": rows, "test": rows}))
    splits = CoOpSplitReader(str(tmp_path)).read()
    assert splits.classnames == ["cat", NFC]
    assert resolve_prompts(_bank(tmp_path / "bank.json", NFD), splits.classnames)[1] == ["a photo of a custard."]


def test_a_bank_spelling_one_key_both_ways_repeats_it(tmp_path):
    path = tmp_path / "bank.json"
    path.write_text(f'{{"{NFC}": ["a"], "{NFD}": ["b"]}}', encoding="utf-8")
    with pytest.raises(PromptBankError, match="appears twice"):
        resolve_prompts(path, [NFC])


def test_mapping_and_class_list_names_are_nfc(tmp_path):
    mapping = tmp_path / "mapping.json"
    mapping.write_text(json.dumps({NFD: NFD}, ensure_ascii=False), encoding="utf-8")
    assert read_mapping_file(mapping) == {NFC: NFC}
    bank = _bank(tmp_path / "bank.json", "custard")
    mapping.write_text(json.dumps({NFD: "custard"}, ensure_ascii=False), encoding="utf-8")
    assert resolve_prompts(bank, [NFC], mapping_path=mapping) == [["a photo of a custard."]]
    classes = tmp_path / "classes.txt"
    classes.write_text(f"{NFD}\n{NFC}\ncat\n", encoding="utf-8")
    assert read_class_list(classes) == [NFC, "cat"]  # one class, not two


def test_a_checkpoint_class_set_in_nfd_is_the_data_class_set_in_nfc(tiny_clip, cache_dir):
    """A model trained (or configured) with NFD names is not refused on data that reads them as NFC."""
    from types import SimpleNamespace

    from aape_lightning.heads import ZeroShotHead
    from aape_lightning.tasks import ClassificationTask

    model = ClassificationTask(backbone=str(tiny_clip), head=ZeroShotHead, class_sets={"all": ["cat", NFD]})
    data = SimpleNamespace(class_sets={"all": ["cat", NFC]}, train_set="all", test_sets=["all"], template=None,
                           prompts_for=lambda name: [])
    model.trainer = SimpleNamespace(datamodule=data)
    model.setup("test")
    assert model.hparams["class_sets"] == {"all": ["cat", NFC]}
    model.on_load_checkpoint({"hyper_parameters": {"class_sets": {"all": ["cat", NFD]}}, "state_dict": {}})
