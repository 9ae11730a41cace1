"""The table runner: runs, resumes without recomputing, and reports unknown methods."""

from __future__ import annotations

from pathlib import Path

import yaml

from aape_lightning.cli import main

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def table_config(tmp_path, tiny_clip, tiny_dataset) -> Path:
    cfg = {
        "methods": {"zero_shot": str(CONFIGS / "classification/zero_shot.yaml"),
                    "coop": str(CONFIGS / "classification/coop.yaml"),
                    "linear_probe": str(CONFIGS / "classification/linear_probe.yaml")},
        "base": [str(CONFIGS / "fewshot.yaml")],
        "datasets": {"Tiny": ["--data.reader.root", str(tiny_dataset)]},
        "seeds": [1, 2],
        "output": str(tmp_path / "table"),
        "extra_args": ["--model.backbone", str(tiny_clip), "--trainer.max_epochs", "1", "--trainer.accelerator",
                       "cpu", "--trainer.precision", "32-true", "--data.num_workers", "0", "--data.shots", "2",
                       "--trainer.enable_progress_bar", "false", "--model.head.context.n_ctx", "4"],
    }
    path = tmp_path / "table.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_table_runs_and_resumes(tmp_path, tiny_clip, tiny_dataset, cache_dir, capsys):
    cfg = table_config(tmp_path, tiny_clip, tiny_dataset)
    # the zero-shot head has no n_ctx: method-specific extras go through --only runs below
    args = ["table", "--config", str(cfg)]
    text = yaml.safe_load(cfg.read_text())
    text["extra_args"] = text["extra_args"][:-2]
    cfg.write_text(yaml.safe_dump(text))
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "| zero_shot |" in out and "| coop |" in out and "Tiny H" in out
    records = sorted((tmp_path / "table").rglob("result.json"))
    assert len(records) == 6
    # trainable heads were fitted (a checkpoint exists), the zero-shot head was only tested
    for method, fitted in (("coop", True), ("linear_probe", True), ("zero_shot", False)):
        assert bool(list((tmp_path / "table" / "Tiny" / method).rglob("*.ckpt"))) == fitted
    # a table's checkpoint carries its data settings, like `aape fit`'s (`aape test --ckpt_path` alone works)
    import torch

    ckpt = next((tmp_path / "table" / "Tiny" / "coop").rglob("*.ckpt"))
    data = torch.load(ckpt, map_location="cpu", weights_only=False)["aape_data"]
    assert data["init_args"]["reader"]["init_args"]["root"] == str(tiny_dataset)
    stamps = [r.stat().st_mtime_ns for r in records]
    assert main(args) == 0  # resumes: nothing recomputed
    assert [r.stat().st_mtime_ns for r in records] == stamps
    assert capsys.readouterr().out.splitlines()[-2:] == out.splitlines()[-2:]
    # the zero-shot rows are identical across seeds: nothing is sampled for the test set
    zs = [yaml.safe_load(r.read_text())["test"] for r in records if "zero_shot" in str(r)]
    assert zs[0] == zs[1]


def test_unknown_method_lists_known(tmp_path, tiny_clip, tiny_dataset, capsys):
    cfg = table_config(tmp_path, tiny_clip, tiny_dataset)
    assert main(["table", "--config", str(cfg), "--only", "[coop, cooop]"]) == 2
    err = capsys.readouterr().err
    assert "unknown method(s) ['cooop']" in err and "'coop'" in err and "'zero_shot'" in err


def test_an_edited_config_is_rerun_not_served_stale(tmp_path, tiny_clip, tiny_dataset, cache_dir):
    method = tmp_path / "zero_shot.yaml"
    method.write_text((CONFIGS / "classification/zero_shot.yaml").read_text())
    cfg = table_config(tmp_path, tiny_clip, tiny_dataset)
    text = yaml.safe_load(cfg.read_text())
    text.update(methods={"zero_shot": str(method)}, seeds=[1], extra_args=text["extra_args"][:-2])
    cfg.write_text(yaml.safe_dump(text))
    assert main(["table", "--config", str(cfg)]) == 0
    (record,) = (tmp_path / "table").rglob("result.json")
    first, stamp = yaml.safe_load(record.read_text()), record.stat().st_mtime_ns
    assert main(["table", "--config", str(cfg)]) == 0
    assert record.stat().st_mtime_ns == stamp  # unchanged: reused
    method.write_text(method.read_text().replace("head:\n      class_path: ZeroShotHead",
                                                 "head:\n      class_path: ZeroShotHead\n      init_args:\n"
                                                 "        templates: ['a drawing of a {}.']"))
    assert main(["table", "--config", str(cfg)]) == 0
    assert record.stat().st_mtime_ns != stamp  # the edited method ran again
    assert yaml.safe_load(record.read_text())["key"] != first["key"]
