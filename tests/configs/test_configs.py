"""Every YAML under configs/ parses and runs one step on the tiny CLIP and tiny dataset."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aape_lightning.cli import main
from cli_helpers import run_aape

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
BASE = CONFIGS / "fewshot.yaml"
NOTHING_TO_TRAIN = {"ZeroShotHead", "CuPLHead"}  # evaluated with `aape test`


def all_configs() -> list[Path]:
    """LightningCLI configs: everything but the table runner's files (tested below)."""
    return sorted(p for p in CONFIGS.rglob("*.yaml") if "table" not in p.relative_to(CONFIGS).parts)


def command_for(stack: list[Path]) -> list[str]:
    """``fit`` (``test`` when the stacked head is zero-shot: nothing trains) with each file as a --config."""
    head, protocol = None, None
    for path in stack:
        cfg = yaml.safe_load(path.read_text()) or {}
        head = ((cfg.get("model") or {}).get("init_args") or {}).get("head", head)
        protocol = ((cfg.get("data") or {}).get("init_args") or {}).get("protocol", protocol)
    evaluate_only = protocol == "cross" or (isinstance(head, dict) and head.get("class_path") in NOTHING_TO_TRAIN)
    sub = "test" if evaluate_only else "fit"
    return [sub, *[a for path in stack for a in ("--config", str(path))]]


def overrides(tiny_clip: Path, tiny_dataset: Path, tmp_path: Path) -> list[str]:
    return [
        "--model.backbone", str(tiny_clip),
        "--data.reader", "CoOpSplitReader", "--data.reader.root", str(tiny_dataset),
        "--data.num_workers", "0", "--data.batch_size", "4",
        "--trainer.fast_dev_run", "1", "--trainer.accelerator", "cpu", "--trainer.precision", "bf16-mixed",
        "--trainer.default_root_dir", str(tmp_path),
    ]


def caption_overrides(tiny_clip: Path, tmp_path: Path) -> list[str]:
    """A caption task's config runs alone (not on the few-shot base) on a few demo captions."""
    return [
        "--model.backbone", str(tiny_clip), "--data.reader", "DemoCaptionReader", "--data.reader.root", str(tmp_path / "demo"),
        "--data.reader.n_train", "8", "--data.reader.n_test", "4", "--data.reader.val_from_train", "2",
        "--data.num_workers", "0", "--data.batch_size", "4",
        "--trainer.fast_dev_run", "1", "--trainer.accelerator", "cpu", "--trainer.precision", "bf16-mixed",
        "--trainer.default_root_dir", str(tmp_path),
    ]


def vqa_overrides(tiny_clip: Path, tmp_path: Path) -> list[str]:
    """A VQA config runs alone on a few demo questions (the demo LM is the shipped one)."""
    return [
        "--model.backbone", str(tiny_clip), "--data.reader", "DemoVQAReader", "--data.reader.root", str(tmp_path / "demo"),
        "--data.reader.n_train", "4", "--data.reader.n_test", "2", "--data.num_workers", "0", "--data.batch_size", "4",
        "--trainer.fast_dev_run", "1", "--trainer.accelerator", "cpu", "--trainer.precision", "bf16-mixed",
        "--trainer.default_root_dir", str(tmp_path),
    ]


def data_class(path: Path) -> str | None:
    return ((yaml.safe_load(path.read_text()) or {}).get("data") or {}).get("class_path")


def is_captions(path: Path) -> bool:
    return data_class(path) == "CaptionDataModule"


def is_ddp(path: Path) -> bool:
    return ((yaml.safe_load(path.read_text()) or {}).get("trainer") or {}).get("strategy") == "ddp"


def is_multinode(path: Path) -> bool:
    """A preset for several machines: it waits for the other nodes, so tests/cli/test_multinode.py runs it under torchrun."""
    return (((yaml.safe_load(path.read_text()) or {}).get("trainer") or {}).get("num_nodes") or 1) > 1


def test_configs_exist():
    assert BASE in all_configs() and len(all_configs()) >= 4


@pytest.mark.parametrize("config", [c for c in all_configs() if not is_ddp(c)], ids=lambda p: str(p.relative_to(CONFIGS)))
def test_config_runs_one_step(config, tiny_clip, tiny_dataset, tmp_path, cache_dir):
    if is_captions(config):
        assert main(["fit", "--config", str(config), *caption_overrides(tiny_clip, tmp_path)]) == 0
        return
    if data_class(config) == "VQADataModule":
        assert main(["fit", "--config", str(config), *vqa_overrides(tiny_clip, tmp_path)]) == 0
        return
    stack = [config] if config == BASE else [BASE, config]
    sub, *args = command_for(stack)
    assert main([sub, *args, *overrides(tiny_clip, tiny_dataset, tmp_path)]) == 0


@pytest.mark.slow
@pytest.mark.parametrize("config", [c for c in all_configs() if is_ddp(c) and not is_multinode(c)],
                         ids=lambda p: str(p.relative_to(CONFIGS)))  # fmt: skip
def test_ddp_preset_runs_one_step(config, tiny_clip, tiny_dataset, tmp_path):
    args = ["fit", "--config", str(BASE), "--config", str(config), *overrides(tiny_clip, tiny_dataset, tmp_path),
            "--trainer.devices", "2"]
    out = run_aape(args, tmp_path / "cache")
    assert out.returncode == 0, out.stderr[-3000:]


@pytest.mark.parametrize("table", sorted((CONFIGS / "table").glob("*.yaml")), ids=lambda p: p.name)
def test_table_configs_parse_with_the_table_parser_and_name_existing_files(table):
    from aape_lightning.experiments.table import table_parser

    cfg = table_parser().parse_args(["--config", str(table)])
    root = CONFIGS.parent
    files = [*cfg.base, *[m if isinstance(m, str) else m[0] for m in cfg.methods.values()]]
    missing = [f for f in files if not (root / f).is_file()]
    assert not missing and cfg.datasets and cfg.seeds


@pytest.mark.parametrize("launcher", sorted((CONFIGS / "table" / "launchers").glob("*.yaml")), ids=lambda p: p.name)
def test_launcher_blocks_stack_after_a_table_spec(launcher):
    from aape_lightning.experiments.slurm_launcher import SlurmOptions
    from aape_lightning.experiments.table import table_parser

    cfg = table_parser().parse_args(["--config", str(CONFIGS / "table/base2new.yaml"), "--config", str(launcher)])
    assert cfg.launcher == "slurm" and cfg.methods
    assert SlurmOptions(**cfg.slurm.as_dict()).gpus_per_run >= 1
