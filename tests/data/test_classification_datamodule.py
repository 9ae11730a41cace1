"""The DataModule's prompt options reach the matcher: mapping file, report, fallback."""

import json

from aape_lightning.data import ClassificationDataModule, CoOpSplitReader


def test_prompts_for_uses_mapping_and_writes_report(tiny_dataset, tmp_path):
    bank = tmp_path / "bank.json"
    bank.write_text(json.dumps({"Square red": ["a red square."], "greenish round thing": ["a green circle."],
                                "Blue_Triangle": ["a blue triangle."]}))
    mapping = tmp_path / "map.json"
    mapping.write_text(json.dumps({"green circle": "greenish round thing"}))
    dm = ClassificationDataModule(CoOpSplitReader(str(tiny_dataset)), shots=2, prompts=str(bank),
                                  prompt_mapping=str(mapping), prompt_report=str(tmp_path / "report.json"),
                                  split_cache_dir=str(tmp_path / "splits"))
    dm.setup("fit")
    assert dm.prompts_for("base") == [["a red square."], ["a green circle."], ["a blue triangle."]]
    report = json.loads((tmp_path / "report.base.json").read_text())
    assert [c["method"] for c in report["classes"]] == ["word-order", "mapping", "normalised"]
